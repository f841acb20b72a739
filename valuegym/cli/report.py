"""``valuegym report``: write a run folder's (or a sweep folder's) statistics and figures."""

from __future__ import annotations

import argparse
from pathlib import Path

from valuegym.cli.common import UsageError, require_run_folder

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]

HELP = "write a run folder's statistics and figures"
DESCRIPTION = (
    "Turn a run (or sweep) folder into statistics as report/report.md, statistics.json and "
    "PNG figures: the scenario's declared estimands first (95% intervals over episodes, or "
    "seeds in sweeps; Holm-corrected families; each contrast's minimum detectable effect; "
    "below 5 units a pilot without intervals), then the designed factors, the replay's "
    "channel contrasts and checks, descriptive slopes and mixed models, returns, Gini and "
    "cooperation."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``valuegym report``.

    Args:
        parser: The command's parser.
    """
    parser.add_argument("run_dir", type=Path, help="a run folder written by 'valuegym run'")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument(
        "--allow-mixed-lm",
        action="store_true",
        help="sweeps: pool cells whose language models, model files or builds differ "
        "(refused by default; the report then carries a warning)",
    )


def run(args: argparse.Namespace) -> int:
    """Write the report and print its path.

    Args:
        args: The parsed arguments.

    Returns:
        The exit status, 0.
    """
    from valuegym.analysis.report import write_report
    from valuegym.analysis.sweep_report import is_sweep_folder, write_sweep_report
    from valuegym.manifest import MixedLanguageModelsError
    from valuegym.records import RecordSchemaError

    require_run_folder(args.run_dir)
    try:
        if is_sweep_folder(args.run_dir):
            path = write_sweep_report(
                args.run_dir, seed=args.seed, allow_mixed_lm=args.allow_mixed_lm
            )
        else:
            path = write_report(args.run_dir, seed=args.seed)
    except (FileNotFoundError, MixedLanguageModelsError, RecordSchemaError) as error:
        raise UsageError(str(error)) from None
    print(f"report: {path}")
    return 0
