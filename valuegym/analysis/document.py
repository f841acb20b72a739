"""The report skeleton shared by run and sweep reports, and the one table of estimates.

A report is a title, a few opening paragraphs, sections, figures and the same numbers as JSON;
:meth:`Report.write` puts ``report.md`` and ``statistics.json`` beside the figures. Every
interval any report prints goes through :func:`estimate_table` (or :func:`contrast_table`,
which adds the family's adjusted p-values), so each is shown with its method and units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from valuegym.analysis.statistics import FEW_UNITS, Estimate, holm
from valuegym.records import write_bytes_atomic, write_json_atomic

__all__ = [
    "FEW_UNITS_MARK",
    "Contrast",
    "Report",
    "contrast_table",
    "estimate_table",
    "order_contrasts",
]


def number(value: float | None, digits: int = 3) -> str:
    """A number for a table, ``–`` when missing."""
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _interval(estimate: Estimate) -> str:
    if not math.isfinite(estimate.low):
        return "–"
    return f"[{number(estimate.low)}, {number(estimate.high)}]"


#: Appended to the basis of an interval over too few units; the report explains it once.
FEW_UNITS_MARK: Final = "(too few)"


def _basis(estimate: Estimate) -> str:
    return f"{estimate.basis} {FEW_UNITS_MARK}" if estimate.few_units else estimate.basis


def estimate_table(estimates: Sequence[Estimate], *, label: str) -> str:
    """A Markdown table of estimates, each with its interval, method and units.

    Args:
        estimates: The rows.
        label: Header of the first column (what each row's label is).

    Returns:
        The table; an interval over fewer than :data:`FEW_UNITS` units is marked
        :data:`FEW_UNITS_MARK`, which the report explains once.
    """
    rows = [f"| {e.label} | {number(e.value)} | {_interval(e)} | {_basis(e)} |" for e in estimates]
    return (
        f"| {label} | estimate | 95% interval | interval from |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )


@dataclass(frozen=True)
class Contrast:
    """One contrast of a report with its place in the family.

    Attributes:
        name: ``"<measure>~<variable>"``, as ``analysis.primary`` names it.
        estimate: The estimate and its interval.
        primary: Whether the scenario declared it primary.
        adjusted_p: Holm-adjusted p-value within its family (primary or secondary).
    """

    name: str
    estimate: Estimate
    primary: bool
    adjusted_p: float

    def to_dict(self) -> dict[str, Any]:
        """The contrast as plain data for ``statistics.json``."""
        return {**self.estimate.to_dict(), "primary": self.primary, "holm_p": self.adjusted_p}


def order_contrasts(
    estimates: dict[str, Estimate], primary: Sequence[str], *, aliases: dict[str, str] | None = None
) -> list[Contrast]:
    """Declared primary contrasts first, then the rest; Holm within each family.

    Args:
        estimates: Contrast name -> estimate, in the report's order.
        primary: Names the scenario declared primary (``analysis.primary``).
        aliases: Other names a contrast may be declared by (alias -> name).

    Returns:
        The contrasts, primary first.
    """
    declared = {(aliases or {}).get(name, name) for name in primary}
    families = [
        [n for n in estimates if n in declared],
        [n for n in estimates if n not in declared],
    ]
    ordered: list[Contrast] = []
    for is_primary, names in zip((True, False), families, strict=True):
        adjusted = holm([estimates[n].p_value for n in names])
        ordered.extend(
            Contrast(n, estimates[n], is_primary, p) for n, p in zip(names, adjusted, strict=True)
        )
    return ordered


def contrast_table(contrasts: Sequence[Contrast]) -> str:
    """The contrasts as one table, primary first, with p-values raw and Holm-adjusted.

    Returns:
        The table and a sentence saying how the families were corrected.
    """
    rows = [
        f"| {'**' + c.name + '** (primary)' if c.primary else c.name} | "
        f"{number(c.estimate.value)} | {_interval(c.estimate)} | {_p(c.estimate.p_value)} | "
        f"{_p(c.adjusted_p)} | {_basis(c.estimate)} |"
        for c in contrasts
    ]
    n_primary = sum(c.primary for c in contrasts)
    n_rest = len(contrasts) - n_primary
    if n_primary:
        family = (
            f"The declared primary contrast{'s are' if n_primary > 1 else ' is'} listed first"
            f"{' (Holm within the primary family)' if n_primary > 1 else ' and not adjusted'}; "
            f"the other {n_rest} form one family, Holm-corrected."
        )
    else:
        family = (
            f"No primary contrast is declared (`analysis.primary` in the scenario), so all "
            f"{n_rest} form one family, Holm-corrected."
        )
    return (
        "| contrast | estimate | 95% interval | p | Holm p | interval from |\n"
        "|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + f"\n\n{family} Intervals are not adjusted; read the Holm p for the family.\n"
    )


@dataclass
class Report:
    """The numbers, text and figures of a run or sweep report.

    Attributes:
        title: The first heading.
        opening: Paragraphs under the title.
        sections: ``(heading, body)`` pairs, in order.
        statistics: JSON-able numbers, grouped by section.
        figures: The PNG files written.
    """

    title: str
    opening: list[str] = field(default_factory=list)
    sections: list[tuple[str, str]] = field(default_factory=list)
    statistics: dict[str, Any] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)

    @property
    def markdown(self) -> str:
        """The report as Markdown, figures last."""
        opening = list(self.opening)
        if any(FEW_UNITS_MARK in body for _, body in self.sections):
            opening.append(
                f"**Too few units:** an interval marked {FEW_UNITS_MARK} rests on fewer than "
                f"{FEW_UNITS} independent units. It is wide, assumes the unit summaries are "
                "close to normal, and cannot tell a finding from noise: run more episodes or "
                "seeds before reading it."
            )
        parts = [f"# {self.title}\n\n" + "\n\n".join(opening) + "\n"]
        parts += [f"\n## {heading}\n\n{body}" for heading, body in self.sections]
        parts.append(
            "\n## Figures\n\n"
            + "".join(f"![{p.stem.replace('_', ' ')}]({p.name})\n\n" for p in self.figures)
        )
        return "".join(parts)

    def write(self, report_dir: Path) -> Path:
        """Write ``report.md`` and ``statistics.json`` into ``report_dir`` (figures are there).

        Returns:
            The path of ``report.md``.
        """
        write_json_atomic(self.statistics, report_dir / "statistics.json")
        path = report_dir / "report.md"
        write_bytes_atomic(self.markdown.encode("utf-8"), path)
        return path
