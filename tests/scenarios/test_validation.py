import typing
from pathlib import Path

import pytest

from valuegym.scenarios.schema import AGENT_KINDS, AgentSpec
from valuegym.scenarios.validation import (
    ScenarioError,
    apply_overrides,
    load_scenario,
    scenario_with_overrides,
    validate_scenario,
)

CONVERSATION = "valuegym/Conversation-v0"
ORCHARD = {
    "name": "orchard",
    "env": {"id": "valuegym/Orchard-v0"},
    "agents": [{"kind": "greedy"}],
}
COMMONS = {
    "name": "commons",
    "env": {"id": "valuegym/Commons-v0"},
    "agents": [
        {
            "id": "calm",
            "kind": "greedy",
            "count": 2,
            "values": {"food": {"weight": 1.0}, "rest": {"weight": 0.5, "curve": "saturating"}},
        },
        {
            "id": "tense",
            "kind": "softmax",
            "values": {"food": {"weight": 1.0}, "rest": {"weight": 0.5, "curve": "saturating"}},
            "affect": {"stress_baseline": 0.8},
        },
    ],
    "sweep": {"grid": {"agents.1.affect.stress_baseline": [0.2, 0.9]}, "seeds": 3},
}


def problems_of(data, **kwargs) -> dict[str, str]:
    with pytest.raises(ScenarioError) as caught:
        validate_scenario(data, **kwargs)
    return dict(caught.value.problems)


def test_minimal_scenario_gets_defaults():
    scenario = validate_scenario(ORCHARD)
    assert (scenario.seed, scenario.episodes, scenario.max_steps) == (0, 1, 100)
    assert scenario.expanded_agents()[0][0] == "greedy0"
    assert scenario.measure.semantic_entropy is None


def test_counts_expand_and_sweep_seeds_count():
    scenario = validate_scenario(COMMONS)
    assert [agent_id for agent_id, _ in scenario.expanded_agents()] == ["calm_0", "calm_1", "tense"]
    assert scenario.n_agents == 3
    assert scenario.sweep is not None
    assert scenario.sweep.seed_list == (0, 1, 2)


def test_scenario_is_frozen_and_round_trips():
    scenario = validate_scenario(COMMONS)
    with pytest.raises(ValueError, match="frozen"):
        scenario.seed = 3  # type: ignore[misc]
    assert validate_scenario(scenario.to_mapping()) == scenario


def test_every_problem_is_listed_with_its_dotted_path():
    data = {
        "name": "bad name!",
        "seed": -1,
        "env": {"id": "valuegym/Nope-v0", "argz": {}},
        "agents": [
            {"kind": "greedy"},
            {"kind": "wizard", "values": {"rest": {"weight": -1.0}}},
            {"kind": "ppo"},
        ],
        "episodes": "3",
        "max_stepz": 4,
    }
    problems = problems_of(data)
    assert problems["seed"] == "must be >= 0 (got -1)"
    assert problems["env.id"].startswith("unknown env id 'valuegym/Nope-v0' (expected one of: ")
    assert problems["env.argz"].startswith("unknown key (did you mean 'args'?")
    assert problems["agents.1.kind"].startswith("unknown value 'wizard' (expected one of: 'lm'")
    assert problems["agents.1.values.rest.weight"] == "must be > 0 (got -1.0)"
    assert problems["agents.2.checkpoint"].startswith("required for kind 'ppo'")
    assert problems["episodes"] == "must be an integer (got '3')"
    assert problems["max_stepz"].startswith("unknown key (did you mean 'max_steps'?")
    assert "name" in problems


def test_value_profile_problems_reuse_the_profile_checks():
    data = {
        **COMMONS,
        "agents": [
            {"kind": "greedy", "values": {"food": {"weight": 1.0}}},
            {
                "kind": "greedy",
                "values": {"food": {"curve": "cubic", "eta": 2.0}},
                "affect": {"stress_baseline": 1.5, "moood": 0.1},
            },
        ],
    }
    problems = problems_of(data)
    assert problems["agents.1.values.food.curve"].startswith("unknown curve 'cubic'")
    assert problems["agents.1.affect.stress_baseline"] == "must be in [0, 1] (got 1.5)"
    assert problems["agents.1.affect.moood"].startswith("unknown key (expected one of: mood_")


