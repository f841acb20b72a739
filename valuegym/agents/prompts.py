"""Prompt rendering: how a persona and an agent's value state become chat messages.

A :class:`PromptTemplate` holds ``str.format`` strings over the fields of
:data:`TEMPLATE_FIELDS`; scenarios override the strings. Nothing in a template is evaluated.

What the prompt says about the value state is a channel of its own (:class:`PromptState`): the
agent's actual state, nothing (``blind``: every state field renders empty), or fixed values.
Everything else the model sees (persona, template, events) is the *context*; its hash
(:func:`context_id`) keys paired comparisons of the same context under other channel settings.

Example:
    >>> from valuegym.agents.prompts import describe_stress
    >>> describe_stress(0.8)
    'You feel quite stressed (stress 0.80/1).'
"""

from __future__ import annotations

import hashlib
import json
import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from valuegym.lm.base import Message
from valuegym.values import AgentSnapshot

__all__ = [
    "DEFAULT_ACT_TEMPLATE",
    "DEFAULT_PERSONA",
    "DEFAULT_STOP",
    "DEFAULT_SYSTEM_TEMPLATE",
    "DEFAULT_USER_TEMPLATE",
    "TEMPLATE_FIELDS",
    "PromptState",
    "PromptTemplate",
    "StatedState",
    "context_id",
    "describe_events",
    "describe_mood",
    "describe_stress",
    "describe_wanting",
]

DEFAULT_PERSONA = "a member of a small community"

# Kept short and concrete: SmolLM2-135M drifts off topic when the system message lists every
# value's wanting ({wanting_list} stays available to scenarios with larger models).
# The state comes last, just before the request: prompts that differ only in what they say
# about the state then share everything before it, so a backend reads the shared part once
# (a replay's cells, a mutual-information design's states).
DEFAULT_SYSTEM_TEMPLATE = "You are {persona}."
#: The state sentences the default user message ends with (empty when the prompt is blind).
DEFAULT_STATE_TEMPLATE = "{mood_words} {stress_words} You want {most_wanted} most right now. "
# One sentence, as DEFAULT_STOP ends a reply there; asking for "one or two short sentences"
# instead, 8% of replies reached 32 tokens (mean 18) against 4% (mean 14).
DEFAULT_USER_TEMPLATE = "{events}\n\n{state}Reply in one short sentence."
DEFAULT_ACT_TEMPLATE = "{events}\n\n{state}What do you do next? Choose one of: {options}."

#: Strings that end an utterance: the end of its first sentence, or of its line (a chat turn
#: is one line). SmolLM2-135M does not keep to "one short sentence" by itself: on
#: Conversation-v0 contexts at temperatures 0.65 to 1.15 (top-p 0.9, min-p 0.05), with only a
#: newline as stop, 22% of 96 replies still ran past 48 tokens and 82% past 14; with these
#: stops 4% ran past 32 tokens (mean 14 tokens), and 4% at temperature 1 without truncation
#: (mean 13). The token that completes a stop (the next
#: sentence's first word, whose space the tokenizer joins to the word) is kept in the
#: measurements, as an end token is: at that position the model chose to go on rather than end.
#: The text is cut before the stop, so a sentence's final mark is not part of it.
DEFAULT_STOP: Final = (". ", "! ", "? ", "\n")

