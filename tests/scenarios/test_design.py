"""A scenario's declared design: what validate refuses, and why, before anything runs."""

import copy

import pytest

from valuegym.records import RunDesign
from valuegym.scenarios.validation import ScenarioError, load_scenario, validate_scenario

CHAT = {
    "name": "chat",
    "env": {"id": "valuegym/Conversation-v0", "args": {"mode": "text"}},
    "agents": [
        {"id": "a_calm", "kind": "lm", "persona": "a", "affect": {"stress_baseline": 0.1}},
        {"id": "a_tense", "kind": "lm", "persona": "a", "affect": {"stress_baseline": 0.8}},
        {"id": "b_calm", "kind": "lm", "persona": "b", "affect": {"stress_baseline": 0.1}},
        {"id": "b_tense", "kind": "lm", "persona": "b", "affect": {"stress_baseline": 0.8}},
    ],
    "episodes": 5,
    "measure": {
        "counterfactual": {"per_entry": 1, "prompt_stress": [0.1, 0.9], "temperature": [0.7, 1.0]}
    },
    "design": {
        "factors": {
            "persona": {"a": ["a_calm", "a_tense"], "b": ["b_calm", "b_tense"]},
            "stress": {"calm": ["a_calm", "b_calm"], "stressed": ["a_tense", "b_tense"]},
        },
        "estimands": [
            {
                "measure": "mean_token_entropy",
                "contrast": "prompt_stress",
                "rows": "replay",
                "at": {"temperature": 1.0},
                "smallest_effect": 0.2,
                "primary": True,
            },
            {
                "measure": "mean_token_entropy",
                "contrast": "stress",
                "rows": "run",
                "smallest_effect": 0.2,
            },
        ],
    },
}


def changed(**edits) -> dict:
    data = copy.deepcopy(CHAT)
    for path, value in edits.items():
        node = data
        *parents, last = path.split("__")
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return data


def problems_of(data) -> dict[str, str]:
    with pytest.raises(ScenarioError) as caught:
        validate_scenario(data)
    return dict(caught.value.problems)


def test_a_sound_design_validates_and_reaches_design_json():
    scenario = validate_scenario(CHAT)
    design = scenario.run_design()
    assert design.unit == "episode"
    assert design.primary == ("mean_token_entropy:prompt_stress",)
    assert design.factors["stress"]["stressed"] == ("a_tense", "b_tense")
    again = RunDesign.from_dict(design.to_dict(), "here")
    assert again == design


def test_a_channel_read_from_the_run_s_own_rows_is_refused_with_why():
    estimand = {**CHAT["design"]["estimands"][0], "rows": "run"}
    problems = problems_of(changed(design__estimands__0=estimand))
    assert "speech temperature follows" in problems["design.estimands.0.rows"]
    assert "rows: replay" in problems["design.estimands.0.rows"]


def test_confounded_factors_are_refused():
    confounded = {"calm": ["a_calm", "b_calm"], "stressed": ["a_tense", "b_tense"]}
    factors = {"stress": confounded, "mood": dict(confounded)}
    problems = problems_of(changed(design__factors=factors))
    assert "confounded" in problems["design.factors.mood"]


def test_factor_entries_must_exist_and_hold_one_level():
    factors = {"stress": {"calm": ["a_calm", "nobody"], "stressed": ["a_calm", "b_tense"]}}
    problems = problems_of(changed(design__factors=factors))
    assert "no agent entry 'nobody'" in problems["design.factors.stress.calm"]
    assert "also at level calm" in problems["design.factors.stress.stressed"]


def test_one_agent_per_level_without_replication_is_refused():
    factors = {"stress": {"calm": ["a_calm"], "stressed": ["a_tense"]}}
    data = changed(design__factors=factors, episodes=1)
    data["design"]["estimands"] = [{**data["design"]["estimands"][1], "primary": True}]
    data["measure"] = {}
    problems = problems_of(data)
    assert "nothing replicates" in problems["design.estimands.0.contrast"]
    data["episodes"] = 5
    assert validate_scenario(data).design is not None


