"""Conversation's rules: its speech acts, what each does to the values, and its chat.

:class:`ConversationRules` (validated arguments) decodes and checks an action, and turns the
acts into the numbers the value store steps with (:meth:`ConversationRules.effect_table`);
:class:`ConversationV1Rules` adds v1's repetition window and checks the listeners' appraisal
an action may carry; :func:`clean_utterance` and :func:`chat_line` make the chat. The envs,
:class:`~valuegym.envs.conversation.ConversationEnv` and
:class:`~valuegym.envs.conversation_v1.ConversationV1Env`, say what PettingZoo asks of them
and document all of this.
"""

from __future__ import annotations

import dataclasses
import string
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from valuegym.envs.profiles import default_profile, resolve_profiles
from valuegym.values import ValueProfile

__all__ = [
    "ACTS",
    "APPRAISAL_KEYS",
    "ASK",
    "CHAT_CHARSET",
    "COMPLAIN",
    "HELP",
    "JOKE",
    "MAX_SURPRISE",
    "SHARE",
    "SILENT",
    "UTTERANCE_CHARSET",
    "ConversationRules",
    "ConversationV1Rules",
    "ask_key",
    "chat_line",
    "clean_utterance",
    "conversation_profile",
]

#: The speech acts; every act but ``silent`` is addressed to another agent.
ACTS: Final = ("silent", "ask", "help", "share", "joke", "complain")
SILENT, ASK, HELP, SHARE, JOKE, COMPLAIN = range(len(ACTS))
#: Characters an utterance may hold; others are transliterated to ASCII or become ``?``.
UTTERANCE_CHARSET: Final = frozenset(
    string.ascii_letters + string.digits + string.punctuation + " "
)
#: Characters the chat may hold: an utterance's, and the newline between lines.
CHAT_CHARSET: Final = UTTERANCE_CHARSET | {"\n"}
#: The entries of a listeners' appraisal (Conversation-v1), each one number per agent.
APPRAISAL_KEYS: Final = ("repeats", "valence", "surprise")
#: The largest surprise an appraisal may give, either sign (dimensionless, scaled from nats).
MAX_SURPRISE: Final = 10.0


def conversation_profile() -> ValueProfile:
    """Each agent's profile when no ``profile`` is given: ``social``, ``standing``, ``rest``."""
    return default_profile({"social": 1.0, "standing": 0.5})


