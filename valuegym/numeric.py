"""The ground floor: numeric helpers every other package uses.

Log-domain softmax and sums, sampling an index at a temperature, the Gini index and seed
derivation. Nothing here imports from the rest of valuegym.

Example:
    >>> import numpy as np
    >>> round(gini(np.array([0.0, 0.0, 1.0])), 4)
    0.6667
    >>> seed_for(7, 0, 1) == seed_for(7, 0, 1)
    True
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from typing import Final

import numpy as np

__all__ = [
    "RUN_WIDE",
    "SeedSalt",
    "gini",
    "log_softmax",
    "logsumexp",
    "sample_by_temperature",
    "seed_for",
]


def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Log-probabilities of ``softmax(logits / temperature)`` along the last axis.

    Args:
        logits: Unnormalised scores, shape ``(..., vocabulary)``.
        temperature: Positive temperature; ``1`` is the model's own distribution.

    Returns:
        Array of the same shape holding log-probabilities (``-inf`` where a logit is ``-inf``).
    """
    if temperature <= 0:
        raise ValueError(f"temperature: must be > 0 for a distribution (got {temperature})")
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    shifted = scaled - np.max(scaled, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def logsumexp(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log(sum(exp(values)))`` along ``axis`` without overflow; ``-inf`` when all are ``-inf``.

    Args:
        values: Log-domain numbers.
        axis: The axis to reduce.

    Returns:
        The array with ``axis`` reduced.
    """
    array = np.asarray(values, dtype=np.float64)
    peak = np.max(array, axis=axis, keepdims=True)
    # An all -inf slice would give -inf - -inf = nan; shift it by 0 instead.
    peak = np.where(np.isfinite(peak), peak, 0.0)
    with np.errstate(divide="ignore"):
        summed = np.log(np.sum(np.exp(array - peak), axis=axis, keepdims=True))
    return np.squeeze(summed + peak, axis=axis)


def sample_by_temperature(scores: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """Draw an index with probability ``softmax(scores / temperature)``.

    Args:
        scores: Finite score per option (higher is preferred), e.g. wanting or log-likelihood.
        temperature: Non-negative; 0 picks the highest score (the first on ties).
        rng: Source of randomness (unused at temperature 0).

    Returns:
        The drawn index.
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"scores: expected a non-empty 1-D array of finite numbers (got {values})")
    if not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature: must be finite and >= 0 (got {temperature})")
    if temperature == 0:
        return int(np.argmax(values))
    probabilities = np.exp(log_softmax(values, temperature))
    return int(rng.choice(values.size, p=probabilities / probabilities.sum()))


def gini(values: Sequence[float] | np.ndarray) -> float:
    """Gini coefficient of non-negative amounts: 0 when equal, ``1 - 1/n`` when one has all.

    Args:
        values: Amounts per member (e.g. food harvested per agent); must be >= 0.

    Returns:
        The coefficient; ``0`` when every amount is 0, ``nan`` for no members.
    """
    data = np.sort(np.asarray(values, dtype=np.float64))
    if data.size == 0:
        return math.nan
    if np.any(data < 0) or not np.all(np.isfinite(data)):
        raise ValueError("values: Gini needs finite, non-negative amounts")
    total = float(data.sum())
    if total == 0:
        return 0.0
    ranks = np.arange(1, data.size + 1)
    return float((2.0 * np.dot(ranks, data)) / (data.size * total) - (data.size + 1) / data.size)


class SeedSalt(enum.IntEnum):
    """What a seed is for: one stream per purpose, kept apart by this salt.

    A seed is derived from the run seed, the episode (or :data:`RUN_WIDE` for a stream that
    belongs to the whole run), the salt and the position inside the episode (step, agent, ...):
    :meth:`seed`. The values are part of the records' reproducibility: never renumber them.
    """

    ENV = 0
    POLICY = 1
    ACT = 2
    SPEAK = 3
    SEMANTIC = 4
    INFORMATION = 5
    REPLAY = 6
    PLACEBO = 7
    INTERVENTION = 8

    def seed(self, run_seed: int, episode: int, *position: int) -> int:
        """The seed of this purpose at a position.

        Args:
            run_seed: The scenario's seed.
            episode: The episode number, or :data:`RUN_WIDE`.
            *position: Further non-negative integers (step, agent row, ...).

        Returns:
            An integer in ``[0, 2**32)``.
        """
        return seed_for(run_seed, episode, int(self), *position)


#: The episode slot of a stream that belongs to the whole run rather than one episode (no
#: episode has this number: a scenario has at most a million episodes).
RUN_WIDE: Final = 2**32 - 1


def seed_for(*parts: int) -> int:
    """A 32-bit seed derived from the run seed and positions (episode, step, ...).

    Args:
        *parts: Non-negative integers, the run seed first.

    Returns:
        An integer in ``[0, 2**32)``, the same for the same parts.
    """
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])
