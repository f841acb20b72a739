"""Each semantic estimator against an independent implementation on the same inputs.

Three references: values derived by hand, a transcription of Farquhar et al.'s reference code
(semantic_uncertainty/uncertainty/uncertainty_measures/semantic_entropy.py), and
LM-Polygraph's estimator modules when its wheel is unpacked without dependencies into
``.deps`` (``pip install --no-deps --target .deps lm-polygraph``) or ``$LM_POLYGRAPH_PATH``.
"""

import importlib
import math
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from valuegym.measures import (
    kernel_language_entropy,
    semantic_entropy_from_labels,
    semantic_graph_from_entailment,
)

# ------------------------------------------------------------------------- hand-derived


def test_weighted_counts_a_repeated_sequence_each_time_or_once():
    labels = np.array([0, 0, 1])
    logprobs = np.log([0.5, 0.5, 0.25])
    counted = semantic_entropy_from_labels(labels, logprobs)
    # p(c) = (0.5 + 0.5) / 1.25 = 0.8 and 0.25 / 1.25 = 0.2.
    assert counted.weighted == pytest.approx(-(0.8 * math.log(0.8) + 0.2 * math.log(0.2)))
    assert counted.duplicates == "count"
    once = semantic_entropy_from_labels(
        labels, logprobs, duplicates="once", sequences=["sure", "sure", "no"]
    )
    # The repeated "sure" counts once: p(c) = 0.5 / 0.75 = 2/3 and 1/3.
    assert once.weighted == pytest.approx(math.log(3) - 2 / 3 * math.log(2))
    assert (
        once.discrete
        == counted.discrete
        == pytest.approx(-(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)))
    )
    assert once.to_dict()["duplicates"] == "once"
    with pytest.raises(ValueError, match="sequences"):
        semantic_entropy_from_labels(labels, logprobs, duplicates="once")


def test_distinct_sequences_give_the_same_weighted_entropy_either_way():
    labels = np.array([0, 1, 1, 2])
    logprobs = np.log([0.1, 0.2, 0.3, 0.4])
    counted = semantic_entropy_from_labels(labels, logprobs)
    once = semantic_entropy_from_labels(labels, logprobs, duplicates="once", sequences="abcd")
    assert once.weighted == pytest.approx(counted.weighted)
    assert counted.weighted == pytest.approx(
        -(0.1 * math.log(0.1) + 0.5 * math.log(0.5) + 0.4 * math.log(0.4))
    )


# ------------------------------------------------ Farquhar et al.'s code, transcribed


def farquhar_logsumexp_by_id(semantic_ids, log_likelihoods):
    """``logsumexp_by_id(..., agg='sum_normalized')`` of the reference code."""
    log_likelihoods = np.asarray(log_likelihoods)
    per_id = []
    for uid in sorted(set(semantic_ids)):
        id_indices = [pos for pos, x in enumerate(semantic_ids) if x == uid]
        id_log_likelihoods = [log_likelihoods[i] for i in id_indices]
        log_lik_norm = id_log_likelihoods - np.log(np.sum(np.exp(log_likelihoods)))
        per_id.append(np.log(np.sum(np.exp(log_lik_norm))))
    return per_id


def farquhar_predictive_entropy_rao(log_probs):
    return -np.sum(np.exp(log_probs) * log_probs)


def farquhar_cluster_assignment_entropy(semantic_ids):
    counts = np.bincount(semantic_ids)
    probabilities = counts / len(semantic_ids)
    return -(probabilities * np.log(probabilities)).sum()


@pytest.mark.parametrize("seed", range(20))
def test_both_variants_match_farquhar_et_al_reference_code(seed):
    rng = np.random.default_rng(seed)
    n_samples = int(rng.integers(1, 16))
    raw = rng.integers(0, 4, size=n_samples)
    labels = np.unique(raw, return_inverse=True)[1]  # numbered 0..C-1 as both codes need
    mean_token_logprobs = rng.normal(-1.5, 1.0, size=n_samples)
    ours = semantic_entropy_from_labels(labels, mean_token_logprobs)
    reference = farquhar_predictive_entropy_rao(
        farquhar_logsumexp_by_id(list(labels), mean_token_logprobs)
    )
    assert ours.weighted == pytest.approx(reference, abs=1e-12)
    assert ours.discrete == pytest.approx(farquhar_cluster_assignment_entropy(labels), abs=1e-12)


# ------------------------------------------------------------------------ LM-Polygraph


