"""A scenario's agent entries: kind, persona, value profile, language model and sampling.

Part of the scenario schema (:mod:`valuegym.scenarios.schema`, which re-exports these models);
also the frozen base every schema model derives from and the error helpers its validators raise,
which :mod:`valuegym.scenarios.validation` turns into ``(dotted path, message)`` problems.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import Field, field_validator, model_validator

from valuegym.agents.prompts import PromptState, PromptTemplate
from valuegym.envs.conversation_rules import ACTS, SILENT
from valuegym.lm import BACKENDS
from valuegym.scenarios.appraisal_spec import ListenerAppraisalSpec
from valuegym.scenarios.base import FrozenSpec, invalid_value, key_problem
from valuegym.scenarios.steering_spec import SteeringSpec

__all__ = [
    "AGENT_KINDS",
    "LM_BACKENDS",
    "NAME_PATTERN",
    "AgentSpec",
    "FixedStateSpec",
    "FrozenSpec",
    "LMSpec",
    "PlannerSpec",
    "ScriptSpec",
    "TemplateSpec",
    "invalid_value",
    "key_problem",
]

#: Agent kinds a scenario may name.
AGENT_KINDS: Final = ("lm", "ppo", "greedy", "softmax", "random", "scripted", "planner")
#: Language-model backends a scenario may name (left out: the default of
#: :func:`valuegym.lm.load_language_model`).
LM_BACKENDS: Final = tuple(BACKENDS)

NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class FixedStateSpec(FrozenSpec):
    """Values a prompt states instead of the agent's own (the others stay actual)."""

    mood: float | None = Field(default=None, ge=-1.0, le=1.0, description="Stated mood.")
    stress: float | None = Field(default=None, ge=0.0, le=1.0, description="Stated stress.")
    most_wanted: str | None = Field(
        default=None, min_length=1, description="The value the prompt names as wanted most."
    )


class TemplateSpec(FrozenSpec):
    """Prompt template overrides: ``str.format`` strings over the documented fields only."""

    system: str | None = Field(default=None, description="System message template.")
    user: str | None = Field(default=None, description="User message asking for an utterance.")
    act: str | None = Field(default=None, description="User message asking for an act.")
    state: str | None = Field(default=None, description="The {state} sentence (blank if blind).")
    no_events: str | None = Field(default=None, description="What {events} says when empty.")


class LMSpec(FrozenSpec):
    """The language model of an ``lm`` agent, how it samples, and its channels.

    The value state reaches speech through separate channels that a study can move one at a
    time: what the prompt says (``prompt_state``), the speech temperature, and the context
    (persona, template, history). The act temperature is separate from the speech temperature.
    """

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
    max_new_tokens: int = Field(
        default=32,
        ge=1,
        le=1024,
        description="Most tokens per utterance. With the default template and stops "
        "(one sentence) SmolLM2-135M's replies mean about 14 tokens and 4% reach 32.",
    )
    speech_temperature: Literal["state"] | Annotated[float, Field(ge=0.0, le=10.0)] = Field(
        default="state",
        description="Sampling temperature of speech: 'state' (the value-state temperature) or "
        "a fixed number.",
    )
    act_temperature: Literal["state"] | Annotated[float, Field(ge=0.0, le=10.0)] = Field(
        default="state",
        description="Temperature of the act choice: 'state' or a fixed number.",
    )
    prompt_state: Literal["actual", "blind"] | FixedStateSpec = Field(
        default="actual",
        description="What the prompt says about the value state: actual, blind (nothing) or "
        "fixed values {mood, stress, most_wanted}.",
    )
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus truncation.")
    top_k: int = Field(default=0, ge=0, description="Keep the k most likely tokens (0: all).")
    min_p: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="Drop tokens under min_p x the top probability."
    )
    template: TemplateSpec | None = Field(default=None, description="Prompt template overrides.")
    steering: SteeringSpec | None = Field(
        default=None,
        description="Steer the model's residual stream along the state's directions "
        "(llamacpp and transformers backends).",
    )
    act_by: Literal["values", "lm"] = Field(
        default="values",
        description="Choose discrete acts from the value store's wanting, or by LM scoring.",
    )

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, backend: str | None) -> str | None:
        if backend is not None and backend not in LM_BACKENDS:
            raise invalid_value(
                f"unknown value {backend!r} (expected one of: {', '.join(LM_BACKENDS)})"
            )
        return backend

    @model_validator(mode="after")
    def _steering_needs_a_local_backend(self) -> LMSpec:
        if self.steering is not None and self.backend == "openai":
            raise key_problem(
                "steering",
                "a server's model cannot be steered from here; use backend llamacpp or "
                "transformers",
            )
        return self

    @model_validator(mode="after")
    def _base_url_only_for_servers(self) -> LMSpec:
        if self.base_url is not None and self.backend != "openai":
            raise key_problem("base_url", "only used with backend: openai")
        return self

    @model_validator(mode="after")
    def _template_fields_known(self) -> LMSpec:
        try:
            self.prompt_template()
        except ValueError as error:
            key, _, message = str(error).partition(": ")
            raise key_problem(key, message) from None
        return self

    def prompt_template(self) -> PromptTemplate:
        """The prompt template: the defaults with this spec's overrides."""
        if self.template is None:
            return PromptTemplate()
        overrides = {k: v for k, v in self.template.model_dump().items() if v is not None}
        return PromptTemplate(**overrides)

    def prompt_channel(self) -> PromptState:
        """What the prompt says about the value state."""
        if isinstance(self.prompt_state, FixedStateSpec):
            return PromptState("fixed", **self.prompt_state.model_dump())
        return PromptState(self.prompt_state)

    @staticmethod
    def fixed(temperature: float | str) -> float | None:
        """A temperature setting as a number, or ``None`` for ``"state"``."""
        return None if temperature == "state" else float(temperature)


