"""The declared design's estimands, estimated at the design's unit, with power and multiplicity.

A scenario declares its design (:mod:`valuegym.scenarios.design`); the run writes it to
``design.json`` (:class:`~valuegym.records.schema.RunDesign`). This module reads each declared
estimand from the rows it names:

- ``rows: replay``: :func:`~valuegym.analysis.channels.paired_contrast`, differences within
  each replayed context, averaged per episode;
- ``rows: run``: :func:`~valuegym.analysis.channels.factor_contrasts` on the run's own rows
  (utterances, or per-agent episode returns, stress and mood), design cells averaged per
  episode.

Every interval is over episodes. The primary estimands form one family and the others another,
each Holm-corrected; each contrast carries its minimum detectable effect, and the report calls
it *underpowered* where that exceeds the declared smallest effect of interest.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from valuegym.analysis.channels import paired_contrast
from valuegym.analysis.document import Contrast, order_contrasts
from valuegym.analysis.factors import factor_contrasts
from valuegym.analysis.statistics import Estimate
from valuegym.records import RunDesign, RunFolder
from valuegym.scenarios.design import RUN_MEASURES

__all__ = ["cap_share", "design_estimates", "run_rows"]


def run_rows(folder: RunFolder, measure: str) -> list[dict[str, Any]]:
    """The run's own rows a between-agent contrast of ``measure`` reads.

    Utterance measures come one row per utterance; ``return`` is one row per agent and
    episode (its summed reward), ``stress`` and ``mood`` the agent's mean over the episode.

    Args:
        folder: The run folder.
        measure: A key of :data:`~valuegym.scenarios.design.RUN_MEASURES`.

    Returns:
        Rows with ``episode``, ``entry`` and the measure.
    """
    table = RUN_MEASURES.get(measure, "utterances")
    records = folder.read(table)
    if records.num_rows == 0:
        return []
    if table == "utterances":
        if measure not in records.column_names:
            return []
        return records.select(["episode", "entry", "agent", measure]).to_pylist()
    column = "reward" if measure == "return" else measure
    sums: dict[tuple[int, str], list[float]] = defaultdict(list)
    entry_of: dict[str, str] = {}
    for row in records.select(["episode", "agent", "entry", column]).to_pylist():
        sums[(row["episode"], row["agent"])].append(float(row[column]))
        entry_of[row["agent"]] = row["entry"]
    reduce = np.sum if measure == "return" else np.mean
    return [
        {"episode": episode, "agent": agent, "entry": entry_of[agent], measure: float(reduce(v))}
        for (episode, agent), v in sums.items()
    ]


def cap_share(rows: Sequence[Mapping[str, Any]]) -> float:
    """Share of generations that stopped at the token cap (``finish_reason == "length"``)."""
    reasons = [row.get("finish_reason") for row in rows if row.get("finish_reason") is not None]
    return float(np.mean([reason == "length" for reason in reasons])) if reasons else float("nan")


def _estimand_estimate(
    estimand: Mapping[str, Any], design: RunDesign, folder: RunFolder, replay: list[dict[str, Any]]
) -> Estimate | None:
    name = str(estimand["name"])
    levels = estimand.get("levels")
    if estimand["rows"] == "replay":
        if not replay:
            return None
        chosen = None if levels is None else (float(levels[0]), float(levels[1]))
        held = dict(estimand.get("at") or {})
        contrast = paired_contrast(replay, estimand["measure"], estimand["contrast"], chosen, held)
        return None if contrast is None else _renamed(contrast.estimate, name)
    factor = estimand["contrast"]
    rows = run_rows(folder, estimand["measure"])
    if not rows or factor not in design.factors:
        return None
    pair = None if levels is None else {factor: (str(levels[0]), str(levels[1]))}
    for contrast in factor_contrasts(rows, design.factors, estimand["measure"], levels=pair):
        if contrast.channel == factor:
            return _renamed(contrast.estimate, name)
    return None


def _renamed(estimate: Estimate, label: str) -> Estimate:
    return replace(estimate, label=label)


def design_estimates(folder: RunFolder, design: RunDesign) -> list[Contrast]:
    """Every declared run or replay estimand, primary family first, Holm within each family.

    Args:
        folder: The run folder.
        design: Its ``design.json``.

    Returns:
        The contrasts (an estimand its rows do not hold yet, e.g. a replay not yet run, is
        left out).
    """
    replay = folder.read("replay").to_pylist()
    estimates: dict[str, Estimate] = {}
    smallest: dict[str, float] = {}
    for estimand in design.estimands:
        if estimand["rows"] == "sweep":
            continue
        estimate = _estimand_estimate(estimand, design, folder, replay)
        if estimate is None:
            continue
        estimates[str(estimand["name"])] = estimate
        smallest[str(estimand["name"])] = float(estimand["smallest_effect"])
    return order_contrasts(estimates, design.primary, smallest=smallest)
