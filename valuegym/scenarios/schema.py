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
from collections.abc import Mapping
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from valuegym.envs.registration import MULTI_AGENT_ENV_IDS, SINGLE_AGENT_ENV_IDS
from valuegym.lm import BACKENDS

__all__ = [
    "AGENT_KINDS",
    "LM_BACKENDS",
    "AgentSpec",
    "EnvSpec",
    "LMSpec",
    "MeasureSpec",
    "Scenario",
    "SemanticEntropySpec",
    "SweepSpec",
]

#: Agent kinds a scenario may name.
AGENT_KINDS: Final = ("lm", "ppo", "greedy", "softmax", "random")
#: Language-model backends a scenario may name (left out: the default of
#: :func:`valuegym.lm.load_language_model`).
LM_BACKENDS: Final = tuple(BACKENDS)

_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


def _problem(key: str, message: str) -> PydanticCustomError:
    """A validation error about ``key`` of the model being validated (see ``validation.py``)."""
    return PydanticCustomError("scenario", "{message}", {"key": key, "message": message})


def _invalid(message: str) -> PydanticCustomError:
    """A validation error about the value being validated, with a ready-made message."""
    return PydanticCustomError("invalid", "{message}", {"message": message})


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class LMSpec(_Frozen):
    """The language model of an ``lm`` agent and how it samples."""

    backend: str | None = Field(
        default=None,
        description="llamacpp, transformers or openai; None picks llamacpp when installed, "
        "else transformers.",
    )
    model: str = Field(
        default="smollm2-135m",
        min_length=1,
        description="Embedded model name, Hugging Face id, local path, or the server's model.",
    )
    base_url: str | None = Field(
        default=None, description="Server address for the openai backend (e.g. vLLM, Ollama)."
    )
    max_new_tokens: int = Field(default=32, ge=1, le=1024, description="Tokens per utterance.")
    temperature: float | None = Field(
        default=None,
        ge=0.0,
        le=10.0,
        description="Fixed sampling temperature; None samples at the value-state temperature.",
    )
    act_by: Literal["values", "lm"] = Field(
        default="values",
        description="Choose discrete acts from the value store's wanting, or by LM scoring.",
    )

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, backend: str | None) -> str | None:
        if backend is not None and backend not in LM_BACKENDS:
            raise _invalid(f"unknown value {backend!r} (expected one of: {', '.join(LM_BACKENDS)})")
        return backend

    @model_validator(mode="after")
    def _base_url_only_for_servers(self) -> LMSpec:
        if self.base_url is not None and self.backend != "openai":
            raise _problem("base_url", "only used with backend: openai")
        return self


