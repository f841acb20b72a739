"""The report skeleton shared by run and sweep reports, and the one table of estimates.

A report is a title, a few opening paragraphs, sections, figures and the same numbers as JSON;
:meth:`Report.write` puts ``report.md`` and ``statistics.json`` beside the figures. Every
interval any report prints goes through :func:`estimate_table` (or :func:`contrast_table`,
which adds the family's adjusted p-values), so each is shown with its method and units.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from valuegym.analysis.statistics import FEW_UNITS, Estimate, holm
from valuegym.records import write_bytes_atomic, write_json_atomic

__all__ = [
    "PILOT_MARK",
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
    if estimate.pilot:
        return PILOT_MARK
    if not math.isfinite(estimate.low):
        return "–"
    return f"[{number(estimate.low)}, {number(estimate.high)}]"


#: Printed instead of an interval over fewer than :data:`FEW_UNITS` units; explained once.
PILOT_MARK: Final = "pilot"


def _basis(estimate: Estimate) -> str:
    return estimate.basis


def estimate_table(estimates: Sequence[Estimate], *, label: str) -> str:
    """A Markdown table of estimates, each with its interval, method and units.

    Args:
        estimates: The rows.
        label: Header of the first column (what each row's label is).

    Returns:
        The table; an estimate over fewer than :data:`FEW_UNITS` units is a pilot and
        shows :data:`PILOT_MARK` instead of an interval, which the report explains once.
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
        name: The contrast's name (a declared estimand's name, or a report's own label).
        estimate: The estimate and its interval.
        primary: Whether the scenario declared it primary.
        adjusted_p: Holm-adjusted p-value within its family.
        smallest_effect: The declared smallest effect of interest (``nan``: none declared).
    """

    name: str
    estimate: Estimate
    primary: bool
    adjusted_p: float
    smallest_effect: float = math.nan

    @property
    def underpowered(self) -> bool:
        """Whether its minimum detectable effect exceeds the smallest effect of interest."""
        return bool(
            math.isfinite(self.smallest_effect) and not (self.estimate.mde <= self.smallest_effect)
        )

    @property
    def reading(self) -> str:
        """What the design lets a reader say of it, in a few words."""
        if self.estimate.pilot:
            return f"pilot ({self.estimate.n_units} {self.estimate.unit}): no conclusion"
        if self.adjusted_p <= 0.05:
            return "differs from 0 (family-wise 5%)"
        if self.underpowered:
            return (
                f"underpowered: effects under {number(self.estimate.mde)} could be missed "
                f"(smallest of interest {number(self.smallest_effect)})"
            )
        if math.isfinite(self.smallest_effect):
            return f"not detected; powered for {number(self.smallest_effect)}"
        return f"not detected; could miss effects under {number(self.estimate.mde)}"

    def to_dict(self) -> dict[str, Any]:
        """The contrast as plain data for ``statistics.json``."""
        return {
            **self.estimate.to_dict(),
            "primary": self.primary,
            "holm_p": self.adjusted_p,
            "smallest_effect": self.smallest_effect,
            "underpowered": self.underpowered,
            "reading": self.reading,
        }


def order_contrasts(
    estimates: Mapping[str, Estimate],
    primary: Sequence[str],
    *,
    aliases: Mapping[str, str] | None = None,
    smallest: Mapping[str, float] | None = None,
) -> list[Contrast]:
    """Declared primary contrasts first, then the rest; Holm within each family.

    Args:
        estimates: Contrast name -> estimate, in the report's order.
        primary: Names the scenario declared primary.
        aliases: Other names a contrast may be declared by (alias -> name).
        smallest: Contrast name -> its smallest effect of interest.

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
            Contrast(n, estimates[n], is_primary, p, (smallest or {}).get(n, math.nan))
            for n, p in zip(names, adjusted, strict=True)
        )
    return ordered


def contrast_table(contrasts: Sequence[Contrast], *, family: str = "", correction: str = "") -> str:
    """The contrasts as one table, primary first, with p-values, Holm p, MDE and a reading.

    Args:
        contrasts: The rows, as :func:`order_contrasts` made them.
        family: What the non-primary contrasts are, for the sentence under the table.
        correction: Says how the family was corrected instead (when the table shows only
            part of a family).

    Returns:
        The table and a sentence saying how the families were corrected.
    """
    rows = [
        f"| {'**' + c.name + '** (primary)' if c.primary else c.name} | "
        f"{number(c.estimate.value)} | {_interval(c.estimate)} | "
        f"{'–' if c.estimate.pilot else _p(c.estimate.p_value)} | "
        f"{'–' if c.estimate.pilot else _p(c.adjusted_p)} | {number(c.estimate.mde)} | "
        f"{number(c.smallest_effect)} | {c.reading} | {_basis(c.estimate)} |"
        for c in contrasts
    ]
    n_primary = sum(c.primary for c in contrasts)
    n_rest = len(contrasts) - n_primary
    rest = family or "contrasts"
    if n_primary:
        sentence = (
            f"The declared primary estimand{'s are' if n_primary > 1 else ' is'} listed first"
            f"{' (Holm within the primary family)' if n_primary > 1 else ' and not adjusted'}"
            + (f"; the other {n_rest} {rest} form one family, Holm-corrected." if n_rest else ".")
        )
    else:
        sentence = f"The {n_rest} {rest} form one family, Holm-corrected."
    if correction:
        sentence = correction
    return (
        "| contrast | estimate | 95% interval | p | Holm p | MDE (80%) | smallest effect | "
        "reading | interval from |\n|---|---|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + f"\n\n{sentence} Intervals are not adjusted; read the Holm p for the family. "
        "MDE: the smallest true effect this many units would detect with 80% power at the 5% "
        "level, from the observed spread between units.\n"
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
        estimands: The declared estimands' contrasts (what ``valuegym plan`` reads).
    """

    title: str
    opening: list[str] = field(default_factory=list)
    sections: list[tuple[str, str]] = field(default_factory=list)
    statistics: dict[str, Any] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    estimands: list[Contrast] = field(default_factory=list)

    @property
    def markdown(self) -> str:
        """The report as Markdown, figures last."""
        opening = list(self.opening)
        if any(f"| {PILOT_MARK}" in body for _, body in self.sections):
            opening.append(
                f"**Pilot:** an estimate marked {PILOT_MARK} rests on fewer than {FEW_UNITS} "
                "independent units, too few for an interval to tell a finding from noise; its "
                "interval and p-value are left out (statistics.json keeps them). `valuegym plan "
                "RUN_DIR --effect X` says how many units the observed spread calls for."
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
