"""Agents driven by a language model: they speak from their value state and choose acts.

An :class:`LMAgent` turns a persona and an agent's value state (a store's
:class:`~valuegym.values.AgentSnapshot`, or the ``info["values"]`` mapping every valuegym env
reports; see :class:`ValueState`) into chat messages through a :class:`PromptTemplate`,
writes utterances for a whole population in one ``generate`` call at each agent's value-state
temperature, and measures every utterance (:class:`~valuegym.measures.UtteranceEntropy`).
Its discrete act is chosen from the value store's wanting of each option, or by scoring each
option's text with the language model; either way by a softmax at the value-state temperature.

The env glue is deliberately thin: whatever an env says happened (messages received, other
agents' utterances, events) arrives as a list of strings per agent and goes into the prompt.

Example:
    >>> from valuegym.agents.lm_agent import describe_stress
    >>> describe_stress(0.8)
    'You feel quite stressed (stress 0.80/1).'
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from valuegym.lm.base import Generation, LanguageModel, Message
from valuegym.measures.entropy import UtteranceEntropy, unit_name
from valuegym.measures.information import MutualInformation, mutual_information
from valuegym.numeric import sample_by_temperature
from valuegym.values import AgentSnapshot

__all__ = [
    "DEFAULT_ACT_TEMPLATE",
    "DEFAULT_PERSONA",
    "DEFAULT_SYSTEM_TEMPLATE",
    "DEFAULT_USER_TEMPLATE",
    "TEMPLATE_FIELDS",
    "LMAgent",
    "PromptTemplate",
    "Utterance",
    "ValueState",
    "ValueStateSource",
    "describe_events",
    "describe_mood",
    "describe_stress",
    "describe_wanting",
]

DEFAULT_PERSONA = "a member of a small community"

# Kept short and concrete: SmolLM2-135M drifts off topic when the system message lists every
# value's wanting ({wanting_list} stays available to scenarios with larger models).
DEFAULT_SYSTEM_TEMPLATE = (
    "You are {persona}. {mood_words} {stress_words} You want {most_wanted} most right now."
)
DEFAULT_USER_TEMPLATE = "{events}\n\nWrite your reply in one or two short sentences."
DEFAULT_ACT_TEMPLATE = "{events}\n\nWhat do you do next? Choose one of: {options}."

#: The fields every template may use. ``{options}`` is filled only in the act template.
TEMPLATE_FIELDS: Mapping[str, str] = {
    "persona": "Who the agent is (the scenario's persona text).",
    "mood_words": "Mood in words with its number, e.g. 'You are in a bad mood (mood -0.40 ...).'",
    "stress_words": "Stress in words with its number, e.g. 'You feel quite stressed (stress ...).'",
    "mood": "Mood as a number in [-1, 1], two decimals.",
    "stress": "Stress as a number in [0, 1], two decimals.",
    "temperature": "The value-state temperature, two decimals.",
    "most_wanted": "The value with the highest wanting, in words.",
    "wanting_list": "Every value with its wanting, most wanted first: 'rest 0.90, apple 0.30'.",
    "events": "What just happened: the env's messages and events, one line each.",
    "options": "The acts to choose from, separated by '; ' (act template only).",
}

_MOOD_WORDS = (
    (-0.6, "You are in a very bad mood"),
    (-0.2, "You are in a bad mood"),
    (0.2, "Your mood is neutral"),
    (0.6, "You are in a good mood"),
    (math.inf, "You are in a very good mood"),
)
_STRESS_WORDS = (
    (0.2, "You feel calm"),
    (0.4, "You feel a little stressed"),
    (0.6, "You feel somewhat stressed"),
    (0.85, "You feel quite stressed"),
    (math.inf, "You feel extremely stressed"),
)


def _words_for(level: float, scale: tuple[tuple[float, str], ...]) -> str:
    return next(words for upper, words in scale if level < upper)


def describe_mood(mood: float) -> str:
    """Mood in words with its number.

    Args:
        mood: Valence in [-1, 1].

    Returns:
        E.g. ``"You are in a bad mood (mood -0.40 on a scale from -1 to 1)."``
    """
    return f"{_words_for(mood, _MOOD_WORDS)} (mood {mood:+.2f} on a scale from -1 to 1)."


def describe_stress(stress: float) -> str:
    """Stress in words with its number.

    Args:
        stress: Load/arousal in [0, 1].

    Returns:
        E.g. ``"You feel quite stressed (stress 0.80/1)."``
    """
    return f"{_words_for(stress, _STRESS_WORDS)} (stress {stress:.2f}/1)."


def _spoken(value_name: str) -> str:
    return value_name.replace("_", " ")


def describe_wanting(wanting: Mapping[str, float]) -> str:
    """Every value with its wanting, most wanted first.

    Args:
        wanting: Wanting per value name.

    Returns:
        E.g. ``"rest 0.90, apple 0.30"``.
    """
    ranked = sorted(wanting, key=lambda name: -wanting[name])
    return ", ".join(f"{_spoken(name)} {wanting[name]:.2f}" for name in ranked)


def describe_events(events: Sequence[str], *, nothing: str = "Nothing new has happened.") -> str:
    """What just happened, one line per event.

    Args:
        events: The env's messages and events as text.
        nothing: What to say when there are none.

    Returns:
        ``"- event"`` lines, or ``nothing``.
    """
    lines = [f"- {event.strip()}" for event in events if event.strip()]
    return "\n".join(lines) if lines else nothing


@dataclass(frozen=True)
class ValueState:
    """The part of an agent's value state an LM agent verbalises and samples by.

    Built by :meth:`of` from a store's :class:`~valuegym.values.AgentSnapshot` or from the
    ``info["values"]`` mapping an env reports; that mapping has no store row, so pass
    ``agent`` where personas differ per agent.

    Attributes:
        agent: Row of the agent in its value store (selects its persona); ``None`` if unknown.
        wanting: Wanting per value name.
        mood: Valence in [-1, 1].
        stress: Load/arousal in [0, 1].
        temperature: Decision and sampling temperature, >= 0.
    """

    agent: int | None
    wanting: Mapping[str, float]
    mood: float
    stress: float
    temperature: float

    @property
    def most_wanted(self) -> str:
        """The value with the highest wanting (the first one on ties, as in the store)."""
        return max(self.wanting, key=lambda name: self.wanting[name])

    @classmethod
    def of(cls, source: ValueStateSource, *, agent: int | None = None) -> ValueState:
        """The value state of a snapshot or of an env's ``info["values"]``.

        Args:
            source: An :class:`~valuegym.values.AgentSnapshot`, a :class:`ValueState`, or a
                mapping with ``wanting``, ``mood``, ``stress`` and ``temperature`` entries
                (and optionally ``agent``).
            agent: The agent's row, overriding the one ``source`` carries.

        Returns:
            The value state.
        """
        if isinstance(source, ValueState):
            state = source
        elif isinstance(source, AgentSnapshot):
            state = cls(
                source.agent, source.wanting, source.mood, source.stress, source.temperature
            )
        elif isinstance(source, Mapping):
            state = cls._from_mapping(source)
        else:
            raise TypeError(
                "value state: expected an AgentSnapshot or an env's info['values'] mapping "
                f"(got {type(source).__name__})"
            )
        if agent is not None and agent != state.agent:
            state = cls(agent, state.wanting, state.mood, state.stress, state.temperature)
        return state

    @classmethod
    def _from_mapping(cls, values: Mapping[str, Any]) -> ValueState:
        missing = [key for key in ("wanting", "mood", "stress", "temperature") if key not in values]
        if missing:
            raise ValueError(
                f"value state: missing {missing} (expected an env's info['values'] with "
                f"wanting, mood, stress and temperature; got keys {sorted(values)})"
            )
        wanting = values["wanting"]
        if not isinstance(wanting, Mapping) or not wanting:
            raise ValueError("value state: 'wanting' must map value names to numbers")
        row = values.get("agent")
        return cls(
            agent=None if row is None else int(row),
            wanting={str(name): float(level) for name, level in wanting.items()},
            mood=float(values["mood"]),
            stress=float(values["stress"]),
            temperature=float(values["temperature"]),
        )


#: What :class:`LMAgent` accepts as a value state (see :meth:`ValueState.of`).
ValueStateSource = AgentSnapshot | ValueState | Mapping[str, Any]


@dataclass(frozen=True)
class PromptTemplate:
    """How a persona and a value state become chat messages; scenarios override the strings.

    Templates are ``str.format`` strings over the fields of :data:`TEMPLATE_FIELDS`
    (``{persona}``, ``{mood_words}``, ``{stress_words}``, ``{mood}``, ``{stress}``,
    ``{temperature}``, ``{most_wanted}``, ``{wanting_list}``, ``{events}``; the act template
    also ``{options}``). Literal braces are written ``{{`` and ``}}``.

    Attributes:
        system: The system message (who the agent is and how it feels).
        user: The user message asking for an utterance (what happened, what to write).
        act: The user message asking for an act; each option is scored as its answer.
        no_events: What ``{events}`` says when nothing happened.
    """

    system: str = DEFAULT_SYSTEM_TEMPLATE
    user: str = DEFAULT_USER_TEMPLATE
    act: str = DEFAULT_ACT_TEMPLATE
    no_events: str = "Nothing new has happened."

    def __post_init__(self) -> None:
        speaking_fields = set(TEMPLATE_FIELDS) - {"options"}
        for name, allowed in (
            ("system", speaking_fields),
            ("user", speaking_fields),
            ("act", set(TEMPLATE_FIELDS)),
        ):
            text = getattr(self, name)
            try:
                used = {field for _, field, _, _ in string.Formatter().parse(text) if field}
            except ValueError as error:
                raise ValueError(f"template.{name}: not a valid format string ({error})") from None
            unknown = sorted(used - allowed)
            if unknown:
                raise ValueError(
                    f"template.{name}: unknown field {{{unknown[0]}}}; known fields: "
                    f"{', '.join(sorted(allowed))}"
                )

    def fields(self, persona: str, state: ValueState, events: Sequence[str]) -> dict[str, str]:
        """The values of the template fields for one agent.

        Args:
            persona: Who the agent is.
            state: The agent's value state.
            events: What just happened, as text.

        Returns:
            Field name to text.
        """
        return {
            "persona": persona,
            "mood_words": describe_mood(state.mood),
            "stress_words": describe_stress(state.stress),
            "mood": f"{state.mood:+.2f}",
            "stress": f"{state.stress:.2f}",
            "temperature": f"{state.temperature:.2f}",
            "most_wanted": _spoken(state.most_wanted),
            "wanting_list": describe_wanting(state.wanting),
            "events": describe_events(events, nothing=self.no_events),
        }

    def speak_messages(
        self, persona: str, state: ValueState, events: Sequence[str] = ()
    ) -> list[Message]:
        """The chat messages asking the agent for an utterance.

        Args:
            persona: Who the agent is.
            state: The agent's value state.
            events: What just happened, as text.

        Returns:
            A system and a user message.
        """
        fields = self.fields(persona, state, events)
        return [
            {"role": "system", "content": self.system.format(**fields)},
            {"role": "user", "content": self.user.format(**fields)},
        ]

    def act_messages(
        self,
        persona: str,
        state: ValueState,
        options: Sequence[str],
        events: Sequence[str] = (),
    ) -> list[Message]:
        """The chat messages asking the agent to choose an act.

        Args:
            persona: Who the agent is.
            state: The agent's value state.
            options: The acts' texts.
            events: What just happened, as text.

        Returns:
            A system and a user message; each option is scored as the reply.
        """
        fields = self.fields(persona, state, events)
        return [
            {"role": "system", "content": self.system.format(**fields)},
            {"role": "user", "content": self.act.format(**fields, options="; ".join(options))},
        ]


@dataclass(frozen=True)
class Utterance:
    """What an agent said, with its measurements.

    Attributes:
        agent: Row of the speaking agent in its value store (``None`` if not known).
        text: The utterance, surrounding whitespace removed.
        generation: The backend's output with per-token measurements.
        entropy: The utterance's entropy measurements (nats unless the agent asked for bits).
        temperature: The sampling temperature used.
        prompt: The chat messages it answered.
    """

    agent: int | None
    text: str
    generation: Generation
    entropy: UtteranceEntropy
    temperature: float
    prompt: tuple[Message, ...]

    def to_record(self) -> dict[str, Any]:
        """A flat, JSON-able row for the per-utterance records."""
        return {
            "agent": self.agent,
            "text": self.text,
            "temperature": self.temperature,
            "finish_reason": self.generation.finish_reason,
            **self.entropy.to_dict(),
        }


class LMAgent:
    """Agents whose words (and optionally acts) come from a language model.

    One ``LMAgent`` serves every agent of a population that shares a model and template:
    ``speak`` takes the value states of all speakers and makes one ``generate`` call. A value
    state is a store's :class:`~valuegym.values.AgentSnapshot` or an env's ``info["values"]``
    (see :meth:`ValueState.of`).

    Args:
        model: The language model (see :func:`valuegym.lm.load_language_model`).
        persona: One persona for every agent, or one per row of the value store
            (indexed by the state's ``agent`` row).
        template: How persona and value state become the prompt.
        act_selection: ``"values"``: ``choose_act`` samples from the env's wanting of each
            option; ``"lm"``: it scores each option's text with the model (energy = negative
            log-likelihood). Both sample at the sampling temperature.
        fixed_temperature: Hold the sampling temperature at this value (>= 0) instead of
            the value state's; ``None`` follows the value state.
        max_new_tokens: Upper bound on the tokens of an utterance.
        stop: Strings that end an utterance.
        entropy_base: Logarithm base of the utterance measurements; ``None`` gives nats,
            ``2`` bits.

    Example:
        A turn in Inbox (the messages the env reports become the events)::

            agent = LMAgent(load_language_model(), "Ana, a nurse who works nights")
            events = [f"{m['sender']}: {m['text']}" for m in info["messages"]]
            act = agent.choose_act(info["values"], ["reply", "defer", "ignore", "rest"],
                                   action_wanting=info["action_wanting"], rng=rng)
            [reply] = agent.speak([info["values"]], [events], seed=step)
    """

    def __init__(
        self,
        model: LanguageModel,
        persona: str | Sequence[str] = DEFAULT_PERSONA,
        *,
        template: PromptTemplate | None = None,
        act_selection: Literal["values", "lm"] = "values",
        fixed_temperature: float | None = None,
        max_new_tokens: int = 48,
        stop: Sequence[str] = (),
        entropy_base: float | None = None,
    ) -> None:
        if act_selection not in ("values", "lm"):
            raise ValueError(f"act_selection: expected 'values' or 'lm' (got {act_selection!r})")
        if fixed_temperature is not None and not (
            math.isfinite(fixed_temperature) and fixed_temperature >= 0
        ):
            raise ValueError(
                f"fixed_temperature: must be finite and >= 0, or None (got {fixed_temperature})"
            )
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens: must be >= 1 (got {max_new_tokens})")
        unit_name(entropy_base)  # rejects a base that is not a valid logarithm base
        if not isinstance(persona, str) and len(persona) == 0:
            raise ValueError("persona: give one persona, or one per agent (got an empty list)")
        self.model = model
        self.personas: str | tuple[str, ...] = (
            persona if isinstance(persona, str) else tuple(persona)
        )
        self.template = template if template is not None else PromptTemplate()
        self.act_selection = act_selection
        self.fixed_temperature = fixed_temperature
        self.max_new_tokens = max_new_tokens
        self.stop = tuple(stop)
        self.entropy_base = entropy_base

    def persona_of(self, state: ValueStateSource) -> str:
        """The persona of the agent whose value state this is.

        Args:
            state: The agent's value state (its ``agent`` row selects the persona).

        Returns:
            The persona text.
        """
        if isinstance(self.personas, str):
            return self.personas
        row = ValueState.of(state).agent
        if row is None:
            if len(self.personas) == 1:
                return self.personas[0]
            raise ValueError(
                "persona: the value state has no agent row to pick one of "
                f"{len(self.personas)} personas; pass ValueState.of(info['values'], agent=i)"
            )
        if not 0 <= row < len(self.personas):
            raise ValueError(f"persona: agent {row} has none ({len(self.personas)} personas given)")
        return self.personas[row]

    def temperature(self, state: ValueStateSource) -> float:
        """The sampling temperature: the fixed one, else the value state's.

        Args:
            state: The agent's value state.

        Returns:
            A temperature >= 0.
        """
        if self.fixed_temperature is not None:
            return self.fixed_temperature
        return ValueState.of(state).temperature

    def prompt(self, state: ValueStateSource, events: Sequence[str] = ()) -> list[Message]:
        """The chat messages that ask the agent to speak.

        Args:
            state: The agent's value state.
            events: What just happened, as text (messages received, others' utterances).

        Returns:
            A system and a user message.
        """
        view = ValueState.of(state)
        return self.template.speak_messages(self.persona_of(view), view, events)

    def speak(
        self,
        states: Sequence[ValueStateSource],
        contexts: Sequence[Sequence[str]] | None = None,
        *,
        seed: int | None = None,
    ) -> list[Utterance]:
        """One utterance per agent, generated in one batch at each agent's temperature.

        Args:
            states: The speakers' value states.
            contexts: Per speaker, what just happened (text lines); ``None`` for nothing.
            seed: Seed of the sampler; vary it between turns (the same seed and prompts give
                the same utterances).

        Returns:
            One :class:`Utterance` per state, in order.
        """
        if contexts is None:
            contexts = [()] * len(states)
        if len(contexts) != len(states):
            raise ValueError(
                f"contexts: expected one list of events per value state ({len(states)}), "
                f"got {len(contexts)}"
            )
        if isinstance(contexts, str) or any(isinstance(events, str) for events in contexts):
            raise ValueError("contexts: expected a list of strings per agent, not a string")
        views = [ValueState.of(state) for state in states]
        prompts = [self.prompt(view, events) for view, events in zip(views, contexts, strict=True)]
        temperatures = [self.temperature(view) for view in views]
        return self._generate([view.agent for view in views], prompts, temperatures, seed)

    def sample(
        self,
        state: ValueStateSource,
        events: Sequence[str] = (),
        *,
        n_samples: int,
        seed: int | None = None,
        temperature: float | None = None,
    ) -> list[Utterance]:
        """K utterances for the same state in one batch (for semantic entropy).

        Args:
            state: The agent's value state.
            events: What just happened, as text.
            n_samples: How many utterances K.
            seed: Seed of the sampler; the K samples differ from each other.
            temperature: Sampling temperature; ``None`` uses :meth:`temperature`. Semantic
                entropy and mutual information estimate the model's own distribution at 1.

        Returns:
            K :class:`Utterance` objects.
        """
        if n_samples < 1:
            raise ValueError(f"n_samples: must be >= 1 (got {n_samples})")
        view = ValueState.of(state)
        used = self.temperature(view) if temperature is None else temperature
        prompt = self.prompt(view, events)
        return self._generate(
            [view.agent] * n_samples, [prompt] * n_samples, [used] * n_samples, seed
        )

    def state_information(
        self,
        states: Sequence[ValueStateSource],
        events: Sequence[str] = (),
        *,
        n_samples: int,
        seed: int | None = None,
    ) -> MutualInformation:
        """How much the value state shapes what is said: ``I(S;Y)`` over the given states.

        Samples K utterances per state at temperature 1, scores each under every state's
        prompt and estimates the mutual information
        (:func:`~valuegym.measures.mutual_information`) with the states equally likely.

        Args:
            states: The M value states to compare (same events for all).
            events: What just happened, as text.
            n_samples: Utterances per state K.
            seed: Seed of the sampler.

        Returns:
            The estimate in the agent's unit.
        """
        if n_samples < 1:
            raise ValueError(f"n_samples: must be >= 1 (got {n_samples})")
        views = [ValueState.of(state) for state in states]
        prompts = [self.prompt(view, events) for view in views]
        utterances = self._generate(
            [view.agent for view in views for _ in range(n_samples)],
            [prompt for prompt in prompts for _ in range(n_samples)],
            [1.0] * (len(states) * n_samples),
            seed,
        )
        texts = [
            [u.generation.text for u in utterances[j * n_samples : (j + 1) * n_samples]]
            for j in range(len(states))
        ]
        return mutual_information(self.model, prompts, texts, base=self.entropy_base)

    def choose_act(
        self,
        state: ValueStateSource,
        options: Sequence[str],
        *,
        action_wanting: Sequence[float] | np.ndarray | None = None,
        events: Sequence[str] = (),
        rng: np.random.Generator | None = None,
        seed: int | None = None,
    ) -> int:
        """Choose one of the env's acts by a softmax at the sampling temperature.

        With ``act_selection="values"`` the scores are the env's ``action_wanting`` (what
        each act is worth to the value store now); with ``"lm"`` they are the log-likelihood
        of each option's text as the reply to the act prompt, i.e. ``p ∝ exp(-energy / T)``
        with energy = negative log-likelihood (longer option texts have lower likelihood;
        keep them comparably short). Temperature 0 picks the best option.

        Args:
            state: The agent's value state.
            options: The acts' texts, in the env's action order.
            action_wanting: Score per option from the value store (``"values"`` only).
            events: What just happened, as text (``"lm"`` only).
            rng: Source of randomness; give this or ``seed``, not both.
            seed: Seed for a fresh generator.

        Returns:
            The index of the chosen option.
        """
        if len(options) == 0:
            raise ValueError("options: need at least one act to choose from")
        if rng is not None and seed is not None:
            raise ValueError("choose_act: give rng or seed, not both")
        generator = rng if rng is not None else np.random.default_rng(seed)
        if self.act_selection == "values":
            if action_wanting is None:
                raise ValueError("action_wanting: required when act_selection='values'")
            scores = np.asarray(action_wanting, dtype=np.float64)
            if scores.shape != (len(options),):
                raise ValueError(
                    f"action_wanting: expected one score per option ({len(options)}), "
                    f"got shape {scores.shape}"
                )
        else:
            view = ValueState.of(state)
            prompt = self.template.act_messages(self.persona_of(view), view, options, events)
            scores = np.asarray(self.model.score(prompt, list(options)), dtype=np.float64)
        return sample_by_temperature(scores, self.temperature(state), generator)

    def _generate(
        self,
        agents: Sequence[int | None],
        prompts: Sequence[list[Message]],
        temperatures: Sequence[float],
        seed: int | None,
    ) -> list[Utterance]:
        if not prompts:
            return []
        generations = self.model.generate(
            prompts,
            max_new_tokens=self.max_new_tokens,
            temperature=list(temperatures),
            seed=seed,
            stop=self.stop,
        )
        if len(generations) != len(prompts):
            raise RuntimeError(
                f"{self.model.name}: returned {len(generations)} generations "
                f"for {len(prompts)} prompts"
            )
        return [
            Utterance(
                agent=agent,
                text=generation.text.strip(),
                generation=generation,
                entropy=UtteranceEntropy.from_generation(generation, base=self.entropy_base),
                temperature=float(temperature),
                prompt=tuple(prompt),
            )
            for agent, prompt, temperature, generation in zip(
                agents, prompts, temperatures, generations, strict=True
            )
        ]
