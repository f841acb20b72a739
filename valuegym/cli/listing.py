"""``valuegym list``: what a scenario can name (envs, agent kinds, LM backends, scenarios)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]

HELP = "list envs, shipped scenarios, agent kinds and LM backends"
DESCRIPTION = (
    "List what a scenario can name: env ids, agent kinds, LM backends, and the shipped scenarios."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``valuegym list``.

    Args:
        parser: The command's parser.
    """
    parser.add_argument(
        "what",
        nargs="?",
        choices=("envs", "scenarios", "agents", "backends"),
        help="list only this (default: everything)",
    )


def _listed_scenarios() -> list[tuple[str, Path]]:
    """``(how to name it, file)`` of the shipped scenarios and those in ./scenarios."""
    from valuegym.scenarios.catalog import shipped_scenarios

    shipped = {path.resolve(): path.name for path in shipped_scenarios()}
    local = Path.cwd() / "scenarios"
    own = sorted(local.glob("*.yaml")) if local.is_dir() else []
    return [(name, path) for path, name in shipped.items()] + [
        (str(path.relative_to(Path.cwd())), path) for path in own if path.resolve() not in shipped
    ]


def run(args: argparse.Namespace) -> int:
    """Print the lists, each under a title when everything is listed.

    Args:
        args: The parsed arguments.

    Returns:
        The exit status, 0.
    """
    from valuegym.envs.registration import MULTI_AGENT_ENV_IDS, SINGLE_AGENT_ENV_IDS
    from valuegym.lm import BACKENDS, available_backends, default_backend
    from valuegym.scenarios.schema import AGENT_KINDS, LM_BACKENDS
    from valuegym.scenarios.validation import ScenarioError, load_scenario

    sections: list[tuple[str, list[str]]] = []
    if args.what in (None, "envs"):
        sections.append(
            (
                "envs",
                [f"{env_id}  (Gymnasium, single agent)" for env_id in SINGLE_AGENT_ENV_IDS]
                + [
                    f"{env_id}  (PettingZoo Parallel, multi-agent)"
                    for env_id in MULTI_AGENT_ENV_IDS
                ],
            )
        )
    if args.what in (None, "scenarios"):
        lines = []
        for name, path in _listed_scenarios():
            try:
                description = load_scenario(path).description.strip().splitlines()
                lines.append(f"{name}  {description[0] if description else ''}".rstrip())
            except ScenarioError:
                lines.append(f"{name}  (invalid: run valuegym validate on it)")
        sections.append(("scenarios (shipped ones run by name: valuegym run quickstart)", lines))
    if args.what in (None, "agents"):
        sections.append(("agent kinds", list(AGENT_KINDS)))
    if args.what in (None, "backends"):
        installed = available_backends()
        default = default_backend()
        lines = []
        for name in LM_BACKENDS:
            state = "installed" if name in installed else f"not installed: {BACKENDS[name][1]}"
            lines.append(f"{name}  ({'the default, ' if name == default else ''}{state})")
        sections.append(("LM backends (the default runs a scenario that names none)", lines))
    for title, lines in sections:
        if args.what is None:
            print(f"{title}:")
            print("\n".join(f"  {line}" for line in lines))
        else:
            print("\n".join(lines))
    return 0
