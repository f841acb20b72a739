"""``valuegym run``: run a scenario (or its sweep), write records and a report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from valuegym.cli.common import UsageError, add_override_arguments, load_scenario_with_overrides

if TYPE_CHECKING:
    from valuegym.scenarios.schema import Scenario

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]

HELP = "run a scenario, write records and a report"
DESCRIPTION = (
    "Run a YAML scenario: build its env and agents, run the episodes with a progress "
    "bar, write per-step and per-utterance records (Parquet), the resolved scenario "
    "and a summary into the run folder, then its report (Markdown and PNG figures). "
    "Rerunning into a folder with finished episodes of the same scenario resumes it; a "
    "finished run is left as it is (--overwrite reruns it)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``valuegym run``.

    Args:
        parser: The command's parser.
    """
    parser.add_argument(
        "scenario", type=Path, help="the scenario YAML file, or a shipped scenario's name"
    )
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        help="run folder (default: runs/<scenario output or name> under the current folder)",
    )
    add_override_arguments(parser)
    parser.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="sweeps: run cells in local processes or as Ray tasks (default: local)",
    )
    parser.add_argument("--workers", type=int, help="sweeps: parallel cells (default: the cores)")
    parser.add_argument("--ray-address", help="sweeps: address of a Ray cluster to join")
    parser.add_argument(
        "--cell-gpus",
        type=float,
        default=0.0,
        help="sweeps: GPUs each Ray task declares (e.g. 1 for LM cells on a GPU cluster)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the records of a different scenario in the run folder, or rerun a "
        "finished run",
    )
    parser.add_argument("--no-report", action="store_true", help="skip the report at the end")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the scenario, or its sweep, and print where the records and report went.

    Args:
        args: The parsed arguments.

    Returns:
        The exit status: 1 when a sweep cell failed, else 0 (also when the run was already
        complete and is left as it is).
    """
    scenario = load_scenario_with_overrides(args)
    from valuegym.runs.runner import RunError, default_run_dir, finished_run, run_scenario

    run_dir = args.output if args.output is not None else default_run_dir(scenario)
    if scenario.sweep is not None:
        return _run_sweep(scenario, run_dir, args)
    if not args.overwrite and finished_run(scenario, run_dir) is not None:
        # Rerunning would only rewrite what is there: say so and leave it untouched.
        print(
            f"{run_dir}: this scenario's run is already complete, nothing was rerun; "
            f"`valuegym report {run_dir}` rebuilds its report, --overwrite reruns it"
        )
        return 0
    try:
        result = run_scenario(
            scenario,
            run_dir,
            progress=not args.quiet,
            overwrite=args.overwrite,
        )
    except RunError as error:
        raise UsageError(str(error)) from None
    print(f"records: {result.folder.records_dir}")
    if not args.no_report:
        from valuegym.analysis.report import write_report

        if not args.quiet and sys.stderr.isatty():
            print("valuegym: writing the report and figures", file=sys.stderr, flush=True)
        print(f"report:  {write_report(result.folder.root, seed=scenario.seed)}")
        for figure in sorted(result.folder.report_dir.glob("*.png")):
            print(f"figure:  {figure}")
    return 0


def _run_sweep(scenario: Scenario, run_dir: Path, args: argparse.Namespace) -> int:
    from valuegym.runs.sweeps import run_sweep

    outcome = run_sweep(
        scenario,
        run_dir,
        executor=args.executor,
        workers=args.workers,
        ray_address=args.ray_address,
        cell_gpus=args.cell_gpus,
        progress=not args.quiet,
    )
    print(
        f"sweep: {run_dir} ({len(outcome.ran)} cell(s) run, {len(outcome.skipped)} already "
        f"finished, {len(outcome.failures)} failed)"
    )
    from valuegym.records import SweepFolder

    report = SweepFolder(run_dir).report_dir / "report.md"
    if not outcome.ran and not outcome.failures and report.is_file():
        # Rebuilding the report would only rewrite what is there.
        print(
            f"{run_dir}: this sweep is already complete, nothing was rerun; "
            f"`valuegym report {run_dir}` rebuilds its report"
        )
    elif not args.no_report and len(outcome.failures) < len(outcome.cells):
        from valuegym.analysis.sweep_report import write_sweep_report

        print(f"report:  {write_sweep_report(run_dir, seed=scenario.seed)}")
    for failure in outcome.failures:
        print(
            f"failed: cell {failure.cell.cell_id} {dict(failure.cell.overrides)} "
            f"seed {failure.cell.seed}: {failure.error}",
            file=sys.stderr,
        )
    return 1 if outcome.failures else 0
