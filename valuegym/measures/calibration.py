"""How often a clusterer merges different meanings or splits one, on labelled sentence pairs.

The package ships ``data/clusterer_calibration.csv``: 212 sentence pairs written for valuegym,
each labelled same meaning (1) or not (0) and put in a category: ``paraphrase`` and
``near_duplicate`` (same), ``accept_decline``, ``yes_no``, ``agree_disagree``, ``negation`` and
``different_topic`` (different). :func:`calibrate` clusters each pair and reports, per category
and overall, the accuracy, the false-merge rate (different meanings put in one cluster, which
lowers semantic entropy) and the false-split rate (one meaning split in two, which raises it).
A user's own CSV with the columns ``a,b,same,category`` checks a clusterer on their domain
(``valuegym calibrate-clusterer --pairs FILE``).
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

from valuegym.measures.clustering import Clusterer

__all__ = [
    "Calibration",
    "CategoryCalibration",
    "LabelledPair",
    "calibrate",
    "load_pairs",
]

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
