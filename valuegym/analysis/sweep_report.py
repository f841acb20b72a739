"""The report of a sweep: each measure against each swept parameter, with intervals over seeds.

Every finished cell of a sweep folder (see :mod:`valuegym.scenarios.sweeps`) is reduced to one
number per measure (the mean over its episodes, agents and steps, or utterances); cells are then
grouped by the value of each swept parameter, and each group's mean gets a percentile bootstrap
95% interval over its cells (the seeds, and the other parameters' values when the grid has
several). The result is a Markdown table, ``statistics.json`` and one PNG per measure.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa

from valuegym.analysis.statistics import GroupSummary, mean_interval
from valuegym.manifest import check_poolable
from valuegym.records import RunFolder, write_bytes_atomic, write_json_atomic

__all__ = [
    "SweepReport",
    "build_sweep_report",
    "cell_measures",
    "is_sweep_folder",
    "write_sweep_report",
]

#: Measures taken from a cell's records: name -> (record kind, column, label).
MEASURES: Final = {
    "return": ("steps", "reward", "episode return per agent"),
    "stress": ("steps", "stress", "mean stress"),
    "mood": ("steps", "mood", "mean mood"),
    "cooperation": ("steps", "env_cooperation_rate", "cooperation rate"),
    "gini": ("steps", "env_gini", "Gini of consumption"),
    "resource": ("steps", "env_resource", "mean resource"),
    "token_entropy": ("utterances", "mean_token_entropy", "mean token entropy"),
    "surprisal": ("utterances", "mean_surprisal", "mean surprisal per token"),
    "semantic_entropy": ("utterances", "semantic_entropy", "semantic entropy"),
    "mutual_information": ("information", "mutual_information", "I(state; utterance)"),
}


def is_sweep_folder(folder: str | Path) -> bool:
    """Whether ``folder`` is a sweep folder (it holds a ``plan.json``)."""
    return (Path(folder) / "plan.json").is_file()


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)


def cell_measures(run_dir: Path) -> dict[str, float]:
    """Reduce one finished run folder to one number per available measure.

    Returns:
        Measure name -> value; measures whose column the records lack are left out.
    """
    folder = RunFolder(run_dir)
    tables = {kind: folder.read(kind) for kind in ("steps", "utterances", "information")}
    result = {}
    for name, (kind, column, _) in MEASURES.items():
        table = tables[kind]
        if column not in table.column_names or table.num_rows == 0:
            continue
        values = _column(table, column)
        if name == "return":
            keys = zip(_column(table, "episode"), table.column("agent").to_pylist(), strict=True)
            totals: dict[tuple[Any, Any], float] = {}
            for key, value in zip(keys, values, strict=True):
                totals[key] = totals.get(key, 0.0) + value
            values = np.array(list(totals.values()))
        finite = values[np.isfinite(values)]
        if finite.size:
            result[name] = float(finite.mean())
    return result


@dataclass
class SweepReport:
    """The numbers and figures of a sweep report.

    Attributes:
        statistics: JSON-able numbers: per cell, and per parameter and measure.
        markdown: The report text.
        figures: The PNG files written.
    """

    statistics: dict[str, Any] = field(default_factory=dict)
    markdown: str = ""
    figures: list[Path] = field(default_factory=list)


def _label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _number(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.3f}"


def build_sweep_report(sweep_dir: str | Path, *, seed: int = 0) -> SweepReport:
    """Aggregate a sweep's finished cells and draw the figures into ``<sweep>/report/``.

    Args:
        sweep_dir: A sweep folder.
        seed: Seed of the bootstrap resampling.

    Returns:
        The report.

    Raises:
        FileNotFoundError: When the folder is not a sweep folder or no cell has finished.
    """
    from valuegym.analysis.plots import plot_parameter_effect

    folder = Path(sweep_dir)
    if not is_sweep_folder(folder):
        raise FileNotFoundError(f"{folder}: no plan.json; is this a sweep folder?")
    plan = json.loads((folder / "plan.json").read_text(encoding="utf-8"))
    cells = [cell for cell in plan["cells"] if (folder / "cells" / cell["cell"]).is_dir()]
    if not cells:
        raise FileNotFoundError(f"{folder}: no finished cell yet")
    per_cell = {cell["cell"]: cell_measures(folder / "cells" / cell["cell"]) for cell in cells}
    parameters = list(plan["cells"][0]["overrides"]) or ["seed"]
    report = SweepReport()
    report.statistics["cells"] = {
        cell["cell"]: {
            "overrides": cell["overrides"],
            "seed": cell["seed"],
            "measures": per_cell[cell["cell"]],
        }
        for cell in cells
    }
    report.markdown = (
        f"# Sweep report: {plan['scenario']}\n\n"
        f"Sweep folder `{folder}`: {len(cells)} of {len(plan['cells'])} cells finished. Each "
        "cell is reduced to its mean; groups are cells sharing a parameter value, with a "
        "percentile bootstrap 95% interval of the mean over the group's cells (seeds).\n"
    )
    measures = [name for name in MEASURES if any(name in m for m in per_cell.values())]
    by_parameter: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for parameter in parameters:
        values = list(
            dict.fromkeys(
                cell["seed"] if parameter == "seed" else _hashable(cell["overrides"][parameter])
                for cell in plan["cells"]
            )
        )
        rows = []
        by_parameter[parameter] = {}
        for measure in measures:
            summaries: list[GroupSummary] = []
            for value in values:
                data = [
                    per_cell[cell["cell"]][measure]
                    for cell in cells
                    if measure in per_cell[cell["cell"]]
                    and (
                        cell["seed"]
                        if parameter == "seed"
                        else _hashable(cell["overrides"][parameter])
                    )
                    == value
                ]
                summary = mean_interval(data, group=_label(value), seed=seed)
                summaries.append(summary)
                rows.append(
                    f"| {measure} | {_label(value)} | {_number(summary.mean)} | "
                    f"[{_number(summary.low)}, {_number(summary.high)}] | {summary.n} |"
                )
            by_parameter[parameter][measure] = [
                {"value": value, **s.to_dict()} for value, s in zip(values, summaries, strict=True)
            ]
            report.figures.append(
                plot_parameter_effect(
                    values,
                    summaries,
                    folder / "report" / f"{measure}_vs_{parameter.replace('.', '_')}.png",
                    parameter_label=parameter,
                    value_label=MEASURES[measure][2],
                )
            )
        report.markdown += (
            f"\n## Against `{parameter}`\n\n"
            "| measure | value | mean | 95% interval | cells |\n|---|---|---|---|---|\n"
            + "\n".join(rows)
            + "\n"
        )
    report.statistics["by_parameter"] = by_parameter
    report.markdown += "\n## Figures\n\n" + "".join(
        f"![{path.stem.replace('_', ' ')}]({path.name})\n\n" for path in report.figures
    )
    return report


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, list | dict) else value


def write_sweep_report(
    sweep_dir: str | Path, *, seed: int = 0, allow_mixed_lm: bool = False
) -> Path:
    """Build the sweep report and write ``report.md``, ``statistics.json`` and the figures.

    Args:
        sweep_dir: A sweep folder.
        seed: Seed of the bootstrap resampling.
        allow_mixed_lm: Pool cells whose language models, model files or builds differ
            (the report then opens with a warning naming the differences).

    Returns:
        The path of ``report.md``.

    Raises:
        MixedLanguageModelsError: When the cells' language models differ and
            ``allow_mixed_lm`` is false.
    """
    folder = Path(sweep_dir)
    cells = sorted(path for path in (folder / "cells").glob("*") if path.is_dir())
    differences = check_poolable(cells, allow_mixed_lm=allow_mixed_lm)
    report = build_sweep_report(folder, seed=seed)
    if differences:
        title, _, body = report.markdown.partition("\n\n")
        report.markdown = (
            f"{title}\n\n**Warning: pooled across different language models** (entropies "
            "compare only within one backend, model file and build):\n\n"
            + "".join(f"- {line}\n" for line in differences)
            + f"\n{body}"
        )
    write_json_atomic(report.statistics, folder / "report" / "statistics.json")
    path = folder / "report" / "report.md"
    write_bytes_atomic(report.markdown.encode("utf-8"), path)
    return path
