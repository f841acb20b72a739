"""Sweeps: a scenario's grid of overrides x seeds, run as cells on local processes or Ray.

A scenario's ``sweep`` crosses a grid of dotted-path overrides with seeds; each combination is
a *cell*, one run of the ordinary runner with the overrides applied and validated. Every cell
is validated before any cell starts, so a bad override path or value is reported with its
dotted path and nothing runs.

The sweep's folder (its plan, event log and cell folders) is a
:class:`~valuegym.records.SweepFolder`. Each cell runs in a scratch folder of its worker and
comes back as its files; the driver commits them with :meth:`SweepFolder.commit_cell
<valuegym.records.SweepFolder.commit_cell>`, which writes a staging folder and renames it to
the cell's folder. The rename is the commit: a cell folder exists only once its records are
completely on disk, so a rerun of an interrupted sweep (killed driver, lost worker) redoes
exactly the cells without a folder and never rewrites a finished one. Because workers return
bytes instead of writing into the sweep folder, a Ray cluster needs no shared file system.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import multiprocessing
import os
import tempfile
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from valuegym.lm.cpu import available_cores
from valuegym.records import PlannedCell, SweepFolder, SweepPlan, write_bytes_atomic
from valuegym.scenarios.schema import Scenario
from valuegym.scenarios.validation import ScenarioError, scenario_with_overrides

__all__ = [
    "CellFailure",
    "SweepCell",
    "SweepOutcome",
    "plan_sweep",
    "run_sweep",
    "start_local_ray",
]


Executor = Literal["local", "ray"]


@dataclass(frozen=True)
class SweepCell:
    """One cell of a sweep: grid overrides and a seed.

    Attributes:
        index: Position of the grid point in the grid's row-major order.
        overrides: Dotted path -> value for this grid point (empty for a seeds-only sweep).
        seed: The run's seed.
    """

    index: int
    overrides: Mapping[str, Any]
    seed: int

    @property
    def cell_id(self) -> str:
        """The cell's folder name: grid point and seed, e.g. ``point0003-seed2``."""
        return f"point{self.index:04d}-seed{self.seed}"

    def describe(self) -> str:
        """The overrides and seed as ``path=value`` words, for messages and tables."""
        words = [f"{path}={value!r}" for path, value in self.overrides.items()]
        return ", ".join([*words, f"seed={self.seed}"])

    def to_mapping(self) -> PlannedCell:
        """The cell as it stands in the sweep's plan."""
        return {"cell": self.cell_id, "overrides": dict(self.overrides), "seed": self.seed}


@dataclass(frozen=True)
class CellFailure:
    """A cell that raised; the sweep went on without it.

    Attributes:
        cell: The failed cell.
        error: One line saying what went wrong (the traceback is in the sweep's events).
    """

    cell: SweepCell
    error: str


