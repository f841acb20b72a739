import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from valuegym.agents.tuned import tuned_settings
from valuegym.runs.population import env_arguments
from valuegym.runs.runner import RunError, run_scenario
from valuegym.runs.train import UNTUNED_TIMESTEPS, train_scenario, training_settings
from valuegym.scenarios.validation import validate_scenario

ORCHARD = {
    "name": "orchard-train",
    "seed": 0,
    "env": {"id": "valuegym/Orchard-v0"},
    "agents": [{"kind": "greedy", "affect": {"stress_baseline": 0.3}}],
    "max_steps": 20,
}


@pytest.mark.slow
def test_trained_checkpoint_acts_as_a_ppo_agent(tmp_path: Path):
    result = train_scenario(validate_scenario(ORCHARD), tmp_path / "train", timesteps=64)
    model_path = result.model_path
    assert model_path == tmp_path / "train" / "checkpoints" / "model.zip"
    assert model_path.with_suffix(".json").is_file()
    assert list((tmp_path / "train" / "tensorboard").rglob("events.out.tfevents.*"))
    assert (tmp_path / "train" / "scenario.yaml").is_file()
    playing = validate_scenario(
        {**ORCHARD, "agents": [{"kind": "ppo", "checkpoint": str(model_path)}], "episodes": 2},
    )
    for name in ("a", "b"):
        run_scenario(playing, tmp_path / name, progress=False)
    steps = (tmp_path / "a" / "records" / "steps-e00000.parquet").read_bytes()
    assert steps == (tmp_path / "b" / "records" / "steps-e00000.parquet").read_bytes()


@pytest.mark.slow
def test_multi_agent_env_trains_one_shared_policy(tmp_path: Path):
    scenario = validate_scenario(
        {
            "name": "commons-train",
            "env": {"id": "valuegym/Commons-v0"},
            "agents": [{"kind": "greedy", "count": 3}],
            "max_steps": 10,
        }
    )
    model_path = train_scenario(scenario, tmp_path, timesteps=48, evaluation_episodes=2).model_path
    assert model_path.is_file()
    mixed = validate_scenario(
        {
            **scenario.to_mapping(),
            "agents": [
                {"kind": "ppo", "checkpoint": str(model_path), "count": 2},
                {"kind": "random"},
            ],
        }
    )
    result = run_scenario(mixed, tmp_path / "run", progress=False)
    kinds = result.folder.read("steps").column("agent_kind").to_pylist()
    assert kinds[:3] == ["ppo", "ppo", "random"]


