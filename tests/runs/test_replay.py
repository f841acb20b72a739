import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from valuegym.measures.information import mutual_information_from_loglik
from valuegym.records import RunFolder
from valuegym.records.schema import SCHEMA_VERSION, TABLES
from valuegym.runs.errors import RunError
from valuegym.runs.population import load_lm_model, make_lm_agent
from valuegym.runs.replay import plan_cells, replay_run, reproduce_utterance, select_contexts
from valuegym.runs.runner import run_scenario
from valuegym.scenarios.schema import CounterfactualSpec, LMSpec
from valuegym.scenarios.validation import validate_scenario

from .conftest import StatedStressModel

TOKENS = 4
INBOX = {
    "name": "stated",
    "seed": 3,
    "env": {"id": "valuegym/Inbox-v0", "args": {"arrival_rate": 2.0}},
    "agents": [
        {
            "id": "clerk",
            "kind": "lm",
            "persona": "a clerk",
            "affect": {"stress_baseline": 0.5},
            "lm": {"max_new_tokens": TOKENS},
        }
    ],
    "episodes": 2,
    "max_steps": 4,
}
GRID = CounterfactualSpec(prompt_stress=[0.1, 0.9], temperature=[0.5, 1.0], samples=2, per_entry=4)
# A 2x2 design (persona x stress baseline) whose four entries take turns, as in quickstart.
_CALM = {"stress_baseline": 0.1}
_STRESSED = {"stress_baseline": 0.85}
TURNS = {
    "name": "turns",
    "seed": 1,
    "env": {"id": "valuegym/Conversation-v0", "args": {"mode": "text", "history_length": 2}},
    "agents": [
        {
            "id": f"{persona}_{level}",
            "kind": "lm",
            "persona": f"a {persona}",
            "affect": affect,
            "lm": {"max_new_tokens": 2},
        }
        for persona in ("gardener", "nurse")
        for level, affect in (("calm", _CALM), ("stressed", _STRESSED))
    ],
    "episodes": 2,
    "max_steps": 12,
}


def _load(model):
    return {"load_model": lambda backend, name, **options: model}


def _run(tmp_path: Path, model: StatedStressModel, grid: CounterfactualSpec = GRID) -> Path:
    run_scenario(validate_scenario(INBOX), tmp_path, progress=False, **_load(model))
    replay_run(tmp_path, grid, progress=False, **_load(model))
    return tmp_path


def _where(row) -> tuple:
    return row["episode"], row["step"], row["agent"]


def test_select_contexts_spaces_each_entrys_utterances_evenly():
    rows = [{"step": s, "agent": "a", "entry": "a"} for s in range(8)]
    rows += [{"step": s, "agent": "b", "entry": "b"} for s in (1, 5)]
    steps = lambda chosen, entry: [r["step"] for r in chosen if r["entry"] == entry]  # noqa: E731
    assert steps(select_contexts(rows, 2), "a") == [2, 6]
    assert steps(select_contexts(rows, 3), "a") == [1, 4, 6]
    assert steps(select_contexts(rows, 8), "a") == list(range(8))
    assert steps(select_contexts(rows, 3), "b") == [1, 5]  # fewer than asked: all of them
    assert select_contexts(rows[::-1], 2) == select_contexts(rows, 2)  # deterministic


def test_stratified_replay_covers_every_entry_of_a_design_in_every_episode(tmp_path, fake_model):
    scenario = validate_scenario(TURNS)
    run_scenario(scenario, tmp_path, progress=False, **_load(fake_model))
    grid = CounterfactualSpec(samples=1, temperature=[0.7, 1.0], per_entry=2)
    result = replay_run(tmp_path, grid, progress=False, **_load(fake_model))
    entries = [agent.id for agent in scenario.agents]
    assert result.contexts_per_entry == dict.fromkeys(entries, 2)
    replay = RunFolder(tmp_path).read("replay").to_pylist()
    for episode in range(scenario.episodes):
        contexts = {_where(row) for row in replay if row["episode"] == episode}
        assert Counter(agent for _, _, agent in contexts) == dict.fromkeys(entries, 2)
    rows_per_context = Counter(_where(row) for row in replay)
    assert set(rows_per_context.values()) == {len(plan_cells(grid)) * grid.samples}