class ScriptSpec(FrozenSpec):
    """What a ``scripted`` agent says in Conversation: one act, to one agent, in given lines.

    On each of its turns the agent takes ``act`` addressed to ``to`` and says one of ``lines``
    (:class:`~valuegym.agents.scripted.ScriptedSpeaker`). Which agent ``to`` names and the env
    it needs are checked against the whole scenario (:mod:`valuegym.scenarios.agent_checks`).
    """

    act: str = Field(description=f"The speech act, one of: {', '.join(ACTS)}.")
    to: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="The agent addressed, an expanded agent id (helper, helper_0); not used "
        "with act silent.",
    )
    lines: list[str] = Field(
        min_length=1, description="What the agent says, one line per turn (none blank)."
    )
    order: Literal["random", "cycle"] = Field(
        default="random",
        description="random: a line drawn uniformly each turn (seeded per episode from the "
        "run's seed); cycle: the lines in order from the first, again and again.",
    )

    @field_validator("act")
    @classmethod
    def _known_act(cls, act: str) -> str:
        if act not in ACTS:
            raise invalid_value(f"unknown value {act!r} (expected one of: {', '.join(ACTS)})")
        return act

    @field_validator("lines")
    @classmethod
    def _lines_say_something(cls, lines: list[str]) -> list[str]:
        for index, line in enumerate(lines):
            if not line.strip():
                raise key_problem(str(index), "must not be blank")
        return lines

    @model_validator(mode="after")
    def _addressee_matches_act(self) -> ScriptSpec:
        if self.act == ACTS[SILENT] and self.to is not None:
            raise key_problem("to", "not used with act 'silent' (it addresses no one)")
        if self.act != ACTS[SILENT] and self.to is None:
            raise key_problem("to", f"required for act {self.act!r} (the agent id it addresses)")
        return self


class PlannerSpec(FrozenSpec):
    """How a ``planner`` agent plans (:class:`~valuegym.agents.planner.PlannerAgent`).

    It simulates every action ``horizon`` steps ahead on copies of the env's state, greedy on
    wanting after the first step and for the other agents, and takes the best mean return.
    """

    horizon: int = Field(
        default=10, ge=1, le=1000, description="Steps simulated per rollout (the action's too)."
    )
    depth: int = Field(
        default=1,
        ge=1,
        le=8,
        description="Leading steps whose actions are all tried (n_actions ** depth "
        "sequences); 1: each action, then the rollout policy.",
    )
    rollouts: int = Field(
        default=4,
        ge=1,
        le=1000,
        description="Rollouts per action, averaged over the env's randomness (1 is exact in "
        "Orchard, whose steps draw nothing).",
    )
    discount: float = Field(
        default=0.8, gt=0.0, le=1.0, description="Weight of each later simulated step's reward."
    )

    @model_validator(mode="after")
    def _depth_within_horizon(self) -> PlannerSpec:
        if self.depth > self.horizon:
            raise key_problem("depth", f"must be <= horizon ({self.horizon}) (got {self.depth})")
        return self


class AgentSpec(FrozenSpec):
    """One agent, or ``count`` identical agents, of a scenario."""

    id: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Name in records; with count > 1 agents are named <id>_0, <id>_1, ...",
    )
    count: int = Field(default=1, ge=1, le=10_000, description="How many agents this entry adds.")
    kind: Literal["lm", "ppo", "greedy", "softmax", "random", "scripted", "planner"] = Field(
        description="lm, ppo (a trained checkpoint), greedy, softmax, random, scripted "
        "(given lines, Conversation only) or planner (simulates ahead on the env's state)."
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
    appraisal: ListenerAppraisalSpec | None = Field(
        default=None,
        description="How this agent appraises what it hears; replaces the scenario's "
        "appraisal for it (Conversation-v1 text mode).",
    )
    script: ScriptSpec | None = Field(
        default=None, description="The act, addressee and lines (kind scripted only)."
    )
    planner: PlannerSpec | None = Field(
        default=None, description="Horizon, rollouts and discount (kind planner only)."
    )

    @model_validator(mode="after")
    def _fields_match_kind(self) -> AgentSpec:
        if self.kind == "ppo" and self.checkpoint is None:
            raise key_problem("checkpoint", "required for kind 'ppo' (a saved SB3 model .zip)")
        if self.kind != "ppo" and self.checkpoint is not None:
            raise key_problem(
                "checkpoint", f"only used with kind 'ppo' (this agent is {self.kind!r})"
            )
        if self.kind == "scripted" and self.script is None:
            raise key_problem("script", "required for kind 'scripted' (act, to and lines)")
        if self.kind != "scripted" and self.script is not None:
            raise key_problem(
                "script", f"only used with kind 'scripted' (this agent is {self.kind!r})"
            )
        if self.kind != "planner" and self.planner is not None:
            raise key_problem(
                "planner", f"only used with kind 'planner' (this agent is {self.kind!r})"
            )
        if self.kind != "lm" and self.lm is not None:
            raise key_problem("lm", f"only used with kind 'lm' (this agent is {self.kind!r})")
        if self.values is not None and self.profile is not None:
            raise key_problem("profile", "give either values or a profile file, not both")
        return self

    @property
    def planning(self) -> PlannerSpec:
        """The planner settings, defaults filled in (kind ``planner`` only)."""
        return self.planner if self.planner is not None else PlannerSpec()

    @property
    def language_model(self) -> LMSpec:
        """The LM settings, defaults filled in (kind ``lm`` only)."""
        return self.lm if self.lm is not None else LMSpec()
