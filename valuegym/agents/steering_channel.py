"""The steering channel: an LM agent's state as a direction added inside its model.

A :class:`SteeringChannel` turns an agent's value state into the
:class:`~valuegym.lm.steering.Steering` its model adds to the residual stream while it speaks:
``strength * (s - center) * d`` at each steered block, summed over the steered variables, with
``d`` the variable's mean difference there (:class:`~valuegym.lm.directions.SteeringDirections`)
and ``s`` the agent's own state or a fixed value. It is a channel like the prompt and the
temperature: moved on its own, recorded per utterance (:meth:`SteeringChannel.coefficients`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from valuegym.values import AgentSnapshot

__all__ = ["SteeringChannel"]


@dataclass(frozen=True)
class SteeringChannel:
    """How an agent's state steers its model.

    Attributes:
        directions: The directions per variable and block
            (:class:`~valuegym.lm.directions.SteeringDirections`).
        settings: Steered variable -> a fixed value, or ``None`` for the agent's own state.
        strength: ``alpha``.
        center: ``s0`` per variable (0 where missing).
        layers: The blocks steered (transformers numbering).
    """

    directions: Any
    settings: Mapping[str, float | None]
    strength: float
    center: Mapping[str, float] = field(default_factory=dict)
    layers: tuple[int, ...] = ()

    def coefficients(self, state: AgentSnapshot) -> dict[str, float]:
        """``alpha (s - s0)`` per steered variable for this state (what the records hold)."""
        values = {"stress": state.stress, "mood": state.mood}
        return {
            name: self.strength
            * ((values[name] if fixed is None else fixed) - self.center.get(name, 0.0))
            for name, fixed in self.settings.items()
        }

    def steering_for(self, state: AgentSnapshot) -> Any:
        """The :class:`~valuegym.lm.steering.Steering` for this state, ``None`` when it is 0.

        Zero coefficients give ``None`` (no steering at all), so that such a prompt is batched
        with unsteered ones exactly as without the channel.
        """
        coefficients = self.coefficients(state)
        if all(value == 0.0 for value in coefficients.values()):
            return None
        return self.directions.steering(coefficients, self.layers)

    def record_columns(self, state: AgentSnapshot | None) -> dict[str, float]:
        """``steer_stress`` and ``steer_mood`` of an utterance (NaN: not steered)."""
        applied = self.coefficients(state) if state is not None else {}
        return {f"steer_{name}": applied.get(name, math.nan) for name in ("stress", "mood")}


def no_steering_columns() -> dict[str, float]:
    """The steering columns of an utterance of an agent without the channel."""
    return {"steer_stress": math.nan, "steer_mood": math.nan}


def steerings(channel: SteeringChannel | None, states: Sequence[AgentSnapshot]) -> list[Any] | None:
    """One steering per state (``None`` for all when there is no channel)."""
    if channel is None:
        return None
    return [channel.steering_for(state) for state in states]