def test_agents_in_one_env_must_share_value_names():
    data = {
        **COMMONS,
        "sweep": None,
        "agents": [
            {"kind": "greedy", "values": {"food": {}}},
            {"kind": "greedy", "values": {"water": {}}},
        ],
    }
    assert "differ from agents.0's" in problems_of(data)["agents.1.values"]


def test_single_agent_env_needs_exactly_one_agent():
    data = {**ORCHARD, "agents": [{"kind": "greedy", "count": 2}]}
    assert problems_of(data)["agents"].startswith("valuegym/Orchard-v0 is a single-agent env")


def test_kind_specific_fields():
    data = {**ORCHARD, "agents": [{"kind": "greedy", "lm": {"max_new_tokens": 4}}]}
    assert problems_of(data)["agents.0.lm"] == "only used with kind 'lm' (this agent is 'greedy')"
    data = {**ORCHARD, "agents": [{"kind": "lm", "lm": {"max_new_tokens": 0, "backend": "gpt"}}]}
    problems = problems_of(data)
    assert problems["agents.0.lm.max_new_tokens"] == "must be >= 1 (got 0)"
    assert problems["agents.0.lm.backend"].startswith("unknown value 'gpt'")


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("/etc", "absolute path"),
        ("C:\\runs", "absolute path"),
        ("../elsewhere", "'..' is not allowed"),
        ("fine/../../up", "'..' is not allowed"),
    ],
)
def test_output_must_stay_under_the_runs_folder(output, message):
    assert message in problems_of({**ORCHARD, "output": output})["output"]


def test_output_may_be_a_relative_subfolder():
    assert validate_scenario({**ORCHARD, "output": "study/v2"}).output == "study/v2"


@pytest.mark.parametrize(
    ("data", "message"),
    [(None, "the scenario is empty"), ([1, 2], "must be a mapping"), ("text", "must be a mapping")],
)
def test_documents_that_are_not_mappings(data, message):
    assert message in problems_of(data)[""]


def test_sweep_values_are_validated_one_by_one():
    data = {
        **COMMONS,
        "sweep": {
            "grid": {
                "agents.1.affect.stress_baseline": [0.5, 1.5],
                "agents.7.kind": ["random"],
                "episodes": [2, 0],
            },
            "seeds": [0, 0],
        },
    }
    problems = problems_of(data)
    assert problems["sweep.seeds"] == "seeds must not repeat"
    data["sweep"]["seeds"] = [0, 4]
    problems = problems_of(data)
    assert problems["sweep.grid.agents.1.affect.stress_baseline.1"] == (
        "value 1.5: must be in [0, 1] (got 1.5)"
    )
    assert problems["sweep.grid.agents.7.kind.0"] == (
        "value 'random': agents.7: no such item (the list has 2 items, numbered from 0)"
    )
    assert problems["sweep.grid.episodes.1"] == "value 0: must be >= 1 (got 0)"
    assert len(problems) == 3


def test_overrides_make_a_validated_cell():
    scenario = validate_scenario(COMMONS)
    cell = scenario_with_overrides(scenario, {"agents.1.affect.stress_baseline": 0.3, "seed": 7})
    assert cell.seed == 7
    assert cell.sweep is None
    assert cell.agents[1].affect == {"stress_baseline": 0.3}
    assert scenario.agents[1].affect == {"stress_baseline": 0.8}  # the original is untouched
    with pytest.raises(ScenarioError) as caught:
        scenario_with_overrides(scenario, {"agents.0.kind.deeper": 1})
    assert caught.value.problems == [
        ("agents.0.kind.deeper", "cannot set: agents.0.kind is a string, not a mapping or list")
    ]


def test_apply_overrides_creates_missing_mapping_keys():
    assert apply_overrides({"a": [{"b": 1}]}, {"a.0.c.d": 2}) == {"a": [{"b": 1, "c": {"d": 2}}]}


