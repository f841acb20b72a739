"""The ``valuegym`` command line: ``run``, ``validate``, ``report``, ``plan`` and the rest.

Each command is a module of this package with an ``add_arguments(parser)`` that declares its
arguments and a ``run(args)`` that returns the exit status; this module assembles the parser
and turns errors into messages.

Bad input (an invalid scenario, a missing run folder, an output path that cannot be written)
prints one line per problem to stderr and exits with status 1, never a traceback; ``--debug``
shows tracebacks of unexpected errors.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

import valuegym
from valuegym.cli import (
    calibrate_clusterer,
    calibrate_valence,
    doctor,
    evaluate,
    listing,
    plan,
    replay,
    report,
    run,
    steer,
    train,
    validate,
)
from valuegym.cli.common import UsageError, describe_os_error

__all__ = ["COMMANDS", "build_parser", "main"]

#: Command name -> its module, in the order ``valuegym --help`` lists them.
COMMANDS: dict[str, ModuleType] = {
    "run": run,
    "validate": validate,
    "list": listing,
    "train": train,
    "evaluate": evaluate,
    "report": report,
    "plan": plan,
    "replay": replay,
    "doctor": doctor,
    "calibrate-clusterer": calibrate_clusterer,
    "calibrate-valence": calibrate_valence,
    "steer": steer,
}

_EPILOG = """\
examples:
  valuegym run scenarios/quickstart.yaml        run a scenario and write its report
  valuegym run quickstart                       the same, a shipped scenario by name
  valuegym validate scenarios/*.yaml            check scenarios without running them
  valuegym report runs/quickstart               (re)build a run folder's report
  valuegym plan runs/quickstart                 episodes a pilot's spread calls for
  valuegym list                                 envs, shipped scenarios, agent kinds, LM backends
  valuegym train scenarios/orchard_variety.yaml train PPO on a scenario's env
  valuegym evaluate commons_evaluation          a focal population vs held-out co-players
  valuegym doctor                               check the installation and what it runs on
  valuegym calibrate-clusterer                  how often clusterers merge or split meanings
  valuegym calibrate-valence --judge lm         how often valence judges misread tone
  valuegym steer build --output steer/smollm2   steering directions from contrastive pairs
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``valuegym`` command."""
    parser = argparse.ArgumentParser(
        prog="valuegym",
        description=(
            "valuegym: social environments where agents hold values with diminishing returns,\n"
            "satiation, mood and stress, and language-model agents whose utterance entropy is\n"
            "measured against their value state."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {valuegym.__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show a traceback for unexpected errors"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        command.add_arguments(
            commands.add_parser(name, help=command.HELP, description=command.DESCRIPTION)
        )
    return parser


class _StderrHandler(logging.Handler):
    """Prints records to the ``sys.stderr`` of the moment (tests and callers may swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


def _show_notices() -> None:
    """Show valuegym's INFO records (the compile notice) on stderr, once per process."""
    logger = logging.getLogger("valuegym")
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        logger.addHandler(_StderrHandler())
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 for bad input or a failed run, 2 for bad usage.
    """
    from valuegym.scenarios.validation import ScenarioError

    parser = build_parser()
    args = parser.parse_args(argv)
    _show_notices()
    if args.command is None:
        parser.print_help()
        return 0
    try:
        status: int = COMMANDS[args.command].run(args)
    except (ScenarioError, UsageError) as error:
        print(str(error), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; finished episodes are on disk, rerun to resume", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        if isinstance(error, OSError) and error.filename is not None:
            # A path that cannot be written (or read): say which and what to do. OSErrors
            # without one (a network error, say) are worded like other unexpected errors.
            hint = "--output" if hasattr(args, "output") else ""
            print(describe_os_error(error, hint), file=sys.stderr)
            return 1
        print(
            f"valuegym {args.command}: {type(error).__name__}: {error}\n"
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
    return status
