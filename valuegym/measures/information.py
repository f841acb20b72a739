"""Mutual information between value state and utterance, ``I(S;Y) = H(Y) - H(Y|S)``.

Every sample is scored under every state's prompt (:func:`cross_score`); the estimator itself
(:func:`mutual_information_from_loglik`) needs only the log-likelihoods.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from valuegym.measures.entropy import nats_to_base, unit_name
from valuegym.numeric import logsumexp

if TYPE_CHECKING:
    from valuegym.lm.base import LanguageModel, Prompt

__all__ = [
    "MutualInformation",
    "cross_score",
    "mutual_information",
    "mutual_information_from_loglik",
]


@dataclass(frozen=True)
class MutualInformation:
    """Estimate of the mutual information between value state and utterance.

    Attributes:
        mutual_information: The raw estimate ``H(Y) - H(Y|S)``; it can fall slightly below 0
            by sampling noise (the true value cannot).
        marginal_entropy: ``H(Y)`` estimated with the exact state mixture ``p(y)``.
        conditional_entropy: ``H(Y|S)``.
        n_states: Number of states M (the estimate never exceeds ``log M``).
        n_samples: Samples per state K.
        standard_error: Standard error of the estimate over the M*K samples.
        unit: ``"nats"``, ``"bits"``, ...
    """

    mutual_information: float
    marginal_entropy: float
    conditional_entropy: float
    n_states: int
    n_samples: int
    standard_error: float
    unit: str = "nats"

    @property
    def clipped(self) -> float:
        """The estimate clipped at 0 (for display; keep the raw one for averaging)."""
        return max(self.mutual_information, 0.0)

    def to_dict(self) -> dict[str, Any]:
        """The estimate as a plain dict (for records)."""
        return {
            "mutual_information": self.mutual_information,
            "marginal_entropy": self.marginal_entropy,
            "conditional_entropy": self.conditional_entropy,
            "n_states": self.n_states,
            "n_samples": self.n_samples,
            "standard_error": self.standard_error,
            "unit": self.unit,
        }


def mutual_information_from_loglik(
    loglik: np.ndarray, *, base: float | None = None
) -> MutualInformation:
    """``I(S;Y)`` from cross-scored log-likelihoods (the maths, without a model).

    States ``s_1..s_M`` are equally likely; ``y_{j,1..K}`` are samples from ``p(y | s_j)``.
    With ``loglik[j, k, m] = log p(y_{jk} | s_m)``::

        H(Y|S) = -mean_{j,k} log p(y_jk | s_j)
        H(Y)   = -mean_{j,k} log( (1/M) sum_m p(y_jk | s_m) )
        I(S;Y) = H(Y) - H(Y|S) = mean_{j,k} [log p(y_jk | s_j) - log p(y_jk)]

    Because ``p(y)`` is the exact mixture of the scored likelihoods, the estimate is unbiased
    for the information the M states carry (only Monte Carlo noise, reported as a standard
    error, which can push it below 0; it is never above ``log M``). It is not clipped here.
    It is biased when the samples were not drawn from the scored distribution: sample at
    temperature 1 without truncation (``score`` is the full distribution at temperature 1;
    top-p, top-k or min-p samples bias it, either way), and note that re-tokenising a sampled text
    can score it slightly differently from how it was generated. ``H(Y)`` and ``H(Y|S)`` are
    entropies of whole token sequences and grow with length; their difference does not.

    Args:
        loglik: Array of shape ``(M, K, M)``; ``loglik[j, k, j]`` must be finite, other
            entries may be ``-inf``.
        base: Logarithm base of the result; ``None`` gives nats, ``2`` bits.

    Returns:
        The estimate with both entropies.
    """
    array = np.asarray(loglik, dtype=np.float64)
    if array.ndim != 3 or array.shape[0] != array.shape[2] or array.shape[1] == 0:
        raise ValueError(f"loglik: expected shape (M, K, M) with K >= 1 (got {array.shape})")
    n_states, n_samples, _ = array.shape
    own = array[np.arange(n_states), :, np.arange(n_states)]  # (M, K): log p(y_jk | s_j)
    if np.any(np.isnan(array)) or np.any(array == np.inf) or not np.all(np.isfinite(own)):
        raise ValueError(
            "loglik: entries must be finite or -inf, and each sample's likelihood under its "
            "own state (loglik[j, k, j]) finite"
        )
    mixture = logsumexp(array, axis=2) - math.log(n_states)  # (M, K): log p(y_jk)
    pointwise = own - mixture
    estimate = float(np.mean(pointwise))
    count = pointwise.size
    standard_error = float(np.std(pointwise, ddof=1) / math.sqrt(count)) if count > 1 else math.nan
    return MutualInformation(
        mutual_information=nats_to_base(estimate, base),
        marginal_entropy=nats_to_base(float(-np.mean(mixture)), base),
        conditional_entropy=nats_to_base(float(-np.mean(own)), base),
        n_states=n_states,
        n_samples=n_samples,
        standard_error=nats_to_base(standard_error, base),
        unit=unit_name(base),
    )


def cross_score(
    model: LanguageModel, prompts: Sequence[Prompt], samples: Sequence[Sequence[str]]
) -> np.ndarray:
    """Score every state's samples under every state's prompt.

    Args:
        model: The language model that generated the samples.
        prompts: One prompt per state, ``M`` in all.
        samples: Per state the ``K`` sampled texts (the same ``K`` for every state).

    Returns:
        ``loglik`` of shape ``(M, K, M)``:
        ``loglik[j, k, m] = log p(samples[j][k] | prompts[m])``.
    """
    n_states = len(prompts)
    if n_states == 0 or len(samples) != n_states:
        raise ValueError(
            f"samples: expected one list of samples per prompt ({n_states}), got {len(samples)}"
        )
    n_samples = len(samples[0])
    if n_samples == 0 or any(len(texts) != n_samples for texts in samples):
        raise ValueError(
            f"samples: every state needs the same number K >= 1 of samples "
            f"(got {[len(texts) for texts in samples]})"
        )
    flat = [text for texts in samples for text in texts]
    scores = np.stack(
        [np.asarray(model.score(prompt, flat), dtype=np.float64) for prompt in prompts], axis=-1
    )
    return scores.reshape(n_states, n_samples, n_states)


def mutual_information(
    model: LanguageModel,
    prompts: Sequence[Prompt],
    samples: Sequence[Sequence[str]],
    *,
    base: float | None = None,
) -> MutualInformation:
    """``I(S;Y)`` between state and utterance by cross-scoring (M score calls of M*K texts).

    See :func:`mutual_information_from_loglik` for the estimator and its caveats.

    Args:
        model: The language model that generated the samples (at temperature 1).
        prompts: One prompt per state (the state verbalised), ``M`` in all.
        samples: Per state the ``K`` sampled texts.
        base: Logarithm base of the result; ``None`` gives nats, ``2`` bits.

    Returns:
        The estimate with both entropies.
    """
    return mutual_information_from_loglik(cross_score(model, prompts, samples), base=base)
