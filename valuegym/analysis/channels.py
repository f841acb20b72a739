"""What each channel does to speech: paired, within-context contrasts from a replay.

A replay (:mod:`valuegym.scenarios.replay`) regenerates each recorded context under a grid of
channel settings with common random numbers. Per context and cell the K samples are averaged;
a contrast is then a difference *within* each context, and its interval is taken over the
contexts (the unit of replication here; contexts of one episode share its history, which the
report says). Per measure:

- **temperature effect at a fixed prompt**: highest minus lowest temperature, at each stated
  state;
- **prompt-state effect at a fixed temperature**: highest minus lowest stated stress (and
  mood), at each temperature;
- **interaction**: the prompt effect at the highest temperature minus at the lowest;
- **manipulation check**: the self-report log-likelihood (stressed minus calm) at the highest
  stated stress minus the lowest: positive when the state text reaches the model;
- **placebo**: the slope of the measure on the context's *actual* stress when the prompt
  states another context's state: near zero unless the context itself carries the state.

Example:
    >>> rows = [
    ...     {"context_id": c, "cell": cell, "placebo": False, "set_stress": s,
    ...      "set_mood": float("nan"), "set_temperature": t, "sample": 0,
    ...      "sequence_entropy": 1.0 + 2.0 * t + 0.5 * s + 0.1 * i}
    ...     for i, c in enumerate("abcd")
    ...     for cell, (s, t) in enumerate([(0.1, 0.5), (0.1, 1.0), (0.9, 0.5), (0.9, 1.0)])
    ... ]
    >>> [round(c.estimate, 3) for c in channel_contrasts(rows)[:2]]
    [1.0, 1.0]
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np

__all__ = [
    "REPLAY_MEASURES",
    "Contrast",
    "channel_contrasts",
    "manipulation_check",
    "mean_interval_over_units",
    "placebo_check",
    "temperature_confounds",
]

#: Replay measures a report contrasts, with what they are.
REPLAY_MEASURES: Final = {
    "sequence_entropy": "entropy of what is said (sum of sampled-distribution entropies)",
    "mean_token_entropy": "model's own uncertainty per token (temperature 1)",
    "surprisal": "surprisal at temperature 1",
    "length": "tokens",
}

_CONFIDENCE: Final = 0.95


@dataclass(frozen=True)
class Contrast:
    """A paired contrast with its interval over units.

    Attributes:
        channel: ``temperature``, ``prompt_stress``, ``prompt_mood``, ``interaction``,
            ``manipulation`` or ``placebo``.
        measure: The replay measure.
        at: Where the other channel was held (e.g. ``temperature=0.7``).
        levels: The two levels contrasted, ``"low -> high"``.
        estimate: Mean over units of the within-unit difference (or the slope, for placebo).
        low: Lower end of the 95% interval (t-based over units).
        high: Upper end.
        n_units: Units the interval is over.
        unit: What a unit is (``contexts``).
    """

    channel: str
    measure: str
    at: str
    levels: str
    estimate: float
    low: float
    high: float
    n_units: int
    unit: str = "contexts"

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for the report's JSON)."""
        return asdict(self)


