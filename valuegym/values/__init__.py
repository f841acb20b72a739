"""The value store: what agents value, with diminishing returns, satiation, mood and stress.

Pure numpy arrays shaped ``(n_agents, n_values)``, stepped by compiled kernels; imports nothing
from the rest of valuegym.
"""

from valuegym.values.curves import CURVE_NAMES, HomeostaticDrive, UtilityCurve
from valuegym.values.params import ValueParams
from valuegym.values.profile import (
    AffectParams,
    HomeostasisParams,
    ProfileError,
    ValueProfile,
    ValueSpec,
)
from valuegym.values.store import AgentSnapshot, StepOutcome, ValueStore

__all__ = [
    "CURVE_NAMES",
    "AffectParams",
    "AgentSnapshot",
    "HomeostasisParams",
    "HomeostaticDrive",
    "ProfileError",
    "StepOutcome",
    "UtilityCurve",
    "ValueParams",
    "ValueProfile",
    "ValueSpec",
    "ValueStore",
]
