"""Judging bidirectional entailment, for clustering by meaning (Kuhn et al. 2023; Farquhar 2024).

Two utterances say the same thing when each entails the other: "Yes, I'll come to the party"
and "No, I won't come to the party" share a topic and most words (a sentence embedding puts
them together) but neither entails the other, so they land in different clusters. Who decides
entailment is an :class:`EntailmentJudge`:

- :class:`NLIJudge`: a natural-language-inference cross-encoder (e.g. a DeBERTa fine-tuned on
  MNLI) loaded by transformers from a local folder or a model id;
- :class:`LanguageModelJudge`: any valuegym :class:`~valuegym.lm.base.LanguageModel`, asked
  in a fixed format (:data:`ENTAILMENT_QUESTION`) and read from the scores of the answers
  ``"Yes"`` and ``"No"``, never from free text.

:class:`~valuegym.measures.clustering.EntailmentClusterer` groups utterances with a judge: it
asks at most once per pair of distinct utterances (both directions of a pair in the same
batch), skips pairs that transitivity already settles, and caches every judgement for the
life of the clusterer (one run).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from valuegym.lm.base import LanguageModel

__all__ = [
    "ENTAILMENT_ANSWERS",
    "ENTAILMENT_QUESTION",
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
