import math

import numpy as np
import pytest

from valuegym.numeric import gini, log_softmax, logsumexp, sample_by_temperature, seed_for


@pytest.mark.parametrize(
    ("amounts", "expected"),
    [
        ([1.0, 1.0, 1.0], 0.0),
        ([0.0, 0.0, 0.0, 4.0], 0.75),
        ([1.0, 2.0, 3.0, 4.0], 0.25),
        ([0.0, 0.0], 0.0),
    ],
)
def test_gini_known_values(amounts, expected):
    assert gini(np.array(amounts)) == pytest.approx(expected)


def test_gini_of_nobody_is_nan_and_negative_amounts_are_refused():
    assert math.isnan(gini([]))
    with pytest.raises(ValueError, match="non-negative"):
        gini([1.0, -1.0])


def test_log_softmax_normalises_and_logsumexp_handles_all_minus_infinity():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, -np.inf, 0.0]])
    assert np.exp(log_softmax(logits)).sum(axis=-1) == pytest.approx([1.0, 1.0])
    assert log_softmax(logits)[1, 0] == pytest.approx(math.log(0.5))
    assert logsumexp(np.array([-np.inf, -np.inf])) == -np.inf
    assert logsumexp(np.array([0.0, 0.0])) == pytest.approx(math.log(2.0))


def test_sample_by_temperature_is_greedy_at_zero_and_follows_softmax_otherwise():
    rng = np.random.default_rng(0)
    assert sample_by_temperature(np.array([0.1, 0.9, 0.3]), 0.0, rng) == 1
    draws = [sample_by_temperature(np.array([0.0, math.log(3.0)]), 1.0, rng) for _ in range(4000)]
    assert np.mean(draws) == pytest.approx(0.75, abs=0.03)


def test_seed_for_is_a_pure_function_of_its_parts():
    assert seed_for(1, 2, 3) == seed_for(1, 2, 3)
    assert seed_for(1, 2, 3) != seed_for(1, 3, 2)
    assert 0 <= seed_for(0) < 2**32


def test_sample_by_temperature_rejects_scores_that_are_not_finite():
    with pytest.raises(ValueError, match="finite"):
        sample_by_temperature(np.array([0.0, np.nan]), 1.0, np.random.default_rng())


def test_each_seed_salt_is_its_own_stream():
    from valuegym.numeric import RUN_WIDE, SeedSalt

    assert len({int(salt) for salt in SeedSalt}) == len(SeedSalt)
    for position in ((0,), (3, 1), ()):
        seeds = [salt.seed(7, 2, *position) for salt in SeedSalt]
        assert len(set(seeds)) == len(seeds), f"salts share a stream at {position}"
    # A run-wide stream never meets an episode's, whatever the salt and episode.
    run_wide = {salt.seed(7, RUN_WIDE, 5) for salt in SeedSalt}
    per_episode = {salt.seed(7, episode, 5) for salt in SeedSalt for episode in range(50)}
    assert not run_wide & per_episode
    # The placebo's stream is not the env's stream of the episode its old salt stood in for.
    assert SeedSalt.PLACEBO.seed(7, RUN_WIDE, 3) != SeedSalt.ENV.seed(7, 6)
