"""``valuegym validate``: check scenarios without running them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]

HELP = "check scenarios without running them"
DESCRIPTION = (
    "Validate scenario files: every problem is listed with the dotted path of its key "
    "(e.g. agents.1.values.rest.weight: must be > 0). Exit status 1 if any is invalid."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``valuegym validate``.

    Args:
        parser: The command's parser.
    """
    parser.add_argument("scenarios", type=Path, nargs="+", help="scenario YAML files")


def run(args: argparse.Namespace) -> int:
    """Validate each scenario: a summary line when valid, its problems on stderr when not.

    Args:
        args: The parsed arguments.

    Returns:
        The exit status: 1 when any scenario is invalid, else 0.
    """
    from valuegym.scenarios.validation import ScenarioError, load_scenario

    status = 0
    for path in args.scenarios:
        try:
            scenario = load_scenario(path)
        except ScenarioError as error:
            print(error.format(), file=sys.stderr)
            status = 1
            continue
        sweep = ""
        if scenario.sweep is not None:
            cells = 1
            for values in scenario.sweep.grid.values():
                cells *= len(values)
            sweep = f", sweep of {cells} cell(s) x {len(scenario.sweep.seed_list)} seed(s)"
        print(
            f"{path}: ok ({scenario.name}: {scenario.env.id}, {scenario.n_agents} agent(s), "
            f"{scenario.episodes} episode(s) x {scenario.max_steps} steps{sweep})"
        )
    return status
