"""The LanguageModel contract, checked on both local backends with the real default model."""

import numpy as np
import pytest

pytestmark = pytest.mark.slow

CHAT_PROMPT = [{"role": "user", "content": "Write one sentence about apples."}]
TEXT_PROMPT = "The capital of France is"
PROMPTS = [
    CHAT_PROMPT,
    TEXT_PROMPT,
    [{"role": "user", "content": "Name a colour."}],
    "Once upon a time, in a small village by the sea, there lived",
]
#: How closely score(generated text) matches the summed generation log-probabilities:
#: llama.cpp scores token by token exactly as it generated; transformers scores the whole
#: continuation in one pass, a different floating-point path.
SCORE_TOLERANCE = {"llamacpp": 1e-6, "transformers": 1e-3}


@pytest.fixture(params=["llamacpp", "transformers"])
def backend(request):
    return request.param, request.getfixturevalue(f"{request.param}_model")


def test_every_token_has_finite_non_negative_entropy(backend):
    _, model = backend
    generations = model.generate(PROMPTS, max_new_tokens=12, temperature=0.8, seed=1)
    assert len(generations) == len(PROMPTS)
    for generation in generations:
        assert generation.length > 0
        for values in (generation.token_entropy, generation.sampled_entropy):
            assert values.shape == (generation.length,)
            assert np.all(np.isfinite(values))
            assert np.all(values >= 0)
        assert np.all(generation.token_logprob <= 0)
        assert generation.token_entropy.max() <= np.log(49152) + 1e-9
        assert not generation.entropy_is_estimate
        assert generation.entropy_tail_bound is None


def test_sampled_entropy_is_zero_when_greedy_and_rises_with_temperature(backend):
    _, model = backend
    means = []
    for temperature in (0.0, 0.3, 1.0, 2.0):
        generations = model.generate(PROMPTS, max_new_tokens=8, temperature=temperature, seed=3)
        means.append(np.concatenate([g.sampled_entropy for g in generations]).mean())
        if temperature == 1.0:
            for generation in generations:
                np.testing.assert_array_equal(generation.sampled_entropy, generation.token_entropy)
    assert means[0] == 0.0
    assert means[0] < means[1] < means[2] < means[3]


def test_same_seed_same_text_different_seed_different_text(backend):
    _, model = backend
    first = model.generate(PROMPTS, max_new_tokens=8, temperature=1.0, seed=7)
    again = model.generate(PROMPTS, max_new_tokens=8, temperature=1.0, seed=7)
    other = model.generate(PROMPTS, max_new_tokens=8, temperature=1.0, seed=8)
    assert [g.text for g in first] == [g.text for g in again]
    for a, b in zip(first, again, strict=True):
        assert a.token_ids == b.token_ids
        np.testing.assert_array_equal(a.token_entropy, b.token_entropy)
        np.testing.assert_array_equal(a.token_logprob, b.token_logprob)
    assert [g.text for g in first] != [g.text for g in other]


def test_score_ranks_the_likely_continuation_first(backend):
    _, model = backend
    scores = model.score(TEXT_PROMPT, [" Paris.", " a purple banana.", ""])
    assert scores.shape == (3,)
    assert scores[0] > scores[1] + 5
    assert scores[0] > -3
    assert scores[2] == 0.0
    chat_scores = model.score(CHAT_PROMPT, ["Apples are sweet.", "Zebra quantum fork."])
    assert chat_scores[0] > chat_scores[1]


def test_generated_logprobs_agree_with_score(backend):
    name, model = backend
    # After plain text a continuation is scored without an end token.
    [generation] = model.generate([TEXT_PROMPT], max_new_tokens=16, temperature=0, seed=0)
    logprobs = generation.token_logprob
    if generation.finish_reason == "stop":  # the end token is not part of the text
        logprobs = logprobs[:-1]
    [score] = model.score(TEXT_PROMPT, [generation.text])
    assert score == pytest.approx(logprobs.sum(), abs=SCORE_TOLERANCE[name])
    # After chat messages it is a whole reply: its end-of-turn token counts, as in generation.
    [reply] = model.generate([CHAT_PROMPT], max_new_tokens=80, temperature=0, seed=0)
    assert reply.finish_reason == "stop"
    [score] = model.score(CHAT_PROMPT, [reply.text])
    assert score == pytest.approx(reply.token_logprob.sum(), abs=SCORE_TOLERANCE[name])
