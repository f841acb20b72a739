"""Bias of the semantic-entropy estimators against K, on distributions with a known entropy.

Each distribution is over sequences grouped into meanings, so its semantic entropy
``H = -sum_c p(c) log p(c)`` is known exactly. K sequences are sampled ``--trials`` times and
each estimator's mean minus ``H`` is its bias (nats):

- discrete: ``p(c) = |c| / K`` (the plug-in estimate, biased low by about ``(C - 1) / 2K``);
- weighted, duplicates counted: ``p(c) ∝ sum over the samples in c of p(y)`` (the papers' code);
- weighted, duplicates once: ``p(c) ∝ sum over the distinct sequences seen in c of p(y)``.

The sequence probabilities here are exact, as the length-normalised ones of a real model are
not; the table shows what sampling alone does. Run ``python benchmarks/semantic_bias.py``; the
table in docs/semantic_entropy.md is its output.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from valuegym.measures.semantic import semantic_entropy_from_labels

SAMPLE_SIZES = (2, 3, 5, 10, 20, 50)


@dataclass(frozen=True)
class MeaningDistribution:
    """Sequences, each with a probability and a meaning."""

    name: str
    sequence_probability: np.ndarray
    meaning: np.ndarray

    @property
    def semantic_entropy(self) -> float:
        """The exact semantic entropy, nats."""
        p = np.bincount(self.meaning, weights=self.sequence_probability)
        p = p[p > 0]
        return float(-np.sum(p * np.log(p)))


def one_sequence_per_meaning(name: str, weights: list[float]) -> MeaningDistribution:
    p = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    return MeaningDistribution(name, p, np.arange(len(p)))


def paraphrased(name: str, weights: list[float], paraphrases: int) -> MeaningDistribution:
    """Each meaning said in ``paraphrases`` equally likely ways."""
    p = np.repeat(np.asarray(weights, dtype=np.float64) / np.sum(weights), paraphrases)
    return MeaningDistribution(
        name, p / paraphrases, np.repeat(np.arange(len(weights)), paraphrases)
    )


DISTRIBUTIONS = [
    one_sequence_per_meaning("yes/no 50:50", [1, 1]),
    one_sequence_per_meaning("yes/no 90:10", [9, 1]),
    one_sequence_per_meaning("3 meanings .7/.2/.1", [7, 2, 1]),
    one_sequence_per_meaning("5 meanings uniform", [1] * 5),
    paraphrased("3 meanings .7/.2/.1, 10 wordings each", [7, 2, 1], 10),
    paraphrased("Zipf over 10 meanings, 5 wordings each", [1 / r for r in range(1, 11)], 5),
]


def entropy_rows(probabilities: np.ndarray) -> np.ndarray:
    p = probabilities / probabilities.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=1)


def estimates(
    distribution: MeaningDistribution, n_samples: int, trials: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    counts = rng.multinomial(n_samples, distribution.sequence_probability, size=trials)
    to_meaning = np.eye(distribution.meaning.max() + 1)[distribution.meaning]
    p = distribution.sequence_probability
    return {
        "discrete": entropy_rows(counts @ to_meaning),
        "weighted, duplicates counted": entropy_rows((counts * p) @ to_meaning),
        "weighted, duplicates once": entropy_rows(((counts > 0) * p) @ to_meaning),
    }


def check_against_library(distribution: MeaningDistribution, rng: np.random.Generator) -> None:
    """One trial of the vectorised estimates equals valuegym's semantic_entropy_from_labels."""
    sequences = rng.choice(
        len(distribution.sequence_probability), size=10, p=distribution.sequence_probability
    )
    labels = np.unique(distribution.meaning[sequences], return_inverse=True)[1]
    logprobs = np.log(distribution.sequence_probability[sequences])
    counts = np.bincount(sequences, minlength=len(distribution.sequence_probability))[None, :]
    to_meaning = np.eye(distribution.meaning.max() + 1)[distribution.meaning]
    p = distribution.sequence_probability
    library = {
        "discrete": semantic_entropy_from_labels(labels, logprobs).discrete,
        "count": semantic_entropy_from_labels(labels, logprobs).weighted,
        "once": semantic_entropy_from_labels(
            labels, logprobs, duplicates="once", sequences=list(sequences)
        ).weighted,
    }
    vectorised = {
        "discrete": entropy_rows(counts @ to_meaning)[0],
        "count": entropy_rows((counts * p) @ to_meaning)[0],
        "once": entropy_rows(((counts > 0) * p) @ to_meaning)[0],
    }
    for key, value in library.items():
        assert abs(value - vectorised[key]) < 1e-9, (distribution.name, key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20_000, help="samples of K per cell")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for distribution in DISTRIBUTIONS:
        check_against_library(distribution, rng)
    table: dict[str, list[list[float]]] = {}
    for distribution in DISTRIBUTIONS:
        for n_samples in SAMPLE_SIZES:
            for estimator, values in estimates(distribution, n_samples, args.trials, rng).items():
                table.setdefault(estimator, [[] for _ in SAMPLE_SIZES])[
                    SAMPLE_SIZES.index(n_samples)
                ].append(float(values.mean()) - distribution.semantic_entropy)
    header = " | ".join(f"{d.name} (H={d.semantic_entropy:.3f})" for d in DISTRIBUTIONS)
    for estimator, rows in table.items():
        print(f"\nBias of the {estimator} estimate, nats ({args.trials} draws of K per cell)\n")
        print(f"| K | {header} |")
        print("|---:|" + "---:|" * len(DISTRIBUTIONS))
        for n_samples, row in zip(SAMPLE_SIZES, rows, strict=True):
            print(f"| {n_samples} | " + " | ".join(f"{bias:+.3f}" for bias in row) + " |")


if __name__ == "__main__":
    main()
