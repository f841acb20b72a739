"""What each channel does to speech: paired, within-context contrasts from a replay.

A replay (:mod:`valuegym.runs.replay`) regenerates each recorded context under a grid of
channel settings with common random numbers. A context is one agent's turn, keyed by
``(episode, step, agent)``. Per context and cell the K samples are averaged; a contrast is a
difference *within* each context. Contexts of one episode share its history, so the
per-context differences are always averaged within each episode first and the interval is
taken over episodes (:func:`~valuegym.analysis.statistics.mean_interval`); with fewer than
:data:`~valuegym.analysis.statistics.FEW_UNITS` episodes the estimate is a pilot
(:attr:`~valuegym.analysis.statistics.Estimate.pilot`). Per measure:

- **temperature effect at a fixed prompt**: highest minus lowest temperature;
- **prompt-state effect at a fixed temperature**: highest minus lowest stated stress (or mood);
- **steering effect**: highest minus lowest stress coefficient of the steering channel
  (``steer_stress``, ``alpha (s - s0)``), at each temperature and stated state. llama.cpp
  generates each steering's prompts together (one control vector per context), so the cells
  of a context are batched differently: the seeds are common, but llama.cpp's rounding depends
  on the batch, and an effect of the size of that rounding is not a finding;
- **interaction**: the prompt-stress effect at the highest temperature minus at the lowest;
- **manipulation check** (:func:`manipulation_check`): how far the stated stress shifts the
  distribution of replies, a Jensen-Shannon divergence estimated by cross-scoring;
- **placebo** (:func:`placebo_check`): the slope of the measure on the context's *actual*
  stress when the prompt states independently drawn levels: zero in expectation unless the
  context itself carries the state;

:func:`paired_contrast` reads one declared estimand; :func:`channel_contrasts` the whole grid.

Example:
    >>> rows = [
    ...     {"episode": e, "step": 3, "agent": "a", "placebo": False, "set_stress": s,
    ...      "set_mood": float("nan"), "set_temperature": t, "sample": 0,
    ...      "sequence_entropy": 1.0 + 2.0 * t + 0.5 * s + 0.1 * e}
    ...     for e in range(4)
    ...     for s, t in [(0.1, 0.5), (0.1, 1.0), (0.9, 0.5), (0.9, 1.0)]
    ... ]
    >>> [round(c.estimate.value, 3) for c in channel_contrasts(rows)[:2]]
    [1.0, 1.0]
    >>> contrast = paired_contrast(rows, "sequence_entropy", "prompt_stress", (0.1, 0.9))
    >>> round(contrast.estimate.value, 3), contrast.at, contrast.estimate.pilot
    (0.4, 'prompt_mood=own, temperature averaged over 0.5/1', True)
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from valuegym.analysis.statistics import Estimate, mean_interval, unit_slopes
from valuegym.measures.information import mutual_information_from_loglik
from valuegym.scenarios.design import REPLAY_MEASURES

__all__ = [
    "MECHANICAL_MEASURES",
    "REPLAY_MEASURES",
    "Contrast",
    "channel_contrasts",
    "manipulation_check",
    "paired_contrast",
    "placebo_check",
]

#: Measures that rise with the sampling temperature by construction (entropies sampled from).
MECHANICAL_MEASURES: Final = frozenset({"sequence_entropy", "mean_sampled_entropy"})
#: The unit of every interval here.
_UNIT: Final = "episodes"
#: The channels of a grid cell, in the order of a cell's settings.
_AXES: Final = ("prompt_stress", "prompt_mood", "temperature", "steer_stress")
#: The replay columns that hold a cell's settings, in :data:`_AXES` order.
_SET_COLUMNS: Final = ("set_stress", "set_mood", "set_temperature", "set_steer_stress")
#: Stands for "the agent's own" in a cell's settings (a NaN setting in the records).
_OWN: Final = math.inf

_Setting = tuple[float, ...]


@dataclass(frozen=True)
class Contrast:
    """A paired channel contrast with its interval over episodes.

    Attributes:
        channel: ``temperature``, ``prompt_stress``, ``prompt_mood``, ``steer_stress``,
            ``interaction``,
            ``manipulation``, ``placebo``, or a designed factor's name
            (:func:`~valuegym.analysis.factors.factor_contrasts`).
        measure: The measure.
        at: Where the other channels were held (e.g. ``temperature=0.7``).
        levels: The two levels contrasted, ``"low -> high"``.
        estimate: The mean per-episode difference (or slope, for placebo) with its interval,
            p-value, units and method.
        mechanical: A temperature contrast of a measure that rises with the temperature by
            construction (:data:`MECHANICAL_MEASURES`): not a finding about the model.
    """

    channel: str
    measure: str
    at: str
    levels: str
    estimate: Estimate
    mechanical: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for the report's JSON)."""
        return {
            "channel": self.channel,
            "measure": self.measure,
            "at": self.at,
            "levels": self.levels,
            "mechanical": self.mechanical,
            **self.estimate.to_dict(),
        }