def test_replay_recovers_the_known_temperature_and_prompt_effects(tmp_path: Path):
    model = StatedStressModel()
    replay = RunFolder(_run(tmp_path, model)).read("replay").to_pylist()
    contexts = {_where(row) for row in replay}
    assert len(replay) == len(contexts) * len(plan_cells(GRID)) * GRID.samples
    for row in replay:
        if not row["placebo"]:  # every sample's entropy is the model's exact one
            truth = model.sequence_entropy(row["set_stress"], row["set_temperature"], TOKENS)
            assert row["sequence_entropy"] == pytest.approx(truth)
    check = RunFolder(tmp_path).read("manipulation").to_pylist()
    assert len(check) == len(contexts) * 2 * GRID.samples
    assert {row["temperature"] for row in check} == {1.0}  # the grid temperature nearest 1
    assert {row["sampled_stress"] for row in check} == {0.1, 0.9}


def test_placebo_cells_state_fresh_independent_draws_recorded_in_the_rows(tmp_path: Path):
    model = StatedStressModel()
    replay = RunFolder(_run(tmp_path, model)).read("replay").to_pylist()
    placebo = [row for row in replay if row["placebo"]]
    assert {row["cell"] for row in placebo} == {"p000", "p001"}
    stated: dict[tuple, set] = defaultdict(set)
    for row in placebo:
        assert 0 <= row["prompt_stress"] <= 1
        assert -1 <= row["prompt_mood"] <= 1
        assert math.isnan(row["set_stress"])
        assert math.isnan(row["set_mood"])
        assert row["set_temperature"] == row["temperature"] in GRID.temperature
        stated[(*_where(row), row["cell"])].add((row["prompt_stress"], row["prompt_mood"]))
    assert all(len(levels) == 1 for levels in stated.values())  # K samples, one stated state
    draws = [levels.pop() for levels in stated.values()]
    assert len(set(draws)) == len(draws)  # a fresh draw per context and cell
    actual = {(row["actual_stress"], row["actual_mood"]) for row in replay}
    assert not actual & set(draws)  # drawn, not another context's state (no permutation)
    # Stated levels spread over their ranges, whatever the actual state.
    stresses = [stress for stress, _ in draws]
    assert max(stresses) - min(stresses) > 0.3
    again = RunFolder(_run(tmp_path / "again", model)).read("replay").to_pylist()
    assert [r["prompt_stress"] for r in again] == [r["prompt_stress"] for r in replay]


def test_manipulation_rows_are_the_low_and_high_samples_scored_under_both_prompts(tmp_path):
    model = StatedStressModel()
    folder = RunFolder(_run(tmp_path, model))
    check = folder.read("manipulation")
    assert check.column_names == list(TABLES["manipulation"].names)
    rows = check.to_pylist()
    replay = {
        (*_where(row), row["set_stress"], row["sample"]): row
        for row in folder.read("replay").to_pylist()
        if row["set_temperature"] == 1.0 and not row["placebo"]
    }
    by_context = defaultdict(list)
    for row in rows:
        assert (row["low_stress"], row["high_stress"]) == (0.1, 0.9)
        sampled = replay[(*_where(row), row["sampled_stress"], row["sample"])]
        assert row["length"] == sampled["length"] == TOKENS
        expected = [
            model.score(_prompt_stating(model, stress), [sampled["text"]])[0]
            for stress in (0.1, 0.9)
        ]
        assert [row["loglik_low"], row["loglik_high"]] == pytest.approx(expected)
        by_context[_where(row)].append(row)
    for context_rows in by_context.values():
        loglik = np.empty((2, GRID.samples, 2))
        for row in context_rows:
            level = int(row["sampled_stress"] == row["high_stress"])
            loglik[level, row["sample"]] = row["loglik_low"], row["loglik_high"]
        assert mutual_information_from_loglik(loglik).mutual_information > 0


def _prompt_stating(model: StatedStressModel, stress: float) -> str:
    """A prompt the fake model reads as stating ``stress`` (it reads only that number)."""
    return f"(stress {stress:.2f}/1)"


def test_a_model_that_ignores_the_state_shows_no_reply_shift(tmp_path: Path):
    model = StatedStressModel(ignores_state=True)
    folder = RunFolder(_run(tmp_path, model))
    for row in folder.read("replay").to_pylist():
        assert row["sequence_entropy"] == pytest.approx(TOKENS * math.log(8))
    rows = folder.read("manipulation").to_pylist()
    assert rows
    loglik = np.array([[row["loglik_low"], row["loglik_high"]] for row in rows])
    assert np.array_equal(loglik[:, 0], loglik[:, 1])  # so the JS estimate is exactly 0


