"""The report of a sweep: each measure against each swept parameter, with intervals over seeds.

Every finished cell of a sweep folder (see :mod:`valuegym.runs.sweeps`) is reduced to one
number per measure (the mean over its episodes, agents and steps, or utterances). The seeds are
the independent units: a seed's cells share its random numbers, and the other swept parameters'
cells are averaged within each seed first. Per parameter value the report gives the mean over
seeds with a t interval (BCa from 20 seeds on); per numeric parameter, the slope of the measure
across its values, fitted for each seed and averaged with an interval over seeds. The slopes
form one family (the scenario's declared primary estimands first, ``design.estimands`` with
``rows: sweep``), Holm-corrected, each with its minimum detectable effect. The result
is a Markdown report, ``statistics.json`` and one PNG per measure and parameter, each showing
the intervals the text prints.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa

from valuegym.analysis.document import (
    Report,
    contrast_table,
    estimate_table,
    order_contrasts,
)
from valuegym.analysis.statistics import Estimate, mean_interval, unit_slopes
from valuegym.manifest import check_poolable
from valuegym.records import PlannedCell, RunFolder, SweepFolder
from valuegym.records.schema import metric_column

__all__ = ["build_sweep_report", "cell_measures", "is_sweep_folder", "write_sweep_report"]

#: Measures taken from a cell's records: name -> (record kind, column, label).
MEASURES: Final = {
    "return": ("steps", "reward", "episode return per agent"),
    "stress": ("steps", "stress", "mean stress"),
    "mood": ("steps", "mood", "mean mood"),
    "cooperation": ("steps", metric_column("cooperation_rate"), "cooperation rate"),
    "gini": ("steps", metric_column("gini"), "Gini of consumption"),
    "resource": ("steps", metric_column("resource"), "mean resource"),
    "token_entropy": ("utterances", "mean_token_entropy", "mean token entropy"),
    "surprisal": ("utterances", "mean_surprisal", "mean surprisal per token"),
    "semantic_entropy": ("utterances", "semantic_entropy", "semantic entropy"),
    "mutual_information": ("information", "mutual_information", "I(state; utterance)"),
}


#: The one "parameter" of a sweep of seeds only.
_NO_GRID: Final = "seeds only"


def is_sweep_folder(folder: str | Path) -> bool:
    """Whether ``folder`` is a sweep folder (it holds a sweep's plan)."""
    return SweepFolder(Path(folder)).is_sweep()


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


def _estimand_name(estimand: Mapping[str, Any]) -> str:
    """A sweep estimand's contrast name: ``measure~parameter`` (a slope), or ``...: a -> b``."""
    name = f"{estimand['measure']}~{estimand['contrast']}"
    levels = estimand.get("levels")
    return f"{name}: {levels[0]} -> {levels[1]}" if levels else name


def _declared(estimands: Any) -> tuple[list[str], dict[str, float]]:
    """The declared sweep estimands' contrast names.

    Returns:
        The primary ones' names, and every declared one's smallest effect of interest.
    """
    chosen = [e for e in estimands if e.get("rows") == "sweep"]
    names = [_estimand_name(e) for e in chosen if e.get("primary")]
    smallest = {_estimand_name(e): float(e["smallest_effect"]) for e in chosen}
    return names, smallest


def _level_difference(
    estimand: Mapping[str, Any],
    plan_cells: list[PlannedCell],
    per_cell: dict[str, dict[str, float]],
    seed: int,
) -> Estimate | None:
    """A declared difference between two swept values, within each seed, over seeds."""
    values, grid = _per_seed(plan_cells, per_cell, estimand["measure"], estimand["contrast"])
    low, high = (_hashable(level) for level in estimand["levels"])
    if low not in values or high not in values:
        return None
    per_seed = grid[values.index(high)] - grid[values.index(low)]
    return mean_interval(per_seed, label=_estimand_name(estimand), unit="seeds", seed=seed)


def _label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, list | dict) else value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _value_of(cell: PlannedCell, parameter: str) -> Any:
    """The cell's value of ``parameter``; a sweep without a grid has one value, ``"all"``."""
    return _hashable(cell["overrides"].get(parameter, "all"))


def _per_seed(
    plan_cells: list[PlannedCell],
    per_cell: dict[str, dict[str, float]],
    measure: str,
    parameter: str,
) -> tuple[list[Any], np.ndarray]:
    """The parameter's values, and the measure per (value, seed), other parameters averaged.

    Args:
        plan_cells: Every cell of the plan (fixes the order of values and seeds).
        per_cell: Cell id -> measures, for the finished cells only.
        measure: The measure.
        parameter: The swept parameter.

    Returns:
        The values in plan order and an array ``(values, seeds)``, ``nan`` where no cell ran.
    """
    values = list(dict.fromkeys(_value_of(cell, parameter) for cell in plan_cells))
    seeds = list(dict.fromkeys(cell["seed"] for cell in plan_cells))
    sums = np.zeros((len(values), len(seeds)))
    counts = np.zeros((len(values), len(seeds)))
    for cell in plan_cells:
        measured = per_cell.get(cell["cell"], {})
        if measure in measured:
            row, column = values.index(_value_of(cell, parameter)), seeds.index(cell["seed"])
            sums[row, column] += measured[measure]
            counts[row, column] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return values, sums / counts


