"""What an agent entry needs of the rest of its scenario, found before anything runs.

:func:`agent_problems` checks each entry against the env and the other entries: a ``scripted``
agent (:class:`~valuegym.scenarios.agent_spec.ScriptSpec`) speaks in Conversation only, in text
mode, and addresses another agent of the scenario; a replay grid that sets the steering channel
(``measure.counterfactual.steer_stress``) needs every LM agent steered. Each problem is a
``(dotted path, message)`` pair saying what to change.
"""

from __future__ import annotations

import difflib
import re
from typing import Final

from valuegym.envs.registration import env_class
from valuegym.scenarios.schema import Scenario

__all__ = [
    "CONVERSATION_ID",
    "STEER_GRID_PATH",
    "agent_problems",
    "unsteered_entries",
    "unsteered_message",
]

Problem = tuple[str, str]

#: Conversation's env ids, every version (scripted agents speak its acts).
CONVERSATION_ID: Final = re.compile(r"valuegym/Conversation-v\d+")
#: Where a replay grid sets the steering channel's stress coefficient.
STEER_GRID_PATH: Final = "measure.counterfactual.steer_stress"


def unsteered_entries(scenario: Scenario) -> list[str]:
    """The LM agent entries without a steering channel (``lm.steering``), as records name them."""
    return [
        f"{scenario.entry_label(index)} (agents.{index})"
        for index, agent in enumerate(scenario.agents)
        if agent.kind == "lm" and agent.language_model.steering is None
    ]


def unsteered_message(entries: list[str]) -> str:
    """Why a grid with ``steer_stress`` is refused for these entries (one line)."""
    return (
        f"agent {', '.join(entries)} has no lm.steering: a replay grid with steer_stress "
        "needs every LM agent steered"
    )


def agent_problems(scenario: Scenario) -> list[Problem]:
    """Every agent entry's problem with the env or the other entries.

    Args:
        scenario: A scenario that validated against the schema.

    Returns:
        ``(dotted path, message)`` problems; empty when every entry fits.
    """
    problems: list[Problem] = []
    grid = scenario.measure.counterfactual
    unsteered = unsteered_entries(scenario)
    if grid is not None and grid.steer_stress and unsteered:
        problems.append((STEER_GRID_PATH, unsteered_message(unsteered)))
    problems += _planner_problems(scenario)
    ids = [agent_id for agent_id, _ in scenario.expanded_agents()]
    groups = {entry.entry: entry.agents for entry in scenario.entries() if len(entry.agents) > 1}
    for entry in scenario.entries():
        script = scenario.agents[entry.index].script
        if script is None:
            continue
        where = f"agents.{entry.index}"
        if not CONVERSATION_ID.fullmatch(scenario.env.id):
            problems.append(
                (
                    f"{where}.kind",
                    f"scripted agents speak Conversation's acts (valuegym/Conversation-v*); "
                    f"{scenario.env.id} has none",
                )
            )
        elif scenario.env.args.get("mode") != "text":
            problems.append(
                ("env.args.mode", "scripted agents speak lines; set env.args.mode: text")
            )
        if script.to is None:
            continue
        if script.to in (entry.entry, *entry.agents):
            problems.append(
                (
                    f"{where}.script.to",
                    f"{script.to!r} is this entry's own agent; a scripted agent addresses "
                    "another agent",
                )
            )
        elif script.to in groups:
            problems.append(
                (
                    f"{where}.script.to",
                    f"{script.to!r} names {len(groups[script.to])} agents "
                    f"({', '.join(groups[script.to])}); name one",
                )
            )
        elif script.to not in ids:
            others = [agent_id for agent_id in ids if agent_id not in entry.agents]
            close = difflib.get_close_matches(script.to, others, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(
                (
                    f"{where}.script.to",
                    f"no agent {script.to!r} in this scenario ({hint}agents: {', '.join(ids)})",
                )
            )
    return problems


def _planner_problems(scenario: Scenario) -> list[Problem]:
    """A ``planner`` agent needs an env that copies and restores its state."""
    planners = [i for i, agent in enumerate(scenario.agents) if agent.kind == "planner"]
    if not planners:
        return []
    try:
        cls = env_class(scenario.env.id)
    except KeyError:
        return []  # the env id's own problem is reported where it is checked
    if callable(getattr(cls, "get_state", None)) and callable(getattr(cls, "set_state", None)):
        return []
    return [
        (
            f"agents.{index}.kind",
            f"a planner simulates on copies of the env's state; {scenario.env.id} cannot copy "
            "and restore its state (get_state/set_state)",
        )
        for index in planners
    ]