@dataclass
class SweepOutcome:
    """What a sweep did.

    Attributes:
        folder: The sweep folder.
        cells: Every cell of the plan.
        ran: Cells run and committed by this call.
        skipped: Cells already finished before this call (resumed past).
        failures: Cells that raised in this call.
    """

    folder: Path
    cells: list[SweepCell]
    ran: list[SweepCell] = field(default_factory=list)
    skipped: list[SweepCell] = field(default_factory=list)
    failures: list[CellFailure] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether every cell of the plan is finished."""
        return not self.failures and len(self.ran) + len(self.skipped) == len(self.cells)


def plan_sweep(scenario: Scenario) -> list[tuple[SweepCell, Scenario]]:
    """Every cell of a scenario's sweep with its validated scenario.

    A scenario without a sweep is one cell with no overrides at its own seed.

    Args:
        scenario: A validated scenario.

    Returns:
        ``(cell, cell scenario)`` pairs in plan order (grid points, then seeds).

    Raises:
        ScenarioError: Listing every cell override that does not validate, by dotted path
            (``sweep.grid.<path>``), before anything runs.
    """
    sweep = scenario.sweep
    if sweep is None:
        return [(SweepCell(0, {}, scenario.seed), scenario_with_overrides(scenario, {}))]
    paths = list(sweep.grid)
    points = list(itertools.product(*(sweep.grid[path] for path in paths)))
    plan = []
    problems: list[tuple[str, str]] = []
    for index, values in enumerate(points):
        overrides = dict(zip(paths, values, strict=True))
        for seed in sweep.seed_list:
            cell = SweepCell(index, overrides, seed)
            try:
                plan.append((cell, scenario_with_overrides(scenario, {**overrides, "seed": seed})))
            except ScenarioError as error:
                problems.extend(
                    (f"sweep.grid ({cell.describe()}): {path}", message)
                    for path, message in error.problems
                )
    if problems:
        raise ScenarioError(list(dict.fromkeys(problems)))
    return plan


def run_cell_files(scenario_data: Mapping[str, Any]) -> dict[str, bytes]:
    """Run one cell in a scratch folder and return its files (relative path -> bytes).

    This is what a worker process or Ray task executes; it touches no shared file.

    Args:
        scenario_data: The cell's scenario as plain data (:meth:`Scenario.to_mapping`).

    Returns:
        The run folder's files.
    """
    from valuegym.runs.runner import run_scenario
    from valuegym.scenarios.validation import validate_scenario

    scenario = validate_scenario(scenario_data)
    with tempfile.TemporaryDirectory(prefix="valuegym-cell-") as scratch:
        root = Path(scratch) / "run"
        run_scenario(scenario, root, progress=False)
        return {
            path.relative_to(root).as_posix(): path.read_bytes()
            for path in sorted(root.rglob("*"))
            if path.is_file()
        }


def _guarded(scenario_data: Mapping[str, Any]) -> tuple[dict[str, bytes] | None, str | None]:
    """Run a cell; a failure comes back as text (message, then traceback), not an exception."""
    try:
        return run_cell_files(scenario_data), None
    except Exception as error:  # any cell error is reported and the sweep goes on
        return None, f"{type(error).__name__}: {error}\n{traceback.format_exc()}"


def run_sweep(
    scenario: Scenario,
    folder: Path,
    *,
    executor: Executor = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    cell_gpus: float = 0.0,
    progress: bool = True,
) -> SweepOutcome:
    """Run (or resume) every unfinished cell of a scenario's sweep.

    Args:
        scenario: A validated scenario with (or without) a sweep.
        folder: The sweep folder; a rerun with the same folder resumes.
        executor: ``"local"`` (a process pool) or ``"ray"`` (one Ray task per cell).
        workers: Local processes (default: the number of cores); for Ray, the CPUs of the
            local Ray instance it starts when no address is given.
        ray_address: Address of a Ray cluster to join; a local instance when ``None``.
        cell_gpus: GPUs each Ray task declares (e.g. 1 for a language-model cell on a GPU).
        progress: Show a progress bar counting finished cells.

    Returns:
        What ran, what was already finished and what failed.

    Raises:
        ScenarioError: When a cell does not validate (nothing runs), or the folder holds a
            different sweep's plan.
    """
    plan = plan_sweep(scenario)
    cells = [cell for cell, _ in plan]
    layout = SweepFolder(folder)
    _prepare_folder(scenario, cells, layout)
    outcome = SweepOutcome(folder=folder, cells=cells)
    finished = set(layout.finished_cells())
    # A kill between a cell's commit and its event leaves a finished cell without one:
    # the event log catches up, so it lists every committed cell exactly once.
    logged = {
        event.get("cell") for event in layout.read_events() if event.get("status") == "finished"
    }
    for cell_id in sorted(finished - logged):
        layout.append_event({"cell": cell_id, "status": "finished", "recovered": True})
    pending = []
    for cell, cell_scenario in plan:
        if cell.cell_id in finished:
            outcome.skipped.append(cell)
        else:
            pending.append((cell, cell_scenario.to_mapping()))
    if not pending:
        return outcome
    run = _run_ray if executor == "ray" else _run_local
    bar = _progress_bar(len(cells), len(outcome.skipped), progress)
    try:
        for cell, files, error in run(pending, workers, ray_address, cell_gpus):
            if error is not None or files is None:
                message, _, details = (error or "no result").partition("\n")
                outcome.failures.append(CellFailure(cell, message))
                layout.append_event(
                    {
                        "cell": cell.cell_id,
                        "status": "failed",
                        "error": message,
                        "traceback": details,
                    }
                )
                bar.write(f"cell {cell.cell_id} ({cell.describe()}) failed: {message}")
            else:
                layout.commit_cell(cell.cell_id, files)
                outcome.ran.append(cell)
                layout.append_event({"cell": cell.cell_id, "status": "finished"})
            bar.update(1)
    finally:
        bar.close()
    return outcome


CellResult = tuple[SweepCell, dict[str, bytes] | None, str | None]


def _run_local(
    pending: list[tuple[SweepCell, dict[str, Any]]],
    workers: int | None,
    ray_address: str | None,
    cell_gpus: float,
) -> Iterator[CellResult]:
    context = _pool_context()
    n_workers = max(1, min(workers or available_cores(), len(pending)))
    threads = max(1, available_cores() // n_workers)
    with concurrent.futures.ProcessPoolExecutor(
        n_workers, mp_context=context, initializer=_limit_threads, initargs=(threads,)
    ) as pool:
        futures = {pool.submit(_guarded, data): cell for cell, data in pending}
        try:
            for future in concurrent.futures.as_completed(futures):
                try:
                    files, message = future.result()
                except Exception as error:  # a lost worker fails only its cell
                    files, message = None, f"worker lost: {type(error).__name__}: {error}"
                yield futures[future], files, message
        finally:
            for future in futures:
                future.cancel()


def _pool_context() -> Any:
    """How local workers start: forked from a warm forkserver where there is one, else spawned.

    A spawned worker imports the runner itself (about a second per worker, on the clock of
    every sweep); a forkserver imports it once, before forking the workers, and stays up for
    the driver's later sweeps. Workers are never forked from the driver itself: they would
    inherit its threads (numba, torch) mid-state; the forkserver has none.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")  # Windows
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["valuegym.runs.sweeps", "valuegym.runs.runner"])
    return context


