import json
from pathlib import Path

import pytest
import yaml

from valuegym.runs.population import env_arguments
from valuegym.runs.runner import RunError, run_scenario
from valuegym.runs.train import train_scenario
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
    code = main(["train", str(tmp_path / "s.yaml"), "--timesteps", "200", "--output", str(folder)])
    assert code == 0
    captured = capsys.readouterr()
    assert "mean return" in captured.err  # the progress bar's running mean
    lines = captured.out.splitlines()
    assert lines[0].startswith("evaluation: mean episode return over 10 episodes")
    assert [line.split()[0] for line in lines[1:4]] == ["trained", "random", "greedy"]
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
