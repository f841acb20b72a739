"""Seeded next-token sampling with per-token entropies, shared by the local backends.

Each prompt of a batch draws from its own :class:`numpy.random.Generator`, seeded from
``(seed, prompt index)``, so a prompt's tokens do not depend on which other prompts share
its batch or when they finish. Every draw reports the entropy of the model's full
next-token distribution at temperature 1, the entropy of the distribution actually sampled
from, and the log-probability (at temperature 1) of the drawn token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Seed",
    "TokenDraw",
    "TokenSampler",
    "Truncation",
    "check_seed",
    "per_prompt_temperatures",
    "prompt_seed",
]

#: A sampler's seed: a root seed, one seed sequence per prompt, or ``None`` (fresh entropy).
Seed = int | Sequence[np.random.SeedSequence] | None


def per_prompt_temperatures(temperature: float | Sequence[float], n_prompts: int) -> np.ndarray:
    """One validated sampling temperature per prompt.

    Args:
        temperature: A temperature for every prompt, or one per prompt; 0 means greedy.
        n_prompts: Number of prompts in the batch.

    Returns:
        Float array of shape ``(n_prompts,)``.

    Raises:
        ValueError: If a temperature is negative or not finite, or the count does not match.
    """
    if isinstance(temperature, int | float):
        temperatures = np.full(n_prompts, float(temperature))
    else:
        temperatures = np.asarray(temperature, dtype=np.float64)
        if temperatures.shape != (n_prompts,):
            raise ValueError(
                f"temperature: expected one value or {n_prompts} (one per prompt), "
                f"got shape {temperatures.shape}"
            )
    bad = ~np.isfinite(temperatures) | (temperatures < 0)
    if np.any(bad):
        index = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"temperature[{index}]: must be finite and >= 0 (got {temperatures[index]})"
        )
    return temperatures


def check_seed(seed: Seed, n_prompts: int) -> int | tuple[np.random.SeedSequence, ...] | None:
    """The seed of a ``generate`` call, checked.

    Args:
        seed: ``None``, a non-negative root seed, or one seed sequence per prompt.
        n_prompts: Number of prompts in the batch.

    Returns:
        ``None``, the root seed as a Python int, or the seed sequences as a tuple.

    Raises:
        ValueError: If the seed is none of these, or the seed sequences do not match the prompts.
    """
    if seed is None:
        return None
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"seed: must be >= 0 (got {seed})")
        return int(seed)
    if isinstance(seed, bool | str | bytes) or not isinstance(seed, Sequence):
        raise ValueError(
            f"seed: expected None, an integer or one SeedSequence per prompt (got {seed!r})"
        )
    sequences = tuple(seed)
    if len(sequences) != n_prompts:
        raise ValueError(
            f"seed: expected one seed sequence per prompt ({n_prompts}), got {len(sequences)}"
        )
    for index, sequence in enumerate(sequences):
        if not isinstance(sequence, np.random.SeedSequence):
            raise ValueError(
                f"seed[{index}]: expected a numpy.random.SeedSequence (got {sequence!r})"
            )
    return sequences


@dataclass(frozen=True)
class Truncation:
    """Which tokens sampling may draw: the tempered distribution cut to its head, renormalised.

    Applied after the temperature, in the order top-k, top-p, min-p (as llama.cpp and vLLM
    do). The entropy recorded as ``sampled_entropy`` is that of the truncated distribution
    actually sampled from; ``token_entropy`` stays the model's full distribution at 1.

    Attributes:
        top_p: Keep the smallest set of most likely tokens whose probability reaches top_p.
        top_k: Keep the k most likely tokens (0 keeps all).
        min_p: Drop tokens below min_p times the most likely token's probability.
    """

    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p: must be in (0, 1] (got {self.top_p})")
        if self.top_k < 0:
            raise ValueError(f"top_k: must be >= 0 (got {self.top_k})")
        if not 0.0 <= self.min_p < 1.0:
            raise ValueError(f"min_p: must be in [0, 1) (got {self.min_p})")

    @property
    def is_identity(self) -> bool:
        """Whether nothing is cut."""
        return self.top_p == 1.0 and self.top_k == 0 and self.min_p == 0.0

    def keep(self, weights: np.ndarray) -> np.ndarray:
        """The boolean mask of the tokens kept, from unnormalised probabilities (one row)."""
        keep = weights > 0
        if self.top_k and self.top_k < weights.size:
            cutoff = np.partition(weights, weights.size - self.top_k)[weights.size - self.top_k]
            keep &= weights >= cutoff
        if self.top_p < 1.0:
            kept = np.where(keep, weights, 0.0)
            total = kept.sum()
            # The nucleus is almost always among the most likely few hundred tokens: sort those
            # (a partition first) and the whole vocabulary only when they fall short.
            head = min(kept.size, 512)
            order = np.argpartition(-kept, head - 1)[:head] if head < kept.size else None
            if order is None or kept[order].sum() < self.top_p * total:
                order = np.arange(kept.size)
            else:  # in index order, so ties break as in a full stable sort
                order.sort()
            order = order[np.argsort(-kept[order], kind="stable")]
            sorted_weights = kept[order]
            cumulative = np.cumsum(sorted_weights) / total
            # (a hair under top_p, so a head summing to top_p up to rounding is enough)
            count = int(np.searchsorted(cumulative, self.top_p - 1e-12, side="left")) + 1
            nucleus = np.zeros_like(keep)
            nucleus[order[:count]] = True
            keep &= nucleus
        if self.min_p > 0.0:
            keep &= weights >= self.min_p * weights[keep].max()
        return keep


def prompt_seed(seed: int, index: int) -> np.random.SeedSequence:
    """The seed sequence prompt ``index`` of a batch generated with ``seed`` draws from.

    Args:
        seed: The batch's seed.
        index: The prompt's position in the batch.

    Returns:
        ``SeedSequence(seed).spawn(index + 1)[index]``, without spawning the others.
    """
    return np.random.SeedSequence(seed, spawn_key=(index,))


def _normaliser_and_entropy(shifted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unnormalised probabilities, log-normaliser and entropy of ``softmax(shifted)``.

    ``shifted`` holds logits minus their row maximum (float64). One ``exp`` pass and a dot
    product per row, no further vocabulary-sized temporaries: this runs once per generated
    token, where the array has the whole vocabulary. It equals
    :func:`valuegym.measures.entropy.entropy_from_logits` (checked in the tests).
    """
    weights = np.exp(shifted)
    totals = weights.sum(axis=-1)
    log_totals = np.log(totals)
    with np.errstate(invalid="ignore"):
        expected_logit = np.einsum("...v,...v->...", weights, shifted) / totals
    if not np.all(np.isfinite(expected_logit)):
        # -inf logits (masked tokens) have weight 0 and must not contribute 0 * -inf.
        expected_logit = (
            np.einsum("...v,...v->...", weights, np.where(weights > 0, shifted, 0.0)) / totals
        )
    return weights, log_totals, log_totals - expected_logit


