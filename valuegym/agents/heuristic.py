"""Heuristic baseline agents: random, greedy on wanting, softmax on wanting.

They work on every valuegym env, single- or multi-agent, through the protocol of
:mod:`valuegym.envs.core`: each agent's ``info`` holds ``action_wanting`` (the wanting each
discrete action serves) and ``temperature`` (the agent's value-state temperature). An agent is
anything with ``act(observation, info) -> int`` and ``reset(seed)``.

Example:
    >>> import gymnasium
    >>> import valuegym
    >>> from valuegym.agents.heuristic import GreedyAgent
    >>> env = gymnasium.make("valuegym/Orchard-v0", out_of_stock_probability=0.0)
    >>> observation, info = env.reset(seed=0)
    >>> agent = GreedyAgent()
    >>> agent.act(observation, info)  # the fig: the good with the highest weight
    3
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from gymnasium import spaces

from valuegym.numeric import log_softmax, sample_by_temperature

__all__ = ["Agent", "GreedyAgent", "RandomAgent", "SoftmaxAgent", "action_wanting_of"]


@runtime_checkable
class Agent(Protocol):
    """What runners and evaluation need of an agent."""

    def reset(self, seed: int | None = None) -> None:
        """Start an episode; an agent with randomness reseeds it when ``seed`` is given."""

    def act(self, observation: Any, info: dict[str, Any]) -> int:
        """The discrete action for this observation and info."""


def action_wanting_of(info: dict[str, Any]) -> np.ndarray:
    """The ``action_wanting`` entry of an env's info as a 1-D float array.

    Raises:
        ValueError: When the info lacks it (the env does not follow valuegym's protocol).
    """
    if "action_wanting" not in info:
        raise ValueError(
            "info: no 'action_wanting' entry; wanting-based agents need a valuegym env "
            f"(info has {sorted(info)})"
        )
    return np.asarray(info["action_wanting"], dtype=np.float64)


class RandomAgent:
    """Uniformly random actions from its own seeded generator.

    Args:
        actions: A ``Discrete`` action space or the number of actions.
        seed: Seed of the generator; :meth:`reset` with a seed reseeds it.
    """

    def __init__(self, actions: spaces.Discrete | int, seed: int | None = None):
        n_actions = int(actions.n) if isinstance(actions, spaces.Discrete) else int(actions)
        if n_actions < 1:
            raise ValueError(f"actions: need at least one action (got {n_actions})")
        self.n_actions = n_actions
        self._rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        """Reseed when ``seed`` is given."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)

    def act(self, observation: Any, info: dict[str, Any]) -> int:
        """A uniformly random action; ignores its inputs."""
        return int(self._rng.integers(self.n_actions))


class GreedyAgent:
    """The action serving the highest wanting (the first on ties); deterministic."""

    def reset(self, seed: int | None = None) -> None:
        """Nothing to reset."""

    def act(self, observation: Any, info: dict[str, Any]) -> int:
        """``argmax(info["action_wanting"])``."""
        return int(np.argmax(action_wanting_of(info)))


class SoftmaxAgent:
    """Actions drawn with probability ``softmax(action_wanting / (scale * temperature))``.

    The temperature is the agent's value-state temperature from ``info``, so stress (which
    raises it by default) makes choices more random and a good mood more decisive.

    Args:
        temperature_scale: Multiplies the value-state temperature, > 0; wanting differences are
            of order 0.1-1, so scales well below 1 give choices close to greedy.
        seed: Seed of the generator; :meth:`reset` with a seed reseeds it.
    """

    def __init__(self, temperature_scale: float = 1.0, seed: int | None = None):
        if not temperature_scale > 0:
            raise ValueError(f"temperature_scale: must be > 0 (got {temperature_scale})")
        self.temperature_scale = float(temperature_scale)
        self._rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        """Reseed when ``seed`` is given."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)

    def temperature(self, info: dict[str, Any]) -> float:
        """The sampling temperature: ``temperature_scale * info["temperature"]``."""
        if "temperature" not in info:
            raise ValueError("info: no 'temperature' entry; SoftmaxAgent needs a valuegym env")
        return self.temperature_scale * float(info["temperature"])

    def probabilities(self, info: dict[str, Any]) -> np.ndarray:
        """The probability of each action given this info."""
        return np.exp(log_softmax(action_wanting_of(info), self.temperature(info)))

    def act(self, observation: Any, info: dict[str, Any]) -> int:
        """Draw an action from :meth:`probabilities`."""
        return sample_by_temperature(action_wanting_of(info), self.temperature(info), self._rng)