def test_the_replay_loads_llamacpp_models_to_score_in_batched_mode(tmp_path: Path):
    from valuegym.lm import default_backend

    loads = []

    def load(backend, name, **options):
        loads.append(options)
        return StatedStressModel()

    run_scenario(validate_scenario(INBOX), tmp_path, progress=False, load_model=load)
    replay_run(tmp_path, GRID, progress=False, load_model=load)
    batched = {"exact_scoring": False} if default_backend() == "llamacpp" else {}
    assert loads == [{}, batched]  # the run generates and acts as it always did
    for backend, options in (("llamacpp", {"exact_scoring": False}), ("transformers", {})):
        load_lm_model(LMSpec(backend=backend), "agents.0", load, batched_scoring=True)
        assert loads[-1] == options


def test_no_manipulation_check_without_two_stress_levels(tmp_path: Path):
    grid = CounterfactualSpec(prompt_stress=[0.5], temperature=[0.5, 1.0], samples=1)
    folder = RunFolder(_run(tmp_path, StatedStressModel(), grid))
    assert folder.read("replay").num_rows > 0
    assert not list(folder.records_dir.glob("manipulation-*"))


def test_a_recorded_utterance_is_reproduced_from_its_row(tmp_path: Path):
    model = StatedStressModel()
    scenario = validate_scenario(INBOX)
    result = run_scenario(scenario, tmp_path, progress=False, **_load(model))
    lm = scenario.agents[0].language_model
    agent = make_lm_agent(model, lm, ["a clerk"])
    rows = result.folder.read("utterances").to_pylist()
    assert rows
    for row in rows:
        assert reproduce_utterance(agent, row).text == row["text"]
        assert json.loads(row["prompt"])[0]["content"].startswith("You are a clerk.")


def test_replay_resumes_and_refuses_another_grid(tmp_path: Path):
    model = StatedStressModel()
    folder = _run(tmp_path, model)
    again = replay_run(folder, GRID, progress=False, **_load(model))
    assert (again.episodes_replayed, again.episodes_resumed) == (0, 2)
    for other in (
        CounterfactualSpec(temperature=[0.3, 1.5]),
        GRID.model_copy(update={"per_entry": 1}),
    ):
        with pytest.raises(RunError, match="another grid"):
            replay_run(folder, other, progress=False, **_load(model))
    other = CounterfactualSpec(temperature=[0.3, 1.5])
    replaced = replay_run(folder, other, overwrite=True, progress=False, **_load(model))
    assert replaced.episodes_replayed == 2
    assert not list(RunFolder(folder).records_dir.glob("manipulation-*"))  # old checks gone


def test_a_scenario_can_replay_its_own_contexts(tmp_path):
    model = StatedStressModel()
    counterfactual = {"prompt_stress": [0.1, 0.9], "temperature": [0.5, 1.0], "per_entry": 1}
    scenario = validate_scenario({**INBOX, "measure": {"counterfactual": counterfactual}})
    result = run_scenario(scenario, tmp_path, progress=False, **_load(model))
    replay = result.folder.read("replay")
    contexts = {_where(row) for row in replay.to_pylist()}
    assert sorted(episode for episode, _, _ in contexts) == [0, 1]  # one per entry and episode
    timing = result.folder.read_summary()["timing"]
    assert timing["replay"]["generated_tokens"] == sum(replay.column("length").to_pylist())
    assert timing["replay"]["calls"] > 0


def test_a_run_from_before_the_record_schema_is_neither_replayed_nor_resumed(tmp_path, fake_model):
    short = validate_scenario(
        {
            "name": "old",
            "env": {"id": "valuegym/Conversation-v0", "args": {"mode": "text"}},
            "agents": [{"kind": "lm", "lm": {"max_new_tokens": 2}}, {"kind": "greedy"}],
            "max_steps": 4,
            "measure": {"utterances": True},
        }
    )
    load = _load(fake_model)
    run_scenario(short, tmp_path, progress=False, **load)
    (tmp_path / "design.json").unlink()  # as a valuegym before the record schema left it
    grid = CounterfactualSpec(per_entry=1, samples=1, temperature=[0.7, 1.0])
    with pytest.raises(RunError, match="record schema version 1"):
        replay_run(tmp_path, grid, progress=False, **load)
    with pytest.raises(RunError, match=r"version 1 .*--overwrite"):
        run_scenario(short, tmp_path, progress=False, **load)
    run_scenario(short, tmp_path, progress=False, overwrite=True, **load)  # records replaced
    assert RunFolder(tmp_path).finished_episodes() == [0]
    assert RunFolder(tmp_path).read_design().schema_version == SCHEMA_VERSION
    assert "entry" in RunFolder(tmp_path).read("steps").column_names
