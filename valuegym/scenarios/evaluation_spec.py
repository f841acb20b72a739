"""Held-out co-player evaluation: a focal population against background populations.

Part of the scenario schema (``Scenario.evaluation``), read by ``valuegym evaluate``
(:mod:`valuegym.runs.evaluate`), in the spirit of Melting Pot (Leibo et al. 2021): the
scenario's agents are the seats (ids, value profiles, affect); the evaluation says which seats
the focal population takes and which policies fill the other seats, one background population
at a time, none of which the focal population trained with::

    evaluation:
      focal: {kind: ppo, checkpoint: runs/commons-train/checkpoints/model.zip}
      focal_share: 0.5                 # the first half of the seats; or focal_agents: [calm]
      background:                      # name -> policies, cycled over the background seats
        greedy: [{kind: greedy}]
        random: [{kind: random}]
        mixed: [{kind: greedy}, {kind: random}]
      seeds: 10                        # episodes per background, each its own seed

Every seat keeps its own value profile whichever policy acts for it, so focal and background
differ in policy only. Checks against the rest of the scenario (a multi-agent env, seats that
exist, at least one seat on each side) are :mod:`valuegym.scenarios.evaluation_checks`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal

from pydantic import Field, field_validator, model_validator

from valuegym.scenarios.agent_spec import NAME_PATTERN, PlannerSpec
from valuegym.scenarios.base import FrozenSpec, invalid_value, key_problem

__all__ = [
    "DEFAULT_BACKGROUNDS",
    "POLICY_KINDS",
    "EvaluationSpec",
    "PolicySpec",
]

#: Agent kinds that may fill a seat in an evaluation: the policies acting on numeric actions.
POLICY_KINDS: Final = ("ppo", "greedy", "softmax", "random", "planner")

#: The background populations of an evaluation that names none: the three heuristics.
DEFAULT_BACKGROUNDS: Final = {
    "greedy": [{"kind": "greedy"}],
    "random": [{"kind": "random"}],
    "softmax": [{"kind": "softmax"}],
}


class PolicySpec(FrozenSpec):
    """Who acts for a seat: an agent kind, and a checkpoint for a trained one."""

    kind: Literal["ppo", "greedy", "softmax", "random", "planner"] = Field(
        description="ppo (a trained checkpoint), greedy, softmax, random or planner "
        "(simulates ahead on the env's state)."
    )
    checkpoint: str | None = Field(
        default=None,
        min_length=1,
        description="SB3 checkpoint (kind ppo), relative to the scenario file.",
    )
    planner: PlannerSpec | None = Field(
        default=None, description="Horizon, rollouts and discount (kind planner only)."
    )

    @model_validator(mode="after")
    def _fields_match_kind(self) -> PolicySpec:
        if self.kind == "ppo" and self.checkpoint is None:
            raise key_problem("checkpoint", "required for kind 'ppo' (a saved SB3 model .zip)")
        if self.kind != "ppo" and self.checkpoint is not None:
            raise key_problem("checkpoint", f"only used with kind 'ppo' (this is {self.kind!r})")
        if self.kind != "planner" and self.planner is not None:
            raise key_problem("planner", f"only used with kind 'planner' (this is {self.kind!r})")
        return self

    def seat_fields(self) -> dict[str, object]:
        """The agent-entry keys that make a seat act by this policy (kind and its settings)."""
        return self.model_dump(mode="json", exclude_none=True)

    @property
    def label(self) -> str:
        """A short name: the kind, or ``ppo:<name>`` for a checkpoint.

        A ``valuegym train`` checkpoint (``<run folder>/checkpoints/model.zip``) is named by its
        run folder, other files by their file name.
        """
        if self.checkpoint is None:
            return self.kind
        path = Path(self.checkpoint)
        trained = path.parent.name == "checkpoints" and path.parent.parent.name
        return f"ppo:{path.parent.parent.name if trained else path.name}"


class EvaluationSpec(FrozenSpec):
    """The focal population, where it sits, and the background populations it meets."""

    focal: PolicySpec = Field(
        default_factory=lambda: PolicySpec(kind="greedy"),
        description="The focal population's policy (every focal seat acts by it); default "
        "greedy, so an evaluation runs without training.",
    )
    focal_share: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Share of the seats the focal population takes, the first ones in "
        "population order (rounded, at least one seat on each side); default 0.5 unless "
        "focal_agents is given.",
    )
    focal_agents: list[str] | None = Field(
        default=None,
        min_length=1,
        description="The focal seats by agent id: an entry's id takes all its agents, an "
        "expanded id (calm_0) one.",
    )
    background: dict[str, list[PolicySpec]] = Field(
        default_factory=lambda: {
            name: [PolicySpec.model_validate(spec) for spec in specs]
            for name, specs in DEFAULT_BACKGROUNDS.items()
        },
        min_length=1,
        description="Background population name -> policies, cycled over the background seats "
        "in population order; default greedy, random and softmax.",
    )
    seeds: int | None = Field(
        default=None,
        ge=2,
        le=100_000,
        description="Episodes per background population, each with its own seed (the unit of "
        "the intervals); default: the scenario's episodes.",
    )

    @field_validator("background")
    @classmethod
    def _populations_named_and_filled(
        cls, background: dict[str, list[PolicySpec]]
    ) -> dict[str, list[PolicySpec]]:
        for name, policies in background.items():
            if not re.fullmatch(NAME_PATTERN, name):
                raise invalid_value(
                    f"population name {name!r}: start with a letter or digit, then letters, "
                    "digits, '_', '-' and '.'"
                )
            if not policies:
                raise key_problem(name, "must not be empty (give at least one policy)")
        return background

    @model_validator(mode="after")
    def _one_way_to_place_the_focal(self) -> EvaluationSpec:
        if self.focal_share is not None and self.focal_agents is not None:
            raise key_problem("focal_agents", "give either focal_share or focal_agents, not both")
        return self

    def focal_rows(self, agent_ids: list[str], entry_ids: Mapping[str, list[str]]) -> list[int]:
        """The population rows of the focal seats.

        Args:
            agent_ids: Every agent's id, in population order.
            entry_ids: Each agent entry's label -> the ids of its agents.

        Returns:
            The focal rows, sorted.
        """
        if self.focal_agents is not None:
            chosen = {
                agent_id for name in self.focal_agents for agent_id in entry_ids.get(name, [name])
            }
            return [row for row, agent_id in enumerate(agent_ids) if agent_id in chosen]
        share = 0.5 if self.focal_share is None else self.focal_share
        count = min(len(agent_ids) - 1, max(1, math.floor(share * len(agent_ids) + 0.5)))
        return list(range(count))

    def checkpoints(self) -> list[str]:
        """Every checkpoint the evaluation loads, focal first, each once."""
        policies = [self.focal, *(p for ps in self.background.values() for p in ps)]
        return list(dict.fromkeys(p.checkpoint for p in policies if p.checkpoint is not None))