def _against(
    parameter: str,
    plan_cells: list[PlannedCell],
    per_cell: dict[str, dict[str, float]],
    measure: str,
    seed: int,
) -> tuple[list[Any], list[Estimate], Estimate | None]:
    """Level means over seeds and, for a numeric parameter, the slope across levels."""
    values, grid = _per_seed(plan_cells, per_cell, measure, parameter)
    levels = [
        mean_interval(row, label=f"{measure} at {_label(value)}", unit="seeds", seed=seed)
        for value, row in zip(values, grid, strict=True)
    ]
    if len(values) < 2 or not all(_is_number(value) for value in values):
        return values, levels, None
    per_seed = unit_slopes(
        {parameter: np.repeat(np.asarray(values, dtype=np.float64), grid.shape[1])},
        grid.ravel(),
        np.tile(np.arange(grid.shape[1]), len(values)),
    )[parameter]
    slope = mean_interval(per_seed, label=f"{measure}~{parameter}", unit="seeds", seed=seed)
    return values, levels, slope


def build_sweep_report(sweep_dir: str | Path, *, seed: int = 0) -> Report:
    """Aggregate a sweep's finished cells and draw the figures into ``<sweep>/report/``.

    Args:
        sweep_dir: A sweep folder.
        seed: Seed of the bootstrap over units (used from 20 seeds on).

    Returns:
        The report.

    Raises:
        FileNotFoundError: When the folder is not a sweep folder or no cell has finished.
        RecordSchemaError: When the sweep or a cell follows another record schema version.
    """
    from valuegym.analysis.plots import plot_parameter_effect

    folder = Path(sweep_dir)
    layout = SweepFolder(folder)
    plan = layout.read_plan()
    design = layout.read_design()
    plan_cells = plan["cells"]
    committed = set(layout.finished_cells())
    finished = [cell for cell in plan_cells if cell["cell"] in committed]
    if not finished:
        raise FileNotFoundError(f"{folder}: no finished cell yet")
    for cell in finished:
        layout.cell(cell["cell"]).read_design()  # refuses a cell of another schema version
    per_cell = {cell["cell"]: cell_measures(layout.cell(cell["cell"]).root) for cell in finished}
    parameters = list(plan_cells[0]["overrides"]) or [_NO_GRID]
    report = Report(title=f"Sweep report: {plan['scenario']}")
    report.opening.append(
        f"Sweep folder `{folder}`: {len(finished)} of {len(plan_cells)} cells finished. Each "
        "cell is reduced to its mean. The seeds are the independent units (a seed's cells "
        "share its random numbers): at each parameter value the other parameters' cells are "
        "averaged within each seed, and the 95% interval is over those seed means. For a "
        "numeric parameter, the slope across its values is fitted for each seed and the "
        "interval is over the seeds' slopes."
    )
    report.statistics["cells"] = {
        cell["cell"]: {
            "overrides": cell["overrides"],
            "seed": cell["seed"],
            "measures": per_cell[cell["cell"]],
        }
        for cell in finished
    }
    measures = [name for name in MEASURES if any(name in m for m in per_cell.values())]
    by_parameter: dict[str, dict[str, Any]] = {}
    slopes: dict[str, Estimate] = {}
    for parameter in parameters:
        by_parameter[parameter] = {}
        rows: list[Estimate] = []
        for measure in measures:
            values, levels, slope = _against(parameter, plan_cells, per_cell, measure, seed)
            by_parameter[parameter][measure] = {
                "levels": [
                    {"level": value, **level.to_dict()}
                    for value, level in zip(values, levels, strict=True)
                ],
                "slope": None if slope is None else slope.to_dict(),
            }
            if slope is not None:
                slopes[slope.label] = slope
            rows.extend(levels)
            report.figures.append(
                plot_parameter_effect(
                    values,
                    levels,
                    layout.report_dir / f"{measure}_vs_{parameter.replace('.', '_')}.png",
                    parameter_label=parameter,
                    value_label=MEASURES[measure][2],
                    slope=slope,
                )
            )
        heading = "Over all cells" if parameter == _NO_GRID else f"Against `{parameter}`"
        report.sections.append((heading, estimate_table(rows, label="measure at value")))
    report.statistics["by_parameter"] = by_parameter
    for estimand in design.estimands:
        if estimand.get("rows") == "sweep" and estimand.get("levels"):
            difference = _level_difference(estimand, plan_cells, per_cell, seed)
            if difference is not None:
                slopes[difference.label] = difference
    if slopes:
        primary, smallest = _declared(design.estimands)
        contrasts = order_contrasts(slopes, primary, smallest=smallest)
        report.estimands = [c for c in contrasts if c.name in smallest]
        report.statistics["trends"] = {c.name: c.to_dict() for c in contrasts}
        report.sections.insert(
            0,
            (
                "Trends across levels",
                "Slope of each measure per unit of each numeric swept parameter, fitted for "
                "each seed over the parameter's values, with the interval over seeds.\n\n"
                + contrast_table(contrasts, family="slopes (exploratory)"),
            ),
        )
    return report


def write_sweep_report(
    sweep_dir: str | Path, *, seed: int = 0, allow_mixed_lm: bool = False
) -> Path:
    """Build the sweep report and write ``report.md``, ``statistics.json`` and the figures.

    Args:
        sweep_dir: A sweep folder.
        seed: Seed of the bootstrap over units.
        allow_mixed_lm: Pool cells whose language models, model files or builds differ
            (the report then opens with a warning naming the differences).

    Returns:
        The path of ``report.md``.

    Raises:
        MixedLanguageModelsError: When the cells' language models differ and
            ``allow_mixed_lm`` is false.
    """
    layout = SweepFolder(Path(sweep_dir))
    cells = [layout.cell(cell_id).root for cell_id in layout.finished_cells()]
    differences = check_poolable(cells, allow_mixed_lm=allow_mixed_lm)
    report = build_sweep_report(layout.root, seed=seed)
    if differences:
        report.opening.insert(
            0,
            "**Warning: pooled across different language models** (entropies compare only "
            "within one backend, model file and build):\n\n"
            + "".join(f"- {line}\n" for line in differences),
        )
    return report.write(layout.report_dir)