def _polygraph_estimators():
    """LM-Polygraph's estimator modules, without running its package __init__ (torch, models)."""
    root = Path(os.environ.get("LM_POLYGRAPH_PATH", Path(__file__).parents[2] / ".deps"))
    package = root / "lm_polygraph"
    if not (package / "estimators" / "semantic_entropy.py").is_file():
        pytest.skip(f"LM-Polygraph not unpacked in {root} (pip install --no-deps --target)")
    saved = {
        name: module for name, module in sys.modules.items() if name.startswith("lm_polygraph")
    }
    try:
        for name, folder in (
            ("lm_polygraph", package),
            ("lm_polygraph.utils", package / "utils"),
            ("lm_polygraph.estimators", package / "estimators"),
        ):
            stub = types.ModuleType(name)
            stub.__path__ = [str(folder)]
            sys.modules[name] = stub
        # The one import of the estimator base from utils: a logging decorator. Its module
        # imports transformers and PIL, so it is replaced by what it does minus the log line.
        common = types.ModuleType("lm_polygraph.utils.common")
        common.polygraph_module_init = lambda init: init
        sys.modules["lm_polygraph.utils.common"] = common
        semantic = importlib.import_module("lm_polygraph.estimators.semantic_entropy")
        kernel = importlib.import_module("lm_polygraph.estimators.kernel_language_entropy")
        return semantic, kernel
    finally:
        for name in [name for name in sys.modules if name.startswith("lm_polygraph")]:
            del sys.modules[name]
        sys.modules.update(saved)


def _polygraph_classes(labels):
    class_to_sample = [list(np.flatnonzero(labels == c)) for c in range(labels.max() + 1)]
    return {"class_to_sample": [class_to_sample], "sample_to_class": [dict(enumerate(labels))]}


@pytest.mark.parametrize("seed", range(20))
def test_discrete_variant_matches_lm_polygraph_empirical_semantic_entropy(seed):
    semantic, _ = _polygraph_estimators()
    rng = np.random.default_rng(seed)
    labels = np.unique(rng.integers(0, 5, size=10), return_inverse=True)[1]
    texts = [f"answer {label}" for label in labels]
    estimator = semantic.SemanticEntropy(class_probability_estimation="frequency")
    [reference] = estimator(
        {"sample_texts": [texts], "semantic_classes_entail": _polygraph_classes(labels)}
    )
    assert semantic_entropy_from_labels(labels).discrete == pytest.approx(reference, abs=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_weighted_variant_matches_lm_polygraph_direct_estimate_on_distinct_meanings(seed):
    # LM-Polygraph's "direct" estimate sums -p(c) log p(c) over samples, not clusters, and
    # does not normalise p(c) over the K samples: with normalised log-probabilities and one
    # sample per meaning it is the Rao-Blackwellised estimate of the papers' code.
    semantic, _ = _polygraph_estimators()
    rng = np.random.default_rng(seed)
    labels = rng.permutation(10)
    labels = np.unique(labels, return_inverse=True)[1]
    logprobs = rng.normal(-2.0, 1.0, size=10)
    normalised = logprobs - np.log(np.sum(np.exp(logprobs)))
    estimator = semantic.SemanticEntropy(entropy_estimation="direct")
    [reference] = estimator(
        {
            "sample_log_probs": [list(normalised)],
            "sample_texts": [[f"s{i}" for i in range(10)]],
            "semantic_classes_entail": _polygraph_classes(labels),
        }
    )
    assert semantic_entropy_from_labels(labels, logprobs).weighted == pytest.approx(
        reference, abs=1e-12
    )


@pytest.mark.parametrize("seed", range(10))
def test_kernel_language_entropy_matches_lm_polygraph(seed):
    _, kernel = _polygraph_estimators()
    rng = np.random.default_rng(seed)
    n_samples = 10
    meanings = rng.integers(0, 4, size=n_samples)
    entail = (meanings[:, None] == meanings[None, :]).astype(float)
    # Some one-way entailments and graded probabilities, as a real judge gives.
    entail = np.where(rng.random(entail.shape) < 0.2, rng.random(entail.shape), entail)
    np.fill_diagonal(entail, 1.0)
    estimator = kernel.KernelLanguageEntropy(t=0.3, normalize=True, scale=False)
    # With no verdict "neutral", contradiction is the complement of entailment.
    [reference] = estimator(
        {"semantic_matrix_entail": [entail], "semantic_matrix_contra": [1.0 - entail]}
    )
    ours = kernel_language_entropy(semantic_graph_from_entailment(entail), time=0.3)
    assert ours == pytest.approx(reference, abs=1e-9)
