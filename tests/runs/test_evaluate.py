"""Held-out co-player evaluation on Commons: seating, episodes, provenance, outcomes."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from valuegym.analysis.evaluation_report import format_table, summarize, write_evaluation
from valuegym.runs.errors import RunError
from valuegym.runs.evaluate import EVALUATION_SEED_OFFSET, run_evaluation, seated_scenario
from valuegym.scenarios.schema import PolicySpec
from valuegym.scenarios.validation import validate_scenario

COMMONS = {
    "name": "commons-eval",
    "seed": 3,
    "env": {"id": "valuegym/Commons-v0"},
    "agents": [
        {"id": "calm", "kind": "greedy", "count": 2},
        {"id": "stressed", "kind": "greedy", "count": 2, "affect": {"stress_baseline": 0.8}},
    ],
    "max_steps": 40,
    "evaluation": {
        "focal": {"kind": "greedy"},
        "focal_agents": ["calm"],
        "background": {"greedy": [{"kind": "greedy"}], "random": [{"kind": "random"}]},
        "seeds": 6,
    },
}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    output = tmp_path_factory.mktemp("evaluation") / "out"
    run = run_evaluation(validate_scenario(COMMONS), output)
    return run, summarize(run)


def test_seats_keep_ids_and_profiles_and_take_the_policies_given():
    scenario = validate_scenario(COMMONS)
    policies = [PolicySpec(kind=kind) for kind in ("greedy", "greedy", "random", "softmax")]
    seated = seated_scenario(scenario, policies)
    assert [agent_id for agent_id, _ in seated.expanded_agents()] == [
        "calm_0",
        "calm_1",
        "stressed_0",
        "stressed_1",
    ]
    assert [agent.kind for agent in seated.agents] == ["greedy", "greedy", "random", "softmax"]
    stress = [None if p is None else p.affect.stress_baseline for p in seated.value_profiles]
    assert stress == [None, None, 0.8, 0.8]


def test_every_background_plays_the_same_seeds_one_episode_each(evaluated):
    run, summary = evaluated
    assert run.seeds == tuple(3 + EVALUATION_SEED_OFFSET + i for i in range(6))
    assert [episode.background for episode in run.episodes] == ["greedy"] * 6 + ["random"] * 6
    assert [episode.seed for episode in run.episodes] == list(run.seeds) * 2
    assert run.focal_rows == (0, 1)
    assert run.backgrounds == {"greedy": ("greedy", "greedy"), "random": ("random", "random")}
    # intervals are over episodes: one unit per episode
    for groups in summary.estimates.values():
        assert groups["focal"]["efficiency"].n_units == 6
        assert groups["focal"]["efficiency"].unit == "episodes"


def test_a_greedy_background_depletes_the_commons_faster_than_a_random_one(evaluated):
    run, summary = evaluated
    steps = {
        name: [e.rewards.shape[0] for e in run.episodes if e.background == name]
        for name in ("greedy", "random")
    }
    # Greedy-on-wanting asks four sustainable shares: with greedy co-players the resource
    # collapses within a few steps in every episode; random co-players leave it standing longer.
    assert max(steps["greedy"]) < 10
    # (a random episode can collapse as early as the greedy ones: the claim is on the mean)
    assert min(steps["random"]) >= max(steps["greedy"])
    assert np.mean(steps["random"]) > max(steps["greedy"]) + 1
    greedy, random = summary.estimates["greedy"]["all"], summary.estimates["random"]["all"]
    assert greedy["sustainability"].high < random["sustainability"].low
    # the focal (greedy) agents take more in a commons that random harvesters leave standing
    focal_greedy = summary.estimates["greedy"]["focal"]["efficiency"]
    focal_random = summary.estimates["random"]["focal"]["efficiency"]
    assert focal_greedy.high < focal_random.low
    # nobody sanctions in an all-greedy commons; random agents sometimes do (action 6)
    assert greedy["peace"].value == 1.0
    assert 0.8 < random["peace"].value < 1.0


def test_the_output_folder_says_what_produced_it_and_holds_the_outcomes(evaluated):
    run, summary = evaluated
    manifest = json.loads((run.output / "manifest.json").read_text())
    assert manifest["evaluation"]["seeds"] == list(run.seeds)
    assert manifest["evaluation"]["focal"] == {"policy": "greedy", "agents": ["calm_0", "calm_1"]}
    assert manifest["evaluation"]["checkpoints"] == []
    assert manifest["scenario"]["evaluation"]["seeds"] == 6
    assert manifest["packages"]["numpy"] == np.__version__
    results, plot = write_evaluation(summary, run.output)
    data = json.loads(results.read_text())
    assert data["peace_defined"] is True
    assert len(data["episodes"]["random"]) == 6
    first = data["episodes"]["random"][0]
    assert first["outcomes"]["focal"]["efficiency"] == pytest.approx(
        np.mean([first["returns"]["calm_0"], first["returns"]["calm_1"]])
    )
    assert data["outcomes"]["greedy"]["all"]["efficiency"]["n_units"] == 6
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert not list(run.output.glob(".*"))  # no partial files left by the atomic writes
    table = format_table(summary).splitlines()
    assert table[0].startswith("focal greedy on calm_0, calm_1 vs held-out backgrounds")
    assert table[2].startswith("greedy (greedy)")
    assert table[3].startswith("random (random)")


@pytest.mark.slow
def test_a_trained_focal_is_loaded_and_its_checkpoint_hashed(tmp_path: Path):
    from valuegym.agents.parameter_sharing import make_shared_env
    from valuegym.agents.training import TrainingConfig, build_model, save

    # An untrained shared policy loads and acts as a trained one does (CI time: no learning).
    config = TrainingConfig(env_kwargs={"n_agents": 4, "max_cycles": 10})
    model = build_model(config, make_shared_env("valuegym/Commons-v0", config))
    checkpoint = save(model, tmp_path / "model.zip")
    data = {
        **COMMONS,
        "max_steps": 10,
        "evaluation": {
            "focal": {"kind": "ppo", "checkpoint": str(checkpoint)},
            "focal_agents": ["calm_0"],
            "background": {"mixed": [{"kind": "greedy"}, {"kind": "random"}]},
            "seeds": 2,
        },
    }
    run = run_evaluation(validate_scenario(data), tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert manifest["evaluation"]["checkpoints"] == [{"path": str(checkpoint), "sha256": digest}]
    assert run.focal == "ppo:model.zip"
    assert run.backgrounds == {"mixed": ("greedy", "random", "greedy")}
    assert len(run.episodes) == 2


def test_fewer_than_two_episodes_is_refused(tmp_path: Path):
    with pytest.raises(RunError, match="at least 2"):
        run_evaluation(validate_scenario(COMMONS), tmp_path / "out", episodes=1)
    assert not (tmp_path / "out").exists()


def test_peace_is_not_defined_where_the_env_defines_no_harm(tmp_path: Path):
    conversation = {
        "name": "conversation-eval",
        "env": {"id": "valuegym/Conversation-v1"},
        "agents": [{"id": "a", "kind": "greedy", "count": 3}],
        "max_steps": 5,
        "evaluation": {"seeds": 2, "background": {"random": [{"kind": "random"}]}},
    }
    run = run_evaluation(validate_scenario(conversation), tmp_path / "out")
    summary = summarize(run)
    assert run.harm_defined is False
    assert summary.estimates["random"]["all"]["peace"].n_units == 0
    assert format_table(summary).splitlines()[-1] == (
        "peace: not defined for valuegym/Conversation-v1 (its actions cannot harm another agent)"
    )
    results, _ = write_evaluation(summary, run.output)
    assert json.loads(results.read_text())["outcomes"]["random"]["all"]["peace"]["value"] is None
    text_mode = {**conversation, "env": {**conversation["env"], "args": {"mode": "text"}}}
    with pytest.raises(RunError, match=r"env\.args\.mode: text mode takes an utterance"):
        run_evaluation(validate_scenario(text_mode), tmp_path / "text")


def test_a_planner_focal_plays_with_its_settings(tmp_path: Path):
    data = {
        **COMMONS,
        "max_steps": 5,
        "evaluation": {
            "focal": {"kind": "planner", "planner": {"horizon": 2, "rollouts": 1}},
            "focal_agents": ["calm_0"],
            "background": {"greedy": [{"kind": "greedy"}]},
            "seeds": 2,
        },
    }
    scenario = validate_scenario(data)
    seated = seated_scenario(
        scenario, [scenario.evaluation.focal] + [PolicySpec(kind="greedy")] * 3
    )
    assert seated.agents[0].kind == "planner"
    assert seated.agents[0].planner.horizon == 2
    assert seated.agents[1].planner is None
    run = run_evaluation(scenario, tmp_path / "out")
    assert run.focal == "planner"
    assert [episode.rewards.shape[1] for episode in run.episodes] == [4, 4]