@dataclass(frozen=True, eq=False)
class ConversationRules:
    """Conversation's validated arguments; the env's docstring documents them."""

    profiles: tuple[ValueProfile, ...]
    mode: str
    max_cycles: int
    history_length: int
    max_utterance_length: int
    contact: float
    help_cost: float
    help_valence: float
    ask_load: float
    repetition_load: float
    joke_valence: float
    complain_load: float
    complain_valence: float
    vent: float

    @classmethod
    def from_arguments(
        cls,
        n_agents: int,
        profile: ValueProfile | Mapping[str, Any] | Sequence[Any] | None,
        mode: str,
        counts: Mapping[str, int],
        numbers: Mapping[str, float],
    ) -> ConversationRules:
        """Validate Conversation's arguments.

        Raises:
            ValueError: Naming the offending argument.
        """
        for name, value in {"n_agents": n_agents, **counts}.items():
            _check_positive_int(name, value)
        if n_agents < 2:
            raise ValueError(f"n_agents: a conversation needs at least 2 agents (got {n_agents})")
        if mode not in ("numeric", "text"):
            raise ValueError(f"mode: expected 'numeric' or 'text' (got {mode!r})")
        for name, number in numbers.items():
            if not (np.isfinite(number) and number >= 0.0):
                raise ValueError(f"{name}: must be a finite number >= 0 (got {number!r})")
        default = conversation_profile()
        required = ("social", "standing", "rest")
        profiles = resolve_profiles(profile, n_agents, default, required=required)
        fields: dict[str, Any] = {name: int(count) for name, count in counts.items()}
        fields.update((name, float(number)) for name, number in numbers.items())
        return cls(profiles=profiles, mode=mode, **fields)

    @property
    def n_agents(self) -> int:
        """Number of agents."""
        return len(self.profiles)

    @property
    def n_actions(self) -> int:
        """``silent``, then each addressed act for each other agent."""
        return 1 + (len(ACTS) - 1) * (self.n_agents - 1)

    def decode(self, action: int) -> tuple[int, int]:
        """The act and the addressee offset (``1 .. n_agents - 1``, 0 for silent) of an action."""
        if action == 0:
            return SILENT, 0
        act, offset = divmod(action - 1, self.n_agents - 1)
        return act + 1, offset + 1

    def effect_table(self, n_values: int, social: int, standing: int, rest: int) -> np.ndarray:
        """What each act does, as numbers the value store steps with.

        Args:
            n_values: Number of values in each agent's profile.
            social: Column of the value ``social``.
            standing: Column of the value ``standing``.
            rest: Column of the value ``rest``.

        Returns:
            ``(len(ACTS), 2, n_values + 3)``: per act, rows speaker and addressee; columns the
            consumption per value, then load, rest and valence.
        """
        table = np.zeros((len(ACTS), 2, n_values + 3))
        load, rest_taken, valence = n_values, n_values + 1, n_values + 2
        table[SILENT, 0, [rest, rest_taken]] = 1.0
        table[ASK, 0, social] = self.contact / 2
        table[ASK, 1, [social, load]] = self.contact, self.ask_load
        table[HELP, 0, [standing, load]] = 1.0, self.help_cost
        table[HELP, 1, [social, valence]] = 2 * self.contact, self.help_valence
        table[SHARE, :, social] = self.contact
        table[JOKE, 0, [social, valence]] = self.contact / 2, self.joke_valence
        table[JOKE, 1, [social, valence]] = self.contact, self.joke_valence
        table[COMPLAIN, 0, [rest, rest_taken]] = self.vent
        table[COMPLAIN, 1, [load, valence]] = self.complain_load, -self.complain_valence
        return table

    def parse_action(self, actions: Mapping[str, Any], speaker: str) -> tuple[int, str]:
        """The speaker's action and utterance (``""`` in numeric mode), checked and cleaned.

        Args:
            actions: The step's actions, by agent name.
            speaker: Name of the agent whose turn it is.

        Raises:
            ValueError: On a missing, malformed or out-of-range speaker action.
        """
        if speaker not in actions:
            raise ValueError(f"actions: no action for the speaker {speaker!r}")
        action, utterance = actions[speaker], ""
        if self.mode == "text":
            if not isinstance(action, Mapping) or "act" not in action:
                raise ValueError(
                    f"actions[{speaker!r}]: text mode expects a dict with 'act' "
                    f"and 'utterance' (got {action!r})"
                )
            utterance = action.get("utterance", "")
            if not isinstance(utterance, str):
                raise ValueError(
                    f"actions[{speaker!r}]['utterance']: must be a str "
                    f"(got {type(utterance).__name__})"
                )
            utterance = clean_utterance(utterance, self.max_utterance_length)
            action = action["act"]
        if (
            isinstance(action, bool)
            or not isinstance(action, int | np.integer)
            or not (0 <= action < self.n_actions)
        ):
            raise ValueError(
                f"actions[{speaker!r}]: act must be an int in "
                f"[0, {self.n_actions - 1}] (got {action!r})"
            )
        return int(action), utterance