def _setting(value: Any) -> float:
    number = float(value)
    return _OWN if math.isnan(number) else float(np.round(number, 6))


def _label(value: float) -> str:
    return "own" if value == _OWN else f"{value:g}"


def _per_episode(episodes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean of the finite values of each episode (episodes without one are left out)."""
    finite = np.isfinite(values)
    if not finite.any():
        return np.empty(0)
    _, index = np.unique(episodes[finite], return_inverse=True)
    return np.bincount(index, values[finite]) / np.bincount(index)


@dataclass(frozen=True)
class _Cells:
    """Per replayed context and grid cell, the mean of a measure over the samples."""

    episodes: np.ndarray  # (contexts,): the episode of each context
    columns: dict[_Setting, int]  # settings in _AXES order -> column of `means`
    means: np.ndarray  # (contexts, cells); nan where a context lacks the cell

    def levels(self, axis: int) -> list[float]:
        return sorted({setting[axis] for setting in self.columns})

    def combine(self, terms: Mapping[_Setting, float]) -> np.ndarray:
        """Per context, ``sum(weight * mean at setting)`` (every setting a column)."""
        return sum(
            (weight * self.means[:, self.columns[s]] for s, weight in terms.items()),
            start=np.zeros(self.episodes.size),
        )


def _floats(values: Iterable[Any]) -> np.ndarray:
    """The values as a float array, ``None`` (a missing value) as ``nan``."""
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


def _cells(rows: Sequence[Mapping[str, Any]], measure: str) -> _Cells | None:
    contexts: dict[tuple[Any, Any, str], int] = {}
    columns: dict[tuple[Any, ...], int] = {}
    context_of, column_of, values = [], [], []
    # One pass in plain Python (the rows are dicts); numbers are judged in numpy after it.
    for row in rows:
        if row.get("placebo"):
            continue
        context_of.append(
            contexts.setdefault((row["episode"], row["step"], str(row["agent"])), len(contexts))
        )
        # a replay without the steering channel has no set_steer_stress: the agent's own
        setting = tuple(row.get(name, math.nan) for name in _SET_COLUMNS)
        column_of.append(columns.setdefault(setting, len(columns)))
        values.append(row.get(measure))
    value_array = _floats(values)
    finite = np.isfinite(value_array)
    if not finite.any():
        return None
    # Settings equal once rounded (as :func:`_setting` rounds) share a column.
    raw = _floats(value for setting in columns for value in setting).reshape(-1, len(_AXES))
    raw = np.where(np.isnan(raw), _OWN, np.round(raw, 6))
    merged: dict[_Setting, int] = {}
    remap = np.array([merged.setdefault(tuple(setting), len(merged)) for setting in raw.tolist()])
    n_columns = len(merged)
    flat = (np.asarray(context_of) * n_columns + remap[np.asarray(column_of)])[finite]
    size = len(contexts) * n_columns
    counts = np.bincount(flat, minlength=size)
    sums = np.bincount(flat, value_array[finite], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / counts, math.nan)
    episodes = np.array([key[0] for key in contexts])
    # a context without any finite value keeps an all-nan row: it pairs with nothing
    return _Cells(episodes, merged, means.reshape(len(contexts), n_columns))


def _declared(
    cells: _Cells,
    measure: str,
    channel: str,
    levels: tuple[float, float],
    at: Mapping[str, float],
) -> Contrast | None:
    """One contrast; held channels not named in ``at`` are averaged over their grid levels."""
    if channel not in (*_AXES, "interaction"):
        raise ValueError(f"channel: expected one of {(*_AXES, 'interaction')} (got {channel!r})")
    varied = _AXES.index("prompt_stress" if channel == "interaction" else channel)
    holdable = {a for i, a in enumerate(_AXES) if i != varied}
    if channel == "interaction":
        holdable.discard("temperature")
    if set(at) - holdable:
        raise ValueError(f"at: a {channel} contrast can hold only {sorted(holdable)} (got {at})")
    lo, hi = (_setting(level) for level in levels)
    temperatures = [t for t in cells.levels(2) if t != _OWN]
    if channel == "interaction" and len(temperatures) < 2:
        return None
    held_axes = [
        a for a in range(len(_AXES)) if a != varied and not (channel == "interaction" and a == 2)
    ]
    # named in the order ``at`` gives them, then the averaged ones
    named = list(at)
    held_axes.sort(key=lambda a: named.index(_AXES[a]) if _AXES[a] in named else len(_AXES) + a)
    held_levels = [
        [_setting(at[_AXES[a]])] if _AXES[a] in at else cells.levels(a) for a in held_axes
    ]
    # (sign, temperature override) of each arm: the interaction is a difference of differences
    arms = (
        [(1.0, temperatures[-1]), (-1.0, temperatures[0])]
        if channel == "interaction"
        else [(1.0, None)]
    )
    # Each combination of held levels the grid has both arms of, weighted equally.
    combos = []
    for combo in itertools.product(*held_levels):
        arm_terms = []
        for (sign, temperature), (level, weight) in itertools.product(
            arms, ((hi, 1.0), (lo, -1.0))
        ):
            setting = [0.0] * len(_AXES)
            setting[varied] = level
            for axis, held in zip(held_axes, combo, strict=True):
                setting[axis] = held
            if temperature is not None:
                setting[2] = temperature
            arm_terms.append((tuple(setting), sign * weight))
        if all(term in cells.columns for term, _ in arm_terms):
            combos.append((combo, arm_terms))
    if not combos:
        return None
    terms: dict[_Setting, float] = defaultdict(float)
    for _, arm_terms in combos:
        for term, weight in arm_terms:
            terms[term] += weight / len(combos)
    diffs = cells.combine(terms)
    per_episode = _per_episode(cells.episodes, diffs)
    if per_episode.size == 0:
        return None
    used = [sorted({combo[i] for combo, _ in combos}) for i in range(len(held_axes))]
    at_text = ", ".join(
        f"{_AXES[axis]}={_label(values[0])}"
        if len(values) == 1
        else f"{_AXES[axis]} averaged over {'/'.join(_label(v) for v in values)}"
        for axis, values in zip(held_axes, used, strict=True)
        if values != [_OWN] or _AXES[axis] != "steer_stress"  # no steering channel: unsaid
    )
    levels_text = f"{_label(lo)} -> {_label(hi)}"
    if channel == "interaction":
        levels_text = (
            f"prompt-stress effect {levels_text} at T={temperatures[-1]:g} "
            f"minus at T={temperatures[0]:g}"
        )
    label = f"{channel} {levels_text}" + (f" at {at_text}" if at_text else "")
    return Contrast(
        channel,
        measure,
        at_text,
        levels_text,
        mean_interval(per_episode, label=label, unit=_UNIT),
        mechanical=channel == "temperature" and measure in MECHANICAL_MEASURES,
    )


def paired_contrast(
    rows: Sequence[Mapping[str, Any]],
    measure: str,
    channel: str,
    levels: tuple[float, float] | None = None,
    at: Mapping[str, float] | None = None,
) -> Contrast | None:
    """One declared estimand of a replay: a paired contrast, interval over episodes.

    Args:
        rows: The ``replay`` records (one row per sample).
        measure: The measure contrasted (see :data:`REPLAY_MEASURES`).
        channel: ``prompt_stress``, ``prompt_mood``, ``temperature``, ``steer_stress`` or
            ``interaction`` (the prompt-stress effect at the grid's highest temperature minus
            at its lowest).
        levels: ``(low, high)`` of the channel (of the stated stress, for the interaction);
            ``None``: the grid's lowest and highest.
        at: Held settings, e.g. ``{"temperature": 1.0}`` (``nan``: the agent's own). A held
            channel not named is averaged over its grid levels, each weighted equally.

    Returns:
        The contrast, or ``None`` when the rows lack the cells it needs.
    """
    cells = _cells(rows, measure)
    if cells is None:
        return None
    if levels is None:
        axis = _AXES.index("prompt_stress" if channel == "interaction" else channel)
        grid = [level for level in cells.levels(axis) if level != _OWN]
        if len(grid) < 2:
            return None
        levels = (grid[0], grid[-1])
    return _declared(cells, measure, channel, levels, at or {})


def channel_contrasts(
    rows: Sequence[Mapping[str, Any]], measure: str = "sequence_entropy"
) -> list[Contrast]:
    """Every temperature, prompt-state, steering and interaction contrast the grid supports.

    Args:
        rows: The ``replay`` records (one row per sample).
        measure: The measure contrasted (see :data:`REPLAY_MEASURES`).

    Returns:
        Temperature effects at each stated state, prompt-stress and prompt-mood effects at
        each temperature and held state, steering effects at each temperature and stated state
        (the channels not named are averaged over their grid levels), and the interaction at
        each stated mood.
    """
    cells = _cells(rows, measure)
    if cells is None:
        return []
    stresses, moods, temperatures, steers = (cells.levels(axis) for axis in range(len(_AXES)))
    # "own" settings (the agent's, inf) are held levels, never contrasted against
    varied = [[level for level in levels if level != _OWN] for levels in (stresses, moods, steers)]
    temperature_levels = [t for t in temperatures if t != _OWN]
    wanted: list[tuple[str, list[float], dict[str, float]]] = []
    for stress, mood in itertools.product(stresses, moods):
        wanted.append(
            ("temperature", temperature_levels, {"prompt_stress": stress, "prompt_mood": mood})
        )
    for temperature, mood in itertools.product(temperatures, moods):
        wanted.append(
            ("prompt_stress", varied[0], {"temperature": temperature, "prompt_mood": mood})
        )
    for temperature, stress in itertools.product(temperatures, stresses):
        wanted.append(
            ("prompt_mood", varied[1], {"temperature": temperature, "prompt_stress": stress})
        )
    for temperature, stress, mood in itertools.product(temperatures, stresses, moods):
        held = {"temperature": temperature, "prompt_stress": stress, "prompt_mood": mood}
        wanted.append(("steer_stress", varied[2], held))
    if len(temperature_levels) >= 2:
        wanted.extend(("interaction", varied[0], {"prompt_mood": mood}) for mood in moods)
    contrasts = [
        _declared(cells, measure, channel, (levels[0], levels[-1]), _own_as_nan(at))
        for channel, levels, at in wanted
        if len(levels) >= 2
    ]
    return [contrast for contrast in contrasts if contrast is not None]


def _own_as_nan(at: Mapping[str, float]) -> dict[str, float]:
    return {name: math.nan if value == _OWN else value for name, value in at.items()}


def manipulation_check(rows: Sequence[Mapping[str, Any]]) -> Contrast | None:
    """Does the stated stress reach the model? The shift of the replies, by cross-scoring.

    Per replayed context, the K samples of the lowest and of the highest stated stress, each
    scored under both prompts, give the two-state mutual-information estimate
    (:func:`~valuegym.measures.information.mutual_information_from_loglik`): the
    Jensen-Shannon divergence between the two reply distributions, 0 in expectation when the
    stated level does not change the model's distribution. Averaged per episode, interval over
    episodes.

    Args:
        rows: The ``manipulation`` records (one row per scored sample). When they hold
            several temperatures, the one nearest 1.0 is used.

    Returns:
        The contrast, or ``None`` without a context scored at both levels.
    """
    if not rows:
        return None
    temperature = min(
        {_setting(row["temperature"]) for row in rows}, key=lambda t: (abs(t - 1.0), t)
    )
    low, high = float(rows[0]["low_stress"]), float(rows[0]["high_stress"])
    scored: dict[tuple[Any, Any, str], dict[tuple[int, int], tuple[float, float]]] = defaultdict(
        dict
    )
    for row in rows:
        if _setting(row["temperature"]) != temperature:
            continue
        arm = int(math.isclose(float(row["sampled_stress"]), float(row["high_stress"])))
        key = (row["episode"], row["step"], str(row["agent"]))
        scored[key][(arm, int(row["sample"]))] = (
            float(row["loglik_low"]),
            float(row["loglik_high"]),
        )
    episodes, divergences = [], []
    for (episode, _, _), samples in scored.items():
        both = sorted({k for arm, k in samples if arm == 0} & {k for arm, k in samples if arm == 1})
        if not both:
            continue
        loglik = np.array([[samples[(arm, k)] for k in both] for arm in (0, 1)])
        try:
            shift = mutual_information_from_loglik(loglik).mutual_information
        except ValueError:  # a sample unscorable under its own prompt
            continue
        episodes.append(episode)
        divergences.append(shift)
    if not divergences:
        return None
    per_episode = _per_episode(np.asarray(episodes), np.asarray(divergences))
    levels = f"{low:g} -> {high:g}"
    estimate = mean_interval(per_episode, label="reply shift (JS, cross-scored)", unit=_UNIT)
    return Contrast(
        "manipulation", "reply_shift", f"temperature={_label(temperature)}", levels, estimate
    )


def placebo_check(
    rows: Sequence[Mapping[str, Any]], measure: str = "sequence_entropy"
) -> Contrast | None:
    """Slope of a measure on the context's actual stress when the prompt states drawn levels.

    A placebo cell's prompt states a stress and a mood drawn independently of the context's
    actual state, so the measure can follow the actual stress only through the context
    itself. Per episode, the placebo cells' means (over samples) are regressed on the actual
    stress, with the stated stress and mood (where recorded) as controls and each temperature's
    own intercept; the interval is over the per-episode slopes.

    Args:
        rows: The ``replay`` records.
        measure: The measure.

    Returns:
        The mean slope with its interval; ``None`` when no episode has a slope (no placebo
        cells, or no spread in actual stress).
    """
    kept = [row for row in rows if row.get("placebo")]
    values = _floats(row.get(measure) for row in kept)
    finite = np.isfinite(values)
    if not finite.any():
        return None
    kept = [row for row, ok in zip(kept, finite.tolist(), strict=True) if ok]
    points: dict[tuple[Any, ...], int] = {}
    point_of = np.array(
        [
            points.setdefault(
                (row["episode"], row["step"], str(row["agent"]), row.get("cell")), len(points)
            )
            for row in kept
        ]
    )
    means = np.bincount(point_of, values[finite]) / np.bincount(point_of)
    first = np.unique(point_of, return_index=True)[1]  # a point's settings: its first row's
    firsts = [kept[i] for i in first.tolist()]
    episodes = np.array([row["episode"] for row in firsts])
    temperatures = np.array(
        [_setting(row.get("temperature", row.get("set_temperature", math.nan))) for row in firsts]
    )
    predictors = {"actual_stress": _floats(row["actual_stress"] for row in firsts)}
    for name in ("prompt_stress", "prompt_mood"):
        column = _floats(row.get(name) for row in firsts)
        if np.all(np.isfinite(column)) and float(np.ptp(column)) > 1e-12:
            predictors[name] = column
    slopes = unit_slopes(predictors, means, episodes, within=temperatures)["actual_stress"]
    if not np.isfinite(slopes).any():
        return None
    estimate = mean_interval(
        slopes, label="placebo: slope on the context's actual stress", unit=_UNIT
    )
    return Contrast(
        "placebo", measure, "prompt states independently drawn levels", "slope", estimate
    )
