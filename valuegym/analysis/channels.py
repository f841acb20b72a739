"""What each channel does to speech: paired, within-context contrasts from a replay.

A replay (:mod:`valuegym.runs.replay`) regenerates each recorded context under a grid of
channel settings with common random numbers. Per context and cell the K samples are averaged;
a contrast is then a difference *within* each context. Contexts of one episode share its
history, so with at least :data:`~valuegym.analysis.statistics.FEW_UNITS` episodes the
per-context differences are averaged within each episode and the interval is taken over
episodes; with fewer, over contexts (the report names the unit). Intervals come from
:func:`~valuegym.analysis.statistics.mean_interval`. Per measure:

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
    >>> [round(c.estimate.value, 3) for c in channel_contrasts(rows)[:2]]
    [1.0, 1.0]
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from valuegym.analysis.statistics import FEW_UNITS, Estimate, mean_interval

__all__ = [
    "REPLAY_MEASURES",
    "Contrast",
    "channel_contrasts",
    "manipulation_check",
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


@dataclass(frozen=True)
class Contrast:
    """A paired channel contrast with its interval over independent units.

    Attributes:
        channel: ``temperature``, ``prompt_stress``, ``prompt_mood``, ``interaction``,
            ``manipulation`` or ``placebo``.
        measure: The replay measure.
        at: Where the other channels were held (e.g. ``temperature=0.7``).
        levels: The two levels contrasted, ``"low -> high"``.
        estimate: The mean within-unit difference (or the slope, for placebo) with its
            interval, p-value, units and method.
    """

    channel: str
    measure: str
    at: str
    levels: str
    estimate: Estimate

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for the report's JSON)."""
        return {
            "channel": self.channel,
            "measure": self.measure,
            "at": self.at,
            "levels": self.levels,
            **self.estimate.to_dict(),
        }


