import numpy as np
import pytest

from valuegym.lm.sampling import TokenSampler, check_seed, per_prompt_temperatures, prompt_seed
from valuegym.measures.entropy import entropy_from_logits
from valuegym.numeric import log_softmax


def test_per_prompt_temperatures_broadcasts_and_validates():
    np.testing.assert_array_equal(per_prompt_temperatures(0.7, 3), [0.7, 0.7, 0.7])
    np.testing.assert_array_equal(per_prompt_temperatures([0, 1.5], 2), [0.0, 1.5])
    with pytest.raises(ValueError, match=r"temperature\[1\]"):
        per_prompt_temperatures([0.5, -1.0], 2)
    with pytest.raises(ValueError, match="one per prompt"):
        per_prompt_temperatures([0.5, 1.0], 3)
    with pytest.raises(ValueError, match=r"temperature\[0\]"):
        per_prompt_temperatures(float("nan"), 1)


def test_check_seed_accepts_a_root_seed_or_one_seed_sequence_per_prompt():
    assert check_seed(None, 2) is None
    assert check_seed(np.int64(7), 2) == 7
    assert type(check_seed(np.int64(7), 2)) is int
    sequences = [prompt_seed(3, 0), prompt_seed(3, 1)]
    assert check_seed(sequences, 2) == tuple(sequences)
    with pytest.raises(ValueError, match="one seed sequence per prompt"):
        check_seed(sequences, 3)
    with pytest.raises(ValueError, match=r"seed\[1\]"):
        check_seed([prompt_seed(3, 0), 5], 2)
    with pytest.raises(ValueError, match=">= 0"):
        check_seed(-1, 1)
    with pytest.raises(ValueError, match="expected None, an integer"):
        check_seed(1.5, 1)


def test_uniform_logits_have_entropy_log_vocabulary():
    vocabulary = 1000
    sampler = TokenSampler(np.array([1.0, 0.3]), seed=0)
    draw = sampler.draw(np.zeros((2, vocabulary), dtype=np.float32), [0, 1])
    np.testing.assert_allclose(draw.token_entropy, np.log(vocabulary))
    # Temperature rescales identical logits to identical logits: still uniform.
    np.testing.assert_allclose(draw.sampled_entropy, np.log(vocabulary))
    np.testing.assert_allclose(draw.token_logprob, -np.log(vocabulary))


def test_one_hot_logits_have_zero_entropy_and_certain_token():
    logits = np.full((1, 50), -np.inf)
    logits[0, 7] = 0.0
    draw = TokenSampler(np.array([1.0]), seed=0).draw(logits, [0])
    assert draw.token_ids[0] == 7
    assert draw.token_entropy[0] == 0.0
    assert draw.sampled_entropy[0] == 0.0
    assert draw.token_logprob[0] == 0.0


def test_greedy_picks_argmax_with_zero_sampled_entropy():
    logits = np.array([[0.1, 2.0, 1.9, -1.0]])
    draw = TokenSampler(np.array([0.0]), seed=None).draw(logits, [0])
    assert draw.token_ids[0] == 1
    assert draw.sampled_entropy[0] == 0.0
    expected = -np.sum(
        np.exp(logits - np.log(np.exp(logits).sum())) * (logits - np.log(np.exp(logits).sum()))
    )
    assert draw.token_entropy[0] == pytest.approx(expected)


def test_sampled_entropy_rises_with_temperature_and_vanishes_as_it_goes_to_zero():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(1, 200)) * 3
    temperatures = [1e-3, 0.25, 0.5, 1.0, 2.0, 4.0]
    entropies = [
        TokenSampler(np.array([t]), seed=0).draw(logits, [0]).sampled_entropy[0]
        for t in temperatures
    ]
    assert entropies[0] < 1e-6
    assert np.all(np.diff(entropies) > 0)
    assert entropies[-1] < np.log(200)


def test_draws_follow_the_tempered_distribution():
    logits = np.log(np.array([[0.5, 0.3, 0.2]]))
    temperature = 0.5
    sampler = TokenSampler(np.array([temperature]), seed=123)
    counts = np.bincount([sampler.draw(logits, [0]).token_ids[0] for _ in range(6000)], minlength=3)
    tempered = np.array([0.5, 0.3, 0.2]) ** (1 / temperature)
    tempered /= tempered.sum()
    # Binomial standard error at n=6000 is < 0.007; allow 4 of them.
    np.testing.assert_allclose(counts / 6000, tempered, atol=0.028)


