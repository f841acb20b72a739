"""The steering dose-response: records, maths with known answers, the report, validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from valuegym.analysis.dose import dose_response
from valuegym.analysis.report import write_report
from valuegym.records import RunFolder
from valuegym.runs.replay import replay_run
from valuegym.runs.runner import run_scenario
from valuegym.scenarios.schema import CounterfactualSpec
from valuegym.scenarios.validation import ScenarioError, validate_scenario

from .conftest import STATED_WORDS
from .test_replay_steering import RAW_NORM, SteeredModel, _directions, _load, _steered

GAMMA = 0.5
STRENGTHS = [0.0, 0.5, 1.0, 2.0]


class AwayModel(SteeredModel):
    """Unsteered ``softmax(beta z)``; steering of total norm ``g`` gives ``beta z - gamma g z``.

    Steering moves the reply distribution away from the unsteered one along ``z``, so the
    surprisal of the steered replies under the unsteered model rises with the strength
    (exponential family: the mean of ``z`` falls monotonically in the natural parameter), and
    scoring honours the steering.
    """

    def __init__(self) -> None:
        super().__init__()
        self.norm = 0.0

    def logits(self, prompt) -> np.ndarray:
        return self.beta * self.z - GAMMA * self.norm * self.z

    def _score(self, prompt, continuations, *, steering=None):
        added = None if steering is None else steering[0]
        self.norm = (
            0.0
            if added is None
            else float(sum(np.linalg.norm(v) for v in added.additions.values()))
        )
        try:
            return super()._score(prompt, continuations)
        finally:
            self.norm = 0.0

    def token_entropy(self, norm: float) -> float:
        """The entropy of every token's distribution under a steering of norm ``norm``."""
        steered = (self.beta - GAMMA * norm) * self.z
        p = np.exp(steered - steered.max())
        p /= p.sum()
        return float(-(p * np.log(p)).sum())

    def per_token_cross_entropy(self, norm: float) -> float:
        """E over the steered distribution of -log p_unsteered(token), exactly."""
        unsteered = self.beta * self.z
        log_p0 = unsteered - np.log(np.exp(unsteered).sum())
        steered = unsteered - GAMMA * norm * self.z
        p = np.exp(steered - steered.max())
        p /= p.sum()
        return float(-(p * log_p0).sum())


def _run(tmp_path: Path, model: AwayModel, *, episodes: int = 3, samples: int = 8) -> Path:
    data = _steered(_directions(tmp_path / "d"))
    data["episodes"] = episodes
    run_scenario(validate_scenario(data), tmp_path / "run", progress=False, **_load(model))
    grid = CounterfactualSpec(
        steer_stress=STRENGTHS,
        temperature=[1.0],
        samples=samples,
        per_entry=3,
        placebo=True,
        dose_response={"max_surprisal_cost": 0.3, "max_degenerate": 0.5},
    )
    replay_run(tmp_path / "run", grid, progress=False, **_load(model))
    return tmp_path / "run"


def test_dose_records_and_known_answers_on_a_constructed_model(tmp_path: Path) -> None:
    model = AwayModel()
    run = _run(tmp_path, model)
    folder = RunFolder(run)
    rows = folder.read("dose").to_pylist()
    replay = folder.read("replay").to_pylist()
    # stratified: every strength x context present, K samples each, no placebo cells
    contexts = {row["context_id"] for row in rows}
    assert len(contexts) == 3 * 3
    for strength in STRENGTHS:
        for context in contexts:
            found = [
                r for r in rows if r["set_steer_stress"] == strength and r["context_id"] == context
            ]
            assert sorted(r["sample"] for r in found) == list(range(8))
    assert {r["cell"] for r in rows} == {r["cell"] for r in replay if not r["placebo"]}
    for row in rows:  # unsteered scores exactly, under the unsteered and the cell's model
        words = [STATED_WORDS.index(w) for w in _text(replay, row).split()]
        unsteered = model.beta * model.z
        log_p0 = unsteered - np.log(np.exp(unsteered).sum())
        assert row["loglik_unsteered"] == pytest.approx(float(log_p0[words].sum()), rel=1e-9)
        if row["set_steer_stress"] == 0.0:
            assert row["loglik_steered"] == row["loglik_unsteered"]
    result = dose_response(rows, replay, max_surprisal_cost=0.3, max_degenerate=0.5)
    assert result is not None
    zero, *steered = result.levels
    assert zero.strength == 0.0
    assert zero.surprisal_cost.value == 0.0
    assert zero.shift.value == 0.0
    assert all(e.value == 0.0 for e in zero.measures.values())
    costs = [level.surprisal_cost.value for level in result.levels]
    assert costs == sorted(costs)
    assert costs[-1] > 0.3
    shifts = [level.shift.value for level in result.levels]
    assert shifts == sorted(shifts)
    assert shifts[1] > 0
    # the cost tracks its exact expectation: cross-entropy(steered, unsteered) - H(unsteered)
    exact = [
        model.per_token_cross_entropy(RAW_NORM * s) - model.per_token_cross_entropy(0.0)
        for s in STRENGTHS
    ]
    assert costs == pytest.approx(exact, abs=0.15)
    within = [s for s, c in zip(STRENGTHS, costs, strict=True) if c <= 0.3]
    assert result.chosen == max(within)
    # every token is drawn from softmax((beta - gamma g) z): its entropy at T = 1 is known
    entropy = [level.measures["mean_token_entropy"].value for level in result.levels]
    assert entropy == pytest.approx(
        [model.token_entropy(RAW_NORM * s) - model.token_entropy(0.0) for s in STRENGTHS],
        abs=1e-9,
    )
    assert steered[-1].measures["mean_token_entropy"].n_units == 3


