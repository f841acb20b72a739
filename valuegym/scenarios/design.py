"""A scenario's declared design: unit, factors over agent entries, estimands, checked up front.

A design says, before anything runs, what the run can conclude::

    design:
      unit: episode
      factors:                                  # over agent entries: level -> entries
        persona: {gardener: [gardener_calm, gardener_stressed], nurse: [nurse_calm, nurse_stressed]}
        stress: {calm: [gardener_calm, nurse_calm], stressed: [gardener_stressed, nurse_stressed]}
      estimands:
        - {measure: mean_token_entropy, contrast: prompt_stress, levels: [0.1, 0.9],
           rows: replay, at: {temperature: 1.0}, smallest_effect: 0.2, primary: true}
        - {measure: mean_token_entropy, contrast: stress, rows: run, smallest_effect: 0.2}

An estimand names a measure, a contrast and the rows it is read from:

- ``rows: replay``: a channel contrast of the counterfactual replay (``prompt_stress``,
  ``prompt_mood``, ``temperature``, ``steer_stress``: the steering channel's stress coefficient,
  which needs a steered agent, ``interaction``), paired within each replayed context at the
  held settings ``at``;
- ``rows: run``: a designed between-agent factor (a key of ``factors``), compared within each
  episode on the run's own utterances (or the agents' returns, stress or mood);
- ``rows: sweep``: the slope of a cell measure across a swept parameter within each seed, or,
  with ``levels``, the difference between two of its values within each seed.

Every estimand carries the smallest effect of interest: the report calls a contrast whose
minimum detectable effect exceeds it *underpowered*. Validation
(:func:`valuegym.scenarios.design_checks.design_problems`) refuses an estimand that its rows
cannot identify and says why; the unit of replication is the episode
(the seed in sweeps), and every interval the report prints is over those units.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import Field, field_validator

from valuegym.scenarios.agent_spec import FrozenSpec, invalid_value

__all__ = [
    "CHANNELS",
    "HELD_SETTINGS",
    "REPLAY_MEASURES",
    "RUN_MEASURES",
    "SWEEP_MEASURES",
    "DesignSpec",
    "EstimandSpec",
]

#: Replay channels an estimand may contrast (``rows: replay``).
CHANNELS: Final = ("prompt_stress", "prompt_mood", "temperature", "steer_stress", "interaction")
#: Measures of a replay row (the ``replay`` table's columns), with what they are.
REPLAY_MEASURES: Final = {
    "mean_token_entropy": "model's own uncertainty per token (temperature 1)",
    "total_token_entropy": "model's own uncertainty summed over the utterance (temperature 1)",
    "surprisal": "surprisal of what was said at temperature 1 (summed)",
    "sequence_entropy": "entropy of the distributions sampled from, summed (mechanical in T)",
    "mean_sampled_entropy": "entropy sampled from, per token (mechanical in T)",
    "length": "tokens said",
}
#: Measures of the run's own rows an estimand may compare between designed factor levels.
RUN_MEASURES: Final = {
    "mean_token_entropy": "utterances",
    "mean_surprisal": "utterances",
    "mean_sampled_entropy": "utterances",
    "semantic_entropy": "utterances",
    "semantic_entropy_discrete": "utterances",
    "length": "utterances",
    "return": "steps",
    "stress": "steps",
    "mood": "steps",
}
#: Cell measures of a sweep (one number per cell; see ``valuegym.analysis.sweep_report``).
SWEEP_MEASURES: Final = (
    "return",
    "stress",
    "mood",
    "cooperation",
    "gini",
    "resource",
    "token_entropy",
    "surprisal",
    "semantic_entropy",
    "mutual_information",
)
#: Replay settings an estimand may hold while its channel moves.
HELD_SETTINGS: Final = ("temperature", "prompt_stress", "prompt_mood", "steer_stress")


class EstimandSpec(FrozenSpec):
    """One quantity the run is designed to estimate."""

    name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.:~-]{1,80}$",
        description="How the report names it; default '<measure>:<contrast>'.",
    )
    measure: str = Field(description="The measure contrasted (e.g. mean_token_entropy).")
    contrast: str = Field(
        description="A replay channel (prompt_stress, prompt_mood, temperature, steer_stress, "
        "interaction), "
        "a factor of design.factors, or a swept parameter's dotted path."
    )
    rows: Literal["replay", "run", "sweep"] = Field(
        description="Where it is read: the replay's paired contexts, the run's own rows "
        "(designed factors), or the sweep's cells."
    )
    levels: list[float | str] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="[low, high]: stated or sampled levels of a channel, or level names of a "
        "factor; default the lowest and highest (a factor's first and last).",
    )
    at: dict[str, float] = Field(
        default_factory=dict,
        description="Replay settings held while the channel moves, e.g. {temperature: 1.0}.",
    )
    smallest_effect: float = Field(
        gt=0.0, description="Smallest effect of interest, in the measure's unit."
    )
    primary: bool = Field(default=False, description="The design's primary estimand.")

    @property
    def label(self) -> str:
        """The name the report gives it."""
        return self.name or f"{self.measure}:{self.contrast}"


class DesignSpec(FrozenSpec):
    """The design a scenario declares: its unit, its factors and its estimands."""

    unit: Literal["episode", "seed"] = Field(
        default="episode",
        description="Unit of replication: episodes of a run, or seeds of a sweep.",
    )
    factors: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict,
        description="Between-agent factors: factor -> level -> the agent entries at that level.",
    )
    estimands: list[EstimandSpec] = Field(min_length=1)

    @field_validator("factors")
    @classmethod
    def _levels_hold_entries(cls, factors: dict[str, dict[str, list[str]]]) -> Any:
        for factor, levels in factors.items():
            if len(levels) < 2:
                raise invalid_value(f"{factor}: a factor needs at least two levels")
            for level, entries in levels.items():
                if not entries:
                    raise invalid_value(f"{factor}.{level}: a level needs at least one entry")
        return factors
