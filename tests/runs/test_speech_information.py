"""Mutual information's samples: drawn from the distribution the estimator scores."""

import math

import numpy as np
import pytest

from valuegym.agents.lm_agent import LMAgent
from valuegym.lm.sampling import Truncation
from valuegym.measures.information import mutual_information
from valuegym.runs.runner import run_scenario
from valuegym.scenarios.validation import validate_scenario

from .conftest import STATED_WORDS, StatedStressModel

STRESSES = (0.1, 0.9)
SAMPLES = 3000


def _distribution(model: StatedStressModel, stress: float, truncation: Truncation) -> np.ndarray:
    """The one-word reply distribution the model samples from (truncated, renormalised)."""
    logits = model.beta * stress * model.z
    p = np.exp(logits - logits.max())
    p /= p.sum()
    kept = np.where(truncation.keep(p), p, 0.0)
    return kept / kept.sum()


def _expected_estimate(model: StatedStressModel, truncation: Truncation) -> float:
    """What the estimator converges to: E_{y ~ q_s}[log p_s(y) - log mean_m p_m(y)].

    ``q_s`` is the distribution sampled from, ``p_s`` the full one scored; with no truncation
    ``q_s = p_s`` and this is the mutual information I(S; Y).
    """
    full = [_distribution(model, s, Truncation()) for s in STRESSES]
    mixture = np.mean(full, axis=0)
    return float(
        np.mean(
            [
                np.sum(_distribution(model, s, truncation) * (np.log(p) - np.log(mixture)))
                for s, p in zip(STRESSES, full, strict=True)
            ]
        )
    )


def _estimate(truncation: Truncation | None):
    model = StatedStressModel()
    agent = LMAgent(model, truncation=Truncation(top_p=0.4), max_new_tokens=1)
    prompts = [f"(stress {s:.2f}/1)" for s in STRESSES]
    samples = agent.generate(
        [0] * (2 * SAMPLES),
        [prompt for prompt in prompts for _ in range(SAMPLES)],
        [1.0] * (2 * SAMPLES),
        seed=5,
        truncation=truncation,
    )
    texts = [[u.text for u in samples[j * SAMPLES : (j + 1) * SAMPLES]] for j in range(2)]
    return model, mutual_information(model, prompts, texts)


def test_truncated_samples_bias_mutual_information_and_untruncated_ones_do_not():
    model, truncated = _estimate(None)  # the agent's own top_p=0.4
    exact = _expected_estimate(model, Truncation())
    biased = _expected_estimate(model, Truncation(top_p=0.4))
    assert abs(biased - exact) > 0.05  # the bias is large next to the Monte Carlo error
    assert truncated.mutual_information == pytest.approx(biased, abs=4 * truncated.standard_error)
    assert abs(truncated.mutual_information - exact) > 8 * truncated.standard_error
    _, untruncated = _estimate(Truncation())
    assert untruncated.mutual_information == pytest.approx(
        exact, abs=4 * untruncated.standard_error
    )
    assert 0 < exact < math.log(2)
    assert len(STATED_WORDS) == len(model.z)


class _Spy(StatedStressModel):
    """Records the truncation and temperatures of every ``generate`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Truncation, tuple[float, ...]]] = []

    def _generate(self, prompts, *, truncation, temperatures, **options):
        self.calls.append((truncation, tuple(float(t) for t in temperatures)))
        return super()._generate(
            prompts, truncation=truncation, temperatures=temperatures, **options
        )


def test_a_runs_mutual_information_samples_at_temperature_one_untruncated(tmp_path):
    model = _Spy()
    scenario = validate_scenario(
        {
            "name": "information",
            "env": {"id": "valuegym/Inbox-v0", "args": {"arrival_rate": 2.0}},
            "agents": [
                {
                    "kind": "lm",
                    "lm": {"max_new_tokens": 2, "top_p": 0.6, "min_p": 0.1, "top_k": 3},
                }
            ],
            "max_steps": 2,
            "measure": {"mutual_information": {"samples": 2}},
        }
    )
    result = run_scenario(scenario, tmp_path, progress=False, load_model=lambda *a, **o: model)
    own = Truncation(top_p=0.6, top_k=3, min_p=0.1)
    information_calls = [call for call in model.calls if call[0] != own]
    assert information_calls
    for truncation, temperatures in information_calls:
        assert truncation == Truncation()
        assert set(temperatures) == {1.0}
    assert any(truncation == own for truncation, _ in model.calls)  # speech keeps its own
    rows = result.folder.read("information").to_pylist()
    assert rows
    for row in rows:
        assert (row["sampling_temperature"], row["top_p"], row["top_k"], row["min_p"]) == (
            1.0,
            1.0,
            0,
            0.0,
        )