def _text(replay: list[dict], row: dict) -> str:
    [found] = [
        r["text"]
        for r in replay
        if (r["context_id"], r["cell"], r["sample"])
        == (row["context_id"], row["cell"], row["sample"])
    ]
    return found


def test_none_qualifies_when_the_bounds_are_too_tight(tmp_path: Path) -> None:
    run = _run(tmp_path, AwayModel(), episodes=2, samples=2)
    folder = RunFolder(run)
    result = dose_response(
        folder.read("dose").to_pylist(),
        folder.read("replay").to_pylist(),
        max_surprisal_cost=-1.0,
        max_degenerate=0.5,
    )
    assert result is not None
    assert result.chosen is None
    report = write_report(run).read_text(encoding="utf-8")
    assert "## Steering dose-response" in report
    assert (run / "report" / "dose_response.png").is_file()
    assert "dose_response.png" in report


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (
            {"steer_stress": [0.5, 1.0], "dose_response": {}},
            "measure.counterfactual.dose_response: needs steer_stress levels with 0 and at "
            "least one other (got [0.5, 1.0])",
        ),
        (
            {"dose_response": {}},
            "measure.counterfactual.dose_response: needs steer_stress levels with 0 and at "
            "least one other (got [])",
        ),
        (
            {"steer_stress": [0.0, 1.0], "dose_response": {"max_degenerate": 1.5}},
            "measure.counterfactual.dose_response.max_degenerate: must be <= 1.0",
        ),
        (
            {"steer_stress": [0.0, 1.0], "dose_response": {"max_surprisal_cost": -0.1}},
            "measure.counterfactual.dose_response.max_surprisal_cost: must be >= 0.0",
        ),
        (
            {"steer_stress": [0.0, 1.0], "dose_response": {"bound": 0.5}},
            "measure.counterfactual.dose_response.bound: ",
        ),
    ],
)
def test_bad_dose_response_yaml_is_one_dotted_line(
    tmp_path: Path, grid: dict, message: str
) -> None:
    data = _steered(_directions(tmp_path / "d"))
    data["measure"] = {"counterfactual": grid}
    with pytest.raises(ScenarioError) as raised:
        validate_scenario(data)
    text = str(raised.value)
    assert message in text
    assert len([line for line in text.splitlines() if "dose_response" in line]) == 1


@pytest.mark.slow
def test_the_shipped_dose_scenario_reports_its_dose_response_on_the_real_model(
    tmp_path: Path, monkeypatch
) -> None:
    """SmolLM2 on llama.cpp, one episode, coefficients 0 and 4: the section and figure appear."""
    from valuegym.scenarios.catalog import resolve_scenario_path
    from valuegym.scenarios.validation import load_scenario, scenario_with_overrides

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    scenario = scenario_with_overrides(
        load_scenario(resolve_scenario_path("steering_dose")),
        {
            "episodes": 1,
            "max_steps": 2,
            "agents.0.lm.max_new_tokens": 8,
            "agents.1.lm.max_new_tokens": 8,
            "measure.counterfactual": {
                "per_entry": 1,
                "samples": 2,
                "temperature": [1.0],
                "steer_stress": [0.0, 4.0],
                "placebo": False,
                "dose_response": {},
            },
            "design": None,
        },
    )
    result = run_scenario(scenario, tmp_path / "run", progress=False)
    rows = result.folder.read("dose").to_pylist()
    assert {row["set_steer_stress"] for row in rows} == {0.0, 4.0}
    for row in rows:
        assert row["loglik_unsteered"] < 0
        if row["set_steer_stress"] == 0.0:
            assert row["loglik_steered"] == row["loglik_unsteered"]
        else:  # the steering changes the model's scores of the same reply
            assert row["loglik_steered"] != row["loglik_unsteered"]
    report = write_report(result.folder.root).read_text(encoding="utf-8")
    assert "## Steering dose-response" in report
    assert "**Default strength: " in report
    assert (result.folder.report_dir / "dose_response.png").is_file()
