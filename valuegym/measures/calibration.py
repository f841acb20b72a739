"""How often a clusterer merges or splits meanings, and a valence judge misreads tone.

The package ships ``data/clusterer_calibration.csv``: 212 sentence pairs written for valuegym,
each labelled same meaning (1) or not (0) and put in a category: ``paraphrase`` and
``near_duplicate`` (same), ``accept_decline``, ``yes_no``, ``agree_disagree``, ``negation`` and
``different_topic`` (different). :func:`calibrate` clusters each pair and reports, per category
and overall, the accuracy, the false-merge rate (different meanings put in one cluster, which
lowers semantic entropy) and the false-split rate (one meaning split in two, which raises it).
A user's own CSV with the columns ``a,b,same,category`` checks a clusterer on their domain
(``valuegym calibrate-clusterer --pairs FILE``).

It also ships ``data/valence_calibration.csv``: 90 chat messages written for valuegym, 30
labelled each ``positive``, ``neutral`` and ``negative`` (among them ten requests said kindly,
plainly and curtly), none of them an anchor of the embedding valence judge.
:func:`calibrate_valence` judges each and reports per label the accuracy of the class the
valence falls in (:data:`VALENCE_NEUTRAL_BAND`) and the mean valence, and overall the
accuracy and the correlation of valence with the label coded +1, 0, -1
(``valuegym calibrate-valence``, ``--items FILE`` for a user's own ``text,label`` CSV).
"""

from __future__ import annotations

import csv
import importlib.resources
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from valuegym.measures.clustering import Clusterer
from valuegym.measures.valence import VALENCE_LABELS, LabelledText, ValenceJudge, load_valence_items

__all__ = [
    "VALENCE_NEUTRAL_BAND",
    "Calibration",
    "CategoryCalibration",
    "LabelledPair",
    "ValenceCalibration",
    "ValenceClassCalibration",
    "calibrate",
    "calibrate_valence",
    "load_pairs",
    "valence_class",
]

#: Half-width of the neutral band: a valence above it reads as positive, below its negative as
#: negative. Fixed before measuring at a tenth of the scale's width: one class must lead the
#: other by more than 0.2 in probability, so a judge torn between friendly and hostile (or
#: sure of neutral) says neutral.
VALENCE_NEUTRAL_BAND = 0.2

_COLUMNS = ("a", "b", "same", "category")


@dataclass(frozen=True)
class LabelledPair:
    """Two sentences and whether they mean the same thing.

    Attributes:
        a: The first sentence.
        b: The second sentence.
        same: True when they say the same thing.
        category: The kind of pair (``"paraphrase"``, ``"yes_no"``, ...).
    """

    a: str
    b: str
    same: bool
    category: str


