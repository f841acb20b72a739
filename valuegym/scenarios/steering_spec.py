"""The steering channel of an LM agent: a direction in the residual stream scaled by its state.

Part of the scenario schema (``LMSpec.steering``)::

    lm:
      steering:
        directions: steer/smollm2          # a folder `valuegym steer build` wrote, or default
        stress: state                      # the agent's own stress, a fixed number, or absent
        mood: null                         # mood not steered
        strength: 1.0                      # alpha
        center: {stress: 0.5, mood: 0.0}   # s0
        layers: [15]                       # blocks (transformers numbering); None: the middle one

At every utterance the agent's model adds ``strength * (s - center) * d`` at each listed block,
``d`` the variable's mean difference there between the high and the low texts of its pairs
(:mod:`valuegym.lm.directions`: strength 1 at ``s - center = 1`` adds the whole mean
difference); the applied coefficients ``strength * (s - center)`` are recorded per utterance
(``steer_stress``, ``steer_mood``). The default strength, 1, keeps every coefficient within
+-0.5, which the shipped ``steering_dose`` scenario's dose-response on SmolLM2-135M (block 15,
five episodes) finds fluent in two runs: a surprisal cost of 0.07 and 0.05 nats per token under
the unsteered model, no degenerate replies, against a bound of 0.5 nats and 5%. Coefficient 1
sits at the bound (0.25 [0.00, 0.51] in one run, 0.62 [0.24, 0.99] in the other); 2 costs
about 1.2. Only the stressed side (positive coefficients) was measured.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from valuegym.scenarios.base import FrozenSpec, invalid_value, key_problem

__all__ = ["STEERED_VARIABLES", "DoseResponseSpec", "SteeringSpec"]

#: The state variables a direction may steer.
STEERED_VARIABLES = ("stress", "mood")

_RANGES = {"stress": (0.0, 1.0), "mood": (-1.0, 1.0)}


class SteeringSpec(FrozenSpec):
    """Steer an LM agent's model along its state's directions."""

    directions: str = Field(
        min_length=1,
        description="Folder of directions built by `valuegym steer build` (relative to the "
        "scenario; its model must be the agent's), or 'default': the shipped pairs' directions "
        "for the agent's model, built into the user cache on first use (needs the lm extra).",
    )
    stress: Literal["state"] | float | None = Field(
        default="state", description="'state' (the agent's stress), a fixed stress, or null."
    )
    mood: Literal["state"] | float | None = Field(
        default=None, description="'state' (the agent's mood), a fixed mood, or null."
    )
    strength: float = Field(
        default=1.0,
        ge=0.0,
        le=100.0,
        description="alpha: the addition is alpha (s - center) times the variable's mean "
        "difference at each block (0: no steering).",
    )
    center: dict[str, float] = Field(
        default_factory=lambda: {"stress": 0.5, "mood": 0.0},
        description="s0 per variable: the state at which nothing is added.",
    )
    layers: list[int] | None = Field(
        default=None,
        min_length=1,
        description="Blocks to steer (0-based, transformers numbering), each built; null: "
        "the middle block the directions were built at.",
    )

    @field_validator("center")
    @classmethod
    def _centers_in_range(cls, center: dict[str, float]) -> dict[str, float]:
        for name, value in center.items():
            if name not in _RANGES:
                raise invalid_value(f"unknown variable {name!r} (expected stress or mood)")
            low, high = _RANGES[name]
            if not low <= value <= high:
                raise invalid_value(f"{name}: must be in [{low}, {high}] (got {value})")
        return center

    @model_validator(mode="after")
    def _fixed_values_in_range(self) -> SteeringSpec:
        for name in STEERED_VARIABLES:
            value = getattr(self, name)
            if isinstance(value, float | int) and not isinstance(value, bool):
                low, high = _RANGES[name]
                if not low <= value <= high:
                    raise key_problem(name, f"must be in [{low}, {high}] (got {value})")
        if self.stress is None and self.mood is None:
            raise key_problem("stress", "steer at least one of stress and mood")
        if self.layers is not None and any(layer < 0 for layer in self.layers):
            raise key_problem("layers", "block indices are >= 0")
        return self

    def __hash__(self) -> int:
        # LM settings are grouped by value (agents that share them share one LMAgent); the
        # centre mapping and the block list are not hashable themselves.
        return hash(self.model_dump_json())

    def settings(self) -> dict[str, float | None]:
        """Steered variable -> its fixed value, or ``None`` for the agent's own state."""
        return {
            name: None if getattr(self, name) == "state" else float(getattr(self, name))
            for name in STEERED_VARIABLES
            if getattr(self, name) is not None
        }


class DoseResponseSpec(FrozenSpec):
    """The steering's dose-response over the replay grid's ``steer_stress`` levels.

    Part of ``measure.counterfactual``; the levels (which must include 0 and one other) are the
    strengths. Every sample of a non-placebo cell is also scored under the unsteered model and
    under its cell's steering, on the cell's prompt (``dose`` records): the report shows, per
    strength against 0, the reply shift (the steered replies' mean log-probability under the
    steered minus the unsteered model), the fluency cost (surprisal per token of the replies
    under the unsteered model, and the share of degenerate replies) and each entropy measure,
    and names the largest strength whose cost stays within these bounds.
    """

    max_surprisal_cost: float = Field(
        default=0.5,
        ge=0.0,
        description="Most extra surprisal per token (under the unsteered model) a strength "
        "may cost, against strength 0.",
    )
    max_degenerate: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Largest share of degenerate replies (empty, or at least half repeated "
        "word 3-grams) a strength may produce.",
    )
