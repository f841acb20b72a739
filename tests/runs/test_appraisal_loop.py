"""The closed loop in a run: what is said is appraised, reaches the listener's values, and the
designed intervention re-simulates episodes with the same random numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from valuegym.numeric import SeedSalt
from valuegym.runs.episode import EpisodeRun, Replacement
from valuegym.runs.errors import RunError
from valuegym.runs.intervention import _Rows, intervention_row
from valuegym.runs.runner import run_scenario
from valuegym.runs.timing import RunTiming
from valuegym.scenarios.validation import validate_scenario

ASKS = ["Send the notes?", "Could you send me the notes please?", "The notes?"]
OTHER = ["When is the exam?", "Is the lab open?"]


@pytest.fixture
def model_class(fake_model) -> type:
    """The fixture model's speech; a continuation scores ``-0.5`` nats per character."""

    class CharacterModel(type(fake_model)):
        def _score(self, prompt, continuations: Sequence[str]) -> np.ndarray:
            return np.array([-0.5 * len(c.strip()) for c in continuations])

    return CharacterModel


class FixedJudge:
    """A deterministic valence judge: -0.5 for texts with a question mark, else +0.25."""

    def valence(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([-0.5 if "?" in text else 0.25 for text in texts])

    def describe(self) -> dict[str, str]:
        return {"judge": "fixed"}


def scenario(**measure) -> dict:
    """A listener (LM, agent 0) asked by a hammering asker (1) and a varied one (2)."""
    return {
        "name": "loop",
        "seed": 3,
        "env": {"id": "valuegym/Conversation-v1", "args": {"mode": "text", "repetition_window": 4}},
        "agents": [
            {"id": "listener", "kind": "lm", "lm": {"max_new_tokens": 3}},
            {
                "id": "hammer",
                "kind": "scripted",
                "script": {"act": "ask", "to": "listener", "lines": ASKS, "order": "cycle"},
            },
            {
                "id": "varied",
                "kind": "scripted",
                "script": {"act": "ask", "to": "listener", "lines": OTHER, "order": "cycle"},
            },
        ],
        "episodes": 2,
        "max_steps": 12,
        "appraisal": {
            "repetition": {"clusterer": "text"},
            "valence": {"judge": "lm", "weight": 0.8},
            "surprise": {"per_nat": 0.5, "rate": 0.5, "context_lines": 1},
        },
        "measure": measure,
    }


@pytest.fixture
def run(monkeypatch, model_class):
    """Runs a scenario with the character model and the fixed judge."""
    import valuegym.measures.valence

    monkeypatch.setattr(
        valuegym.measures.valence, "get_valence_judge", lambda kind, model=None: FixedJudge()
    )

    def run(path: Path, data: dict):
        return run_scenario(
            validate_scenario(data),
            path,
            progress=False,
            load_model=lambda backend, name, **options: model_class(),
        )

    return run


def test_the_loop_numbers_are_known_and_reach_the_listener(tmp_path: Path, run) -> None:
    result = run(tmp_path / "run", scenario())
    appraisals = [r for r in result.folder.read("appraisals").to_pylist() if r["episode"] == 0]
    steps = result.folder.read("steps").to_pylist()
    heard = [r for r in appraisals if r["agent"] == "listener"]
    # Turns: listener, hammer, varied, ... -> the listener hears steps 1, 2, 4, 5, 7, 8, 10, 11.
    assert [r["step"] for r in heard] == [1, 2, 4, 5, 7, 8, 10, 11]
    a0, a1, a2 = ASKS
    o0, o1 = OTHER
    assert [r["text"] for r in heard] == [a0, o0, a1, o1, a2, o0, a0, o1]
    # Repeats: identical (normalised) asks among the listener's last 4 received asks: o0 at
    # step 8 (window o0 a1 o1 a2), a0 at step 10 is out of its window, o1 at step 11.
    assert [r["repeats"] for r in heard] == [0, 0, 0, 0, 0, 1, 0, 1]
    # Valence: weight 0.8 x the judge's -0.5 for every question.
    assert all(r["valence_input"] == pytest.approx(-0.4) for r in heard)
    # Surprise: 0.5 nats per character, per word, against an expectation moving half-way.
    expected = math.nan
    for row in heard:
        surprisal = 0.5 * len(row["text"]) / len(row["text"].split())
        assert row["surprisal_per_word"] == pytest.approx(surprisal)
        if math.isnan(expected):
            assert row["surprise_input"] == 0.0
            expected = surprisal
        else:
            assert row["expected_surprisal"] == pytest.approx(expected)
            assert row["surprise_input"] == pytest.approx(0.5 * (surprisal - expected))
            expected += 0.5 * (surprisal - expected)
    # What was recorded is what the env received and what moved the listener.
    by_step = {(r["episode"], r["step"]): r for r in steps if r["agent"] == "listener"}
    for row in heard:
        after = by_step[(0, row["step"])]
        assert after["env_appraised_valence"] == pytest.approx(row["valence_input"])
        assert after["env_appraised_surprise"] == pytest.approx(row["surprise_input"])
        assert after["env_ask_repetition"] == row["repeats"]
        assert after["stress"] == row["stress_after"]
        assert after["mood"] == row["mood_after"]
    summary = result.folder.read_summary()["appraisal"]
    assert summary["window"] == 4
    assert summary["listeners"][0]["clusterer"] == {"clusterer": "text"}


def test_same_seed_gives_identical_appraisal_records(tmp_path: Path, run) -> None:
    data = scenario(intervention={"listener": "listener", "at_step": 3, "variants": {"x": "Hi."}})
    first, second = run(tmp_path / "a", data), run(tmp_path / "b", data)
    for kind in ("appraisals", "interventions", "steps"):
        for episode in range(2):
            a = first.folder.episode_file(kind, episode).read_bytes()
            assert a == second.folder.episode_file(kind, episode).read_bytes()


def test_the_re_simulation_repeats_the_recorded_episode_up_to_the_replacement(
    tmp_path: Path, run, model_class
) -> None:
    data = scenario(
        intervention={
            "listener": "listener",
            "at_step": 3,
            "variants": {
                "hostile": "You never answer!",
                "again": "{last_ask}",
                "echo": "As I said: {original}",
                "written": {"generate": "Say this rudely: {original}", "max_new_tokens": 4},
            },
        }
    )
    result = run(tmp_path / "run", data)
    rows = result.folder.read("interventions").to_pylist()
    assert {r["variant"] for r in rows} == {"original", "hostile", "again", "echo", "written"}
    episode0 = {r["variant"]: r for r in rows if r["episode"] == 0}
    # Step 4 is the first message to the listener from step 3 on; its next turn is step 6.
    assert {r["step"] for r in episode0.values()} == {4}
    assert {r["next_step"] for r in episode0.values()} == {6}
    assert episode0["again"]["text"] == OTHER[0]  # the last ask before (step 2), verbatim
    assert episode0["echo"]["text"] == f"As I said: {episode0['original']['text']}"
    # The appraisal model writes it greedily from the instruction (the fake's words).
    written = model_class().generate(
        [[{"role": "user", "content": f"Say this rudely: {episode0['original']['text']}"}]],
        max_new_tokens=4,
        temperature=0.0,
        seed=SeedSalt.INTERVENTION.seed(3, 0),
    )[0]
    assert episode0["written"]["text"] == written.text.strip() != ""
    assert episode0["hostile"]["valence_input"] == pytest.approx(0.8 * 0.25)
    assert episode0["original"]["valence_input"] == pytest.approx(-0.4)
    assert all(r["reference"] == "original" for r in rows)
    # Re-simulating with the recorded text reproduces the recorded rows exactly.
    from valuegym.runs.appraisal import build_appraiser
    from valuegym.runs.population import build_population

    loaded = validate_scenario(data)
    population = build_population(loaded, load_model=lambda *a, **k: model_class())
    population.appraiser = build_appraiser(loaded, population)
    sink = _Rows(result.folder, 0)
    original = episode0["original"]
    EpisodeRun(
        loaded,
        population,
        0,
        sink,
        None,
        type("Bar", (), {"update": lambda s, n: None})(),
        RunTiming(),
        replacement=Replacement(4, "listener", original["text"]),
    ).run()
    recorded = [r for r in result.folder.read("steps").to_pylist() if r["episode"] == 0]
    simulated = sink.rows("steps")
    assert len(simulated) == 3 * 7  # steps 0..6, then the listener's turn ends it
    assert simulated == recorded[: len(simulated)]
    again = intervention_row(
        {kind: sink.rows(kind) for kind in ("appraisals", "steps", "utterances")},
        "listener",
        4,
        "original",
    )
    assert again == {k: v for k, v in original.items() if k not in ("episode", "reference")}
    population.close()


def test_an_unreachable_judge_server_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    """The real loader: the openai model is built, its first judge call fails, one line."""
    data = scenario()
    data["appraisal"]["model"] = {
        "backend": "openai",
        "model": "judge",
        "base_url": "http://127.0.0.1:9/v1",
    }
    data["appraisal"]["valence"] = {"judge": "embedding"}
    # A non-LM listener feels surprise under the declared appraisal model: the server's.
    data["agents"] = [{"id": "listener", "kind": "greedy"}, *data["agents"][1:]]
    with pytest.raises(RunError) as raised:
        run_scenario(validate_scenario(data), tmp_path / "run", progress=False)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("appraisal.model: 'judge' failed its first call: ")
    assert "127.0.0.1:9" in message
    assert "unreachable" in message
    assert not (tmp_path / "run").exists()


def test_appraisal_needs_conversation_v1_in_text_mode() -> None:
    from valuegym.scenarios.problems import ScenarioError

    data = scenario()
    data["env"] = {"id": "valuegym/Conversation-v0", "args": {"mode": "text"}}
    with pytest.raises(ScenarioError, match=r"appraisal: listeners appraise what is said in "):
        validate_scenario(data)
    data["env"] = {"id": "valuegym/Conversation-v1"}
    data["agents"] = [{"id": "listener", "kind": "greedy"}, {"id": "other", "kind": "greedy"}]
    with pytest.raises(ScenarioError, match=r"appraisal: listeners appraise text"):
        validate_scenario(data)
    data = scenario(intervention={"listener": "listnr", "variants": {"x": "Hi."}})
    with pytest.raises(ScenarioError, match=r"did you mean 'listener'"):
        validate_scenario(data)
    data = scenario(
        intervention={"listener": "listener", "variants": {"x": "Hi."}, "reference": "y"}
    )
    with pytest.raises(ScenarioError, match=r"reference: 'y' is neither 'original' nor a variant"):
        validate_scenario(data)