def mean_interval_over_units(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and t-based 95% interval of per-unit values (one value per independent unit).

    Args:
        values: One number per unit.

    Returns:
        ``(mean, low, high)``; the interval is ``nan`` with fewer than 2 units.
    """
    data = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if data.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(data.mean())
    if data.size < 2:
        return mean, math.nan, math.nan
    from scipy import stats

    half = float(stats.t.ppf(0.5 + _CONFIDENCE / 2, data.size - 1) * data.std(ddof=1))
    half /= math.sqrt(data.size)
    return mean, mean - half, mean + half


#: Stands for "the agent's own" in a cell's settings (a NaN setting in the records).
_OWN: Final = math.inf


def _setting(value: Any) -> float:
    number = float(value)
    return _OWN if math.isnan(number) else round(number, 6)


def _label(value: float) -> str:
    return "own" if value == _OWN else f"{value:g}"


def _cell_means(
    rows: Iterable[Mapping[str, Any]], measure: str
) -> dict[tuple[str, float, float, float], float]:
    """Mean of ``measure`` over samples per (context, stated stress, stated mood, temperature)."""
    sums: dict[tuple[str, float, float, float], list[float]] = defaultdict(list)
    for row in rows:
        if row.get("placebo"):
            continue
        value = row.get(measure)
        if value is None or not math.isfinite(float(value)):
            continue
        key = (
            str(row["context_id"]),
            _setting(row["set_stress"]),
            _setting(row["set_mood"]),
            _setting(row["set_temperature"]),
        )
        sums[key].append(float(value))
    return {key: float(np.mean(values)) for key, values in sums.items()}


def _paired(
    means: Mapping[tuple[str, float, float, float], float],
    low: tuple[float, float, float],
    high: tuple[float, float, float],
) -> list[float]:
    """Per context: the mean at ``high`` minus at ``low`` (settings: stress, mood, temperature)."""
    contexts = {key[0] for key in means}
    return [
        means[(c, *high)] - means[(c, *low)]
        for c in sorted(contexts)
        if (c, *high) in means and (c, *low) in means
    ]


def _contrast(channel: str, measure: str, at: str, levels: str, diffs: list[float]) -> Contrast:
    estimate, low, high = mean_interval_over_units(diffs)
    return Contrast(channel, measure, at, levels, estimate, low, high, len(diffs))


def channel_contrasts(
    rows: Sequence[Mapping[str, Any]], measure: str = "sequence_entropy"
) -> list[Contrast]:
    """Temperature, prompt-state and interaction contrasts of a replay, per held level.

    Args:
        rows: The ``replay`` records (one row per sample).
        measure: The measure contrasted (see :data:`REPLAY_MEASURES`).

    Returns:
        The contrasts the grid supports: temperature effects at each stated state,
        prompt-stress and prompt-mood effects at each temperature, and the interaction.
    """
    means = _cell_means(rows, measure)
    if not means:
        return []
    stresses = sorted({key[1] for key in means})
    moods = sorted({key[2] for key in means})
    temperatures = sorted({key[3] for key in means})
    # "own" settings sort last (inf) and are not a level to contrast against
    stress_levels = [level for level in stresses if level != _OWN]
    mood_levels = [level for level in moods if level != _OWN]
    temperature_levels = [level for level in temperatures if level != _OWN]
    contrasts: list[Contrast] = []
    if len(temperature_levels) >= 2:
        t_lo, t_hi = temperature_levels[0], temperature_levels[-1]
        for stress in stresses:
            for mood in moods:
                diffs = _paired(means, (stress, mood, t_lo), (stress, mood, t_hi))
                at = f"prompt_stress={_label(stress)}, prompt_mood={_label(mood)}"
                contrasts.append(
                    _contrast("temperature", measure, at, f"{t_lo:g} -> {t_hi:g}", diffs)
                )
    for channel, levels, other in (
        ("prompt_stress", stress_levels, moods),
        ("prompt_mood", mood_levels, stresses),
    ):
        if len(levels) < 2:
            continue
        lo, hi = levels[0], levels[-1]
        for temperature in temperatures:
            for held in other:
                if channel == "prompt_stress":
                    low_key, high_key = (lo, held, temperature), (hi, held, temperature)
                    at = f"temperature={_label(temperature)}, prompt_mood={_label(held)}"
                else:
                    low_key, high_key = (held, lo, temperature), (held, hi, temperature)
                    at = f"temperature={_label(temperature)}, prompt_stress={_label(held)}"
                diffs = _paired(means, low_key, high_key)
                contrasts.append(_contrast(channel, measure, at, f"{lo:g} -> {hi:g}", diffs))
    if len(temperature_levels) >= 2 and len(stress_levels) >= 2:
        t_lo, t_hi = temperature_levels[0], temperature_levels[-1]
        s_lo, s_hi = stress_levels[0], stress_levels[-1]
        for mood in moods:
            at_hot = _paired(means, (s_lo, mood, t_hi), (s_hi, mood, t_hi))
            at_cold = _paired(means, (s_lo, mood, t_lo), (s_hi, mood, t_lo))
            if len(at_hot) == len(at_cold):
                diffs = [hot - cold for hot, cold in zip(at_hot, at_cold, strict=True)]
                contrasts.append(
                    _contrast(
                        "interaction",
                        measure,
                        f"prompt_mood={_label(mood)}",
                        f"prompt-stress effect at T={t_hi:g} minus at T={t_lo:g}",
                        diffs,
                    )
                )
    return contrasts


def manipulation_check(rows: Sequence[Mapping[str, Any]]) -> Contrast | None:
    """Does the stated stress reach the model? The self-report contrast, paired by context.

    Args:
        rows: The ``manipulation`` records.

    Returns:
        Highest minus lowest stated stress of ``loglik(stressed) - loglik(calm)``, or ``None``
        without two stress levels.
    """
    by_context: dict[str, dict[float, float]] = defaultdict(dict)
    for row in rows:
        by_context[str(row["context_id"])][float(row["prompt_stress"])] = float(row["self_report"])
    levels = sorted({level for values in by_context.values() for level in values})
    if len(levels) < 2:
        return None
    lo, hi = levels[0], levels[-1]
    diffs = [v[hi] - v[lo] for v in by_context.values() if lo in v and hi in v]
    return _contrast("manipulation", "self_report", "", f"{lo:g} -> {hi:g}", diffs)


def placebo_check(
    rows: Sequence[Mapping[str, Any]], measure: str = "sequence_entropy"
) -> Contrast | None:
    """Slope of a measure on the context's actual stress when the prompt states another's.

    Args:
        rows: The ``replay`` records.
        measure: The measure.

    Returns:
        The slope with a bootstrap-free interval: the per-context values are regressed on the
        actual stress and the slope's t-interval uses the contexts as units; ``None`` with fewer
        than 3 placebo contexts or no spread in actual stress.
    """
    values: dict[str, list[float]] = defaultdict(list)
    stress: dict[str, float] = {}
    for row in rows:
        if not row.get("placebo"):
            continue
        value = row.get(measure)
        if value is None or not math.isfinite(float(value)):
            continue
        values[str(row["context_id"])].append(float(value))
        stress[str(row["context_id"])] = float(row["actual_stress"])
    if len(values) < 3:
        return None
    x = np.array([stress[c] for c in values])
    y = np.array([float(np.mean(v)) for v in values.values()])
    spread = float(np.sum((x - x.mean()) ** 2))
    if spread <= 1e-12:
        return None
    slope = float(np.sum((x - x.mean()) * (y - y.mean())) / spread)
    residual = y - y.mean() - slope * (x - x.mean())
    if x.size <= 2:
        return None
    from scipy import stats

    standard_error = math.sqrt(float(np.sum(residual**2)) / (x.size - 2) / spread)
    half = float(stats.t.ppf(0.5 + _CONFIDENCE / 2, x.size - 2)) * standard_error
    return Contrast(
        "placebo",
        measure,
        "prompt states another context's state",
        "slope on the context's actual stress",
        slope,
        slope - half,
        slope + half,
        int(x.size),
    )


def temperature_confounds(
    rows: Sequence[Mapping[str, Any]], predictors: Sequence[str] = ("stress", "mood")
) -> list[str]:
    """Predictors that are a deterministic function of the sampling temperature in the records.

    A regression of a measure on such a predictor cannot tell its effect from temperature's.

    Args:
        rows: The ``utterances`` records.
        predictors: Columns to check.

    Returns:
        One warning per predictor that the temperature determines (each temperature value
        maps to one predictor value, over at least 3 distinct temperatures).
    """
    warnings = []
    for name in predictors:
        pairs: dict[float, set[float]] = defaultdict(set)
        for row in rows:
            if name in row and "sampling_temperature" in row:
                pairs[round(float(row["sampling_temperature"]), 9)].add(round(float(row[name]), 9))
        if len(pairs) >= 3 and all(len(values) == 1 for values in pairs.values()):
            warnings.append(
                f"{name} is a deterministic function of the sampling temperature here: a slope "
                f"on {name} cannot be told apart from the temperature's effect (see the "
                "channel contrasts of a replay)"
            )
    return warnings
