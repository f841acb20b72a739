"""``valuegym plan``: how many episodes (or seeds) a pilot's spread calls for."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from valuegym.cli.common import UsageError, require_run_folder

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]

HELP = "units (episodes or seeds) a design needs, from a pilot run"
DESCRIPTION = (
    "Read a finished pilot run (or sweep) whose scenario declares a design, and print for each "
    "declared estimand the units it has, the spread between them, the smallest effect they "
    "detect with 80% power, and how many units would detect --effect (default: the "
    "estimand's smallest_effect)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``valuegym plan``.

    Args:
        parser: The command's parser.
    """
    parser.add_argument("run_dir", type=Path, help="a finished run or sweep folder (the pilot)")
    parser.add_argument(
        "--effect",
        type=float,
        default=None,
        help="the true effect to plan for, in the measure's unit (default: each estimand's "
        "declared smallest_effect)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    """Print the plan.

    Args:
        args: The parsed arguments.

    Returns:
        The exit status, 0.
    """
    from valuegym.analysis.planning import plan_markdown, plan_units
    from valuegym.records import RecordSchemaError

    require_run_folder(args.run_dir)
    try:
        rows = plan_units(args.run_dir, args.effect)
    except (FileNotFoundError, ValueError, RecordSchemaError) as error:
        raise UsageError(str(error)) from None
    if args.json:
        print(json.dumps([row.to_dict() for row in rows], indent=2))
    else:
        print(plan_markdown(rows), end="")
    return 0
