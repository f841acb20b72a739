"""Value-store parameters packed into arrays, one row per agent.

:class:`ValueParams` is the numeric form of a population's profiles that the compiled kernels
read: a table of per-(agent, value) parameters and a table of per-agent parameters, with the
columns named by the constants below. Build it from profiles; it is frozen and its arrays are
read-only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from valuegym.values.curves import HOMEOSTATIC, ISOELASTIC, SATURATING
from valuegym.values.profile import ValueProfile

__all__ = ["ValueParams"]

# Columns of ValueParams.value_table (per agent and value).
WEIGHT: Final = 0
FAMILY: Final = 1
SCALE: Final = 2
ETA: Final = 3
SETPOINT: Final = 4
RETENTION: Final = 5  # fraction of the stock kept per unit time: 0.5 ** (1 / half-life)
MOOD_WEIGHT: Final = 6
STRESS_WEIGHT: Final = 7
STRESS_CURVATURE: Final = 8
INITIAL_EXPECTATION: Final = 9
N_VALUE_COLUMNS: Final = 10

# Columns of ValueParams.agent_table (per agent).
MOOD_BASELINE: Final = 0
MOOD_RATE: Final = 1
SURPRISE_SCALE: Final = 2
MOOD_RETENTION: Final = 3  # fraction of mood's distance to baseline kept per unit time
STRESS_BASELINE: Final = 4
STRESS_SENSITIVITY: Final = 5
REST_RECOVERY: Final = 6
STRESS_RETENTION: Final = 7
DRIVE_LOAD: Final = 8
LEARNING_RATE: Final = 9
SURPRISE_GATE: Final = 10
BASE_TEMPERATURE: Final = 11
TEMPERATURE_STRESS: Final = 12
TEMPERATURE_MOOD: Final = 13
DRIVE_POWER: Final = 14
DRIVE_ROOT: Final = 15
N_AGENT_COLUMNS: Final = 16

_FAMILY_CODES = {
    "log": ISOELASTIC,
    "isoelastic": ISOELASTIC,
    "saturating": SATURATING,
    "homeostatic": HOMEOSTATIC,
}


def _retention(half_life: float) -> float:
    return math.exp(-math.log(2.0) / half_life)


@dataclass(frozen=True, eq=False)
class ValueParams:
    """A population's value profiles as read-only arrays.

    Args:
        profiles: One profile per agent, all with the same value names in the same order.
        value_names: The value names (the columns of every state array).
        value_table: ``(n_agents, n_values, N_VALUE_COLUMNS)`` per-value parameters.
        agent_table: ``(n_agents, N_AGENT_COLUMNS)`` per-agent parameters.
    """

    profiles: tuple[ValueProfile, ...]
    value_names: tuple[str, ...]
    value_table: np.ndarray
    agent_table: np.ndarray

    @property
    def n_agents(self) -> int:
        """Number of agents (rows)."""
        return self.value_table.shape[0]

    @property
    def n_values(self) -> int:
        """Number of values (columns)."""
        return self.value_table.shape[1]

    @property
    def has_homeostatic(self) -> bool:
        """Whether any agent has a homeostatic value."""
        return bool(np.any(self.value_table[:, :, FAMILY] == HOMEOSTATIC))

    @classmethod
    def from_profiles(cls, profiles: Sequence[ValueProfile]) -> ValueParams:
        """Pack profiles into parameter tables.

        Args:
            profiles: One per agent; at least one, all with the same value names.

        Returns:
            The packed parameters.

        Raises:
            ValueError: When there are no profiles or their value names differ.
        """
        profiles = tuple(profiles)
        if not profiles:
            raise ValueError("profiles: need at least one agent")
        names = profiles[0].value_names
        for i, profile in enumerate(profiles):
            if profile.value_names != names:
                raise ValueError(
                    f"profiles.{i}.values: names {list(profile.value_names)} do not match agent "
                    f"0's {list(names)}; every agent in one store has the same values"
                )
        value_table = np.empty((len(profiles), len(names), N_VALUE_COLUMNS))
        agent_table = np.empty((len(profiles), N_AGENT_COLUMNS))
        for i, profile in enumerate(profiles):
            for k, spec in enumerate(profile.values):
                value_table[i, k] = (
                    spec.weight,
                    _FAMILY_CODES[spec.curve],
                    spec.scale,
                    spec.eta,
                    spec.setpoint,
                    _retention(spec.satiation_half_life),
                    spec.mood_weight,
                    spec.stress_weight,
                    spec.stress_curvature,
                    spec.initial_expectation,
                )
            affect, homeostasis = profile.affect, profile.homeostasis
            agent_table[i] = (
                affect.mood_baseline,
                affect.mood_rate,
                affect.surprise_scale,
                _retention(affect.mood_half_life),
                affect.stress_baseline,
                affect.stress_sensitivity,
                affect.rest_recovery,
                _retention(affect.stress_half_life),
                affect.drive_load,
                affect.learning_rate,
                affect.surprise_gate,
                affect.base_temperature,
                affect.temperature_stress,
                affect.temperature_mood,
                homeostasis.power,
                homeostasis.root,
            )
        value_table.flags.writeable = False
        agent_table.flags.writeable = False
        return cls(
            profiles=profiles, value_names=names, value_table=value_table, agent_table=agent_table
        )
