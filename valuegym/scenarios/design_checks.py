"""What a scenario's declared design cannot identify, found before anything runs.

:func:`design_problems` checks a validated scenario's ``design`` (:mod:`valuegym.scenarios.design`)
against the rest of the scenario: the entries its factors name, the replay grid its replay
estimands need, the sweep its sweep estimands read, and the replication its between-agent
factors have. Each problem is a ``(dotted path, message)`` pair saying what to change.
"""

from __future__ import annotations

from valuegym.scenarios.design import (
    CHANNELS,
    HELD_SETTINGS,
    REPLAY_MEASURES,
    RUN_MEASURES,
    SWEEP_MEASURES,
    EstimandSpec,
)
from valuegym.scenarios.schema import Scenario

__all__ = ["design_problems"]

Problem = tuple[str, str]


def design_problems(scenario: Scenario) -> list[Problem]:
    """Everything the scenario's design declares that its rows could not identify.

    Args:
        scenario: A scenario that validated against the schema.

    Returns:
        ``(dotted path, message)`` problems; empty when the design is sound (or absent).
    """
    design = scenario.design
    if design is None:
        return []
    problems: list[Problem] = []
    sweeping = scenario.sweep is not None
    if design.unit == "seed" and not sweeping:
        problems.append(
            (
                "design.unit",
                "seed is the unit of a sweep; a run's unit is episode (running one cell with "
                "sweep=null? set design=null too)",
            )
        )
    if design.unit == "episode" and sweeping:
        problems.append(
            ("design.unit", "a sweep's cells share their seed's random numbers: use unit: seed")
        )
    problems += _factor_problems(scenario)
    names = [estimand.label for estimand in design.estimands]
    for index, estimand in enumerate(design.estimands):
        where = f"design.estimands.{index}"
        if names.count(estimand.label) > 1:
            problems.append((where, f"two estimands are named {estimand.label!r}; give a name"))
        if estimand.rows == "replay":
            problems += _replay_problems(scenario, estimand, where)
        elif estimand.rows == "run":
            problems += _run_problems(scenario, estimand, where)
        else:
            problems += _sweep_problems(scenario, estimand, where)
    if not any(estimand.primary for estimand in design.estimands):
        problems.append(
            ("design.estimands", "mark the estimand the design is for with primary: true")
        )
    return problems


def _factor_problems(scenario: Scenario) -> list[Problem]:
    assert scenario.design is not None
    entries = [entry.entry for entry in scenario.entries()]
    problems: list[Problem] = []
    partitions: dict[str, frozenset[frozenset[str]]] = {}
    for factor, levels in scenario.design.factors.items():
        where = f"design.factors.{factor}"
        seen: dict[str, str] = {}
        for level, members in levels.items():
            for entry in members:
                if entry not in entries:
                    problems.append(
                        (
                            f"{where}.{level}",
                            f"no agent entry {entry!r} (entries: {', '.join(entries)})",
                        )
                    )
                elif entry in seen:
                    problems.append(
                        (
                            f"{where}.{level}",
                            f"{entry} is also at level {seen[entry]}; an entry has one level",
                        )
                    )
                seen[entry] = level
        partitions[factor] = frozenset(frozenset(members) for members in levels.values())
    factors = list(partitions)
    for i, first in enumerate(factors):
        for second in factors[i + 1 :]:
            if partitions[first] == partitions[second]:
                problems.append(
                    (
                        f"design.factors.{second}",
                        f"assigns the same entries to its levels as {first}: the two are "
                        "confounded; cross them (every level of one at every level of the other)",
                    )
                )
    return problems


def _levels_of(scenario: Scenario, channel: str) -> list[float]:
    grid = scenario.measure.counterfactual
    assert grid is not None
    return list(getattr(grid, channel) or [])


def _replay_problems(scenario: Scenario, estimand: EstimandSpec, where: str) -> list[Problem]:
    problems: list[Problem] = []
    if estimand.measure not in REPLAY_MEASURES:
        problems.append(
            (
                f"{where}.measure",
                f"{estimand.measure!r} is not a replay measure (one of: "
                f"{', '.join(REPLAY_MEASURES)})",
            )
        )
    if estimand.contrast not in CHANNELS:
        return [
            *problems,
            (
                f"{where}.contrast",
                f"rows: replay contrasts a channel ({', '.join(CHANNELS)}), not "
                f"{estimand.contrast!r}; a designed factor is read from rows: run",
            ),
        ]
    if scenario.measure.counterfactual is None:
        return [
            *problems,
            (f"{where}.rows", "rows: replay needs a replay: add measure.counterfactual"),
        ]
    if not scenario.measure.utterances:
        problems.append(
            (f"{where}.rows", "a replay replays recorded utterances: measure.utterances")
        )
    steered = any(agent.kind == "lm" and agent.language_model.steering for agent in scenario.agents)
    if estimand.contrast == "steer_stress" and not steered:
        problems.append(
            (
                f"{where}.contrast",
                "no agent of the design is steered: steer_stress needs an LM agent with "
                "lm.steering",
            )
        )
    moved = (
        ("prompt_stress", "temperature")
        if estimand.contrast == "interaction"
        else (estimand.contrast,)
    )
    for channel in moved:
        levels = _levels_of(scenario, channel)
        if len(levels) < 2:
            problems.append(
                (
                    f"{where}.contrast",
                    f"the replay grid has {len(levels)} {channel} level(s); "
                    f"measure.counterfactual.{channel} needs two to contrast",
                )
            )
    if estimand.levels is not None:
        channel = "prompt_stress" if estimand.contrast == "interaction" else estimand.contrast
        grid_levels = _levels_of(scenario, channel)
        for level in estimand.levels:
            if isinstance(level, str) or float(level) not in grid_levels:
                problems.append(
                    (
                        f"{where}.levels",
                        f"{level!r} is not a {channel} level of the replay grid "
                        f"({', '.join(f'{x:g}' for x in grid_levels)})",
                    )
                )
    for held, value in estimand.at.items():
        if held not in HELD_SETTINGS or held in moved:
            problems.append(
                (
                    f"{where}.at.{held}",
                    "hold one of the other channels: "
                    + ", ".join(h for h in HELD_SETTINGS if h not in moved),
                )
            )
        elif value not in _levels_of(scenario, held):
            problems.append(
                (
                    f"{where}.at.{held}",
                    f"{value:g} is not a {held} level of the replay grid",
                )
            )
    for held in HELD_SETTINGS:
        if held in moved or held in estimand.at:
            continue
        levels = _levels_of(scenario, held)
        if len(levels) > 1:
            problems.append(
                (
                    f"{where}.at",
                    f"say at which {held} the {estimand.contrast} contrast is read, e.g. "
                    f"at: {{{held}: {levels[-1]:g}}} (grid levels "
                    f"{', '.join(f'{x:g}' for x in levels)})",
                )
            )
    return problems


