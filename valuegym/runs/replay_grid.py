"""The cells of a replay grid and what each sets: the stated state, temperature, persona, steering.

:func:`plan_cells` crosses the grid's channels (``prompt_stress`` x ``prompt_mood`` x
``temperature`` x ``persona`` x ``steer_stress``; a channel left out keeps what the recorded
agent had) and adds the placebo cells; :func:`select_contexts` picks the recorded utterances
replayed. A ``steer_stress`` level is the coefficient ``alpha (s - s0)`` of the stress
direction: it replaces the agent's own stress coefficient in that cell, at the agent's own
blocks (its other steered variables keep theirs), and level 0 with nothing else steered is no
steering at all. llama.cpp generates each steering's prompts together (one control vector per
context), so cells that steer differently are batched differently: common random numbers hold,
but llama.cpp's rounding depends on the batch.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from valuegym.agents.prompts import PromptState
from valuegym.scenarios.schema import CounterfactualSpec
from valuegym.values import AgentSnapshot

__all__ = [
    "ReplayCell",
    "cell_steering",
    "checked_cells",
    "dose_scores",
    "level_of",
    "plan_cells",
    "select_contexts",
    "stated_channel",
]


@dataclass(frozen=True)
class ReplayCell:
    """One combination of channel settings; ``None`` keeps what the recorded agent had.

    Attributes:
        cell: Its id, ``c000``, ``c001``, ... (``placebo`` cells: ``p000``, ...).
        prompt_stress: The stress the prompt states.
        prompt_mood: The mood the prompt states.
        temperature: The speech temperature.
        persona_index: Index into the grid's personas.
        placebo: The prompt states a random stress and mood, drawn per context.
        steer_stress: The stress coefficient ``alpha (s - s0)`` of the steering.
    """

    cell: str
    prompt_stress: float | None = None
    prompt_mood: float | None = None
    temperature: float | None = None
    persona_index: int | None = None
    placebo: bool = False
    steer_stress: float | None = None


def plan_cells(grid: CounterfactualSpec) -> tuple[ReplayCell, ...]:
    """The cells of a grid: every combination of its levels, then the placebo cells.

    Args:
        grid: The replay grid.

    Returns:
        The cells, in a fixed order.
    """
    own: list[float | None] = [None]  # the cell keeps the recorded agent's own setting
    levels: tuple[list[Any], ...] = (
        list(grid.prompt_stress or own),
        list(grid.prompt_mood or own),
        list(grid.temperature or own),
        list(range(len(grid.persona))) if grid.persona else own,
        list(grid.steer_stress or own),
    )
    cells = [
        ReplayCell(f"c{index:03d}", stress, mood, temperature, persona, steer_stress=steer)
        for index, (stress, mood, temperature, persona, steer) in enumerate(
            itertools.product(*levels)
        )
    ]
    if grid.placebo:
        cells.extend(
            ReplayCell(f"p{index:03d}", temperature=temperature, placebo=True)
            for index, temperature in enumerate(grid.temperature or [None])
        )
    return tuple(cells)


def select_contexts(
    utterances: Sequence[Mapping[str, Any]], per_entry: int
) -> list[Mapping[str, Any]]:
    """The contexts of one episode: ``per_entry`` utterances of each entry, evenly spaced.

    An entry's utterances (ordered by step, then agent) are cut into ``per_entry`` equal
    stretches and the middle one of each stretch is taken; an entry with fewer utterances has
    all of them replayed. So every entry, however often it speaks, is replayed the same number
    of times, spread over the episode.

    Args:
        utterances: One episode's ``utterances`` rows.
        per_entry: Contexts wanted per entry (>= 1).

    Returns:
        The chosen rows, ordered by step, then agent.
    """
    if per_entry < 1:
        raise ValueError(f"per_entry: must be >= 1 (got {per_entry})")
    by_entry: dict[str, list[Mapping[str, Any]]] = {}
    for row in sorted(utterances, key=lambda row: (row["step"], row["agent"])):
        by_entry.setdefault(row["entry"], []).append(row)
    chosen: list[Mapping[str, Any]] = []
    for rows in by_entry.values():
        count = min(per_entry, len(rows))
        chosen.extend(rows[(2 * index + 1) * len(rows) // (2 * count)] for index in range(count))
    return sorted(chosen, key=lambda row: (row["step"], row["agent"]))


def level_of(setting: float | None) -> float:
    """A cell's setting as a record value: NaN where the cell keeps the agent's own."""
    return math.nan if setting is None else float(setting)


def stated_channel(cell: ReplayCell, placebo_seed: int) -> PromptState:
    """What a cell's prompt states; a placebo cell draws its stress and mood from the seed."""
    if cell.placebo:
        generator = np.random.default_rng(placebo_seed)
        stress, mood = generator.uniform(0.0, 1.0), generator.uniform(-1.0, 1.0)
        return PromptState("fixed", mood=float(mood), stress=float(stress))
    if cell.prompt_stress is None and cell.prompt_mood is None:
        return PromptState("actual")
    return PromptState("fixed", mood=cell.prompt_mood, stress=cell.prompt_stress)