def test_replay_estimands_need_a_grid_that_identifies_them():
    problems = problems_of(changed(measure={}))
    assert "add measure.counterfactual" in problems["design.estimands.0.rows"]
    no_at = {**CHAT["design"]["estimands"][0], "at": {}}
    problems = problems_of(changed(design__estimands__0=no_at))
    assert "at which temperature" in problems["design.estimands.0.at"]
    off_grid = {**CHAT["design"]["estimands"][0], "levels": [0.1, 0.5]}
    problems = problems_of(changed(design__estimands__0=off_grid))
    assert "0.5 is not a prompt_stress level" in problems["design.estimands.0.levels"]
    wrong_measure = {**CHAT["design"]["estimands"][0], "measure": "semantic_entropy"}
    problems = problems_of(changed(design__estimands__0=wrong_measure))
    assert "not a replay measure" in problems["design.estimands.0.measure"]


def test_a_design_names_its_primary_estimand():
    data = changed()
    data["design"]["estimands"][0]["primary"] = False
    assert "primary: true" in problems_of(data)["design.estimands"]


def test_the_old_analysis_block_says_what_replaced_it():
    data = changed()
    data["analysis"] = {"primary": ["mean_token_entropy~stress"]}
    assert "design.estimands" in problems_of(data)["analysis"]


def test_sweep_designs_use_seeds_and_name_levels_of_non_numeric_parameters():
    data = {
        "name": "orchard",
        "env": {"id": "valuegym/Orchard-v0"},
        "agents": [{"kind": "greedy"}],
        "sweep": {"grid": {"agents.0.kind": ["greedy", "random"]}, "seeds": 3},
        "design": {
            "estimands": [
                {
                    "measure": "return",
                    "contrast": "agents.0.kind",
                    "rows": "sweep",
                    "smallest_effect": 1.0,
                    "primary": True,
                }
            ]
        },
    }
    problems = problems_of(data)
    assert "unit: seed" in problems["design.unit"]
    assert "levels: [greedy, random]" in problems["design.estimands.0.levels"]
    data["design"]["unit"] = "seed"
    data["design"]["estimands"][0]["levels"] = ["random", "greedy"]
    assert validate_scenario(data).design is not None


@pytest.mark.parametrize(
    "name",
    [
        "quickstart",
        "stress_sweep",
        "conversation_lm",
        "inbox_hammered",
        "commons_calm_vs_stressed",
        "commons_evaluation",
        "orchard_variety",
    ],
)
def test_every_shipped_scenario_declares_a_design_with_a_primary_estimand(name):
    scenario = load_scenario(name)
    assert scenario.design is not None
    assert any(estimand.primary for estimand in scenario.design.estimands)
    if scenario.sweep is None:
        assert scenario.episodes >= 5, "an interval over episodes needs five"
    else:
        assert len(scenario.sweep.seed_list) >= 5, "an interval over seeds needs five"


def test_a_steering_estimand_needs_its_grid_and_a_steered_agent():
    estimand = {
        "measure": "mean_token_entropy",
        "contrast": "steer_stress",
        "rows": "replay",
        "at": {"temperature": 1.0, "prompt_stress": 0.9},
        "smallest_effect": 0.2,
        "primary": True,
    }
    problems = problems_of(changed(design__estimands__0=estimand))
    assert "0 steer_stress level(s)" in problems["design.estimands.0.contrast"]
    grid = {**CHAT["measure"]["counterfactual"], "steer_stress": [0.0, 1.0]}
    problems = problems_of(changed(design__estimands__0=estimand, measure__counterfactual=grid))
    assert problems["design.estimands.0.contrast"] == (
        "no agent of the design is steered: steer_stress needs an LM agent with lm.steering"
    )
    # the grid itself is refused in one line naming the unsteered agents
    refused = problems["measure.counterfactual.steer_stress"]
    assert "\n" not in refused
    assert refused.startswith("agent a_calm (agents.0), a_tense (agents.1)")
