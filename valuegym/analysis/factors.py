"""Between-agent contrasts of a designed factorial: which agent entries differ, and how much.

A scenario's design may cross factors over its agent entries (a persona and a starting stress,
say, each entry one combination). The entries are then fixed, not sampled, and every episode
holds them all, so the episode is the unit: per episode the measure is averaged in each design
cell, a factor's contrast is formed from those cell means, and the interval is over episodes
(:func:`~valuegym.analysis.statistics.mean_interval`).

Example:
    >>> factors = {"persona": {"plain": ["a"], "ornate": ["b"]}}
    >>> rows = [
    ...     {"episode": e, "entry": entry, "y": e + (2.0 if entry == "b" else 0.0)}
    ...     for e in range(3)
    ...     for entry in "ab"
    ... ]
    >>> (contrast,) = factor_contrasts(rows, factors, "y")
    >>> contrast.channel, contrast.levels, contrast.estimate.value
    ('persona', 'plain -> ornate', 2.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from valuegym.analysis.channels import Contrast
from valuegym.analysis.statistics import mean_interval

__all__ = ["factor_contrasts"]


def factor_contrasts(
    rows: Sequence[Mapping[str, Any]],
    factors: Mapping[str, Mapping[str, Sequence[str]]],
    measure: str,
    *,
    levels: Mapping[str, tuple[str, str]] | None = None,
) -> list[Contrast]:
    """Between-agent contrasts of a designed factorial: per episode, cell means first.

    Each agent entry sits in one design cell (a combination of one level of every factor).
    Per episode the measure is averaged in each cell; a factor's contrast is the mean over
    its high level's cells minus the mean over its low level's cells (cells weighted equally),
    and its interval is over episodes. An episode lacking one of the cells is left out.

    Args:
        rows: Records with ``episode``, ``entry`` and the measure (e.g. ``utterances``).
        factors: Factor -> level -> entry names (the ``entry`` column), in declaration order.
        measure: The measure contrasted.
        levels: Optional factor -> ``(low, high)``; by default the first and last declared.

    Returns:
        One contrast per factor whose two levels both have cells; ``channel`` is the factor.
    """
    names = list(factors)
    cell_of: dict[str, tuple[str, ...]] = {}
    for entry in {e for by_level in factors.values() for es in by_level.values() for e in es}:
        cell: list[str] = []
        for name in names:
            found = [level for level, entries in factors[name].items() if entry in entries]
            if len(found) > 1:
                raise ValueError(f"factors: entry {entry!r} is in levels {found} of {name!r}")
            cell.extend(found)
        if len(cell) == len(names):
            cell_of[entry] = tuple(cell)
    design = sorted(set(cell_of.values()))
    if not design:
        return []
    column = {cell: index for index, cell in enumerate(design)}
    episode_index: dict[Any, int] = {}
    slots, values = [], []
    for row in rows:
        design_cell = cell_of.get(str(row.get("entry")))
        value = row.get(measure)
        if design_cell is None or value is None or not math.isfinite(value := float(value)):
            continue
        episode = episode_index.setdefault(row["episode"], len(episode_index))
        slots.append(episode * len(design) + column[design_cell])
        values.append(value)
    size = len(episode_index) * len(design)
    counts = np.bincount(np.asarray(slots, dtype=np.int64), minlength=size)
    sums = np.bincount(np.asarray(slots, dtype=np.int64), np.asarray(values), minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / counts, math.nan).reshape(-1, len(design))
    contrasts = []
    for position, name in enumerate(names):
        declared = list(factors[name])
        lo, hi = (levels or {}).get(name, (declared[0], declared[-1]))
        if lo not in factors[name] or hi not in factors[name]:
            raise ValueError(f"levels: {name!r} has levels {declared} (got {lo!r}, {hi!r})")
        high = [column[c] for c in design if c[position] == hi]
        low = [column[c] for c in design if c[position] == lo]
        if not high or not low or lo == hi:
            continue
        per_episode = means[:, high].mean(axis=1) - means[:, low].mean(axis=1)
        text = f"{lo} -> {hi}"
        estimate = mean_interval(per_episode, label=f"{name} {text}", unit="episodes")
        contrasts.append(Contrast(name, measure, "design cells weighted equally", text, estimate))
    return contrasts