def test_training_refuses_what_sb3_cannot_train(tmp_path: Path):
    chat = validate_scenario(
        {
            "name": "chat",
            "env": {"id": "valuegym/Conversation-v0", "args": {"mode": "text"}},
            "agents": [{"kind": "greedy", "count": 2}],
        }
    )
    with pytest.raises(RunError, match="mode: numeric"):
        train_scenario(chat, tmp_path, timesteps=8)
    with pytest.raises(RunError, match="use ppo"):
        train_scenario(chat, tmp_path, algorithm="dqn", timesteps=8)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_training_plots_its_curve_and_evaluates_against_baselines_on_the_same_seeds(
    tmp_path: Path, capsys
):
    from valuegym.agents.heuristic import GreedyAgent
    from valuegym.agents.training import evaluate
    from valuegym.cli import main

    (tmp_path / "s.yaml").write_text(yaml.safe_dump(ORCHARD))
    folder = tmp_path / "train"
    arguments = ["--timesteps", "200", "--hyperparameter", "learning_rate=1e-3"]
    code = main(["train", str(tmp_path / "s.yaml"), *arguments, "--output", str(folder)])
    assert code == 0
    captured = capsys.readouterr()
    assert "mean return" in captured.err  # the progress bar's running mean
    # 200 steps cannot beat greedy on wanting: the warning says so
    assert re.search(r"interval does not lie above (random and )?greedy's", captured.err)
    lines = captured.out.splitlines()
    tuned = tuned_settings("valuegym/Orchard-v0")
    assert lines[0] == f"trained ppo for 200 steps with {tuned.n_envs} env copies"
    assert lines[1].startswith("evaluation: mean episode return over 10 episodes")
    assert [line.split()[0] for line in lines[2:5]] == ["trained", "random", "greedy"]
    assert f"tensorboard: tensorboard --logdir {folder / 'tensorboard'}" in lines
    model = json.loads((folder / "checkpoints" / "model.json").read_text())
    assert model["hyperparameters"]["learning_rate"] == 1e-3
    assert model["hyperparameters"]["gamma"] == tuned.hyperparameters["gamma"]
    assert (folder / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((folder / "evaluation.json").read_text())
    greedy = summary["policies"]["greedy"]
    expected = evaluate(
        "valuegym/Orchard-v0",
        GreedyAgent(),
        summary["seeds"],
        env_kwargs=env_arguments(validate_scenario(ORCHARD)),
    )
    assert greedy["returns"] == list(expected.returns)  # the same seeds for every policy
    for policy in summary["policies"].values():
        assert len(policy["returns"]) == 10
        assert policy["low"] <= policy["mean"] <= policy["high"]
        assert policy["mean"] == pytest.approx(sum(policy["returns"]) / 10)


@pytest.mark.parametrize("max_steps", [20, 150])
def test_env_arguments_give_time_limit_and_env_one_horizon(max_steps):
    """Made from a scenario's arguments, the registered TimeLimit ends episodes with the env."""
    import gymnasium
    from stable_baselines3.common.env_util import make_vec_env

    arguments = env_arguments(validate_scenario({**ORCHARD, "max_steps": max_steps}))
    assert arguments["episode_length"] == arguments["max_episode_steps"] == max_steps
    env = gymnasium.make("valuegym/Orchard-v0", **arguments)
    assert env.spec.max_episode_steps == env.unwrapped.rules.episode_length == max_steps
    vec_env = make_vec_env("valuegym/Orchard-v0", n_envs=1, env_kwargs=arguments)
    assert vec_env.envs[0].spec.max_episode_steps == max_steps


def test_training_defaults_to_the_envs_tuned_settings_and_validates_overrides(monkeypatch):
    tuned = tuned_settings("valuegym/Orchard-v0")
    scenario = validate_scenario(ORCHARD)
    assert training_settings(scenario) == tuned
    shorter = training_settings(scenario, timesteps=500, hyperparameters={"gamma": 0.5})
    assert shorter.total_timesteps == 500
    assert shorter.hyperparameters == {**tuned.hyperparameters, "gamma": 0.5}
    with pytest.raises(RunError, match=r"hyperparameter: \['gama'\] are not ppo arguments"):
        training_settings(scenario, hyperparameters={"gama": 0.5})
    with pytest.raises(RunError, match="timesteps: must be >= 1"):
        training_settings(scenario, timesteps=0)
    # An env without a shipped file (every registered env has one) trains with SB3's defaults.
    import valuegym.agents.tuned as tuned_module

    def no_file(env_id: str, algorithm: str = "ppo"):
        raise KeyError(f"{env_id}: no tuned settings")

    monkeypatch.setattr(tuned_module, "tuned_settings", no_file)
    untuned = training_settings(scenario)
    assert (untuned.total_timesteps, untuned.n_envs, untuned.hyperparameters) == (
        UNTUNED_TIMESTEPS,
        1,
        {},
    )


def test_hyperparameter_flag_reads_yaml_values_and_rejects_a_missing_equals_sign(capsys):
    from valuegym.cli import main
    from valuegym.cli.train import _hyperparameter

    assert _hyperparameter("policy_kwargs={net_arch: [32, 32]}") == (
        "policy_kwargs",
        {"net_arch": [32, 32]},
    )
    assert _hyperparameter("learning_rate=1e-3") == ("learning_rate", 1e-3)
    with pytest.raises(SystemExit):
        main(["train", "s.yaml", "--hyperparameter", "gamma"])
    assert "'gamma': expected KEY=VALUE" in capsys.readouterr().err


def test_without_tensorboard_train_names_the_extra_and_beaten_baselines_give_no_warning(
    tmp_path: Path, monkeypatch, capsys
):
    import valuegym.runs.train as training
    from valuegym.cli import main
    from valuegym.runs.train import PolicyEvaluation, TrainingResult

    def fake(scenario, run_dir, **_):
        evaluations = (
            PolicyEvaluation("trained", (9.0, 10.0), 9.0, 10.0),
            PolicyEvaluation("random", (1.0, 2.0), 1.0, 2.0),
            PolicyEvaluation("greedy", (7.0, 8.9), 7.0, 8.9),
        )
        settings = tuned_settings("valuegym/Orchard-v0")
        return TrainingResult(Path(run_dir) / "m.zip", evaluations, Path("c.png"), None, settings)

    monkeypatch.setattr(training, "train_scenario", fake)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(ORCHARD))
    assert main(["train", str(tmp_path / "s.yaml"), "--output", str(tmp_path / "t")]) == 0
    captured = capsys.readouterr()
    assert "tensorboard: not installed, no logs written (pip install 'valuegym[tensorboard]')" in (
        captured.out
    )
    assert "warning" not in captured.err
    result = fake(None, tmp_path)
    assert result.unbeaten() == ()
    overlapping = PolicyEvaluation("greedy", (9.0, 10.5), 9.5, 10.5)
    evaluations = (*result.evaluations[:2], overlapping)
    assert replace(result, evaluations=evaluations).unbeaten() == ("greedy",)


def test_training_runs_torch_on_the_requested_threads_and_restores_them(tmp_path, monkeypatch):
    import torch

    import valuegym.agents.training as training

    seen: list[int] = []
    real_build = training.build_model

    def spying_build(*args, **kwargs):  # the model is built, trained and evaluated in one block
        seen.append(torch.get_num_threads())
        return real_build(*args, **kwargs)

    monkeypatch.setattr(training, "build_model", spying_build)
    original = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        scenario = validate_scenario(ORCHARD)
        train_scenario(scenario, tmp_path / "one", timesteps=32, evaluation_episodes=2)
        train_scenario(
            scenario, tmp_path / "two", timesteps=32, evaluation_episodes=2, torch_threads=2
        )
        assert seen == [1, 2]
        assert torch.get_num_threads() == 2  # restored after each run
        with pytest.raises(RunError, match="torch_threads: must be >= 1"):
            train_scenario(scenario, tmp_path / "none", timesteps=32, torch_threads=0)
        assert not (tmp_path / "none").exists()
    finally:
        torch.set_num_threads(original)
