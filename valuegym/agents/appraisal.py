"""Listeners appraise what is said to them: repetition in meaning, valence and surprise.

In ``valuegym/Conversation-v1`` text mode the speaker's action carries its listeners'
appraisal of what it says, and the env moves each listener's value state with it (load from
repeated asks, valence into mood, surprise into the value store's ``surprise`` input; see
:class:`valuegym.envs.conversation.ConversationEnv`). The appraisal needs a meaning clusterer
and language models, which sit above the envs, so an :class:`Appraiser` computes it here, one
utterance at a time, for every listener:

- **repetition**: an incoming ask repeats each earlier ask among the listener's last
  ``window`` received asks that its clusterer puts in the same meaning cluster
  (:mod:`valuegym.measures.clustering`); ``repeats`` counts them;
- **valence**: a judge reads the text (:mod:`valuegym.measures.valence`) and gives
  ``p(positive) - p(negative)``; the listener's valence input is ``weight`` times that;
- **surprise**: the listener's language model scores the utterance after the last
  ``context_lines`` chat lines the listener has seen (``-log p`` per word, in nats); the
  surprise input is ``per_nat * (surprisal - expected)``, cut to [-10, 10], and the
  listener's expectation then moves ``expected += rate * (surprisal - expected)`` (its first
  message sets it, with no surprise).

A message addressed to someone else reaches a listener with weight ``overheard`` (valence and
surprise; its repetition only counts for the addressee of an ask). Everything a listener does
not appraise is 0, and a listener with no settings appraises repetition by normalised text only
(as the env does alone).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from valuegym.lm.base import LanguageModel
from valuegym.measures.clustering import Clusterer, TextClusterer

__all__ = ["SURPRISE_BOUND", "Appraisal", "Appraiser", "ListenerAppraisal", "ListenerSettings"]

#: The surprise input is cut to ``[-SURPRISE_BOUND, SURPRISE_BOUND]`` (the env's action space).
SURPRISE_BOUND: Final = 10.0


@dataclass(frozen=True)
class ListenerSettings:
    """How one listener appraises.

    Attributes:
        clusterer: Decides whether two asks mean the same.
        valence_judge: Reads a text's valence (``valence(texts) -> array``), or ``None``: off.
        valence_weight: Valence input per unit of judged valence.
        model: The language model whose surprisal the listener feels, or ``None``: off.
        per_nat: Surprise input per nat per word above the expectation (0: off).
        rate: How far the expectation moves toward each new surprisal.
        context_lines: Chat lines before the utterance its model reads (the last ones).
        overheard: Weight of the valence and surprise of messages to someone else.
    """

    clusterer: Clusterer = field(default_factory=TextClusterer)
    valence_judge: Any = None
    valence_weight: float = 1.0
    model: LanguageModel | None = None
    per_nat: float = 0.0
    rate: float = 0.2
    context_lines: int = 0
    overheard: float = 0.0

    @property
    def feels_surprise(self) -> bool:
        """Whether this listener's surprise input can be non-zero."""
        return self.model is not None and self.per_nat > 0.0


@dataclass(frozen=True)
class ListenerAppraisal:
    """One listener's appraisal of one utterance (a row of the ``appraisals`` table).

    Attributes:
        listener: The listener's agent index.
        addressed: Whether the utterance was addressed to it.
        weight: 1 for the addressee, ``overheard`` for the others.
        repeats: Earlier asks in its window with the same meaning (asks to it only; else 0).
        judged_valence: The judge's valence of the text (NaN: no judge).
        valence: The valence input (``weight x valence_weight x judged``).
        surprisal: Surprisal of the utterance in nats per word (NaN: not scored).
        expected: The listener's expectation before this utterance (NaN: none yet).
        surprise: The surprise input.
        words: Words in the utterance.
    """

    listener: int
    addressed: bool
    weight: float
    repeats: float
    judged_valence: float
    valence: float
    surprisal: float
    expected: float
    surprise: float
    words: int

    def to_record(self) -> dict[str, Any]:
        """The appraisal's columns of an ``appraisals`` row."""
        return {
            "addressed": self.addressed,
            "weight": self.weight,
            "repeats": self.repeats,
            "repeat": self.repeats > 0,
            "judged_valence": self.judged_valence,
            "valence_input": self.valence,
            "surprisal_per_word": self.surprisal,
            "expected_surprisal": self.expected,
            "surprise_input": self.surprise,
            "words": self.words,
        }


@dataclass(frozen=True)
class Appraisal:
    """Every listener's appraisal of one utterance.

    Attributes:
        repeats: ``(n_agents,)`` repeats per listener (the env's ``appraisal["repeats"]``).
        valence: ``(n_agents,)`` valence inputs.
        surprise: ``(n_agents,)`` surprise inputs.
        listeners: One :class:`ListenerAppraisal` per listener that heard it (the addressee,
            and the others when they weigh overheard messages), in agent order.
    """

    repeats: np.ndarray
    valence: np.ndarray
    surprise: np.ndarray
    listeners: tuple[ListenerAppraisal, ...]

    def env_input(self) -> dict[str, np.ndarray]:
        """The ``appraisal`` entry of the speaker's Conversation-v1 action."""
        return {"repeats": self.repeats, "valence": self.valence, "surprise": self.surprise}


def surprisal_prompt(context: Sequence[str], header: str) -> str:
    """What a listener's model reads before an utterance: the chat it saw, then the header.

    Args:
        context: The chat lines the listener has seen, oldest first.
        header: The utterance's chat header (``"agent_2 -> agent_0 (ask):"``).

    Returns:
        Plain text; the utterance is scored as its continuation (after a space).
    """
    return "\n".join([*context, header])