def load_pairs(path: str | Path | None = None) -> list[LabelledPair]:
    """Read labelled pairs from a CSV file with the columns ``a,b,same,category``.

    Args:
        path: The CSV file; ``None`` reads the set shipped with valuegym.

    Returns:
        The pairs in file order.

    Raises:
        ValueError: A missing column, a ``same`` other than 0 or 1, or an empty sentence,
            naming the file and line.
    """
    if path is None:
        resource = importlib.resources.files("valuegym.measures") / "data/clusterer_calibration.csv"
        text, source = resource.read_text(encoding="utf-8"), "clusterer_calibration.csv"
    else:
        text, source = Path(path).read_text(encoding="utf-8"), str(path)
    reader = csv.DictReader(text.splitlines())
    missing = [column for column in _COLUMNS if column not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(
            f"{source}: missing column(s) {', '.join(missing)} (need a,b,same,category)"
        )
    pairs = []
    for line, row in enumerate(reader, start=2):
        if row["same"] not in ("0", "1"):
            raise ValueError(f"{source}:{line}: same must be 1 or 0 (got {row['same']!r})")
        if not (row["a"] or "").strip() or not (row["b"] or "").strip():
            raise ValueError(f"{source}:{line}: both sentences a and b must be non-empty")
        category = (row["category"] or "").strip() or "uncategorised"
        pairs.append(LabelledPair(row["a"], row["b"], row["same"] == "1", category))
    if not pairs:
        raise ValueError(f"{source}: no pairs")
    return pairs


@dataclass(frozen=True)
class CategoryCalibration:
    """A clusterer's figures on one category of pairs (or on all of them).

    Attributes:
        category: The category, or ``"all"``.
        n_pairs: Pairs in the category.
        accuracy: Share of pairs judged as labelled.
        false_merge_rate: Share of different-meaning pairs put in one cluster (``nan`` when
            the category has none).
        false_split_rate: Share of same-meaning pairs split (``nan`` when it has none).
    """

    category: str
    n_pairs: int
    accuracy: float
    false_merge_rate: float
    false_split_rate: float


@dataclass(frozen=True)
class Calibration:
    """A clusterer's calibration on a set of labelled pairs.

    Attributes:
        clusterer: What the clusterer describes itself as (:meth:`Clusterer.describe`).
        categories: Per category in order of first appearance, then ``"all"``.
        seconds: Wall-clock time the clustering took.
    """

    clusterer: dict[str, Any]
    categories: tuple[CategoryCalibration, ...]
    seconds: float

    @property
    def overall(self) -> CategoryCalibration:
        """The figures over all pairs."""
        return self.categories[-1]

    def to_dict(self) -> dict[str, Any]:
        """The calibration as a plain dict (for run manifests)."""
        return {
            "clusterer": self.clusterer,
            "categories": [asdict(category) for category in self.categories],
            "seconds": self.seconds,
        }

    def to_markdown(self) -> str:
        """The figures as a Markdown table, one row per category."""

        def percent(value: float) -> str:
            return "–" if math.isnan(value) else f"{100 * value:.0f}%"

        lines = [
            "| category | pairs | accuracy | false merges | false splits |",
            "|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {row.category} | {row.n_pairs} | {percent(row.accuracy)} | "
            f"{percent(row.false_merge_rate)} | {percent(row.false_split_rate)} |"
            for row in self.categories
        ]
        return "\n".join(lines)


def _figures(category: str, truth: list[bool], merged: list[bool]) -> CategoryCalibration:
    different = [m for t, m in zip(truth, merged, strict=True) if not t]
    same = [m for t, m in zip(truth, merged, strict=True) if t]
    return CategoryCalibration(
        category=category,
        n_pairs=len(truth),
        accuracy=sum(t == m for t, m in zip(truth, merged, strict=True)) / len(truth),
        false_merge_rate=sum(different) / len(different) if different else math.nan,
        false_split_rate=sum(not m for m in same) / len(same) if same else math.nan,
    )


def calibrate(clusterer: Clusterer, pairs: Sequence[LabelledPair] | None = None) -> Calibration:
    """Cluster each pair on its own and compare with its label.

    Args:
        clusterer: The clusterer to check.
        pairs: Labelled pairs; ``None`` uses the set shipped with valuegym (:func:`load_pairs`).

    Returns:
        Accuracy, false-merge and false-split rates per category and overall.
    """
    pairs = load_pairs() if pairs is None else list(pairs)
    if not pairs:
        raise ValueError("pairs: need at least one labelled pair")
    start = time.perf_counter()
    merged = []
    for pair in pairs:
        labels = clusterer.cluster([pair.a, pair.b])
        merged.append(bool(labels[0] == labels[1]))
    seconds = time.perf_counter() - start
    categories = list(dict.fromkeys(pair.category for pair in pairs))
    rows = [
        _figures(
            category,
            [p.same for p in pairs if p.category == category],
            [m for p, m in zip(pairs, merged, strict=True) if p.category == category],
        )
        for category in categories
    ]
    rows.append(_figures("all", [p.same for p in pairs], merged))
    return Calibration(clusterer=clusterer.describe(), categories=tuple(rows), seconds=seconds)


def valence_class(valence: float, band: float = VALENCE_NEUTRAL_BAND) -> str:
    """The class a valence falls in: positive above ``band``, negative below ``-band``.

    Args:
        valence: A valence in ``[-1, 1]``.
        band: Half-width of the neutral band around 0.

    Returns:
        ``"positive"``, ``"neutral"`` or ``"negative"``.
    """
    if valence > band:
        return "positive"
    if valence < -band:
        return "negative"
    return "neutral"


@dataclass(frozen=True)
class ValenceClassCalibration:
    """A valence judge's figures on the messages of one label (or on all of them).

    Attributes:
        label: ``"positive"``, ``"neutral"``, ``"negative"`` or ``"all"``.
        n_texts: Messages with the label.
        accuracy: Share whose valence falls in the labelled class (``nan`` when none).
        mean_valence: Their mean valence (``nan`` when none).
    """

    label: str
    n_texts: int
    accuracy: float
    mean_valence: float


@dataclass(frozen=True)
class ValenceCalibration:
    """A valence judge's calibration on labelled messages.

    Attributes:
        judge: What the judge describes itself as (:meth:`ValenceJudge.describe`).
        classes: Per label (positive, neutral, negative), then ``"all"``.
        spearman: Rank correlation of valence with the label coded +1, 0, -1 (``nan`` when
            either is constant).
        pearson: Linear correlation of the same (``nan`` when either is constant).
        band: The neutral band the accuracy was read with.
        seconds: Wall-clock time the judging took.
    """

    judge: dict[str, Any]
    classes: tuple[ValenceClassCalibration, ...]
    spearman: float
    pearson: float
    band: float
    seconds: float

    @property
    def overall(self) -> ValenceClassCalibration:
        """The figures over all messages."""
        return self.classes[-1]

    def to_dict(self) -> dict[str, Any]:
        """The calibration as a plain dict (for run manifests)."""
        return {
            "judge": self.judge,
            "classes": [asdict(row) for row in self.classes],
            "spearman": self.spearman,
            "pearson": self.pearson,
            "band": self.band,
            "seconds": self.seconds,
        }

    def to_markdown(self) -> str:
        """The figures as a Markdown table, one row per label, and the correlations below."""

        def number(value: float, form: str) -> str:
            return "–" if math.isnan(value) else format(value, form)

        lines = ["| label | texts | accuracy | mean valence |", "|---|---:|---:|---:|"]
        lines += [
            f"| {row.label} | {row.n_texts} | {number(100 * row.accuracy, '.0f')}% | "
            f"{number(row.mean_valence, '+.2f')} |"
            for row in self.classes
        ]
        lines += [
            "",
            f"Valence against the label (+1, 0, -1): Spearman {number(self.spearman, '.2f')}, "
            f"Pearson {number(self.pearson, '.2f')}; neutral band ±{self.band:g}.",
        ]
        return "\n".join(lines)


def _correlation(first: np.ndarray, second: np.ndarray) -> float:
    """Pearson correlation, ``nan`` (without a warning) when either side is constant."""
    if len(first) < 2 or np.ptp(first) == 0.0 or np.ptp(second) == 0.0:
        return math.nan
    return float(np.corrcoef(first, second)[0, 1])


def _class_figures(
    label: str, truth: list[str], valence: np.ndarray, band: float
) -> ValenceClassCalibration:
    return ValenceClassCalibration(
        label=label,
        n_texts=len(truth),
        accuracy=(
            sum(valence_class(float(v), band) == t for v, t in zip(valence, truth, strict=True))
            / len(truth)
            if truth
            else math.nan
        ),
        mean_valence=float(np.mean(valence)) if truth else math.nan,
    )


def calibrate_valence(
    judge: ValenceJudge,
    items: Sequence[LabelledText] | None = None,
    *,
    band: float = VALENCE_NEUTRAL_BAND,
) -> ValenceCalibration:
    """Judge each labelled message (in one batch) and compare its class with its label.

    Args:
        judge: The valence judge to check.
        items: Labelled messages; ``None`` uses the held-out set shipped with valuegym
            (:func:`~valuegym.measures.valence.load_valence_items`).
        band: Half-width of the neutral band (:data:`VALENCE_NEUTRAL_BAND`).

    Returns:
        Accuracy and mean valence per label and overall, and the correlations.
    """
    from scipy.stats import rankdata

    items = load_valence_items() if items is None else list(items)
    if not items:
        raise ValueError("items: need at least one labelled message")
    if not 0.0 <= band < 1.0:
        raise ValueError(f"band: must be in [0, 1) (got {band})")
    start = time.perf_counter()
    valence = np.asarray(judge.valence([item.text for item in items]), dtype=np.float64)
    seconds = time.perf_counter() - start
    truth = [item.label for item in items]
    rows = []
    for label in VALENCE_LABELS:
        chosen = np.array([t == label for t in truth], dtype=bool)
        rows.append(_class_figures(label, [label] * int(chosen.sum()), valence[chosen], band))
    rows.append(_class_figures("all", truth, valence, band))
    coded = np.array([{"positive": 1.0, "neutral": 0.0, "negative": -1.0}[t] for t in truth])
    return ValenceCalibration(
        judge=judge.describe(),
        classes=tuple(rows),
        spearman=_correlation(rankdata(valence), rankdata(coded)),
        pearson=_correlation(valence, coded),
        band=band,
        seconds=seconds,
    )