def test_each_prompt_stream_depends_only_on_seed_and_its_index():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(3, 64))

    def stream(rows, seed):
        sampler = TokenSampler(np.ones(3), seed=seed)
        return [sampler.draw(logits[rows], rows).token_ids.tolist() for _ in range(20)]

    full = stream([0, 1, 2], seed=5)
    only_second = stream([1], seed=5)
    assert [draws[1] for draws in full] == [draws[0] for draws in only_second]
    assert stream([0, 1, 2], seed=5) == full
    assert stream([0, 1, 2], seed=6) != full


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("temperature", [0.0, 0.4, 1.0, 1.7])
def test_measurements_equal_the_entropy_module(dtype, temperature):
    rng = np.random.default_rng(4)
    logits = (rng.normal(size=(3, 5000)) * 4).astype(dtype)
    logits[1, :100] = -np.inf  # masked tokens
    original = logits.copy()
    draw = TokenSampler(np.full(3, temperature), seed=0).draw(logits, [0, 1, 2])
    np.testing.assert_array_equal(logits, original)  # the caller's array is left alone
    np.testing.assert_allclose(draw.token_entropy, entropy_from_logits(logits), atol=1e-10)
    np.testing.assert_allclose(
        draw.sampled_entropy, entropy_from_logits(logits, temperature), atol=1e-10
    )
    expected_logprob = log_softmax(logits)[np.arange(3), draw.token_ids]
    np.testing.assert_allclose(draw.token_logprob, expected_logprob, atol=1e-10)
    assert np.all(draw.token_ids[1] >= 100)


def _entropy(p):
    p = np.asarray(p, dtype=float)
    p = p / p.sum()
    return float(-(p * np.log(p)).sum())


@pytest.mark.parametrize(
    ("truncation", "kept"),
    [
        ({"top_k": 2}, [0.5, 0.3]),
        ({"top_p": 0.8}, [0.5, 0.3]),
        ({"top_p": 0.81}, [0.5, 0.3, 0.15]),
        ({"min_p": 0.2}, [0.5, 0.3, 0.15]),
        ({"top_k": 3, "min_p": 0.5}, [0.5, 0.3]),
    ],
)
def test_truncation_samples_and_measures_the_head_it_keeps(truncation, kept):
    from valuegym.lm.sampling import TokenSampler, Truncation

    probabilities = np.array([0.5, 0.3, 0.15, 0.05])
    logits = np.log(probabilities)[None, :]
    sampler = TokenSampler(np.ones(1), seed=3, truncation=Truncation(**truncation))
    draws = [sampler.draw(logits, (0,)) for _ in range(400)]
    tokens = {int(d.token_ids[0]) for d in draws}
    assert tokens == set(range(len(kept)))  # only the kept head is ever drawn
    assert draws[0].sampled_entropy[0] == pytest.approx(_entropy(kept))
    assert draws[0].token_entropy[0] == pytest.approx(_entropy(probabilities))  # full, at T=1


def test_truncation_rejects_settings_out_of_range():
    from valuegym.lm.sampling import Truncation

    for bad in ({"top_p": 0.0}, {"top_k": -1}, {"min_p": 1.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Truncation(**bad)


@pytest.mark.parametrize("top_p", [0.5, 0.9, 0.999])
def test_nucleus_on_a_large_vocabulary_matches_a_full_sort(top_p):
    from valuegym.lm.sampling import Truncation

    rng = np.random.default_rng(7)
    for scale in (0.5, 3.0):  # flat (the nucleus is large) and peaked distributions
        weights = np.exp(rng.normal(scale=scale, size=20_000))
        order = np.argsort(-weights, kind="stable")
        cumulative = np.cumsum(weights[order]) / weights.sum()
        count = int(np.searchsorted(cumulative, top_p - 1e-12)) + 1
        expected = np.zeros(weights.size, dtype=bool)
        expected[order[:count]] = True
        np.testing.assert_array_equal(Truncation(top_p=top_p).keep(weights), expected)
