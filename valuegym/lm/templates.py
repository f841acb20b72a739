"""Prompt rendering: how a persona and an agent's value state become chat messages.

A :class:`PromptTemplate` holds ``str.format`` strings over the fields of
:data:`TEMPLATE_FIELDS`; scenarios override the strings. Nothing in a template is evaluated.

Example:
    >>> from valuegym.lm.templates import describe_stress
    >>> describe_stress(0.8)
    'You feel quite stressed (stress 0.80/1).'
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from valuegym.lm.base import Message
from valuegym.values import AgentSnapshot

__all__ = [
    "DEFAULT_ACT_TEMPLATE",
    "DEFAULT_PERSONA",
    "DEFAULT_SYSTEM_TEMPLATE",
    "DEFAULT_USER_TEMPLATE",
    "TEMPLATE_FIELDS",
    "PromptTemplate",
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

    def fields(self, persona: str, state: AgentSnapshot, events: Sequence[str]) -> dict[str, str]:
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
        self, persona: str, state: AgentSnapshot, events: Sequence[str] = ()
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
        state: AgentSnapshot,
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
