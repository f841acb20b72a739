"""How many units a design needs: ``valuegym plan`` from a pilot's spread between units.

A pilot run (or sweep) gives, for each declared estimand, the spread of its per-unit values
(episodes, or seeds). For a true effect ``delta`` the paired t test over ``n`` units has 80%
power at the 5% level when ``(t_{0.975, n-1} + t_{0.8, n-1}) * sd / sqrt(n) <= delta``
(:func:`~valuegym.analysis.statistics.units_needed`). The spread of a pilot is itself uncertain
(with 3 units, very), so the answer is a planning figure, not a guarantee.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from valuegym.analysis.document import Contrast, number
from valuegym.analysis.statistics import units_needed

__all__ = ["PlanRow", "plan_markdown", "plan_units"]


@dataclass(frozen=True)
class PlanRow:
    """One estimand's planning figures.

    Attributes:
        name: The estimand (or contrast) name.
        primary: Whether it is a primary estimand.
        units: The units the pilot has.
        unit: Their plural name.
        sd: The spread of the per-unit values.
        mde: The smallest effect the pilot's units detect with 80% power.
        effect: The effect planned for (``--effect``, else the smallest effect of interest).
        needed: Units needed to detect ``effect`` with 80% power (``-1``: no spread known).
    """

    name: str
    primary: bool
    units: int
    unit: str
    sd: float
    mde: float
    effect: float
    needed: int

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for ``--json``)."""
        return dict(self.__dict__)


def _contrasts(folder: Path) -> list[Contrast]:
    from valuegym.analysis.sweep_report import build_sweep_report, is_sweep_folder

    if is_sweep_folder(folder):
        report = build_sweep_report(folder)
        return list(report.estimands)
    from valuegym.analysis.design_report import design_estimates
    from valuegym.records import RunFolder

    run = RunFolder(folder)
    if not run.finished_episodes():
        raise FileNotFoundError(f"{folder}: no finished episode records; is this a run folder?")
    return design_estimates(run, run.read_design())


def plan_units(folder: str | Path, effect: float | None = None) -> list[PlanRow]:
    """Units each declared estimand needs, from a finished pilot's spread between units.

    Args:
        folder: A run or sweep folder whose scenario declared a design.
        effect: The true effect to plan for, in each measure's unit; ``None`` plans for each
            estimand's declared smallest effect of interest.

    Returns:
        One row per estimand the folder's rows hold, primary first.

    Raises:
        FileNotFoundError: When the folder holds no finished episode or cell.
        ValueError: When the folder's scenario declared no estimand, or ``effect <= 0``.
    """
    if effect is not None and not effect > 0:
        raise ValueError(f"--effect: must be > 0 (got {effect})")
    contrasts = _contrasts(Path(folder))
    if not contrasts:
        raise ValueError(
            f"{folder}: its scenario declares no estimand (design.estimands) whose rows it "
            "holds; nothing to plan"
        )
    rows = []
    for contrast in contrasts:
        target = effect if effect is not None else contrast.smallest_effect
        sd = contrast.estimate.sd
        needed = (
            units_needed(sd, target)
            if math.isfinite(sd) and math.isfinite(target) and target > 0
            else -1
        )
        rows.append(
            PlanRow(
                contrast.name,
                contrast.primary,
                contrast.estimate.n_units,
                contrast.estimate.unit,
                sd,
                contrast.estimate.mde,
                target,
                needed,
            )
        )
    return rows


def plan_markdown(rows: list[PlanRow]) -> str:
    """The rows as a Markdown table with a sentence on what they mean."""
    lines = [
        "| estimand | units now | SD between units | MDE now (80%) | effect planned for | "
        "units needed (80%) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        needed = "–" if row.needed < 0 else str(row.needed)
        lines.append(
            f"| {row.name}{' (primary)' if row.primary else ''} | {row.units} {row.unit} | "
            f"{number(row.sd)} | {number(row.mde)} | {number(row.effect)} | {needed} |"
        )
    return (
        "\n".join(lines)
        + "\n\nUnits needed: the smallest n whose two-sided 5% t test over n units has 80% "
        "power for the effect, taking the pilot's spread between units as the truth (a pilot "
        "of few units estimates that spread loosely; plan with margin).\n"
    )