def _limit_threads(threads: int) -> None:
    """Give a local worker its share of the cores.

    Language-model and BLAS threads that outnumber the cores spin-wait on each other and run
    many times slower.
    """
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)


def _run_ray(
    pending: list[tuple[SweepCell, dict[str, Any]]],
    workers: int | None,
    ray_address: str | None,
    cell_gpus: float,
) -> Iterator[CellResult]:
    try:
        import ray
    except ImportError as error:
        raise ImportError("the ray executor needs Ray: pip install 'valuegym[ray]'") from error
    started_here = not ray.is_initialized()
    if started_here:
        if ray_address is not None:
            ray.init(address=ray_address, log_to_driver=False)
        else:
            start_local_ray(workers or available_cores())
    task = ray.remote(num_cpus=1, num_gpus=cell_gpus, max_retries=2)(_guarded)
    refs = {task.remote(data): cell for cell, data in pending}
    remaining = list(refs)
    try:
        while remaining:
            done, remaining = ray.wait(remaining, num_returns=1)
            try:
                files, message = ray.get(done[0])
            except Exception as error:  # a lost worker fails only its cell
                files, message = None, f"worker lost: {type(error).__name__}: {error}"
            yield refs[done[0]], files, message
    finally:
        for ref in remaining:
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()


def start_local_ray(cpus: int, *, worker_niceness: int = 0) -> None:
    """Start the local Ray instance a sweep runs on, its workers at the user's priority.

    Ray starts its workers at niceness 15 (``worker_niceness``) to keep its own daemons
    responsive; on a machine that runs anything else, cells then get only what other
    processes leave, and a sweep runs slower than the same cells in plain processes (the
    local executor's, at niceness 0) whenever anything else competes for the cores. Sweeps
    are the user's foreground work, so a local instance started here runs its workers at
    niceness 0. A cluster started with ``ray start`` keeps its own setting: start it with
    ``RAY_worker_niceness=0`` for the same effect.

    Each worker then imports the runner once (a second or so), as the local executor's
    forkserver does before it forks its workers, rather than on its first cell.

    Args:
        cpus: The CPUs the instance offers, one per concurrent cell.
        worker_niceness: The workers' niceness (15 is Ray's own default).
    """
    import ray

    ray.init(
        num_cpus=cpus,
        include_dashboard=False,
        log_to_driver=False,
        _system_config={"worker_niceness": worker_niceness},
    )
    warm = ray.remote(num_cpus=1)(_import_runner)
    ray.get([warm.remote() for _ in range(cpus)])


def _import_runner() -> None:
    """Import what a cell needs (a Ray task's body)."""
    import valuegym.runs.runner  # noqa: F401


def _prepare_folder(scenario: Scenario, cells: list[SweepCell], layout: SweepFolder) -> None:
    """Create the sweep folder or check that it holds this sweep; clear killed leftovers."""
    planned: SweepPlan = {"scenario": scenario.name, "cells": [c.to_mapping() for c in cells]}
    # Through JSON and back, so that the plan compares equal to the one read from disk.
    plan: SweepPlan = json.loads(json.dumps(planned))
    if layout.is_sweep():
        if layout.read_plan() != plan:
            raise ScenarioError(
                [
                    (
                        "sweep",
                        f"{layout.root} holds a different sweep (its {layout.plan_file.name} "
                        "differs); resume with the same scenario or choose another output folder",
                    )
                ]
            )
    else:
        layout.write_plan(plan)
        data = scenario.to_mapping()
        import yaml

        write_bytes_atomic(
            yaml.safe_dump(data, sort_keys=False).encode("utf-8"), layout.scenario_file
        )
        layout.write_design(scenario.run_design())
    layout.create()


def _progress_bar(total: int, done: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, unit="cell", desc="sweep", disable=not enabled)
