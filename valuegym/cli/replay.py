"""``valuegym replay``: regenerate a run's recorded contexts under a grid of channel settings."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from valuegym.cli.common import UsageError, require_run_folder

if TYPE_CHECKING:
    from valuegym.scenarios.schema import CounterfactualSpec

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]

HELP = "regenerate a run's recorded contexts under a grid of channel settings"
DESCRIPTION = (
    "Take N recorded utterances of each agent entry per episode (evenly spaced) as "
    "contexts and regenerate each under each cell of a grid over the stress and mood "
    "the prompt states, the speech temperature, the persona and the steering "
    "channel's stress coefficient, K samples per cell "
    "with the same seeds in every cell (common random numbers), plus placebo cells "
    "that state a random stress and mood and a manipulation check. Writes replay "
    "records into the run folder (resumable) and rebuilds its report with the paired "
    "channel contrasts. No env is needed."
)

#: The channels ``--grid`` may name.
_CHANNELS = ("prompt_stress", "prompt_mood", "temperature", "persona", "steer_stress")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``valuegym replay``.

    Args:
        parser: The command's parser.
    """
    parser.add_argument("run_dir", type=Path, help="a run folder written by 'valuegym run'")
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="CHANNEL=V1,V2,...",
        help="levels of one channel: prompt_stress, prompt_mood, temperature, persona "
        "(personas separated by '|') or steer_stress (the steering channel's stress "
        "coefficient, e.g. -1,0,1); may repeat, e.g. --grid prompt_stress=0.1,0.9 "
        "--grid temperature=0.7,1.0",
    )
    parser.add_argument("--samples", type=int, default=4, help="K samples per context and cell")
    parser.add_argument(
        "--per-entry", type=int, default=2, help="contexts per agent entry and episode"
    )
    parser.add_argument("--no-placebo", action="store_true", help="leave out the placebo cells")
    parser.add_argument("--overwrite", action="store_true", help="replace a replay of another grid")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def _replay_grid(args: argparse.Namespace) -> CounterfactualSpec:
    """The grid ``--grid``, ``--samples``, ``--per-entry`` and ``--no-placebo`` ask for."""
    from pydantic import ValidationError

    from valuegym.scenarios.schema import CounterfactualSpec

    levels: dict[str, Any] = {}
    for item in args.grid:
        name, separator, text = item.partition("=")
        name = name.strip()
        if not separator or name not in _CHANNELS:
            raise UsageError(
                f"--grid {item!r}: expected CHANNEL=V1,V2 with CHANNEL one of "
                + ", ".join(_CHANNELS)
            )
        if name == "persona":
            levels[name] = [part.strip() for part in text.split("|") if part.strip()]
            continue
        try:
            levels[name] = [float(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise UsageError(f"--grid {item!r}: levels must be numbers") from None
    try:
        return CounterfactualSpec(
            samples=args.samples, per_entry=args.per_entry, placebo=not args.no_placebo, **levels
        )
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in detail['loc'])}: {detail['msg']}"
            for detail in error.errors()
        )
        raise UsageError(f"--grid: {problems}") from None


def run(args: argparse.Namespace) -> int:
    """Replay the run under the grid and rebuild its report.

    Args:
        args: The parsed arguments.

    Returns:
        The exit status, 0.
    """
    from valuegym.analysis.report import write_report
    from valuegym.runs.errors import RunError
    from valuegym.runs.replay import replay_run

    grid = _replay_grid(args)
    require_run_folder(args.run_dir)
    try:
        result = replay_run(args.run_dir, grid, overwrite=args.overwrite, progress=not args.quiet)
    except RunError as error:
        raise UsageError(str(error)) from None
    per_entry = ", ".join(f"{entry} {count}" for entry, count in result.contexts_per_entry.items())
    print(
        f"replayed {result.contexts} contexts x {len(result.cells)} cells "
        f"({result.episodes_replayed} episodes; {result.episodes_resumed} already done)"
        + (f"; contexts per entry and episode: {per_entry}" if per_entry else "")
    )
    print(f"report: {write_report(args.run_dir)}")
    return 0