@dataclass(frozen=True)
class TokenDraw:
    """The tokens drawn for some rows of a batch, with their measurements (nats).

    Attributes:
        token_ids: Drawn token id per row.
        token_entropy: Entropy of the full next-token distribution at temperature 1.
        sampled_entropy: Entropy of the distribution the token was drawn from.
        token_logprob: Log-probability of the drawn token at temperature 1.
    """

    token_ids: np.ndarray
    token_entropy: np.ndarray
    sampled_entropy: np.ndarray
    token_logprob: np.ndarray


class TokenSampler:
    """Draws next tokens from logits at per-prompt temperatures with per-prompt generators.

    Args:
        temperatures: One temperature per prompt (see :func:`per_prompt_temperatures`);
            0 is greedy decoding (the first most likely token, no randomness used).
        seed: Root seed (prompt ``i`` draws from the root's ``i``-th child,
            :func:`prompt_seed`); ``None`` draws fresh entropy from the operating system; or
            one :class:`numpy.random.SeedSequence` per prompt, e.g. to replay a prompt that
            was the ``i``-th of another batch.
        truncation: Which tokens may be drawn (default: all).
    """

    def __init__(
        self,
        temperatures: np.ndarray,
        seed: Seed,
        truncation: Truncation | None = None,
    ) -> None:
        self.temperatures = np.asarray(temperatures, dtype=np.float64)
        self.truncation = truncation if truncation is not None else Truncation()
        if seed is None or isinstance(seed, int | np.integer):
            # Spawned children are a function of (root seed, prompt index) only.
            children = np.random.SeedSequence(seed).spawn(len(self.temperatures))
        else:
            children = list(seed)
            if len(children) != len(self.temperatures):
                raise ValueError(
                    f"seed: expected one seed sequence per prompt ({len(self.temperatures)}), "
                    f"got {len(children)}"
                )
        self._generators = [np.random.default_rng(child) for child in children]

    def draw(self, logits: np.ndarray, prompt_indices: Sequence[int]) -> TokenDraw:
        """Draw one token per row of ``logits``.

        Args:
            logits: Next-token logits, shape ``(n_rows, vocabulary)`` (any float dtype; it is
                converted to float64 once).
            prompt_indices: For each row, the index of its prompt (selects the temperature
                and the random generator).

        Returns:
            The drawn tokens and their measurements, one entry per row.
        """
        raw = np.asarray(logits)
        if raw.dtype == np.float64:  # never modify the caller's array
            shifted = raw - raw.max(axis=-1, keepdims=True)
        else:  # the one float64 copy, shifted in place
            shifted = raw.astype(np.float64)
            shifted -= shifted.max(axis=-1, keepdims=True)
        weights, log_totals, token_entropy = _normaliser_and_entropy(shifted)
        n_rows = shifted.shape[0]
        sampled_entropy = np.empty(n_rows)
        token_ids = np.empty(n_rows, dtype=np.int64)
        for row, prompt_index in enumerate(prompt_indices):
            temperature = float(self.temperatures[prompt_index])
            if temperature == 0:
                token_ids[row] = int(np.argmax(shifted[row]))
                sampled_entropy[row] = 0.0
                continue
            if temperature == 1.0:
                sample_weights = weights[row]
                sampled_entropy[row] = token_entropy[row]
            else:
                sample_weights, _, tempered_entropy = _normaliser_and_entropy(
                    shifted[row] / temperature
                )
                sampled_entropy[row] = tempered_entropy
            if not self.truncation.is_identity:
                sample_weights = np.where(self.truncation.keep(sample_weights), sample_weights, 0.0)
                probabilities = sample_weights / sample_weights.sum()
                with np.errstate(divide="ignore", invalid="ignore"):
                    terms = np.where(probabilities > 0, probabilities * np.log(probabilities), 0.0)
                sampled_entropy[row] = float(-terms.sum())
            cumulative = np.cumsum(sample_weights)
            threshold = self._generators[prompt_index].random() * cumulative[-1]
            token_ids[row] = min(
                int(np.searchsorted(cumulative, threshold, side="right")), len(cumulative) - 1
            )
        token_logprob = shifted[np.arange(n_rows), token_ids] - log_totals
        return TokenDraw(token_ids, token_entropy, sampled_entropy, token_logprob)
