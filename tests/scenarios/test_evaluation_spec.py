"""The scenario's evaluation block: what it accepts, and each mistake refused in one line."""

from pathlib import Path

import pytest

from valuegym.scenarios.evaluation_spec import PolicySpec
from valuegym.scenarios.problems import ScenarioError
from valuegym.scenarios.validation import load_scenario, validate_scenario

COMMONS = {
    "name": "commons-evaluation-test",
    "env": {"id": "valuegym/Commons-v0"},
    "agents": [{"id": "calm", "kind": "greedy", "count": 2}, {"id": "other", "kind": "random"}],
}


def problems(evaluation, data=COMMONS, base_dir: Path | str = ".") -> list[str]:
    with pytest.raises(ScenarioError) as error:
        validate_scenario({**data, "evaluation": evaluation}, base_dir=base_dir)
    return str(error.value).splitlines()


def test_defaults_put_a_greedy_focal_on_half_the_seats_against_three_heuristics():
    spec = validate_scenario({**COMMONS, "evaluation": {}}).evaluation
    assert spec is not None
    assert spec.focal.kind == "greedy"
    assert sorted(spec.background) == ["greedy", "random", "softmax"]
    ids = ["calm_0", "calm_1", "other"]
    assert spec.focal_rows(ids, {"calm": ids[:2], "other": ids[2:]}) == [0, 1]  # round(1.5)


def test_focal_seats_by_entry_or_expanded_id_and_by_share():
    ids = ["calm_0", "calm_1", "other"]
    entries = {"calm": ids[:2], "other": ids[2:]}
    by_entry = validate_scenario({**COMMONS, "evaluation": {"focal_agents": ["calm"]}})
    by_id = validate_scenario({**COMMONS, "evaluation": {"focal_agents": ["other", "calm_1"]}})
    by_share = validate_scenario({**COMMONS, "evaluation": {"focal_share": 0.99}})
    assert by_entry.evaluation.focal_rows(ids, entries) == [0, 1]
    assert by_id.evaluation.focal_rows(ids, entries) == [1, 2]
    assert by_share.evaluation.focal_rows(ids, entries) == [0, 1]  # one seat stays background


def test_checkpoints_resolve_relative_to_the_scenario(tmp_path: Path):
    (tmp_path / "model.zip").write_bytes(b"zip")
    scenario = validate_scenario(
        {
            **COMMONS,
            "evaluation": {
                "focal": {"kind": "ppo", "checkpoint": "model.zip"},
                "background": {"other-seed": [{"kind": "ppo", "checkpoint": "model.zip"}]},
            },
        },
        base_dir=tmp_path,
    )
    assert scenario.evaluation.checkpoints() == [str(tmp_path / "model.zip")]
    assert scenario.evaluation.focal.label == "ppo:model.zip"
    trained = PolicySpec(kind="ppo", checkpoint="runs/seed1-train/checkpoints/model.zip")
    assert trained.label == "ppo:seed1-train"  # a `valuegym train` folder names its checkpoint


@pytest.mark.parametrize(
    ("evaluation", "expected"),
    [
        (
            {"backgrund": {}},
            "evaluation.backgrund: unknown key (did you mean 'background'? expected one of: "
            "focal, focal_share, focal_agents, background, seeds)",
        ),
        (
            {"background": {"g": [{"kindd": "greedy"}]}},
            "evaluation.background.g.0.kindd: unknown key (did you mean 'kind'? expected one "
            "of: kind, checkpoint, planner)",
        ),
        ({"focal": {"kind": "lm"}}, "evaluation.focal.kind: unknown value 'lm'"),
        (
            {"focal": {"kind": "ppo"}},
            "evaluation.focal.checkpoint: required for kind 'ppo' (a saved SB3 model .zip)",
        ),
        (
            {"focal": {"kind": "ppo", "checkpoint": "missing.zip"}},
            "evaluation.focal.checkpoint: file not found: ",
        ),
        (
            {"focal": {"kind": "greedy", "planner": {"horizon": 3}}},
            "evaluation.focal.planner: only used with kind 'planner' (this is 'greedy')",
        ),
        ({"background": {}}, "evaluation.background: must not be empty"),
        ({"background": {"g": []}}, "evaluation.background.g: must not be empty"),
        ({"focal_agents": ["nobody"]}, "evaluation.focal_agents.0: no agent or entry 'nobody'"),
        (
            {"focal_agents": ["calm", "other"]},
            "evaluation.focal_agents: leaves no background seat",
        ),
        (
            {"focal_share": 0.5, "focal_agents": ["calm"]},
            "evaluation.focal_agents: give either focal_share or focal_agents, not both",
        ),
        ({"focal_share": 1.0}, "evaluation.focal_share: must be < 1.0 (got 1.0)"),
        ({"seeds": 1}, "evaluation.seeds: must be >= 2 (got 1)"),
    ],
)
def test_a_bad_evaluation_block_is_refused_one_line_per_problem_at_its_dotted_path(
    evaluation, expected
):
    lines = problems(evaluation)
    assert [line for line in lines if line.startswith(expected)], lines
    assert all(line.startswith("evaluation.") for line in lines)


def test_a_single_agent_env_is_refused_in_one_line(tmp_path: Path):
    path = tmp_path / "orchard.yaml"
    path.write_text(
        "name: o\nenv: {id: valuegym/Orchard-v0}\nagents: [{kind: greedy}]\nevaluation: {}\n"
    )
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    assert str(error.value) == (
        f"{path}: evaluation: valuegym/Orchard-v0 is a single-agent env: held-out co-player "
        "evaluation needs co-players (a multi-agent env such as valuegym/Commons-v0)"
    )
