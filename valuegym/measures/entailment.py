"""Clustering by bidirectional entailment, with a pluggable judge (Kuhn et al. 2023; Farquhar 2024).

Two utterances say the same thing when each entails the other: "Yes, I'll come to the party"
and "No, I won't come to the party" share a topic and most words (a sentence embedding puts
them together) but neither entails the other, so they land in different clusters. Who decides
entailment is an :class:`EntailmentJudge`:

- :class:`NLIJudge`: a natural-language-inference cross-encoder (e.g. a DeBERTa fine-tuned on
  MNLI) loaded by transformers from a local folder or a model id;
- :class:`LanguageModelJudge`: any valuegym :class:`~valuegym.lm.base.LanguageModel`, asked
  in a fixed format (:data:`ENTAILMENT_QUESTION`) and read from the scores of the answers
  ``"Yes"`` and ``"No"``, never from free text.

:class:`EntailmentClusterer` asks the judge at most once per pair of distinct utterances
(both directions of a pair in the same batch), skips pairs that transitivity already
settles, and caches every judgement for the life of the clusterer (one run).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from valuegym.measures.clustering import _first_appearance_labels, normalise_text

if TYPE_CHECKING:
    from valuegym.lm.base import LanguageModel

__all__ = [
    "ENTAILMENT_ANSWERS",
    "ENTAILMENT_QUESTION",
    "EntailmentClusterer",
    "EntailmentJudge",
    "LanguageModelJudge",
    "NLIJudge",
]

#: The question a :class:`LanguageModelJudge` asks, as the user turn of a chat; ``{premise}``
#: and ``{hypothesis}`` are the two utterances. Fixed so that judgements (and the calibration
#: figures of a judge) stay comparable between runs and models.
ENTAILMENT_QUESTION = (
    "Statement A: {premise}\n"
    "Statement B: {hypothesis}\n"
    "If statement A is true, must statement B also be true? "
    "Statements that accept and decline, or agree and disagree, contradict each other. "
    "Answer Yes or No."
)

#: The two scored answers: ``p(entails) = p("Yes") / (p("Yes") + p("No"))``.
ENTAILMENT_ANSWERS = ("Yes", "No")


@runtime_checkable
class EntailmentJudge(Protocol):
    """Decides, for pairs of texts, how likely the first (premise) entails the second."""

    def entailment_probability(
        self, premises: Sequence[str], hypotheses: Sequence[str]
    ) -> np.ndarray:
        """Probability that each premise entails its hypothesis, for a batch of pairs.

        Args:
            premises: The first text of each pair.
            hypotheses: The second text of each pair, as many as ``premises``.

        Returns:
            Float array of shape ``(len(premises),)`` with values in ``[0, 1]``.
        """
        ...

    def describe(self) -> dict[str, Any]:
        """Name and settings of the judge, for run manifests."""
        ...


def _label_index(id2label: dict[int, str], prefix: str) -> int:
    matches = [int(i) for i, name in id2label.items() if str(name).lower().startswith(prefix)]
    if len(matches) != 1:
        raise ValueError(
            f"NLI model: expected one label starting with {prefix!r} in id2label "
            f"(got {dict(id2label)}); pass a model fine-tuned for entailment/neutral/contradiction"
        )
    return matches[0]


class NLIJudge:
    """A natural-language-inference cross-encoder loaded by transformers.

    The model reads ``(premise, hypothesis)`` as one sequence pair and classifies it as
    entailment, neutral or contradiction; ``p(entails)`` is the softmax probability of the
    entailment label (found by name in the model's ``id2label``). Farquhar et al. used
    ``microsoft/deberta-large-mnli``; any model with those three labels works. It is loaded on
    first use, so constructing a judge costs nothing.

    Args:
        model: A local folder or a Hugging Face model id (downloaded by transformers unless
            ``HF_HUB_OFFLINE=1``).
        device: Torch device, ``"cpu"`` by default.
        batch_size: Pairs per forward pass.
        max_length: Tokens per pair beyond which the pair is truncated.
    """

    def __init__(
        self, model: str, *, device: str = "cpu", batch_size: int = 32, max_length: int = 256
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1 (got {batch_size})")
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self._loaded: tuple[Any, Any, int] | None = None

    def _load(self) -> tuple[Any, Any, int]:
        if self._loaded is None:
            try:
                from transformers import AutoModelForSequenceClassification, AutoTokenizer
            except ImportError as error:
                raise ImportError(
                    "the NLI judge needs transformers and torch: pip install 'valuegym[lm]'"
                ) from error
            tokenizer = AutoTokenizer.from_pretrained(self.model)
            network = AutoModelForSequenceClassification.from_pretrained(self.model)
            network = network.to(self.device).eval()
            entailment = _label_index(network.config.id2label, "entail")
            self._loaded = (tokenizer, network, entailment)
        return self._loaded

    def entailment_probability(
        self, premises: Sequence[str], hypotheses: Sequence[str]
    ) -> np.ndarray:
        """Softmax probability of the entailment label for each pair (see the class)."""
        import torch

        if len(premises) != len(hypotheses):
            raise ValueError("premises and hypotheses: expected as many of each")
        tokenizer, network, entailment = self._load()
        probabilities = np.zeros(len(premises))
        for start in range(0, len(premises), self.batch_size):
            stop = start + self.batch_size
            encoded = tokenizer(
                list(premises[start:stop]),
                list(hypotheses[start:stop]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                logits = network(**encoded).logits.float()
            probabilities[start:stop] = torch.softmax(logits, dim=-1)[:, entailment].cpu().numpy()
        return probabilities

    def describe(self) -> dict[str, Any]:
        """Name and settings of the judge."""
        return {"judge": "nli", "model": self.model, "max_length": self.max_length}


class LanguageModelJudge:
    """Any valuegym language model as the entailment judge, read from its scored answer.

    For each pair the model gets :data:`ENTAILMENT_QUESTION` as a chat user turn and scores
    the two answers :data:`ENTAILMENT_ANSWERS`; ``p(entails)`` is the share of ``"Yes"`` in
    the probability of the two, ``sigmoid(log p("Yes") - log p("No"))``. Scoring instead of
    generating makes the judgement deterministic and graded, and needs no answer parsing.
    The interface scores one prompt per call, so a batch of n directed pairs is n ``score``
    calls, each reading a short prompt and two one-token answers.

    Args:
        model: The language model (any backend).
    """

    def __init__(self, model: LanguageModel) -> None:
        self.model = model

    def entailment_probability(
        self, premises: Sequence[str], hypotheses: Sequence[str]
    ) -> np.ndarray:
        """``p("Yes") / (p("Yes") + p("No"))`` for each pair (see the class)."""
        if len(premises) != len(hypotheses):
            raise ValueError("premises and hypotheses: expected as many of each")
        probabilities = np.zeros(len(premises))
        for index, (premise, hypothesis) in enumerate(zip(premises, hypotheses, strict=True)):
            question = ENTAILMENT_QUESTION.format(premise=premise, hypothesis=hypothesis)
            yes, no = self.model.score([{"role": "user", "content": question}], ENTAILMENT_ANSWERS)
            probabilities[index] = 1.0 / (1.0 + math.exp(float(no) - float(yes)))
        return probabilities

    def describe(self) -> dict[str, Any]:
        """Name and settings of the judge (the model's name and the question asked)."""
        return {
            "judge": "language-model",
            "model": getattr(self.model, "name", type(self.model).__name__),
            "question": ENTAILMENT_QUESTION,
            "answers": list(ENTAILMENT_ANSWERS),
        }


@dataclass
class EntailmentClusterer:
    """Clusters utterances by bidirectional entailment: same meaning when each entails the other.

    Utterances with the same normalised text (:func:`normalise_text`) share a cluster without
    asking. The distinct ones are then clustered as in Farquhar et al.'s reference code
    (``get_semantic_ids``): the first unassigned utterance opens a cluster and every later one
    that it entails both ways joins it, except that an utterance already placed is not
    compared again. Each such round is one batch to the judge, holding both
    directions of every pair still open; a pair already settled by transitivity (one side
    assigned) is not asked, and a pair asked before in this clusterer's life is read from its
    cache. So K samples cost at most ``K (K - 1) / 2`` pair judgements, in as many batches as
    there are clusters. Empty utterances form their own cluster.

    Attributes:
        judge: Who decides entailment.
        threshold: ``p(entails)`` at or above which one direction counts as entailed; a pair
            is the same meaning when both directions reach it.
        judgements: Cache of ``p(entails)`` per ordered ``(premise, hypothesis)`` pair.
        pair_judgements: Pairs of distinct utterances sent to the judge so far.
        judge_batches: Batches sent to the judge so far.
    """

    judge: EntailmentJudge
    threshold: float = 0.5
    judgements: dict[tuple[str, str], float] = field(default_factory=dict, repr=False)
    pair_judgements: int = field(default=0, repr=False)
    judge_batches: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold: a probability in (0, 1] (got {self.threshold})")

    def _judge(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Ask the judge, in one batch, both directions of each pair not in the cache yet."""
        asked = [
            direction
            for first, second in pairs
            if first != second
            for direction in ((first, second), (second, first))
            if direction not in self.judgements
        ]
        asked = list(dict.fromkeys(asked))
        if not asked:
            return
        premises, hypotheses = zip(*asked, strict=True)
        probabilities = self.judge.entailment_probability(premises, hypotheses)
        self.judgements.update(zip(asked, (float(p) for p in probabilities), strict=True))
        self.judge_batches += 1
        self.pair_judgements += len({frozenset(direction) for direction in asked})

    def same_meaning(self, anchor: str, others: Sequence[str]) -> np.ndarray:
        """Whether ``anchor`` and each of ``others`` entail each other (one judge batch).

        Args:
            anchor: One utterance.
            others: Utterances to compare it with.

        Returns:
            Bool array of shape ``(len(others),)``.
        """
        self._judge([(anchor, other) for other in others])
        return np.array(
            [
                other == anchor
                or min(self.judgements[anchor, other], self.judgements[other, anchor])
                >= self.threshold
                for other in others
            ],
            dtype=bool,
        )

    def entailment_matrix(self, texts: Sequence[str]) -> np.ndarray:
        """``p(text i entails text j)`` for every ordered pair, in one judge batch.

        The input of Kernel Language Entropy
        (:func:`~valuegym.measures.kernel_entropy.semantic_graph_from_entailment`); unlike
        :meth:`cluster` it needs every pair, so transitivity saves nothing.

        Args:
            texts: The utterances.

        Returns:
            Float array of shape ``(K, K)``, 1 on the diagonal and between equal texts.
        """
        stripped = [text.strip() for text in texts]
        distinct = list(dict.fromkeys(stripped))
        self._judge(
            [(first, second) for i, first in enumerate(distinct) for second in distinct[i + 1 :]]
        )
        return np.array(
            [[1.0 if a == b else self.judgements[a, b] for b in stripped] for a in stripped]
        )

    def cluster(self, texts: Sequence[str]) -> np.ndarray:
        """Assign each text a meaning cluster (see the class for the judge calls).

        Args:
            texts: The utterances.

        Returns:
            Int labels numbered in order of first appearance.
        """
        keys = [normalise_text(text) for text in texts]
        first_text: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            first_text.setdefault(key, text.strip())
        distinct = list(first_text)
        cluster_of: dict[str, int] = {}
        for position, key in enumerate(distinct):
            if key in cluster_of:
                continue
            cluster_of[key] = len(set(cluster_of.values()))
            open_keys = [k for k in distinct[position + 1 :] if k not in cluster_of and k]
            if not key or not open_keys:
                continue
            same = self.same_meaning(first_text[key], [first_text[k] for k in open_keys])
            for other, joins in zip(open_keys, same, strict=True):
                if joins:
                    cluster_of[other] = cluster_of[key]
        return _first_appearance_labels([cluster_of[key] for key in keys])

    def describe(self) -> dict[str, Any]:
        """Name and settings of the clusterer, for run manifests."""
        return {"clusterer": "entailment", "threshold": self.threshold, **self.judge.describe()}
