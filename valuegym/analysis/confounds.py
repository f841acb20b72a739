"""Predictors of a run's own utterances that the sampling temperature determines.

In a run the speech temperature follows the agent's state, so a state variable that the
temperature determines cannot be told apart from the temperature's mechanical effect on what
is sampled; the channel contrasts of a replay (:mod:`valuegym.analysis.channels`) separate them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["temperature_confounds"]


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
