"""The scenario schema: frozen pydantic models validated from a YAML scenario.

A scenario says which env to build and with which arguments, who the agents are (kind, persona,
value profile, affect parameters, language model and sampling), how many episodes of how many
steps, what to measure, where the run folder goes, and optionally a sweep::

    name: inbox-stress
    seed: 0
    env: {id: valuegym/Inbox-v0, args: {burst_probability: 0.3}}
    agents:
      - id: clerk
        kind: lm
        persona: a helpful office clerk
        values:
          social: {weight: 1.0, curve: log}
          rest: {weight: 0.5, curve: saturating, stress_weight: 1.0}
        affect: {stress_baseline: 0.2}
        lm: {model: smollm2-135m, max_new_tokens: 24}
    episodes: 2
    max_steps: 20
    measure: {semantic_entropy: {samples: 4}}
    design:
      unit: seed
      estimands:
        - {measure: token_entropy, contrast: agents.0.affect.stress_baseline, rows: sweep,
           smallest_effect: 0.2, primary: true}
    sweep:
      grid: {agents.0.affect.stress_baseline: [0.0, 0.5, 1.0]}
      seeds: 3

Value profiles reuse :class:`valuegym.values.ValueProfile`: an agent's ``values``, ``affect``
and ``homeostasis`` are exactly a profile's mapping, or ``profile: calm.yaml`` names a profile
file (relative to the scenario) whose mapping the agent's own keys override. Every problem is a
``(dotted path, message)`` pair, e.g. ``agents.1.values.rest.weight: must be > 0 (got -1.0)``.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from valuegym.envs.registration import MULTI_AGENT_ENV_IDS, SINGLE_AGENT_ENV_IDS
from valuegym.records.schema import EntryDesign, RunDesign
from valuegym.scenarios.agent_spec import (
    AGENT_KINDS,
    LM_BACKENDS,
    NAME_PATTERN,
    AgentSpec,
    FixedStateSpec,
    FrozenSpec,
    LMSpec,
    ScriptSpec,
    TemplateSpec,
    invalid_value,
    key_problem,
)
from valuegym.scenarios.appraisal_spec import (
    InterventionSpec,
    ListenerAppraisalSpec,
    RepetitionSpec,
    SurpriseSpec,
    ValenceSpec,
)
from valuegym.scenarios.design import DesignSpec, EstimandSpec
from valuegym.scenarios.evaluation_spec import EvaluationSpec, PolicySpec
from valuegym.scenarios.steering_spec import DoseResponseSpec
from valuegym.values import ValueProfile

__all__ = [
    "AGENT_KINDS",
    "LM_BACKENDS",
    "AgentSpec",
    "AppraisalSpec",
    "CounterfactualSpec",
    "DesignSpec",
    "EnvSpec",
    "EstimandSpec",
    "EvaluationSpec",
    "FixedStateSpec",
    "InformationSpec",
    "InterventionSpec",
    "LMSpec",
    "ListenerAppraisalSpec",
    "MeasureSpec",
    "PolicySpec",
    "RepetitionSpec",
    "Scenario",
    "ScriptSpec",
    "SemanticEntropySpec",
    "SurpriseSpec",
    "SweepSpec",
    "TemplateSpec",
    "ValenceSpec",
]


class EnvSpec(FrozenSpec):
    """Which environment to build, with which constructor arguments."""

    id: str = Field(description="A registered id, e.g. valuegym/Orchard-v0.")
    args: dict[str, Any] = Field(default_factory=dict, description="Constructor arguments.")

    @field_validator("id")
    @classmethod
    def _known_id(cls, env_id: str) -> str:
        known = SINGLE_AGENT_ENV_IDS + MULTI_AGENT_ENV_IDS
        if env_id not in known:
            raise invalid_value(f"unknown env id {env_id!r} (expected one of: {', '.join(known)})")
        return env_id

    @property
    def is_multi_agent(self) -> bool:
        """Whether the env is a PettingZoo (multi-agent) env."""
        return self.id in MULTI_AGENT_ENV_IDS


class SemanticEntropySpec(FrozenSpec):
    """Semantic entropy over K sampled utterances for the same value state."""

    samples: int = Field(
        default=10,
        ge=2,
        le=64,
        description="K, utterances per state; 10 as in Kuhn et al. and Farquhar et al. "
        "(the estimate is biased low at small K, see docs/semantic_entropy.md).",
    )
    clusterer: Literal["auto", "embedding", "text", "entailment"] = Field(
        default="auto",
        description="How samples are grouped by meaning; 'entailment' asks the speaking "
        "agent's own language model (bidirectional entailment, scored Yes/No answers). "
        "Calibration of each: docs/semantic_entropy.md.",
    )
    every: int = Field(default=1, ge=1, description="Measure on every n-th step only.")


class InformationSpec(FrozenSpec):
    """Mutual information between a designed set of stated states and what is said.

    At every ``every``-th step each speaking LM agent's real context (its persona and what it
    was told) is kept, the prompt states each of ``states`` in turn, K samples are drawn per
    state at temperature 1 and each is scored under every state's prompt, the end-of-sequence
    token included: ``I(S; Y)`` of the agent speaking at temperature 1, in that context.
    """

    states: list[FixedStateSpec] = Field(
        default_factory=lambda: [FixedStateSpec(stress=0.1), FixedStateSpec(stress=0.9)],
        min_length=2,
        max_length=8,
        description="The stated states compared (equally likely).",
    )
    samples: int = Field(default=8, ge=2, le=64, description="K, utterances per state.")
    every: int = Field(default=1, ge=1, description="Measure on every n-th step only.")


class CounterfactualSpec(FrozenSpec):
    """Replay recorded contexts under a grid of channel settings (common random numbers).

    In each episode, ``per_entry`` recorded utterances of every agent entry (all of them when
    the entry has fewer), evenly spaced over the episode, are regenerated under each cell of
    the grid crossing ``prompt_stress`` x ``prompt_mood`` x ``temperature`` x ``persona`` x
    ``steer_stress`` (a channel left out keeps what the agent had), K samples per cell with the
    same seeds in every cell. Placebo cells state a stress and mood drawn at random,
    independently of the actual state. With two or more stress levels, the manipulation check
    cross-scores the lowest and highest level's samples under both prompts.
    """

    per_entry: int = Field(
        default=2, ge=1, description="Contexts replayed per agent entry and episode."
    )
    samples: int = Field(default=4, ge=1, le=64, description="K, samples per context and cell.")
    prompt_stress: list[Annotated[float, Field(ge=0.0, le=1.0)]] | None = Field(
        default=None, min_length=1, description="Stress levels the prompt states."
    )
    prompt_mood: list[Annotated[float, Field(ge=-1.0, le=1.0)]] | None = Field(
        default=None, min_length=1, description="Mood levels the prompt states."
    )
    temperature: list[Annotated[float, Field(ge=0.0, le=10.0)]] | None = Field(
        default=None, min_length=1, description="Speech temperatures."
    )
    persona: list[str] | None = Field(default=None, min_length=1, description="Personas.")
    steer_stress: list[float] | None = Field(
        default=None,
        min_length=1,
        description="Stress coefficients alpha (s - s0) of the steering channel; a level "
        "replaces the agent's own at its blocks (0: no stress steering; every LM agent must "
        "have lm.steering).",
    )
    placebo: bool = Field(
        default=True,
        description=(
            "Also replay each context stating a random stress and mood, drawn independently "
            "of the actual state (a negative control)."
        ),
    )
    manipulation_check: bool = Field(
        default=True,
        description=(
            "Cross-score the lowest and highest stated stress level's samples under both "
            "prompts (how far the stated stress shifts the replies)."
        ),
    )
    dose_response: DoseResponseSpec | None = Field(
        default=None,
        description="Score the steer_stress levels' replies for the dose-response guard "
        "(reply shift, fluency cost; off when absent).",
    )

    @model_validator(mode="after")
    def _dose_levels(self) -> CounterfactualSpec:
        if self.dose_response is not None:
            levels = set(self.steer_stress or ())
            if 0.0 not in levels or len(levels) < 2:
                raise key_problem(
                    "dose_response",
                    "needs steer_stress levels with 0 and at least one other "
                    f"(got {sorted(levels)})",
                )
        return self


class AppraisalSpec(ListenerAppraisalSpec):
    """Every listener's appraisal, and the model appraisal asks (Conversation-v1 text mode).

    See :mod:`valuegym.scenarios.appraisal_spec` and :mod:`valuegym.agents.appraisal`.
    """

    model: LMSpec | None = Field(
        default=None,
        description="Language model of the lm valence judge, the entailment clusterer and "
        "the surprisal of listeners that are not LM agents. None: the judges ask the first "
        "LM agent's model and non-LM listeners have surprise off.",
    )


class MeasureSpec(FrozenSpec):
    """What the run records beyond per-step rows."""

    utterances: bool = Field(default=True, description="Record LM utterances with entropies.")
    semantic_entropy: SemanticEntropySpec | None = Field(
        default=None, description="Semantic entropy over K samples (off when absent)."
    )
    entropy_unit: Literal["nats", "bits"] = Field(
        default="nats", description="Unit of every entropy and surprisal recorded."
    )
    mutual_information: InformationSpec | None = Field(
        default=None,
        description="I(stated state; utterance) on a designed set of states (off when absent).",
    )
    counterfactual: CounterfactualSpec | None = Field(
        default=None, description="Replay recorded contexts under a channel grid (off if absent)."
    )
    intervention: InterventionSpec | None = Field(
        default=None,
        description="Replace one incoming message per episode with designed variants and "
        "re-simulate (needs appraisal; off if absent).",
    )


ScalarValue = str | int | float | bool | None


class SweepSpec(FrozenSpec):
    """A grid of dotted-path overrides crossed with seeds; each cell is one run."""

    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(
        default_factory=dict,
        description="Dotted path (e.g. agents.0.affect.stress_baseline) -> values to try.",
    )
    seeds: int | list[int] = Field(
        default=1, description="Seeds to run each cell with, or how many (0, 1, ...)."
    )

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds_are_a_count_or_a_list(cls, seeds: Any) -> Any:
        expected = "a count of seeds (an integer >= 1) or a list of seeds (integers >= 0)"
        if isinstance(seeds, int) and not isinstance(seeds, bool):
            if not 1 <= seeds <= 100_000:
                raise invalid_value(f"must be {expected} (got {seeds})")
        elif isinstance(seeds, list) and seeds:
            bad = [
                seed
                for seed in seeds
                if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0
            ]
            if bad:
                raise invalid_value(f"must be {expected} (got {bad[0]!r} in the list)")
            if len(set(seeds)) != len(seeds):
                raise invalid_value("seeds must not repeat")
        else:
            raise invalid_value(f"must be {expected} (got {seeds!r})")
        return seeds

    @field_validator("grid")
    @classmethod
    def _paths_look_like_paths(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for path in grid:
            if not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", path):
                raise key_problem(path, "not a dotted path like agents.0.affect.stress_baseline")
            if path.split(".")[0] in ("sweep", "name", "output"):
                raise key_problem(path, f"{path.split('.')[0]} cannot be swept")
        return grid

    @property
    def seed_list(self) -> tuple[int, ...]:
        """The seeds, expanded from a count when one was given."""
        return tuple(range(self.seeds)) if isinstance(self.seeds, int) else tuple(self.seeds)


class Scenario(FrozenSpec):
    """A validated scenario: everything a run needs, frozen."""

    name: str = Field(pattern=NAME_PATTERN, description="Names the default run folder.")
    description: str = Field(default="", description="What the scenario studies.")
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Seed of the whole run.")
    env: EnvSpec
    agents: list[AgentSpec] = Field(min_length=1)
    episodes: int = Field(default=1, ge=1, le=1_000_000)
    max_steps: int = Field(default=100, ge=1, le=1_000_000, description="Steps per episode.")
    measure: MeasureSpec = Field(default_factory=MeasureSpec)
    design: DesignSpec | None = Field(
        default=None,
        description="The declared design: unit, factors over agent entries, estimands "
        "(valuegym.scenarios.design).",
    )
    appraisal: AppraisalSpec | None = Field(
        default=None,
        description="How listeners appraise what is said to them (Conversation-v1 text "
        "mode; off when absent).",
    )
    evaluation: EvaluationSpec | None = Field(
        default=None,
        description="Held-out co-player evaluation (`valuegym evaluate`): the focal population, "
        "its seats and the background populations (valuegym.scenarios.evaluation_spec).",
    )
    output: str | None = Field(
        default=None,
        min_length=1,
        description="Run folder relative to runs/ (no absolute paths, no '..'); default: name.",
    )
    sweep: SweepSpec | None = None
    _profiles: tuple[ValueProfile | None, ...] | None = PrivateAttr(default=None)

    @field_validator("output")
    @classmethod
    def _output_stays_inside(cls, output: str | None) -> str | None:
        if output is None:
            return None
        posix, windows = PurePosixPath(output), PureWindowsPath(output)
        if posix.is_absolute() or windows.is_absolute() or windows.drive or output.startswith("~"):
            raise invalid_value(
                f"must be a relative folder under runs/ (got absolute path {output!r})"
            )
        if ".." in posix.parts or ".." in windows.parts:
            raise invalid_value(f"must stay under runs/ ('..' is not allowed, got {output!r})")
        return output

    @model_validator(mode="after")
    def _population_fits_env(self) -> Scenario:
        if not self.env.is_multi_agent and self.n_agents != 1:
            raise key_problem(
                "agents",
                f"{self.env.id} is a single-agent env; give exactly one agent "
                f"(got {self.n_agents})",
            )
        ids = [agent_id for agent_id, _ in self.expanded_agents()]
        duplicates = sorted({agent_id for agent_id in ids if ids.count(agent_id) > 1})
        if duplicates:
            raise key_problem("agents", f"duplicate agent ids: {', '.join(duplicates)}")
        return self

    @property
    def n_agents(self) -> int:
        """Total number of agents, counts expanded."""
        return sum(agent.count for agent in self.agents)

    @property
    def uses_language_model(self) -> bool:
        """Whether any agent is driven by a language model."""
        return any(agent.kind == "lm" for agent in self.agents)

    def resolve_profiles(self, profiles: list[ValueProfile | None]) -> None:
        """Attach each entry's resolved value profile (done once, by validation).

        Args:
            profiles: Per entry in ``agents``, its profile merged over the env's default, or
                ``None`` when it sets no values, affect or homeostasis.
        """
        if len(profiles) != len(self.agents):
            raise ValueError(f"profiles: one per agent entry ({len(self.agents)})")
        self._profiles = tuple(profiles)

    @property
    def value_profiles(self) -> tuple[ValueProfile | None, ...]:
        """Each entry's value profile as validation resolved it (``None``: the env's default).

        Raises:
            ValueError: When the scenario was not made by
                :func:`~valuegym.scenarios.validation.validate_scenario`.
        """
        if self._profiles is None:
            raise ValueError(
                f"{self.name}: profiles not resolved; make scenarios with "
                "valuegym.scenarios.validate_scenario or load_scenario"
            )
        return self._profiles

    def entry_label(self, index: int) -> str:
        """The name of the ``index``-th agent entry in records: its id, else ``<kind><index>``."""
        agent = self.agents[index]
        return agent.id if agent.id is not None else f"{agent.kind}{index}"

    def entries(self) -> tuple[EntryDesign, ...]:
        """Every agent entry as the records name it and the agents it expands to."""
        return tuple(
            EntryDesign(
                entry=self.entry_label(index),
                index=index,
                kind=agent.kind,
                agents=(
                    (self.entry_label(index),)
                    if agent.count == 1
                    else tuple(f"{self.entry_label(index)}_{j}" for j in range(agent.count))
                ),
            )
            for index, agent in enumerate(self.agents)
        )

    def expanded_agents(self) -> list[tuple[str, AgentSpec]]:
        """One ``(agent id, spec)`` per agent, in population order, counts expanded."""
        return [
            (name, self.agents[entry.index]) for entry in self.entries() for name in entry.agents
        ]

    def run_design(self) -> RunDesign:
        """What analysis reads of this scenario besides the rows (a run's ``design.json``)."""
        if self.design is None:
            return RunDesign(entries=self.entries())
        return RunDesign(
            entries=self.entries(),
            unit=self.design.unit,
            factors={
                f: {lv: tuple(e) for lv, e in levels.items()}
                for f, levels in self.design.factors.items()
            },
            estimands=tuple(
                {**estimand.model_dump(mode="json"), "name": estimand.label}
                for estimand in self.design.estimands
            ),
        )

    def to_mapping(self) -> dict[str, Any]:
        """Plain data (as YAML would give it) that validates back into an equal scenario."""
        return self.model_dump(mode="json", exclude_none=True)
