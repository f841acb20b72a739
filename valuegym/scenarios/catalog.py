"""The shipped scenarios: YAML files installed with the package, runnable by name.

The files live in ``valuegym/scenarios/shipped/`` (package data, so ``valuegym list`` and
``valuegym run quickstart`` work from an installed package and from any folder); the
top-level ``scenarios/`` of a source checkout is a link to that folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

__all__ = ["SHIPPED_DIR", "resolve_scenario_path", "shipped_scenarios"]

#: The folder of the shipped scenario files (profiles in its ``profiles/``).
SHIPPED_DIR: Final = Path(__file__).resolve().parent / "shipped"


def shipped_scenarios() -> list[Path]:
    """The shipped scenario files, sorted by name."""
    return sorted(SHIPPED_DIR.glob("*.yaml"))


def resolve_scenario_path(path: str | Path) -> Path:
    """A scenario file, or the shipped scenario a missing path names.

    ``quickstart``, ``quickstart.yaml`` and ``scenarios/quickstart.yaml`` name the shipped
    ``quickstart.yaml`` when no such file exists from the current folder.

    Args:
        path: A path to a scenario file or the name of a shipped scenario.

    Returns:
        ``path`` itself when it exists or names no shipped scenario, else the shipped file.
    """
    path = Path(path)
    if path.exists() or path.parent not in (Path("."), Path("scenarios")):
        return path
    shipped = SHIPPED_DIR / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    return shipped if shipped.is_file() else path