@dataclass(frozen=True, eq=False)
class ConversationV1Rules(ConversationRules):
    """Conversation-v1's validated arguments: v0's and the repetition window."""

    repetition_window: int

    @classmethod
    def from_rules(cls, rules: ConversationRules, repetition_window: int) -> ConversationV1Rules:
        """v0's validated arguments with a repetition window.

        Raises:
            ValueError: If ``repetition_window`` is not a positive int.
        """
        _check_positive_int("repetition_window", repetition_window)
        fields = {field.name: getattr(rules, field.name) for field in dataclasses.fields(rules)}
        return cls(**fields, repetition_window=int(repetition_window))

    def appraisal_bounds(self) -> dict[str, tuple[float, float]]:
        """Each appraisal entry's bounds: repeats in the window, valence, surprise."""
        return {
            "repeats": (0.0, float(self.repetition_window)),
            "valence": (-1.0, 1.0),
            "surprise": (-MAX_SURPRISE, MAX_SURPRISE),
        }

    def parse_appraisal(self, action: Any, speaker: str) -> dict[str, np.ndarray]:
        """The listeners' appraisal a text-mode action carries, checked; ``{}`` without one.

        Args:
            action: The speaker's action, already checked by :meth:`parse_action` (in text
                mode a dict).
            speaker: Name of the agent whose turn it is.

        Returns:
            The given entries of ``APPRAISAL_KEYS``, each a float64 ``(n_agents,)`` array.

        Raises:
            ValueError: Naming the entry that is unknown, not ``(n_agents,)`` numbers, not
                finite or out of its bounds.
        """
        if self.mode != "text":
            return {}
        appraisal = action.get("appraisal")
        if appraisal is None:
            return {}
        where = f"actions[{speaker!r}]['appraisal']"
        if not isinstance(appraisal, Mapping):
            raise ValueError(
                f"{where}: must be a dict with keys among {APPRAISAL_KEYS} (got {appraisal!r})"
            )
        unknown = sorted(set(appraisal) - set(APPRAISAL_KEYS), key=str)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown} (known: {APPRAISAL_KEYS})")
        parsed = {}
        for key, (low, high) in self.appraisal_bounds().items():
            if key not in appraisal:
                continue
            try:
                array = np.asarray(appraisal[key], dtype=np.float64)
            except (TypeError, ValueError):
                array = np.empty(0)
            if array.shape != (self.n_agents,):
                raise ValueError(
                    f"{where}[{key!r}]: must be {self.n_agents} numbers, one per agent "
                    f"(got {appraisal[key]!r})"
                )
            if not np.isfinite(array).all():
                raise ValueError(f"{where}[{key!r}]: must be finite (got {array.tolist()})")
            if ((array < low) | (array > high)).any():
                raise ValueError(
                    f"{where}[{key!r}]: must be in [{low:g}, {high:g}] (got {array.tolist()})"
                )
            parsed[key] = array
        return parsed


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}: must be a positive int (got {value!r})")


def clean_utterance(utterance: str, max_length: int) -> str:
    """An utterance as the chat shows it: ASCII on one line, at most ``max_length`` characters.

    Accented letters lose their accents (``é`` -> ``e``), other whitespace becomes a space and
    any other character ``?``.
    """
    return "".join(map(_ascii_character, utterance[:max_length]))[:max_length]


def _ascii_character(character: str) -> str:
    if character in UTTERANCE_CHARSET:
        return character
    if character.isspace():
        return " "
    base = unicodedata.normalize("NFKD", character).encode("ascii", "ignore").decode()
    return "".join(c for c in base if c in UTTERANCE_CHARSET) or "?"


def ask_key(utterance: str) -> str:
    """What makes two asks identical: their text, ignoring case and spacing."""
    return " ".join(utterance.lower().split())


def chat_line(speaker: int, act: int, addressee: int, utterance: str) -> str:
    """A turn as a line of the chat: ``"agent_0 -> agent_2 (ask): <utterance>"``."""
    if act == SILENT:
        line = f"agent_{speaker} (silent)"
    else:
        line = f"agent_{speaker} -> agent_{addressee} ({ACTS[act]})"
    return f"{line}: {utterance}" if utterance else line
