"""The steering channel: the state's coefficients, the Steering an agent's model receives, the
records, and the checks before a run (directions folder, model hash, backend)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from valuegym.agents.lm_agent import LMAgent
from valuegym.agents.steering_channel import SteeringChannel
from valuegym.lm.directions import SteeringDirections
from valuegym.lm.models import DEFAULT_MODEL, file_sha256, resolve_gguf_path
from valuegym.runs.errors import RunError
from valuegym.runs.runner import run_scenario
from valuegym.scenarios.problems import ScenarioError
from valuegym.scenarios.validation import validate_scenario
from valuegym.values import AgentSnapshot

HIDDEN = 4


def directions(model_sha256: str = "0" * 64) -> SteeringDirections:
    """Known directions: stress along e0 with norm 2 at block 1, mood along e1 with norm 3."""
    stress = np.zeros((3, HIDDEN), dtype=np.float32)
    mood = np.zeros((3, HIDDEN), dtype=np.float32)
    stress[1, 0] = 1.0
    mood[1, 1] = 1.0
    return SteeringDirections(
        variables=("stress", "mood"),
        vectors={"stress": stress, "mood": mood},
        provenance={
            "model_sha256": model_sha256,
            "layers": [1],
            "hidden_size": HIDDEN,
            "raw_norms": {"stress": [0.0, 2.0, 0.0], "mood": [0.0, 3.0, 0.0]},
        },
    )


def state(stress: float, mood: float = 0.0) -> AgentSnapshot:
    return AgentSnapshot(0, ("rest",), {"rest": 0.0}, {"rest": 1.0}, {}, {}, mood, stress, 0.7)


def test_coefficients_follow_the_state_around_the_centre() -> None:
    channel = SteeringChannel(
        directions(), {"stress": None, "mood": -0.5}, 2.0, {"stress": 0.5}, (1,)
    )
    coefficients = channel.coefficients(state(0.9, mood=0.3))
    assert coefficients == pytest.approx({"stress": 2.0 * 0.4, "mood": 2.0 * -0.5})
    steering = channel.steering_for(state(0.9))
    # Strength in units of each block's mean difference: 0.8 x 2 e0 + (-1) x 3 e1.
    np.testing.assert_allclose(steering.additions[1], [1.6, -3.0, 0.0, 0.0], rtol=1e-6)
    assert channel.record_columns(state(0.9)) == pytest.approx(
        {"steer_stress": 0.8, "steer_mood": -1.0}
    )


def test_a_state_at_the_centre_is_not_steered_at_all() -> None:
    channel = SteeringChannel(directions(), {"stress": None}, 3.0, {"stress": 0.5}, (1,))
    assert channel.steering_for(state(0.5)) is None
    columns = channel.record_columns(state(0.5))
    assert columns["steer_stress"] == 0.0
    assert math.isnan(columns["steer_mood"])


def test_the_agent_s_model_receives_one_steering_per_speaker(fake_steerable) -> None:
    channel = SteeringChannel(directions(), {"stress": None}, 1.0, {"stress": 0.5}, (1,))
    agent = LMAgent(fake_steerable, "a clerk", steering=channel, max_new_tokens=2)
    agent.speak([state(0.9), state(0.5), state(0.1)], seed=0)
    steerings = fake_steerable.steerings[-1]
    assert steerings[1] is None  # at the centre: nothing added
    np.testing.assert_allclose(steerings[0].additions[1][0], 0.4 * 2.0, rtol=1e-6)
    np.testing.assert_allclose(steerings[2].additions[1][0], -0.4 * 2.0, rtol=1e-6)
    plain = LMAgent(fake_steerable, "a clerk", max_new_tokens=2)
    plain.speak([state(0.9)], seed=0)
    assert fake_steerable.steerings[-1] is None  # no channel: generate is called as before


@pytest.fixture
def fake_steerable(fake_model):
    """The fixture model, recording the steering of each generate call."""

    class Steerable(type(fake_model)):
        supports_steering = True

        def __init__(self) -> None:
            super().__init__()
            self.steerings: list = []

        def _generate(self, prompts, *, steering=None, **options):
            self.steerings.append(steering)
            return super()._generate(prompts, **options)

    return Steerable()


def scenario(folder: Path, **lm) -> dict:
    return {
        "name": "steered",
        "env": {"id": "valuegym/Inbox-v0"},
        "max_steps": 2,
        "agents": [
            {
                "kind": "lm",
                "lm": {"max_new_tokens": 2, "steering": {"directions": str(folder)}, **lm},
            }
        ],
    }


def test_validation_refuses_missing_directions_and_servers(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"agents\.0\.lm\.steering\.directions: no directions"):
        validate_scenario(scenario(tmp_path / "nowhere"))
    directions().save(tmp_path / "d")
    with pytest.raises(ScenarioError, match=r"agents\.0\.lm\.steering: a server's model"):
        validate_scenario(
            scenario(tmp_path / "d", backend="openai", model="m", base_url="http://x:1/v1")
        )


def test_directions_of_another_model_are_refused_in_one_line(tmp_path: Path) -> None:
    directions(model_sha256="f" * 64).save(tmp_path / "d")
    with pytest.raises(RunError) as raised:
        run_scenario(validate_scenario(scenario(tmp_path / "d")), tmp_path / "run")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("lm.steering.directions: ")
    assert "f" * 64 in message
    assert file_sha256(resolve_gguf_path(DEFAULT_MODEL)) in message
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["llamacpp", "transformers"])
def test_a_steered_scenario_runs_on_both_local_backends(tmp_path: Path, backend: str) -> None:
    """Real directions (a few pairs, one block) steer the real model; the records say how much."""
    from valuegym.lm.directions import build_directions

    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "variable,low,high\n"
        "stress,I have plenty of time today.,I have no time at all today.\n"
        "stress,Everything is calm and fine.,Everything is urgent and on fire.\n"
    )
    build_directions(pairs=pairs, layers=[15]).save(tmp_path / "d")
    data = scenario(tmp_path / "d", backend=backend)
    data["agents"][0]["lm"]["steering"].update(strength=2.0)
    data["agents"][0]["affect"] = {"stress_baseline": 0.9}
    # The replay moves the steering coefficient alone: 0 (unsteered) against 2.
    data["measure"] = {"counterfactual": {"per_entry": 1, "samples": 2, "steer_stress": [0.0, 2.0]}}
    result = run_scenario(validate_scenario(data), tmp_path / "run", progress=False)
    rows = result.folder.read("utterances").to_pylist()
    assert rows
    for row in rows:
        assert row["steer_stress"] == pytest.approx(2.0 * (row["stress"] - 0.5))
        assert math.isnan(row["steer_mood"])
    steering = json.loads(result.folder.manifest_file.read_text())["steering"]
    described = next(iter(steering.values()))
    assert described["layers"] == [15]
    assert described["directions"]["model_sha256"] == file_sha256(resolve_gguf_path(DEFAULT_MODEL))
    replay = result.folder.read("replay").to_pylist()
    # Grid cells set the coefficient; placebo cells keep the agent's own (NaN: not set).
    assert {row["set_steer_stress"] for row in replay if not row["placebo"]} == {0.0, 2.0}
    from valuegym.analysis.report import write_report

    report = write_report(result.folder.root).read_text()
    assert "## Channels apart: temperature, prompt, steering, interaction" in report
    assert "steer_stress" in report
