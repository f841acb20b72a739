"""What a scenario's evaluation block needs of the rest of the scenario, and its files.

The block itself is :mod:`valuegym.scenarios.evaluation_spec`; validation
(:mod:`valuegym.scenarios.validation`) makes its checkpoint paths absolute with
:func:`resolve_evaluation_files` and reports :func:`evaluation_problems` with the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from valuegym.scenarios.problems import Problem
from valuegym.scenarios.schema import Scenario

__all__ = ["evaluation_problems", "resolve_evaluation_files"]


def resolve_evaluation_files(
    data: Mapping[str, Any], base_dir: Path, problems: list[Problem]
) -> Mapping[str, Any]:
    """Make the evaluation's checkpoint paths absolute; a missing file is a problem.

    Args:
        data: The scenario data.
        base_dir: The folder relative paths start from (the scenario's).
        problems: Where missing files are reported.

    Returns:
        The data with the paths resolved (unchanged when there is no evaluation mapping).
    """
    evaluation = data.get("evaluation")
    if not isinstance(evaluation, Mapping):
        return data

    def resolve(spec: Any, where: str) -> Any:
        if not isinstance(spec, Mapping) or not isinstance(spec.get("checkpoint"), str):
            return spec
        path = (base_dir / Path(spec["checkpoint"]).expanduser()).resolve()
        if spec["checkpoint"] and not path.is_file():
            problems.append((f"{where}.checkpoint", f"file not found: {path}"))
        return {**spec, "checkpoint": str(path)}

    resolved = dict(evaluation)
    if "focal" in resolved:
        resolved["focal"] = resolve(resolved["focal"], "evaluation.focal")
    background = resolved.get("background")
    if isinstance(background, Mapping):
        resolved["background"] = {
            name: [resolve(spec, f"evaluation.background.{name}.{i}") for i, spec in enumerate(ps)]
            if isinstance(ps, list)
            else ps
            for name, ps in background.items()
        }
    return {**data, "evaluation": resolved}


def evaluation_problems(scenario: Scenario) -> list[Problem]:
    """What the evaluation needs of the rest of the scenario.

    Args:
        scenario: The validated scenario.

    Returns:
        ``(dotted path, message)`` problems: a single-agent env (no co-players), focal seats
        that do not exist, and a placement that leaves one side empty.
    """
    spec = scenario.evaluation
    if spec is None:
        return []
    if not scenario.env.is_multi_agent:
        return [
            (
                "evaluation",
                f"{scenario.env.id} is a single-agent env: held-out co-player evaluation "
                "needs co-players (a multi-agent env such as valuegym/Commons-v0)",
            )
        ]
    agent_ids = [agent_id for agent_id, _ in scenario.expanded_agents()]
    entry_ids = {entry.entry: list(entry.agents) for entry in scenario.entries()}
    problems = []
    if spec.focal_agents is not None:
        for index, name in enumerate(spec.focal_agents):
            if name not in entry_ids and name not in agent_ids:
                problems.append(
                    (
                        f"evaluation.focal_agents.{index}",
                        f"no agent or entry {name!r} (agents: {', '.join(agent_ids)})",
                    )
                )
    if not problems:
        focal = spec.focal_rows(agent_ids, entry_ids)
        if len(focal) in (0, len(agent_ids)):
            problems.append(
                (
                    "evaluation.focal_agents",
                    "leaves no background seat: the focal population meets no co-players",
                )
            )
    return problems