def word_count(text: str) -> int:
    """Words in an utterance (whitespace-separated; at least 1)."""
    return max(1, len(text.split()))


class Appraiser:
    """Appraises each utterance for every listener of a conversation, one episode at a time.

    Args:
        settings: Per agent index, how it appraises (``None``: repetition by normalised text
            only, no valence, no surprise).
        window: Received asks a listener remembers (the env's ``repetition_window``).
        model: The appraisal model (judges' and, where set, non-LM listeners'), or ``None``;
            it also writes generated intervention variants.
    """

    def __init__(
        self,
        settings: Sequence[ListenerSettings | None],
        window: int,
        model: LanguageModel | None = None,
    ) -> None:
        if window < 1:
            raise ValueError(f"window: must be >= 1 (got {window})")
        self.settings = tuple(s if s is not None else ListenerSettings() for s in settings)
        self.window = window
        self.model = model
        self.n_agents = len(self.settings)
        self._asks: list[deque[str]] = []
        self._expected: list[float] = []
        self.reset()

    def reset(self) -> None:
        """Forget every listener's asks and expectations (a new episode)."""
        self._asks = [deque(maxlen=self.window) for _ in range(self.n_agents)]
        self._expected = [math.nan] * self.n_agents

    def appraise(
        self,
        speaker: int,
        addressee: int | None,
        is_ask: bool,
        text: str,
        context: Sequence[str],
        header: str,
    ) -> Appraisal:
        """Every listener's appraisal of what ``speaker`` said; listeners' memories advance.

        Args:
            speaker: The speaker's agent index (it does not appraise itself).
            addressee: The addressee's agent index, ``None`` for an unaddressed act.
            is_ask: Whether the act is an ask (only asks repeat).
            text: The utterance.
            context: The chat every listener saw before it, oldest first.
            header: The utterance's chat header, e.g. ``"agent_2 -> agent_0 (ask):"``.

        Returns:
            The appraisal: the env's input and one row per listener that heard it.
        """
        n = self.n_agents
        repeats, valence, surprise = np.zeros(n), np.zeros(n), np.zeros(n)
        heard = [
            (listener, listener == addressee, 1.0 if listener == addressee else s.overheard)
            for listener, s in enumerate(self.settings)
            if listener != speaker and (listener == addressee or s.overheard > 0.0) and text.strip()
        ]
        judged = self._judged_valence(text, [self.settings[listener] for listener, _, _ in heard])
        surprisals = self._surprisals(text, context, header, heard)
        rows = []
        for listener, addressed, weight in heard:
            s = self.settings[listener]
            if addressed and is_ask:
                repeats[listener] = self._repeats(listener, text)
            judgement = judged.get(id(s.valence_judge), math.nan)
            if not math.isnan(judgement):
                valence[listener] = float(np.clip(weight * s.valence_weight * judgement, -1, 1))
            expected = self._expected[listener]
            per_word = surprisals.get(listener, math.nan)
            if not math.isnan(per_word):
                if not math.isnan(expected):
                    raw = weight * s.per_nat * (per_word - expected)
                    surprise[listener] = float(np.clip(raw, -SURPRISE_BOUND, SURPRISE_BOUND))
                    self._expected[listener] = expected + s.rate * (per_word - expected)
                else:
                    self._expected[listener] = per_word
            rows.append(
                ListenerAppraisal(
                    listener=listener,
                    addressed=addressed,
                    weight=weight,
                    repeats=float(repeats[listener]),
                    judged_valence=judgement,
                    valence=float(valence[listener]),
                    surprisal=per_word,
                    expected=expected,
                    surprise=float(surprise[listener]),
                    words=word_count(text),
                )
            )
        if is_ask and addressee is not None and addressee != speaker:
            self._asks[addressee].append(text)
        return Appraisal(repeats, valence, surprise, tuple(rows))

    def last_ask(self, listener: int) -> str | None:
        """The last ask ``listener`` received, or ``None``."""
        asks = self._asks[listener]
        return asks[-1] if asks else None

    def _repeats(self, listener: int, text: str) -> int:
        earlier = list(self._asks[listener])
        if not earlier:
            return 0
        labels = self.settings[listener].clusterer.cluster([*earlier, text])
        return int(np.sum(labels[:-1] == labels[-1]))

    def _judged_valence(self, text: str, settings: Sequence[ListenerSettings]) -> dict[int, float]:
        """Each distinct judge's valence of the text, by the judge's ``id``."""
        judged: dict[int, float] = {}
        for s in settings:
            judge = s.valence_judge
            if judge is not None and id(judge) not in judged:
                judged[id(judge)] = float(np.asarray(judge.valence([text]))[0])
        return judged

    def _surprisals(
        self,
        text: str,
        context: Sequence[str],
        header: str,
        heard: Sequence[tuple[int, bool, float]],
    ) -> dict[int, float]:
        """Surprisal per word of the text under each feeling listener's model (one call each)."""
        by_model: dict[tuple[int, int], float] = {}
        found: dict[int, float] = {}
        for listener, _, weight in heard:
            s = self.settings[listener]
            if not s.feels_surprise or weight == 0.0:
                continue
            assert s.model is not None
            key = (id(s.model), s.context_lines)
            if key not in by_model:
                seen = list(context)[-s.context_lines :] if s.context_lines else []
                prompt = surprisal_prompt(seen, header)
                loglik = float(s.model.score(prompt, [" " + text])[0])
                by_model[key] = -loglik / word_count(text)
            found[listener] = by_model[key]
        return found