def checked_cells(grid: CounterfactualSpec, cells: Sequence[ReplayCell]) -> tuple[int, int] | None:
    """The manipulation check's cells: the lowest and the highest stated stress.

    Both at the grid temperature nearest 1 (the agent's own when the grid has none), the
    steering level nearest 0 and the first level of the other channels; ``None`` when the check
    is off or has < 2 levels.
    """
    stresses = sorted(set(grid.prompt_stress or ()))
    if not grid.manipulation_check or len(stresses) < 2:
        return None
    temperature = min(grid.temperature, key=lambda t: abs(t - 1.0)) if grid.temperature else None
    mood = grid.prompt_mood[0] if grid.prompt_mood else None
    persona = 0 if grid.persona else None
    # the steering level nearest none (0 when the grid has it)
    steer = min(grid.steer_stress, key=lambda s: (abs(s), s)) if grid.steer_stress else None

    def position(stress: float) -> int:
        [found] = [
            index
            for index, cell in enumerate(cells)
            if not cell.placebo
            and (cell.prompt_stress, cell.prompt_mood) == (stress, mood)
            and (cell.temperature, cell.persona_index) == (temperature, persona)
            and cell.steer_stress == steer
        ]
        return found

    return position(stresses[0]), position(stresses[-1])


def cell_steering(channel: Any, cell: ReplayCell, state: AgentSnapshot) -> Any:
    """The steering of a cell's samples: the agent's own, its stress coefficient set by the cell.

    Args:
        channel: The agent's :class:`~valuegym.agents.steering_channel.SteeringChannel`
            (``None``: not steered; then the cell must not set ``steer_stress``).
        cell: The cell.
        state: The recorded agent's state.

    Returns:
        The :class:`~valuegym.lm.steering.Steering`, or ``None`` when nothing is added.
    """
    if channel is None:
        return None
    if cell.steer_stress is None:
        return channel.steering_for(state)
    coefficients = {**channel.coefficients(state), "stress": float(cell.steer_stress)}
    coefficients = {name: value for name, value in coefficients.items() if value != 0.0}
    if not coefficients:
        return None
    return channel.directions.steering(coefficients, channel.layers)


def dose_scores(
    model: Any,
    prompts: Sequence[Any],
    replies: Sequence[Sequence[str]],
    steerings: Sequence[Any],
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each cell's replies scored on its prompt, unsteered and under its steering.

    Cells that share a prompt (and, for the steered scores, a steering) are scored in one call:
    llama.cpp's batched scoring depends on which replies share a call, so the replies compared
    for the fluency cost are scored alike, and cells that differ only by temperature cost one
    call. A cell without steering reuses its unsteered scores.

    Args:
        model: The language model.
        prompts: One prompt per cell.
        replies: Per cell, its samples' texts.
        steerings: Per cell, its :class:`~valuegym.lm.steering.Steering` or ``None``.

    Returns:
        Per cell, the log-likelihoods (nats) unsteered and steered.
    """
    keys = [json.dumps(prompt, sort_keys=True) for prompt in prompts]
    unsteered = _grouped_scores(model, prompts, replies, [(key, b"") for key in keys], None)
    steered_cells = [index for index, steering in enumerate(steerings) if steering is not None]
    steered = list(unsteered)  # a cell without steering reuses its unsteered scores
    scored = _grouped_scores(
        model,
        [prompts[index] for index in steered_cells],
        [replies[index] for index in steered_cells],
        [(keys[index], steerings[index].key()) for index in steered_cells],
        [steerings[index] for index in steered_cells],
    )
    for index, scores in zip(steered_cells, scored, strict=True):
        steered[index] = scores
    return unsteered, steered


def _grouped_scores(
    model: Any,
    prompts: Sequence[Any],
    replies: Sequence[Sequence[str]],
    groups: Sequence[tuple[str, bytes]],
    steerings: Sequence[Any] | None,
) -> list[np.ndarray]:
    """Score each cell's replies, one call per (prompt, steering) group of cells."""
    members: dict[tuple[str, bytes], list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    scores: list[np.ndarray] = [np.empty(0)] * len(prompts)
    for indices in members.values():
        first = indices[0]
        steering = None if steerings is None else steerings[first]
        texts = [text for index in indices for text in replies[index]]
        found = np.asarray(model.score(prompts[first], texts, steering=steering), dtype=np.float64)
        start = 0
        for index in indices:
            scores[index] = found[start : start + len(replies[index])]
            start += len(replies[index])
    return scores
