"""The contagion contrasts: variant minus reference within each episode, intervals over episodes,
one Holm family over variants x measures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from valuegym.analysis.contagion import CONTAGION_MEASURES, contagion_contrasts
from valuegym.analysis.statistics import holm, mean_interval


def _rows(n_episodes: int, effect: dict[str, np.ndarray], rng: np.random.Generator) -> list[dict]:
    """Intervention rows whose per-episode baseline varies a lot and whose variant effect
    (stress_change) varies by episode around a known mean."""
    rows = []
    for episode in range(n_episodes):
        baseline = {measure: rng.normal(0, 3) for measure in CONTAGION_MEASURES}
        rows.append({"episode": episode, "variant": "original", **baseline})
        for variant, shifts in effect.items():
            values = dict(baseline)
            values["stress_change"] = baseline["stress_change"] + shifts[episode]
            values["next_length"] = math.nan  # a listener that does not speak: no number
            rows.append({"episode": episode, "variant": variant, **values})
    return rows


def test_contrasts_are_paired_within_episodes_and_over_episodes() -> None:
    rng = np.random.default_rng(0)
    hostile = 0.3 + rng.normal(0, 0.05, 8)  # the effect itself varies by episode
    neutral = rng.normal(0, 0.05, 8)
    rows = _rows(8, {"hostile": hostile, "neutral": neutral}, rng)
    contrasts = {c.name: c for c in contagion_contrasts(rows, "original")}
    stress = contrasts["stress_change: hostile - original"]
    # The episode baselines (sd 3) cancel: the estimate is the mean of the episode effects.
    assert stress.estimate.value == pytest.approx(hostile.mean())
    assert stress.estimate.n_units == 8
    assert stress.estimate.unit == "episodes"
    assert stress.estimate.low > 0.2
    expected = mean_interval(hostile, label="x", unit="episodes")
    assert (stress.estimate.low, stress.estimate.high) == pytest.approx(
        (expected.low, expected.high)
    )
    # Measures no variant moved are exactly 0 in every episode; the missing one is left out.
    assert contrasts["valence_input: neutral - original"].estimate.value == 0.0
    assert not any(name.startswith("next_length") for name in contrasts)
    # One family, Holm-corrected over every variant x measure.
    raw = [c.estimate.p_value for c in contrasts.values()]
    assert [c.adjusted_p for c in contrasts.values()] == pytest.approx(holm(raw), nan_ok=True)
    assert len(contrasts) == 2 * (len(CONTAGION_MEASURES) - 1)


def test_contrasts_against_a_named_variant_and_missing_cells() -> None:
    rows = [
        {"episode": 0, "variant": "neutral", **dict.fromkeys(CONTAGION_MEASURES, 1.0)},
        {"episode": 0, "variant": "hostile", **dict.fromkeys(CONTAGION_MEASURES, 3.0)},
        {"episode": 1, "variant": "neutral", **dict.fromkeys(CONTAGION_MEASURES, 2.0)},
        {"episode": 1, "variant": "hostile", **dict.fromkeys(CONTAGION_MEASURES, 5.0)},
        {"episode": 2, "variant": "hostile", **dict.fromkeys(CONTAGION_MEASURES, 9.0)},
    ]
    contrasts = {c.name: c for c in contagion_contrasts(rows, "neutral")}
    stress = contrasts["stress_change: hostile - neutral"]
    # Episode 2 has no reference cell: it is not a unit of this contrast.
    assert stress.estimate.value == pytest.approx(2.5)
    assert stress.estimate.n_units == 2
    assert stress.estimate.pilot
    assert set(contrasts) == {f"{m}: hostile - neutral" for m in CONTAGION_MEASURES}