class AgentSpec(_Frozen):
    """One agent, or ``count`` identical agents, of a scenario."""

    id: str | None = Field(
        default=None,
        pattern=_NAME_PATTERN,
        description="Name in records; with count > 1 agents are named <id>_0, <id>_1, ...",
    )
    count: int = Field(default=1, ge=1, le=10_000, description="How many agents this entry adds.")
    kind: Literal["lm", "ppo", "greedy", "softmax", "random"] = Field(
        description="lm, ppo (a trained checkpoint), greedy, softmax or random."
    )
    persona: str | None = Field(default=None, description="Who the agent is (LM prompts).")
    values: dict[str, Any] | None = Field(
        default=None, description="Value profile values (name -> fields); env default if absent."
    )
    profile: str | None = Field(
        default=None, min_length=1, description="A profile YAML file, relative to the scenario."
    )
    affect: dict[str, Any] = Field(default_factory=dict, description="Affect parameters.")
    homeostasis: dict[str, Any] = Field(default_factory=dict, description="Drive exponents.")
    lm: LMSpec | None = Field(default=None, description="Language model (kind lm only).")
    checkpoint: str | None = Field(
        default=None, min_length=1, description="SB3 checkpoint (kind ppo), relative to scenario."
    )

    @model_validator(mode="after")
    def _fields_match_kind(self) -> AgentSpec:
        if self.kind == "ppo" and self.checkpoint is None:
            raise _problem("checkpoint", "required for kind 'ppo' (a saved SB3 model .zip)")
        if self.kind != "ppo" and self.checkpoint is not None:
            raise _problem("checkpoint", f"only used with kind 'ppo' (this agent is {self.kind!r})")
        if self.kind != "lm" and self.lm is not None:
            raise _problem("lm", f"only used with kind 'lm' (this agent is {self.kind!r})")
        if self.values is not None and self.profile is not None:
            raise _problem("profile", "give either values or a profile file, not both")
        return self

    @property
    def language_model(self) -> LMSpec:
        """The LM settings, defaults filled in (kind ``lm`` only)."""
        return self.lm if self.lm is not None else LMSpec()

    def profile_mapping(self, default_values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The mapping :meth:`valuegym.values.ValueProfile.from_mapping` reads for this agent.

        Args:
            default_values: The env's default values, used when the agent names none.

        Returns:
            ``{"values": ..., "affect": ..., "homeostasis": ...}``.
        """
        values = self.values if self.values is not None else dict(default_values or {})
        return {"values": values, "affect": self.affect, "homeostasis": self.homeostasis}


class EnvSpec(_Frozen):
    """Which environment to build, with which constructor arguments."""

    id: str = Field(description="A registered id, e.g. valuegym/Orchard-v0.")
    args: dict[str, Any] = Field(default_factory=dict, description="Constructor arguments.")

    @field_validator("id")
    @classmethod
    def _known_id(cls, env_id: str) -> str:
        known = SINGLE_AGENT_ENV_IDS + MULTI_AGENT_ENV_IDS
        if env_id not in known:
            raise _invalid(f"unknown env id {env_id!r} (expected one of: {', '.join(known)})")
        return env_id

    @property
    def is_multi_agent(self) -> bool:
        """Whether the env is a PettingZoo (multi-agent) env."""
        return self.id in MULTI_AGENT_ENV_IDS


class SemanticEntropySpec(_Frozen):
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


class MeasureSpec(_Frozen):
    """What the run records beyond per-step rows."""

    utterances: bool = Field(default=True, description="Record LM utterances with entropies.")
    semantic_entropy: SemanticEntropySpec | None = Field(
        default=None, description="Semantic entropy over K samples (off when absent)."
    )
    entropy_unit: Literal["nats", "bits"] = Field(
        default="nats", description="Unit of every entropy and surprisal recorded."
    )
    mutual_information: bool = Field(
        default=False,
        description="Estimate I(state; utterance) at the end of each episode (LM agents).",
    )


ScalarValue = str | int | float | bool | None


class SweepSpec(_Frozen):
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
                raise _invalid(f"must be {expected} (got {seeds})")
        elif isinstance(seeds, list) and seeds:
            bad = [
                seed
                for seed in seeds
                if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0
            ]
            if bad:
                raise _invalid(f"must be {expected} (got {bad[0]!r} in the list)")
            if len(set(seeds)) != len(seeds):
                raise _invalid("seeds must not repeat")
        else:
            raise _invalid(f"must be {expected} (got {seeds!r})")
        return seeds

    @field_validator("grid")
    @classmethod
    def _paths_look_like_paths(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for path in grid:
            if not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", path):
                raise _problem(path, "not a dotted path like agents.0.affect.stress_baseline")
            if path.split(".")[0] in ("sweep", "name", "output"):
                raise _problem(path, f"{path.split('.')[0]} cannot be swept")
        return grid

    @property
    def seed_list(self) -> tuple[int, ...]:
        """The seeds, expanded from a count when one was given."""
        return tuple(range(self.seeds)) if isinstance(self.seeds, int) else tuple(self.seeds)


class Scenario(_Frozen):
    """A validated scenario: everything a run needs, frozen."""

    name: str = Field(pattern=_NAME_PATTERN, description="Names the default run folder.")
    description: str = Field(default="", description="What the scenario studies.")
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Seed of the whole run.")
    env: EnvSpec
    agents: list[AgentSpec] = Field(min_length=1)
    episodes: int = Field(default=1, ge=1, le=1_000_000)
    max_steps: int = Field(default=100, ge=1, le=1_000_000, description="Steps per episode.")
    measure: MeasureSpec = Field(default_factory=MeasureSpec)
    output: str | None = Field(
        default=None,
        min_length=1,
        description="Run folder relative to runs/ (no absolute paths, no '..'); default: name.",
    )
    sweep: SweepSpec | None = None

    @field_validator("output")
    @classmethod
    def _output_stays_inside(cls, output: str | None) -> str | None:
        if output is None:
            return None
        posix, windows = PurePosixPath(output), PureWindowsPath(output)
        if posix.is_absolute() or windows.is_absolute() or windows.drive or output.startswith("~"):
            raise _invalid(f"must be a relative folder under runs/ (got absolute path {output!r})")
        if ".." in posix.parts or ".." in windows.parts:
            raise _invalid(f"must stay under runs/ ('..' is not allowed, got {output!r})")
        return output

    @model_validator(mode="after")
    def _population_fits_env(self) -> Scenario:
        if not self.env.is_multi_agent and self.n_agents != 1:
            raise _problem(
                "agents",
                f"{self.env.id} is a single-agent env; give exactly one agent "
                f"(got {self.n_agents})",
            )
        ids = [agent_id for agent_id, _ in self.expanded_agents()]
        duplicates = sorted({agent_id for agent_id in ids if ids.count(agent_id) > 1})
        if duplicates:
            raise _problem("agents", f"duplicate agent ids: {', '.join(duplicates)}")
        return self

    @property
    def n_agents(self) -> int:
        """Total number of agents, counts expanded."""
        return sum(agent.count for agent in self.agents)

    @property
    def uses_language_model(self) -> bool:
        """Whether any agent is driven by a language model."""
        return any(agent.kind == "lm" for agent in self.agents)

    def expanded_agents(self) -> list[tuple[str, AgentSpec]]:
        """One ``(agent id, spec)`` per agent, in population order, counts expanded."""
        expanded = []
        for index, agent in enumerate(self.agents):
            base = agent.id if agent.id is not None else f"{agent.kind}{index}"
            if agent.count == 1:
                expanded.append((base, agent))
            else:
                expanded.extend((f"{base}_{j}", agent) for j in range(agent.count))
        return expanded

    def to_mapping(self) -> dict[str, Any]:
        """Plain data (as YAML would give it) that validates back into an equal scenario."""
        return self.model_dump(mode="json", exclude_none=True)
