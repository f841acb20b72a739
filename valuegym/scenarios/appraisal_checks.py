"""What a scenario's listener appraisal and designed intervention need, found before a run.

:func:`appraisal_problems` checks that listeners appraise in an env that takes their appraisal
(``valuegym/Conversation-v1`` in text mode), and that ``measure.intervention`` names an agent,
a step inside the episode and, for generated variants, a language model to write them.
"""

from __future__ import annotations

import difflib
from typing import Final

from valuegym.scenarios.problems import Problem
from valuegym.scenarios.schema import Scenario

__all__ = ["APPRAISAL_ENV_IDS", "appraisal_problems"]

#: Envs whose text mode takes the listeners' appraisal (valuegym.agents.appraisal).
APPRAISAL_ENV_IDS: Final = ("valuegym/Conversation-v1",)


def appraisal_problems(scenario: Scenario) -> list[Problem]:
    """Appraisal needs an env that takes it; the intervention needs appraisal and a listener.

    Args:
        scenario: A scenario that validated against the schema.

    Returns:
        ``(dotted path, message)`` problems; empty when there are none.
    """
    problems: list[Problem] = []
    appraising = (["appraisal"] if scenario.appraisal is not None else []) + [
        f"agents.{index}.appraisal"
        for index, agent in enumerate(scenario.agents)
        if agent.appraisal is not None
    ]
    intervention = scenario.measure.intervention
    if appraising and scenario.env.id not in APPRAISAL_ENV_IDS:
        problems.append(
            (
                appraising[0],
                f"listeners appraise what is said in {', '.join(APPRAISAL_ENV_IDS)} only "
                f"(this scenario's env is {scenario.env.id}); set env.id to it",
            )
        )
    elif appraising and scenario.env.args.get("mode") != "text":
        problems.append((appraising[0], "listeners appraise text: set env.args.mode: text"))
    if intervention is None:
        return problems
    if not appraising:
        problems.append(
            (
                "measure.intervention",
                "the intervention measures the listener's appraisal: declare appraisal "
                "(e.g. appraisal: {} for the defaults)",
            )
        )
    generated = [name for name, v in intervention.variants.items() if not isinstance(v, str)]
    has_model = scenario.uses_language_model or (
        scenario.appraisal is not None and scenario.appraisal.model is not None
    )
    if generated and not has_model:
        problems.append(
            (
                f"measure.intervention.variants.{generated[0]}",
                "a generated variant is written by a language model: add an LM agent or "
                "set appraisal.model",
            )
        )
    ids = [agent_id for agent_id, _ in scenario.expanded_agents()]
    if intervention.listener not in ids:
        close = difflib.get_close_matches(intervention.listener, ids, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (agents: {', '.join(ids)})"
        problems.append(
            (
                "measure.intervention.listener",
                f"no agent is called {intervention.listener!r}{hint}",
            )
        )
    elif intervention.at_step >= scenario.max_steps:
        problems.append(
            (
                "measure.intervention.at_step",
                f"step {intervention.at_step} is past the episode's end "
                f"(max_steps {scenario.max_steps})",
            )
        )
    return problems