def test_profile_files_are_inlined_and_overridden(tmp_path: Path):
    (tmp_path / "calm.yaml").write_text(
        "values:\n  food: {weight: 2.0}\n  rest: {curve: saturating}\n"
        "affect: {stress_baseline: 0.1, mood_baseline: 0.5}\n"
    )
    (tmp_path / "bad.yaml").write_text("values:\n  food: {weight: -2.0}\n")
    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text(
        "name: s\nenv: {id: valuegym/Commons-v0}\nagents:\n"
        "  - {kind: greedy, profile: calm.yaml, affect: {stress_baseline: 0.7}}\n"
        "  - {kind: greedy, profile: calm.yaml}\n"
    )
    scenario = load_scenario(scenario_file)
    assert scenario.agents[0].values == {"food": {"weight": 2.0}, "rest": {"curve": "saturating"}}
    assert scenario.agents[0].affect == {"stress_baseline": 0.7, "mood_baseline": 0.5}
    assert scenario.agents[1].affect == {"stress_baseline": 0.1, "mood_baseline": 0.5}
    scenario_file.write_text(
        "name: s\nenv: {id: valuegym/Commons-v0}\nagents:\n"
        "  - {kind: greedy, profile: bad.yaml}\n  - {kind: greedy, profile: missing.yaml}\n"
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario_file)
    problems = caught.value.problems
    assert problems[0][0] == "agents.0.profile"
    assert problems[0][1].endswith("bad.yaml: values.food.weight: must be > 0 (got -2.0)")
    assert problems[1][0] == "agents.1.profile"
    assert "cannot read" in problems[1][1]


def test_missing_checkpoint_is_reported(tmp_path: Path):
    data = {**ORCHARD, "agents": [{"kind": "ppo", "checkpoint": "model.zip"}]}
    problems = problems_of(data, base_dir=tmp_path)
    assert problems["agents.0.checkpoint"] == f"file not found: {tmp_path.resolve() / 'model.zip'}"


def test_env_arguments_are_checked_against_the_env():
    data = {
        **COMMONS,
        "sweep": None,
        "env": {
            "id": "valuegym/Commons-v0",
            "args": {"regrowth_rat": 0.1, "profile": {}, "n_agents": 7},
        },
    }
    problems = problems_of(data)
    assert problems["env.args.regrowth_rat"].startswith(
        "not an argument of valuegym/Commons-v0 (did you mean 'regrowth_rate'?"
    )
    assert problems["env.args.profile"].startswith("give value profiles on the agents")
    assert problems["env.args.n_agents"] == "7, but the scenario has 3 agents (leave it out)"


def test_a_declared_design_round_trips_and_a_scenario_without_one_has_none():
    design = {
        "unit": "seed",
        "estimands": [
            {
                "measure": "return",
                "contrast": "agents.0.kind",
                "levels": ["random", "greedy"],
                "rows": "sweep",
                "smallest_effect": 1.0,
                "primary": True,
            }
        ],
    }
    sweep = {"grid": {"agents.0.kind": ["greedy", "random"]}, "seeds": 5}
    scenario = validate_scenario({**ORCHARD, "design": design, "sweep": sweep})
    assert scenario.design is not None
    assert scenario.design.estimands[0].label == "return:agents.0.kind"
    assert validate_scenario(scenario.to_mapping()) == scenario
    assert validate_scenario(ORCHARD).design is None
    assert "design" not in validate_scenario(ORCHARD).to_mapping()
    cell = scenario_with_overrides(scenario, {"agents.0.kind": "random"})
    assert cell.design is None  # the sweep report reads the design
    assert cell.sweep is None


def test_profiles_are_resolved_once_in_validation_and_used_by_the_population(monkeypatch):
    from valuegym.runs.population import env_arguments
    from valuegym.values import ValueProfile

    scenario = validate_scenario(
        {
            "name": "profiles",
            "env": {"id": "valuegym/Commons-v0"},
            "agents": [
                {"id": "calm", "kind": "softmax", "count": 2},
                {"id": "tense", "kind": "softmax", "affect": {"stress_baseline": 0.8}},
            ],
        }
    )
    calm, tense = scenario.value_profiles
    assert calm is None  # the env's default
    assert tense is not None
    assert tense.affect.stress_baseline == 0.8

    def refuse(*args, **kwargs):
        raise AssertionError("the population merged a profile again")

    monkeypatch.setattr(ValueProfile, "merged", refuse)
    profiles = env_arguments(scenario)["profile"]
    assert [p.affect.stress_baseline for p in profiles][2] == 0.8
    assert profiles[0] == profiles[1] != profiles[2]