def _run_problems(scenario: Scenario, estimand: EstimandSpec, where: str) -> list[Problem]:
    assert scenario.design is not None
    problems: list[Problem] = []
    if estimand.contrast in CHANNELS:
        return [
            (
                f"{where}.rows",
                f"a {estimand.contrast} estimand cannot be read from the run's own rows: there "
                "the prompt states the agent's actual state and the speech temperature follows "
                "the same state, so the channels move together with everything else the state "
                "changes; read it from rows: replay (measure.counterfactual)",
            )
        ]
    factors = scenario.design.factors
    if estimand.contrast not in factors:
        known = ", ".join(factors) or "none declared"
        return [
            (
                f"{where}.contrast",
                f"rows: run compares a designed factor of design.factors ({known}), not "
                f"{estimand.contrast!r}",
            )
        ]
    if estimand.measure not in RUN_MEASURES:
        problems.append(
            (
                f"{where}.measure",
                f"{estimand.measure!r} is not a measure of the run's rows (one of: "
                f"{', '.join(RUN_MEASURES)})",
            )
        )
    levels = factors[estimand.contrast]
    if estimand.levels is not None:
        for level in estimand.levels:
            if str(level) not in levels:
                problems.append(
                    (
                        f"{where}.levels",
                        f"{level!r} is not a level of {estimand.contrast} ({', '.join(levels)})",
                    )
                )
    kinds = {entry.entry: entry.kind for entry in scenario.entries()}
    counts = {entry.entry: len(entry.agents) for entry in scenario.entries()}
    speaking = RUN_MEASURES.get(estimand.measure) == "utterances"
    for level, members in levels.items():
        if speaking and not any(kinds.get(member) == "lm" for member in members):
            problems.append(
                (
                    f"{where}.measure",
                    f"{estimand.measure} is measured on utterances, and level {level} of "
                    f"{estimand.contrast} has no LM agent",
                )
            )
    if speaking and not scenario.measure.utterances:
        problems.append((f"{where}.measure", "utterance measures need measure.utterances: true"))
    if (
        estimand.measure.startswith("semantic_entropy")
        and scenario.measure.semantic_entropy is None
    ):
        problems.append((f"{where}.measure", f"{estimand.measure} needs measure.semantic_entropy"))
    one_each = all(sum(counts.get(m, 0) for m in members) == 1 for members in levels.values())
    if one_each and scenario.episodes < 2:
        problems.append(
            (
                f"{where}.contrast",
                f"{estimand.contrast} has one agent per level and one episode: nothing "
                "replicates the comparison; run at least 2 episodes (5 for an interval)",
            )
        )
    return problems


def _sweep_problems(scenario: Scenario, estimand: EstimandSpec, where: str) -> list[Problem]:
    if scenario.sweep is None:
        return [(f"{where}.rows", "rows: sweep needs a sweep")]
    problems: list[Problem] = []
    if estimand.measure not in SWEEP_MEASURES:
        problems.append(
            (
                f"{where}.measure",
                f"{estimand.measure!r} is not a sweep cell measure (one of: "
                f"{', '.join(SWEEP_MEASURES)})",
            )
        )
    values = scenario.sweep.grid.get(estimand.contrast)
    if values is None:
        problems.append(
            (
                f"{where}.contrast",
                f"{estimand.contrast!r} is not swept (sweep.grid: "
                f"{', '.join(scenario.sweep.grid) or 'empty'})",
            )
        )
    elif estimand.levels is not None:
        for level in estimand.levels:
            if level not in values:
                problems.append(
                    (
                        f"{where}.levels",
                        f"{level!r} is not a swept value of {estimand.contrast} "
                        f"({', '.join(map(str, values))})",
                    )
                )
    elif not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        problems.append(
            (
                f"{where}.levels",
                "this parameter's values are not numbers, so there is no slope: give the two "
                f"values to compare, e.g. levels: [{values[0]}, {values[-1]}]",
            )
        )
    elif len(set(values)) < 2:
        problems.append((f"{where}.contrast", "a slope needs at least two swept levels"))
    if len(scenario.sweep.seed_list) < 2:
        problems.append(
            (f"{where}.rows", "one seed: nothing replicates the slope; give sweep.seeds >= 2")
        )
    return problems
