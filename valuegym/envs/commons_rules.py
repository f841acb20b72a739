"""Commons's rules: the resource dynamics, the actions, and what praise and sanctions do.

The resource dynamics and the metric (:func:`regrow`, :func:`share_out`,
:func:`cooperation_rate`) are pure functions over arrays; :class:`CommonsRules` (validated
arguments) derives the sustainable share and decides who receives praise and sanctions. The
env, :class:`~valuegym.envs.commons.CommonsEnv`, steps them and the agents' values, and
documents all of this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from valuegym.envs.profiles import default_profile, resolve_profiles
from valuegym.values import ValueProfile

__all__ = [
    "ACTION_NAMES",
    "HARVEST_SHARES",
    "PRAISE",
    "REST",
    "SANCTION",
    "CommonsRules",
    "commons_profile",
    "cooperation_rate",
    "regrow",
    "share_out",
]

#: Harvest actions, in multiples of the sustainable share (action 1 takes the first).
HARVEST_SHARES: Final = (0.5, 1.0, 2.0, 4.0)
REST: Final = 0
PRAISE: Final = len(HARVEST_SHARES) + 1
SANCTION: Final = len(HARVEST_SHARES) + 2
#: Action names, by action index.
ACTION_NAMES: Final = (
    "rest",
    *(f"harvest x{shares:g}" for shares in HARVEST_SHARES),
    "praise neighbour",
    "sanction top harvester",
)


def regrow(resource: float, rate: float, capacity: float) -> float:
    """Logistic regrowth of one step: ``R + rate * R * (1 - R / capacity)``, kept in ``[0, K]``."""
    return min(capacity, max(0.0, resource + rate * resource * (1.0 - resource / capacity)))


def share_out(requested: np.ndarray, resource: float) -> np.ndarray:
    """What each agent actually takes: its request, scaled down alike when resources run short.

    Args:
        requested: ``(n_agents,)`` amounts asked for, ``>= 0``.
        resource: The resource level before the harvest.

    Returns:
        ``(n_agents,)`` amounts taken; they sum to at most ``resource``.
    """
    total = float(requested.sum())
    return requested * (resource / total) if total > resource else requested.copy()


def cooperation_rate(requested: np.ndarray, sustainable_share: float) -> float:
    """Fraction of agents whose harvest request is at or under the sustainable share."""
    return float(np.count_nonzero(requested <= sustainable_share * (1.0 + 1e-9))) / len(requested)


def commons_profile() -> ValueProfile:
    """Each agent's profile when no ``profile`` is given: ``food``, ``standing``, ``rest``."""
    return default_profile({"food": 1.0, "standing": 0.5})


@dataclass(frozen=True, eq=False)
class CommonsRules:
    """Commons's validated arguments, derived constants, and who receives praise and sanctions.

    The env's docstring documents the arguments.
    """

    profiles: tuple[ValueProfile, ...]
    max_cycles: int
    regrowth_rate: float
    capacity_per_agent: float
    initial_level: float
    collapse_level: float
    scarcity_load: float
    sanction_load: float
    praise_valence: float
    sanction_valence: float

    @classmethod
    def from_arguments(
        cls,
        n_agents: int,
        profile: ValueProfile | Mapping[str, Any] | Sequence[Any] | None,
        max_cycles: int,
        **numbers: float,
    ) -> CommonsRules:
        """Validate Commons's arguments.

        Raises:
            ValueError: Naming the offending argument.
        """
        for name, value in (("n_agents", n_agents), ("max_cycles", max_cycles)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name}: must be a positive int (got {value!r})")
        if n_agents < 2:
            raise ValueError(f"n_agents: a commons needs at least 2 agents (got {n_agents})")
        default = commons_profile()
        required = ("food", "standing", "rest")
        profiles = resolve_profiles(profile, n_agents, default, required=required)
        for name, number in numbers.items():
            if not (np.isfinite(number) and number >= 0.0):
                raise ValueError(f"{name}: must be a finite number >= 0 (got {number!r})")
        if not 0.0 < numbers["regrowth_rate"] <= 1.0:
            raise ValueError(f"regrowth_rate: must be in (0, 1] (got {numbers['regrowth_rate']})")
        if not numbers["capacity_per_agent"] > 0.0:
            raise ValueError("capacity_per_agent: must be > 0")
        if not 0.0 <= numbers["collapse_level"] < numbers["initial_level"] <= 1.0:
            raise ValueError(
                "initial_level, collapse_level: need 0 <= collapse_level < initial_level <= 1 "
                f"(got {numbers['collapse_level']}, {numbers['initial_level']})"
            )
        return cls(
            profiles=profiles,
            max_cycles=int(max_cycles),
            **{name: float(value) for name, value in numbers.items()},
        )

    @property
    def n_agents(self) -> int:
        """Number of agents."""
        return len(self.profiles)

    @property
    def capacity(self) -> float:
        """Carrying capacity ``K`` of the resource: it grows with the population."""
        return self.capacity_per_agent * self.n_agents

    @property
    def sustainable_share(self) -> float:
        """Each agent's part of the maximum sustainable yield ``rate * K / 4``."""
        return self.regrowth_rate * self.capacity_per_agent / 4.0

    def harvest_requests(self) -> np.ndarray:
        """Amount of food each action asks for: 0 for rest, praise and sanction."""
        requests = np.zeros(len(ACTION_NAMES))
        requests[1:PRAISE] = np.asarray(HARVEST_SHARES) * self.sustainable_share
        return requests

    def praise_received(self, praising: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Praise per agent: each praiser picks its left or right neighbour at random.

        Args:
            praising: ``(n_agents,)`` bool, who praises this step.
            rng: The env's random generator.

        Returns:
            ``(n_agents,)`` float counts of praise received.
        """
        praisers = np.flatnonzero(praising)
        sides = rng.integers(0, 2, size=praisers.shape[0]) * 2 - 1
        targets = (praisers + sides) % self.n_agents
        return np.bincount(targets, minlength=self.n_agents).astype(np.float64)

    def sanctions_received(self, sanctioning: np.ndarray, last_taken: np.ndarray) -> np.ndarray:
        """Sanctions per agent: on last step's top harvester (its own on the runner-up).

        Only a target that took more than the sustainable share receives them.

        Args:
            sanctioning: ``(n_agents,)`` bool, who sanctions this step.
            last_taken: ``(n_agents,)`` what each agent took the step before.

        Returns:
            ``(n_agents,)`` float counts of sanctions received.
        """
        received = np.zeros(self.n_agents)
        if not sanctioning.any():
            return received
        top = int(np.argmax(last_taken))
        others = np.where(np.arange(self.n_agents) == top, -np.inf, last_taken)
        runner_up = int(np.argmax(others))
        defected = last_taken > self.sustainable_share * (1.0 + 1e-9)
        own = int(sanctioning[top])
        received[top] = np.count_nonzero(sanctioning) - own
        received[runner_up] += own
        return received * defected
