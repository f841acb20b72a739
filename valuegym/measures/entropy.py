"""Entropy of what a language model says, per token and per utterance (nats; ``base=2`` for bits).

- **Token level**: the entropy of a next-token distribution given as logits, at the model's own
  temperature 1 (its predictive uncertainty) or at the temperature actually sampled from
  (:func:`entropy_from_logits`).
- **Utterance level**: mean and total token entropy, surprisal and length of one generated
  utterance (:class:`UtteranceEntropy`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from valuegym.numeric import log_softmax

if TYPE_CHECKING:
    from valuegym.lm.base import Generation

__all__ = ["UtteranceEntropy", "entropy", "entropy_from_logits", "unit_name"]


def unit_name(base: float | None) -> str:
    """Name of the unit of an information quantity in logarithm base ``base``.

    Args:
        base: Logarithm base; ``None`` or ``e`` is nats, ``2`` bits, ``10`` hartleys.

    Returns:
        ``"nats"``, ``"bits"``, ``"hartleys"`` or ``"log<base>"``.
    """
    if base is None or base == math.e:
        return "nats"
    check_base(base)
    if base == 2:
        return "bits"
    return "hartleys" if base == 10 else f"log{base:g}"


def check_base(base: float | None) -> None:
    if base is not None and (not math.isfinite(base) or base <= 0 or base == 1):
        raise ValueError(f"base: must be a positive number other than 1, or None (got {base})")


def nats_to_base(nats: float, base: float | None) -> float:
    check_base(base)
    return nats if base is None else nats / math.log(base)


def entropy(probabilities: np.ndarray, *, base: float | None = None) -> np.ndarray:
    """Shannon entropy ``-sum p log p`` along the last axis (``0 log 0 = 0``).

    Args:
        probabilities: Non-negative weights along the last axis; they are normalised here.
        base: Logarithm base of the result; ``None`` gives nats.

    Returns:
        The entropy, with the last axis reduced.
    """
    weights = np.asarray(probabilities, dtype=np.float64)
    if np.any(weights < 0):
        raise ValueError("probabilities: must be non-negative")
    total = np.sum(weights, axis=-1, keepdims=True)
    p = weights / total
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    result = -np.sum(terms, axis=-1)
    return result / np.log(base) if base is not None else result


def entropy_from_logits(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Entropy of ``softmax(logits / temperature)`` along the last axis, in nats.

    Temperature 0 means greedy decoding: the sampled distribution is a point mass and
    its entropy is 0.

    Args:
        logits: Unnormalised scores, shape ``(..., vocabulary)``.
        temperature: Non-negative temperature.

    Returns:
        The entropy, with the last axis reduced.
    """
    if temperature == 0:
        return np.zeros(np.shape(logits)[:-1])
    log_p = log_softmax(logits, temperature)
    p = np.exp(log_p)
    with np.errstate(invalid="ignore"):  # 0 * -inf where a logit is -inf; masked below
        terms = p * log_p
    return -np.sum(np.where(p > 0, terms, 0.0), axis=-1)


@dataclass(frozen=True)
class UtteranceEntropy:
    """Entropy measurements of one generated utterance.

    Means over tokens are ``nan`` for an empty utterance (there is nothing to average).

    Attributes:
        length: Number of generated tokens.
        mean_token_entropy: Mean over tokens of the model's predictive entropy at temperature 1.
        total_token_entropy: Sum over tokens of the predictive entropy.
        mean_sampled_entropy: Mean over tokens of the entropy of the distribution actually
            sampled from (after the sampling temperature; 0 for greedy decoding).
        total_sampled_entropy: Sum over tokens of the sampled-distribution entropy.
        surprisal: ``-sum_t log p(y_t | prompt, y_<t)`` at temperature 1.
        mean_surprisal: Surprisal per token.
        is_estimate: True when the token entropies come from truncated (top-k) distributions;
            they are then lower bounds.
        total_entropy_tail_bound: With ``is_estimate``, the summed per-token bound on the entropy
            the truncated tail can add (the true total lies in
            ``[total_token_entropy, total_token_entropy + total_entropy_tail_bound]``); else None.
        unit: ``"nats"``, ``"bits"``, ... (see :func:`unit_name`).
    """

    length: int
    mean_token_entropy: float
    total_token_entropy: float
    mean_sampled_entropy: float
    total_sampled_entropy: float
    surprisal: float
    mean_surprisal: float
    is_estimate: bool = False
    total_entropy_tail_bound: float | None = None
    unit: str = "nats"

    @classmethod
    def from_generation(
        cls, generation: Generation, *, base: float | None = None
    ) -> UtteranceEntropy:
        """Measure a :class:`~valuegym.lm.base.Generation`.

        Args:
            generation: The generated utterance with its per-token measurements (nats).
            base: Logarithm base of the result; ``None`` gives nats, ``2`` bits.

        Returns:
            The utterance's measurements in the requested unit.
        """
        check_base(base)
        token_entropy = np.asarray(generation.token_entropy, dtype=np.float64)
        sampled_entropy = np.asarray(generation.sampled_entropy, dtype=np.float64)
        token_logprob = np.asarray(generation.token_logprob, dtype=np.float64)
        length = generation.length
        for name, values in (
            ("token_entropy", token_entropy),
            ("sampled_entropy", sampled_entropy),
            ("token_logprob", token_logprob),
        ):
            if values.shape != (length,):
                raise ValueError(
                    f"generation.{name}: expected one value per generated token "
                    f"({length}), got shape {values.shape}"
                )
        scale = 1.0 if base is None else 1.0 / math.log(base)
        total_entropy = float(np.sum(token_entropy)) * scale
        total_sampled = float(np.sum(sampled_entropy)) * scale
        surprisal = float(-np.sum(token_logprob)) * scale
        tail_bound = None
        if generation.entropy_is_estimate and generation.entropy_tail_bound is not None:
            tail_bound = float(np.sum(generation.entropy_tail_bound)) * scale
        return cls(
            length=length,
            mean_token_entropy=total_entropy / length if length else math.nan,
            total_token_entropy=total_entropy,
            mean_sampled_entropy=total_sampled / length if length else math.nan,
            total_sampled_entropy=total_sampled,
            surprisal=surprisal,
            mean_surprisal=surprisal / length if length else math.nan,
            is_estimate=generation.entropy_is_estimate,
            total_entropy_tail_bound=tail_bound,
            unit=unit_name(base),
        )

    def to_dict(self) -> dict[str, Any]:
        """The measurements as a plain dict (for records)."""
        return {
            "length": self.length,
            "mean_token_entropy": self.mean_token_entropy,
            "total_token_entropy": self.total_token_entropy,
            "mean_sampled_entropy": self.mean_sampled_entropy,
            "total_sampled_entropy": self.total_sampled_entropy,
            "surprisal": self.surprisal,
            "mean_surprisal": self.mean_surprisal,
            "is_estimate": self.is_estimate,
            "total_entropy_tail_bound": self.total_entropy_tail_bound,
            "unit": self.unit,
        }