def _over_units(label: str, diffs: Mapping[str, float], episode_of: Mapping[str, Any]) -> Estimate:
    """Mean of per-context differences, the interval over episodes when there are enough."""
    episodes: dict[Any, list[float]] = defaultdict(list)
    for context, diff in diffs.items():
        episodes[episode_of[context]].append(diff)
    if len(episodes) >= FEW_UNITS:
        per_episode = [float(np.mean(values)) for values in episodes.values()]
        return mean_interval(per_episode, label=label, unit="episodes")
    return mean_interval(list(diffs.values()), label=label, unit="contexts")


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
) -> dict[str, float]:
    """Per context: the mean at ``high`` minus at ``low`` (settings: stress, mood, temperature)."""
    contexts = {key[0] for key in means}
    return {
        c: means[(c, *high)] - means[(c, *low)]
        for c in sorted(contexts)
        if (c, *high) in means and (c, *low) in means
    }


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
    episode_of = {str(row["context_id"]): row.get("episode", 0) for row in rows}

    def contrast(channel: str, at: str, levels: str, diffs: Mapping[str, float]) -> Contrast:
        label = f"{channel} {levels}" + (f" at {at}" if at else "")
        return Contrast(channel, measure, at, levels, _over_units(label, diffs, episode_of))

    stresses = sorted({key[1] for key in means})
    moods = sorted({key[2] for key in means})
    temperatures = sorted({key[3] for key in means})
    # "own" settings (the agent's, inf) are held levels, never contrasted against
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
                contrasts.append(contrast("temperature", at, f"{t_lo:g} -> {t_hi:g}", diffs))
    for channel, levels, held_levels in (
        ("prompt_stress", stress_levels, moods),
        ("prompt_mood", mood_levels, stresses),
    ):
        if len(levels) < 2:
            continue
        lo, hi = levels[0], levels[-1]
        for temperature in temperatures:
            for held in held_levels:
                if channel == "prompt_stress":
                    low_key, high_key = (lo, held, temperature), (hi, held, temperature)
                    at = f"temperature={_label(temperature)}, prompt_mood={_label(held)}"
                else:
                    low_key, high_key = (held, lo, temperature), (held, hi, temperature)
                    at = f"temperature={_label(temperature)}, prompt_stress={_label(held)}"
                diffs = _paired(means, low_key, high_key)
                contrasts.append(contrast(channel, at, f"{lo:g} -> {hi:g}", diffs))
    if len(temperature_levels) >= 2 and len(stress_levels) >= 2:
        t_lo, t_hi = temperature_levels[0], temperature_levels[-1]
        s_lo, s_hi = stress_levels[0], stress_levels[-1]
        for mood in moods:
            hot = _paired(means, (s_lo, mood, t_hi), (s_hi, mood, t_hi))
            cold = _paired(means, (s_lo, mood, t_lo), (s_hi, mood, t_lo))
            diffs = {c: hot[c] - cold[c] for c in hot if c in cold}
            levels_text = f"prompt-stress effect at T={t_hi:g} minus at T={t_lo:g}"
            contrasts.append(
                contrast("interaction", f"prompt_mood={_label(mood)}", levels_text, diffs)
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
    episode_of: dict[str, Any] = {}
    for row in rows:
        context = str(row["context_id"])
        by_context[context][float(row["prompt_stress"])] = float(row["self_report"])
        episode_of[context] = row.get("episode", 0)
    levels = sorted({level for values in by_context.values() for level in values})
    if len(levels) < 2:
        return None
    lo, hi = levels[0], levels[-1]
    diffs = {c: v[hi] - v[lo] for c, v in by_context.items() if lo in v and hi in v}
    text = f"{lo:g} -> {hi:g}"
    label = f"self-report (stressed minus calm), stated stress {text}"
    return Contrast("manipulation", "self_report", "", text, _over_units(label, diffs, episode_of))


def placebo_check(
    rows: Sequence[Mapping[str, Any]], measure: str = "sequence_entropy"
) -> Contrast | None:
    """Slope of a measure on the context's actual stress when the prompt states another's.

    Each placebo context's mean is regressed on its actual stress (a slope over contexts). The
    interval resamples *episodes* when there are enough of them, else contexts (cluster
    bootstrap of the slope, 2000 resamples, percentile interval).

    Args:
        rows: The ``replay`` records.
        measure: The measure.

    Returns:
        The slope with its interval; ``None`` with fewer than 3 placebo contexts or no spread
        in actual stress.
    """
    values: dict[str, list[float]] = defaultdict(list)
    stress: dict[str, float] = {}
    episode_of: dict[str, Any] = {}
    for row in rows:
        if not row.get("placebo"):
            continue
        value = row.get(measure)
        if value is None or not math.isfinite(float(value)):
            continue
        context = str(row["context_id"])
        values[context].append(float(value))
        stress[context] = float(row["actual_stress"])
        episode_of[context] = row.get("episode", 0)
    contexts = sorted(values)
    if len(contexts) < 3:
        return None
    x = np.array([stress[c] for c in contexts])
    y = np.array([float(np.mean(values[c])) for c in contexts])
    if float(np.ptp(x)) <= 1e-12:
        return None
    episodes = sorted({episode_of[c] for c in contexts}, key=str)
    by_episode = len(episodes) >= FEW_UNITS
    groups = (
        [[i for i, c in enumerate(contexts) if episode_of[c] == e] for e in episodes]
        if by_episode
        else [[i] for i in range(len(contexts))]
    )
    rng = np.random.default_rng(0)
    slopes = []
    for _ in range(2000):
        picked = np.concatenate([groups[g] for g in rng.integers(len(groups), size=len(groups))])
        if float(np.ptp(x[picked])) > 1e-12:
            slopes.append(float(np.polyfit(x[picked], y[picked], 1)[0]))
    slope = float(np.polyfit(x, y, 1)[0])
    low, high = np.quantile(slopes, [0.025, 0.975]) if slopes else (math.nan, math.nan)
    share_below = float(np.mean(np.asarray(slopes) <= 0)) if slopes else math.nan
    p_value = min(1.0, 2 * min(share_below, 1 - share_below)) if slopes else math.nan
    unit = "episodes" if by_episode else "contexts"
    estimate = Estimate(
        "placebo: slope on the context's actual stress",
        slope,
        float(low),
        float(high),
        p_value,
        len(groups),
        unit,
        "percentile bootstrap",
    )
    return Contrast("placebo", measure, "prompt states another context's state", "slope", estimate)


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