def test_one_pass_reports_env_arguments_nested_typos_and_missing_models_together(tmp_path):
    data = {
        "name": "bad",
        "env": {"id": "valuegym/Commons-v0", "args": {"regrowth_rat": 0.3}},
        "agents": [
            {"id": "a", "kind": "softmax", "affect": {"stress_baselin": 0.3}},
            {"id": "b", "kind": "lm", "lm": {"model": "./nowhere/model.gguf"}},
            {"id": "c", "kind": "lm", "lm": {"backend": "llamacpp", "model": "not-a-gguf"}},
        ],
        "episods": 3,
    }
    problems = problems_of(data, base_dir=tmp_path)
    assert "did you mean 'episodes'?" in problems["episods"]
    assert "did you mean 'regrowth_rate'?" in problems["env.args.regrowth_rat"]
    assert "did you mean 'stress_baseline'?" in problems["agents.0.affect.stress_baselin"]
    assert problems["agents.1.lm.model"].startswith("file not found: ./nowhere/model.gguf")
    assert "neither an embedded model" in problems["agents.2.lm.model"]
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    data = {**data, "agents": [{"id": "b", "kind": "lm", "lm": {"model": "./m.gguf"}}]}
    data.pop("episods")
    data["env"] = {"id": "valuegym/Commons-v0"}
    assert validate_scenario(data, base_dir=tmp_path).agents[0].language_model.model == "./m.gguf"


def test_a_misspelled_shipped_scenario_gets_a_suggestion(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ScenarioError) as caught:
        load_scenario("quikstart")
    assert "did you mean 'quickstart'?" in str(caught.value)


def test_agent_kinds_listed_are_the_kinds_the_schema_takes():
    assert typing.get_args(AgentSpec.model_fields["kind"].annotation) == AGENT_KINDS


def scripted(**script) -> dict:
    """Two scripted askers and a greedy helper in text-mode Conversation."""
    return {
        "name": "hammered",
        "env": {"id": "valuegym/Conversation-v0", "args": {"mode": "text"}},
        "agents": [
            {"id": "askers", "kind": "scripted", "count": 2, "script": script},
            {"id": "helper", "kind": "greedy"},
        ],
    }


def test_a_scripted_entry_validates_with_its_defaults():
    scenario = validate_scenario(scripted(act="ask", to="helper", lines=["Notes?", "Notes!"]))
    script = scenario.agents[0].script
    assert script is not None
    assert (script.act, script.to, script.lines, script.order) == (
        "ask",
        "helper",
        ["Notes?", "Notes!"],
        "random",
    )
    assert validate_scenario(scenario.to_mapping()) == scenario
    silent = validate_scenario(scripted(act="silent", lines=["..."], order="cycle"))
    assert silent.agents[0].script is not None
    assert silent.agents[0].script.to is None


def test_script_goes_with_kind_scripted_only():
    data = {**ORCHARD, "agents": [{"kind": "greedy", "script": {"act": "silent", "lines": ["x"]}}]}
    assert problems_of(data)["agents.0.script"] == (
        "only used with kind 'scripted' (this agent is 'greedy')"
    )
    data = scripted(act="ask", to="helper", lines=["x"])
    data["agents"][0] = {"id": "askers", "kind": "scripted"}
    assert problems_of(data)["agents.0.script"] == (
        "required for kind 'scripted' (act, to and lines)"
    )


def test_each_field_of_a_script_is_checked_in_one_pass():
    problems = problems_of(
        scripted(act="shout", to="helper", lines=["fine", "  "], order="shuffle")
    )
    assert problems["agents.0.script.act"] == (
        "unknown value 'shout' (expected one of: silent, ask, help, share, joke, complain)"
    )
    assert problems["agents.0.script.lines.1"] == "must not be blank"
    assert problems["agents.0.script.order"].startswith("unknown value 'shuffle'")
    assert problems_of(scripted(act="ask", to="helper", lines=[]))["agents.0.script.lines"] == (
        "must not be empty"
    )
    assert problems_of(scripted(act="ask", to="helper", lines=[""]))["agents.0.script.lines.0"] == (
        "must not be blank"
    )
    assert problems_of(scripted(act="ask", lines=["x"]))["agents.0.script.to"] == (
        "required for act 'ask' (the agent id it addresses)"
    )
    assert problems_of(scripted(act="silent", to="helper", lines=["x"]))["agents.0.script.to"] == (
        "not used with act 'silent' (it addresses no one)"
    )


