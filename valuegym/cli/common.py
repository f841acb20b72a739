"""What several commands share: the usage error, the scenario overrides and folder checks."""

from __future__ import annotations

import argparse
import errno
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from valuegym.scenarios.schema import Scenario

__all__ = [
    "UsageError",
    "add_override_arguments",
    "describe_os_error",
    "load_scenario_with_overrides",
    "require_run_folder",
    "scenario_overrides",
]


class UsageError(Exception):
    """Bad input from the command line; its message is printed without a traceback."""


def add_override_arguments(parser: argparse.ArgumentParser, *, episodes: bool = True) -> None:
    """Add ``--set``, ``--seed``, ``--episodes`` and ``--max-steps`` to a command.

    Args:
        parser: The command's parser.
        episodes: Whether to add ``--episodes`` (a command that counts episodes its own way,
            like ``evaluate --seeds``, leaves it out).
    """
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a scenario key by its dotted path, the value read as YAML "
        "(e.g. --set agents.0.affect.stress_baseline=0.8); may repeat",
    )
    parser.add_argument("--seed", type=int, help="override the scenario's seed")
    if episodes:
        parser.add_argument("--episodes", type=int, help="override the number of episodes")
    parser.add_argument("--max-steps", type=int, help="override the steps per episode")


def scenario_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The overrides the arguments of :func:`add_override_arguments` ask for.

    Args:
        args: The parsed arguments.

    Returns:
        Dotted path -> value, the ``--set`` values read as YAML.

    Raises:
        UsageError: When a ``--set`` is not ``PATH=VALUE`` or its value is not YAML.
    """
    from valuegym.scenarios.loader import YamlLoadError, load_yaml_text

    overrides: dict[str, Any] = {}
    for item in args.overrides:
        path, separator, text = item.partition("=")
        if not separator or not path.strip():
            raise UsageError(f"--set {item!r}: expected PATH=VALUE, e.g. seed=3")
        try:
            overrides[path.strip()] = load_yaml_text(text, source=f"--set {path.strip()}")
        except YamlLoadError as error:
            raise UsageError(str(error)) from None
    for option, key in (("seed", "seed"), ("episodes", "episodes"), ("max_steps", "max_steps")):
        if getattr(args, option, None) is not None:
            overrides[key] = getattr(args, option)
    return overrides


def load_scenario_with_overrides(args: argparse.Namespace) -> Scenario:
    """Load ``args.scenario`` (a file or a shipped scenario's name) and apply the overrides.

    Args:
        args: The parsed arguments of a command that takes a scenario and overrides.

    Returns:
        The validated scenario.

    Raises:
        ScenarioError: When the scenario, or the scenario with its overrides, is invalid.
        UsageError: When an override cannot be read.
    """
    from valuegym.scenarios.validation import load_scenario, scenario_with_overrides

    scenario = load_scenario(args.scenario)
    overrides = scenario_overrides(args)
    if overrides:
        sweep = scenario.sweep
        scenario = scenario_with_overrides(scenario, overrides)
        if sweep is not None and "sweep" not in overrides:
            # The sweep's cells are validated against the overridden base when they are planned.
            scenario = scenario.model_copy(update={"sweep": sweep})
    return scenario


def require_run_folder(run_dir: Path) -> None:
    """Check that a command's run folder exists.

    Args:
        run_dir: The folder named on the command line.

    Raises:
        UsageError: When it is not a folder.
    """
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run folder")


#: What an errno means, in words, and what to do about it.
_OS_ERRORS: dict[int, tuple[str, str]] = {
    errno.EEXIST: ("is a file where a folder is needed", "move it away or choose another path"),
    errno.ENOTDIR: ("is a file where a folder is needed", "move it away or choose another path"),
    errno.EISDIR: ("is a folder where a file is needed", "move it away or choose another path"),
    errno.EACCES: (
        "is not allowed to us (permission denied)",
        "fix its permissions or choose another path",
    ),
    errno.EPERM: (
        "is not allowed to us (operation not permitted)",
        "fix its permissions or choose another path",
    ),
    errno.EROFS: ("is on a read-only file system", "choose a path on a writable disk"),
    errno.ENOSPC: ("cannot be written, the disk is full", "free some space or choose another disk"),
    errno.EDQUOT: (
        "cannot be written, the disk quota is used up",
        "free some space or choose another disk",
    ),
    errno.ENOENT: ("does not exist", "check the path"),
    errno.ENAMETOOLONG: ("has too long a name", "choose a shorter path"),
}


def describe_os_error(error: OSError, hint: str = "") -> str:
    """One sentence for a file system error: the path, what went wrong, what to do.

    Args:
        error: The error, as ``open``, ``mkdir`` or ``os.replace`` raise it (with a filename).
        hint: Said after what to do: the option that picks another path, if any.

    Returns:
        The sentence, e.g. ``"out: is a file where a folder is needed; move it away or choose
        another path (--output)"``.
    """
    name = error.filename
    words, todo = _OS_ERRORS.get(
        error.errno or 0, (f"failed ({(error.strerror or str(error)).lower()})", "check the path")
    )
    suffix = f" ({hint})" if hint else ""
    path = Path(str(name))
    if error.errno in (errno.ENOTDIR, errno.ENOENT):
        # The path named is often a file under the culprit: name the part that is in the way.
        for parent in path.parents:
            if parent.exists() and not parent.is_dir():
                path, words, todo = parent, *_OS_ERRORS[errno.ENOTDIR]
                break
    return f"{path}: {words}; {todo}{suffix}"