#: The fields every template may use. ``{options}`` is filled only in the act template;
#: ``{state}`` (the rendered state template) not in the state template itself.
TEMPLATE_FIELDS: Mapping[str, str] = {
    "persona": "Who the agent is (the scenario's persona text).",
    "state": "The state template rendered: how the agent feels and what it wants, or nothing.",
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


#: The template fields that say something about the value state; all empty when blind.
STATE_FIELDS: Final = (
    "state",
    "mood_words",
    "stress_words",
    "mood",
    "stress",
    "temperature",
    "most_wanted",
    "wanting_list",
)


@dataclass(frozen=True)
class StatedState:
    """The value state as a prompt states it (which need not be the agent's actual state).

    Attributes:
        mood: Valence in [-1, 1].
        stress: Load/arousal in [0, 1].
        temperature: The value-state temperature.
        most_wanted: The value named as wanted most.
        wanting: Wanting per value name.
    """

    mood: float
    stress: float
    temperature: float
    most_wanted: str
    wanting: Mapping[str, float]

    @classmethod
    def of(cls, snapshot: AgentSnapshot) -> StatedState:
        """The actual state of a snapshot."""
        return cls(
            snapshot.mood,
            snapshot.stress,
            snapshot.temperature,
            snapshot.most_wanted,
            snapshot.wanting,
        )


@dataclass(frozen=True)
class PromptState:
    """What the prompt says about the value state: the *prompt channel* of an LM agent.

    Attributes:
        mode: ``"actual"`` (the agent's state), ``"blind"`` (no state text at all) or
            ``"fixed"`` (the values given here; the ones left ``None`` stay actual).
        mood: With ``"fixed"``, the mood the prompt states.
        stress: With ``"fixed"``, the stress the prompt states.
        most_wanted: With ``"fixed"``, the value the prompt names as wanted most.
    """

    mode: Literal["actual", "blind", "fixed"] = "actual"
    mood: float | None = None
    stress: float | None = None
    most_wanted: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("actual", "blind", "fixed"):
            raise ValueError(f"prompt_state: expected actual, blind or fixed (got {self.mode!r})")
        given = (self.mood, self.stress, self.most_wanted)
        if self.mode != "fixed" and any(value is not None for value in given):
            raise ValueError(f"prompt_state: values are only stated with mode 'fixed' ({self})")
        if self.mood is not None and not -1.0 <= self.mood <= 1.0:
            raise ValueError(f"prompt_state.mood: must be in [-1, 1] (got {self.mood})")
        if self.stress is not None and not 0.0 <= self.stress <= 1.0:
            raise ValueError(f"prompt_state.stress: must be in [0, 1] (got {self.stress})")

    def stated(self, snapshot: AgentSnapshot) -> StatedState | None:
        """What the prompt says for an agent in this state; ``None`` when blind.

        Args:
            snapshot: The agent's actual value state.

        Returns:
            The stated state.
        """
        if self.mode == "blind":
            return None
        actual = StatedState.of(snapshot)
        if self.mode == "actual":
            return actual
        return StatedState(
            mood=actual.mood if self.mood is None else self.mood,
            stress=actual.stress if self.stress is None else self.stress,
            temperature=actual.temperature,
            most_wanted=actual.most_wanted if self.most_wanted is None else self.most_wanted,
            wanting=actual.wanting,
        )

    def describe(self) -> str:
        """A short label for records: ``actual``, ``blind`` or ``fixed(stress=0.9,...)``."""
        if self.mode != "fixed":
            return self.mode
        parts = [
            f"{name}={value}"
            for name, value in (
                ("mood", self.mood),
                ("stress", self.stress),
                ("most_wanted", self.most_wanted),
            )
            if value is not None
        ]
        return f"fixed({','.join(parts)})"


def context_id(messages: Sequence[Message]) -> str:
    """A key of what a model saw: the hash of its chat messages (16 hex digits).

    Hash the messages rendered *blind* to key a context independently of the state text.

    Args:
        messages: The chat messages.

    Returns:
        The key.
    """
    text = json.dumps(list(messages), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


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
        state: The state sentence (``{state}`` in the other templates); empty when blind.
        no_events: What ``{events}`` says when nothing happened.
    """

    system: str = DEFAULT_SYSTEM_TEMPLATE
    user: str = DEFAULT_USER_TEMPLATE
    act: str = DEFAULT_ACT_TEMPLATE
    state: str = DEFAULT_STATE_TEMPLATE
    no_events: str = "Nothing new has happened."

    def __post_init__(self) -> None:
        speaking_fields = set(TEMPLATE_FIELDS) - {"options"}
        for name, allowed in (
            ("system", speaking_fields),
            ("user", speaking_fields),
            ("act", set(TEMPLATE_FIELDS)),
            ("state", speaking_fields - {"state"}),
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

    def fields(
        self, persona: str, stated: StatedState | None, events: Sequence[str]
    ) -> dict[str, str]:
        """The values of the template fields for one agent.

        Args:
            persona: Who the agent is.
            stated: The value state as the prompt states it; ``None`` leaves every state field
                empty (a blind prompt).
            events: What just happened, as text.

        Returns:
            Field name to text.
        """
        fields = {"persona": persona, "events": describe_events(events, nothing=self.no_events)}
        if stated is None:
            return {**fields, **dict.fromkeys(STATE_FIELDS, "")}
        fields.update(
            {
                "mood_words": describe_mood(stated.mood),
                "stress_words": describe_stress(stated.stress),
                "mood": f"{stated.mood:+.2f}",
                "stress": f"{stated.stress:.2f}",
                "temperature": f"{stated.temperature:.2f}",
                "most_wanted": _spoken(stated.most_wanted),
                "wanting_list": describe_wanting(stated.wanting),
            }
        )
        fields["state"] = self.state.format(**fields)
        return fields

    def speak_messages(
        self, persona: str, stated: StatedState | None, events: Sequence[str] = ()
    ) -> list[Message]:
        """The chat messages asking the agent for an utterance.

        Args:
            persona: Who the agent is.
            stated: The value state as the prompt states it (``None``: blind).
            events: What just happened, as text.

        Returns:
            A system and a user message.
        """
        fields = self.fields(persona, stated, events)
        return [
            {"role": "system", "content": self.system.format(**fields).strip()},
            {"role": "user", "content": self.user.format(**fields).strip()},
        ]

    def act_messages(
        self,
        persona: str,
        stated: StatedState | None,
        options: Sequence[str],
        events: Sequence[str] = (),
    ) -> list[Message]:
        """The chat messages asking the agent to choose an act.

        Args:
            persona: Who the agent is.
            stated: The value state as the prompt states it (``None``: blind).
            options: The acts' texts.
            events: What just happened, as text.

        Returns:
            A system and a user message; each option is scored as the reply.
        """
        fields = self.fields(persona, stated, events)
        return [
            {"role": "system", "content": self.system.format(**fields).strip()},
            {
                "role": "user",
                "content": self.act.format(**fields, options="; ".join(options)).strip(),
            },
        ]