@pytest.mark.parametrize(
    ("to", "message"),
    [
        (
            "helpr",
            "no agent 'helpr' in this scenario (did you mean 'helper'? agents: askers_0, "
            "askers_1, helper)",
        ),
        (
            "askers_1",
            "'askers_1' is this entry's own agent; a scripted agent addresses another agent",
        ),
        ("askers", "'askers' is this entry's own agent; a scripted agent addresses another agent"),
    ],
)
def test_a_script_addresses_another_agent_of_the_scenario(to, message):
    assert problems_of(scripted(act="ask", to=to, lines=["x"])) == {"agents.0.script.to": message}


def test_a_script_naming_an_entry_of_several_agents_asks_for_one():
    data = scripted(act="ask", to="helper", lines=["x"])
    data["agents"][1] = {"id": "helper", "kind": "greedy", "count": 2}
    assert problems_of(data) == {
        "agents.0.script.to": "'helper' names 2 agents (helper_0, helper_1); name one"
    }


def test_scripted_agents_need_conversation_in_text_mode():
    numeric = {**scripted(act="ask", to="helper", lines=["x"]), "env": {"id": CONVERSATION}}
    assert problems_of(numeric) == {
        "env.args.mode": "scripted agents speak lines; set env.args.mode: text"
    }
    commons = {**scripted(act="ask", to="helpr", lines=["x"]), "env": {"id": COMMONS["env"]["id"]}}
    problems = problems_of(commons)
    assert problems["agents.0.kind"] == (
        "scripted agents speak Conversation's acts (valuegym/Conversation-v*); "
        "valuegym/Commons-v0 has none"
    )
    assert "did you mean 'helper'?" in problems["agents.0.script.to"]  # the same pass
    assert "env.args.mode" not in problems


def test_planner_kind_takes_its_options_and_defaults():
    agent = {"kind": "planner", "planner": {"horizon": 12, "rollouts": 2}}
    spec = validate_scenario({**ORCHARD, "agents": [agent]}).agents[0]
    assert (spec.planning.horizon, spec.planning.rollouts, spec.planning.discount) == (12, 2, 0.8)
    default = validate_scenario({**ORCHARD, "agents": [{"kind": "planner"}]}).agents[0]
    assert (default.planning.horizon, default.planning.rollouts) == (10, 4)


def test_planner_options_are_checked():
    agent = {"kind": "planner", "planner": {"horizon": 0, "width": 3, "discount": 1.5}}
    problems = problems_of({**ORCHARD, "agents": [agent]})
    assert problems["agents.0.planner.horizon"] == "must be >= 1 (got 0)"
    assert problems["agents.0.planner.width"] == (
        "unknown key (did you mean 'depth'? expected one of: horizon, depth, rollouts, discount)"
    )
    assert problems["agents.0.planner.discount"].startswith("must be <= 1")
    deep = {"kind": "planner", "planner": {"horizon": 3, "depth": 4}}
    assert problems_of({**ORCHARD, "agents": [deep]})["agents.0.planner.depth"] == (
        "must be <= horizon (3) (got 4)"
    )
    greedy = {"kind": "greedy", "planner": {"horizon": 5}}
    assert problems_of({**ORCHARD, "agents": [greedy]})["agents.0.planner"] == (
        "only used with kind 'planner' (this agent is 'greedy')"
    )


def test_planner_needs_an_env_that_copies_its_state():
    data = {
        "name": "talk",
        "env": {"id": CONVERSATION},
        "agents": [{"kind": "planner"}, {"kind": "greedy"}],
    }
    assert problems_of(data)["agents.0.kind"] == (
        "a planner simulates on copies of the env's state; valuegym/Conversation-v0 cannot "
        "copy and restore its state (get_state/set_state)"
    )
