"""Semantic entropy over K samples of one state (Kuhn et al. 2023; Farquhar et al., Nature 2024).

The samples are clustered by meaning and ``SE = -sum_c p(c) log p(c)``, with ``p(c)`` from the
summed sequence probabilities of a cluster's samples (probability-weighted variant) or from its
share of the samples (discrete variant) (:func:`semantic_entropy`). Both are plug-in estimates
and biased low at small K (docs/semantic_entropy.md tabulates the bias against K); K=10, as in
the papers, is the scenarios' default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from valuegym.measures.clustering import Clusterer, get_clusterer
from valuegym.measures.entropy import entropy, nats_to_base, unit_name
from valuegym.numeric import logsumexp

if TYPE_CHECKING:
    from valuegym.lm.base import Generation

__all__ = [
    "SemanticEntropy",
    "cluster_log_probabilities",
    "semantic_entropy",
    "semantic_entropy_from_labels",
]


def _check_labels(labels: np.ndarray, n_samples: int | None = None) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"labels: expected a non-empty 1-D int array (got {array!r})")
    if array.min() < 0:
        raise ValueError(f"labels: cluster numbers must be >= 0 (got {array})")
    if n_samples is not None and array.size != n_samples:
        raise ValueError(f"labels: expected {n_samples} labels, one per sample (got {array.size})")
    return array


Duplicates = Literal["count", "once"]


def cluster_log_probabilities(
    labels: np.ndarray,
    sequence_logprobs: np.ndarray,
    *,
    duplicates: Duplicates = "count",
    sequences: Sequence[object] | None = None,
) -> np.ndarray:
    """``log p(c)`` of each cluster from the log-probabilities of its samples.

    ``p(c) = sum_{k in c} p(y_k) / sum_k p(y_k)``: the sample probabilities are normalised
    over the K samples and summed per cluster (log-sum-exp throughout). With
    ``duplicates="count"`` a sequence sampled twice counts twice, as in Farquhar et al.'s
    reference code (``logsumexp_by_id`` over all generations) and Kuhn et al.'s, so the estimate
    blends the model's probabilities with how often the sampler hit each meaning. With
    ``"once"`` each distinct sequence counts once (LM-Polygraph's ``use_unique_responses``,
    here also normalised): ``p(c)`` is then the model's probability of the meaning among the
    sequences seen, the sum over a cluster's members that the papers' formula writes.

    Args:
        labels: Cluster label per sample, ``0 .. C-1``.
        sequence_logprobs: Log-probability per sample (total or length-normalised).
        duplicates: ``"count"`` every sample or count each distinct sequence ``"once"``.
        sequences: What makes two samples the same sequence (texts or token-id tuples), one
            per sample; required with ``duplicates="once"``.

    Returns:
        Float array of shape ``(C,)``, ``C = labels.max() + 1``, of log cluster probabilities.
    """
    labels = _check_labels(labels)
    logprobs = np.asarray(sequence_logprobs, dtype=np.float64)
    if logprobs.shape != labels.shape:
        raise ValueError(
            f"sequence_logprobs: expected shape {labels.shape}, one per sample "
            f"(got {logprobs.shape})"
        )
    if np.any(np.isnan(logprobs)) or np.any(logprobs == np.inf) or not np.any(logprobs > -np.inf):
        raise ValueError("sequence_logprobs: need finite log-probabilities (or -inf), not all -inf")
    if duplicates == "once":
        if sequences is None or len(sequences) != labels.size:
            raise ValueError("sequences: duplicates='once' needs one sequence key per sample")
        seen: set[object] = set()
        repeated = np.zeros(labels.size, dtype=bool)
        for index, key in enumerate(sequences):
            repeated[index] = key in seen
            seen.add(key)
        logprobs = np.where(repeated, -np.inf, logprobs)
    elif duplicates != "count":
        raise ValueError(f"duplicates: expected 'count' or 'once' (got {duplicates!r})")
    normalised = logprobs - logsumexp(logprobs)
    n_clusters = int(labels.max()) + 1
    return np.array(
        [logsumexp(normalised[labels == cluster]) for cluster in range(n_clusters)],
        dtype=np.float64,
    )


@dataclass(frozen=True)
class SemanticEntropy:
    """Semantic entropy of K samples of one state.

    Attributes:
        weighted: ``-sum_c p(c) log p(c)`` with ``p(c)`` from summed sequence probabilities
            (``nan`` when no log-probabilities were given).
        discrete: The same with ``p(c) = |c| / K`` (the count variant; works for black-box
            models without log-probabilities).
        labels: Meaning cluster of each sample.
        cluster_probability: Weighted ``p(c)`` per cluster (empty without log-probabilities).
        cluster_share: ``|c| / K`` per cluster.
        length_normalised: Whether the weighted variant used per-token mean log-probabilities.
        unit: ``"nats"``, ``"bits"``, ...
        duplicates: How the weighted variant counted a sequence sampled more than once
            (see :func:`cluster_log_probabilities`).
    """

    weighted: float
    discrete: float
    labels: tuple[int, ...]
    cluster_probability: tuple[float, ...]
    cluster_share: tuple[float, ...]
    length_normalised: bool
    unit: str = "nats"
    duplicates: Duplicates = "count"

    @property
    def n_clusters(self) -> int:
        """Number of distinct meanings among the samples."""
        return len(self.cluster_share)

    @property
    def n_samples(self) -> int:
        """Number of samples K."""
        return len(self.labels)

    def to_dict(self) -> dict[str, Any]:
        """The measurement as a plain dict (for records)."""
        return {
            "semantic_entropy": self.weighted,
            "semantic_entropy_discrete": self.discrete,
            "n_clusters": self.n_clusters,
            "n_samples": self.n_samples,
            "length_normalised": self.length_normalised,
            "duplicates": self.duplicates,
            "unit": self.unit,
        }


def semantic_entropy_from_labels(
    labels: np.ndarray,
    sequence_logprobs: np.ndarray | None = None,
    *,
    length_normalised: bool = True,
    base: float | None = None,
    duplicates: Duplicates = "count",
    sequences: Sequence[object] | None = None,
) -> SemanticEntropy:
    """Semantic entropy from given cluster labels (the maths, without a model).

    Args:
        labels: Meaning cluster per sample, numbered ``0 .. C-1``.
        sequence_logprobs: Log-probability per sample as it should enter ``p(c)`` (already
            length-normalised if that is wanted); ``None`` gives only the discrete variant.
        length_normalised: Recorded with the result: whether ``sequence_logprobs`` are means.
        base: Logarithm base of the result; ``None`` gives nats, ``2`` bits.
        duplicates: Weighted variant: count a repeated sequence every time (``"count"``, the
            papers' code) or ``"once"`` (see :func:`cluster_log_probabilities`).
        sequences: Sequence key per sample, for ``duplicates="once"``.

    Returns:
        Both variants of the semantic entropy.
    """
    labels = _check_labels(labels)
    counts = np.bincount(labels)
    if np.any(counts == 0):
        raise ValueError(f"labels: clusters must be numbered 0..C-1 without gaps (got {labels})")
    share = counts / labels.size
    discrete = nats_to_base(float(entropy(share)), base)
    weighted = math.nan
    probability: tuple[float, ...] = ()
    if sequence_logprobs is not None:
        log_probability = cluster_log_probabilities(
            labels, sequence_logprobs, duplicates=duplicates, sequences=sequences
        )
        cluster_p = np.exp(log_probability)
        with np.errstate(invalid="ignore"):
            terms = np.where(cluster_p > 0, cluster_p * log_probability, 0.0)
        weighted = nats_to_base(float(-np.sum(terms)), base)
        probability = tuple(float(p) for p in cluster_p)
    return SemanticEntropy(
        weighted=weighted,
        discrete=discrete,
        labels=tuple(int(label) for label in labels),
        cluster_probability=probability,
        cluster_share=tuple(float(s) for s in share),
        length_normalised=length_normalised,
        unit=unit_name(base),
        duplicates=duplicates,
    )


def semantic_entropy(
    samples: Sequence[Generation] | Sequence[str],
    *,
    clusterer: Clusterer | None = None,
    length_normalised: bool = True,
    base: float | None = None,
    duplicates: Duplicates = "count",
) -> SemanticEntropy:
    """Semantic entropy of K samples of the same state (Kuhn et al. 2023; Farquhar et al. 2024).

    The samples are clustered by meaning; ``SE = -sum_c p(c) log p(c)``. The weighted variant
    takes ``p(c)`` from the samples' sequence probabilities at temperature 1, normalised over
    the K samples; with ``length_normalised`` (the default, as in Farquhar et al.) a sample's
    log-probability is its mean per-token log-probability, so long utterances are not
    penalised for their length (an empty utterance counts as log-probability 0). Without it,
    total log-probabilities make longer paraphrases of the same meaning weigh exponentially
    less, so the weighted variant then tracks length as much as meaning (Malinin and Gales
    2021). The discrete variant takes ``p(c) = |c| / K``. Both lie in ``[0, log K]``. The
    samples should be drawn at temperature 1 for ``p(c)`` to estimate the model's own
    distribution over meanings.

    Args:
        samples: K generations of the same prompt, or K plain texts (discrete variant only).
        clusterer: How meaning is judged; ``None`` picks ``get_clusterer("auto")``.
        length_normalised: Use mean instead of total token log-probability.
        base: Logarithm base of the result; ``None`` gives nats, ``2`` bits.
        duplicates: Weighted variant: a repeated sequence (same token ids) counts every time
            (``"count"``, the papers' code) or ``"once"``.

    Returns:
        Both variants with the cluster assignment.
    """
    if len(samples) == 0:
        raise ValueError("samples: need at least one sample")
    clusterer = clusterer if clusterer is not None else get_clusterer("auto")
    if all(isinstance(sample, str) for sample in samples):
        texts = [str(sample) for sample in samples]
        logprobs = None
        sequences: list[object] = list(texts)
    elif not any(isinstance(sample, str) for sample in samples):
        generations = cast("Sequence[Generation]", samples)
        texts = [generation.text for generation in generations]
        totals = np.array([float(np.sum(g.token_logprob)) for g in generations])
        lengths = np.array([max(g.length, 1) for g in generations], dtype=np.float64)
        logprobs = totals / lengths if length_normalised else totals
        sequences = [generation.token_ids for generation in generations]
    else:
        raise ValueError("samples: expected all Generation objects or all strings")
    labels = _check_labels(clusterer.cluster(texts), len(texts))
    return semantic_entropy_from_labels(
        labels,
        logprobs,
        length_normalised=length_normalised,
        base=base,
        duplicates=duplicates,
        sequences=sequences,
    )
