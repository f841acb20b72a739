import numpy as np
import pytest

pytestmark = pytest.mark.slow

CHAT_PROMPT = [{"role": "user", "content": "Write one sentence about apples."}]
TEXT_PROMPT = "The capital of France is"
PROMPTS = [
    CHAT_PROMPT,
    TEXT_PROMPT,
    [{"role": "user", "content": "Name a colour."}],
    "Once upon a time",
]


def test_every_token_has_finite_non_negative_entropy(llamacpp_model):
    generations = llamacpp_model.generate(PROMPTS, max_new_tokens=16, temperature=0.8, seed=1)
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


def test_sampled_entropy_is_zero_when_greedy_and_rises_with_temperature(llamacpp_model):
    means = []
    for temperature in (0.0, 0.3, 1.0, 2.0):
        generations = llamacpp_model.generate(
            PROMPTS, max_new_tokens=12, temperature=temperature, seed=3
        )
        sampled = np.concatenate([g.sampled_entropy for g in generations])
        means.append(sampled.mean())
        if temperature == 1.0:
            for generation in generations:
                np.testing.assert_array_equal(generation.sampled_entropy, generation.token_entropy)
    assert means[0] == 0.0
    assert means[0] < means[1] < means[2] < means[3]


def test_same_seed_same_text_different_seed_different_text(llamacpp_model):
    first = llamacpp_model.generate(PROMPTS, max_new_tokens=12, temperature=1.0, seed=7)
    again = llamacpp_model.generate(PROMPTS, max_new_tokens=12, temperature=1.0, seed=7)
    other = llamacpp_model.generate(PROMPTS, max_new_tokens=12, temperature=1.0, seed=8)
    assert [g.text for g in first] == [g.text for g in again]
    for a, b in zip(first, again, strict=True):
        assert a.token_ids == b.token_ids
        np.testing.assert_array_equal(a.token_entropy, b.token_entropy)
        np.testing.assert_array_equal(a.token_logprob, b.token_logprob)
    assert [g.text for g in first] != [g.text for g in other]


def test_output_does_not_depend_on_earlier_calls(llamacpp_model):
    alone = llamacpp_model.generate([TEXT_PROMPT], max_new_tokens=10, temperature=0, seed=0)
    llamacpp_model.score("Something else entirely", [" and more"])
    after = llamacpp_model.generate(["x", TEXT_PROMPT], max_new_tokens=10, temperature=0, seed=0)
    assert after[1].token_ids == alone[0].token_ids
    np.testing.assert_array_equal(after[1].token_entropy, alone[0].token_entropy)


def test_per_prompt_temperatures(llamacpp_model):
    mixed = llamacpp_model.generate(
        [TEXT_PROMPT, TEXT_PROMPT], max_new_tokens=8, temperature=[0.0, 1.5], seed=4
    )
    greedy = llamacpp_model.generate([TEXT_PROMPT], max_new_tokens=8, temperature=0.0)
    assert mixed[0].token_ids == greedy[0].token_ids
    assert np.all(mixed[0].sampled_entropy == 0)
    assert np.all(mixed[1].sampled_entropy > 0)


def test_score_ranks_the_likely_continuation_first(llamacpp_model):
    scores = llamacpp_model.score(TEXT_PROMPT, [" Paris.", " a purple banana.", ""])
    assert scores.shape == (3,)
    assert scores[0] > scores[1] + 5
    assert scores[0] > -3
    assert scores[2] == 0.0
    chat_scores = llamacpp_model.score(CHAT_PROMPT, ["Apples are sweet.", "Zebra quantum fork."])
    assert chat_scores[0] > chat_scores[1]


def test_generated_logprobs_agree_with_score(llamacpp_model):
    for prompt in (TEXT_PROMPT, CHAT_PROMPT):
        [generation] = llamacpp_model.generate([prompt], max_new_tokens=20, temperature=0, seed=0)
        logprobs = generation.token_logprob
        if generation.finish_reason == "stop":  # the end token is not part of the text
            logprobs = logprobs[:-1]
        [score] = llamacpp_model.score(prompt, [generation.text])
        assert score == pytest.approx(logprobs.sum(), abs=1e-6)


def test_batched_scoring_is_close_to_exact_scoring(default_gguf):
    from valuegym.agents.lm.llamacpp import LlamaCppModel

    fast = LlamaCppModel(default_gguf, n_threads=1, exact_scoring=False)
    try:
        [generation] = fast.generate([CHAT_PROMPT], max_new_tokens=20, temperature=0)
        [score] = fast.score(CHAT_PROMPT, [generation.text])
        expected = generation.token_logprob[: generation.length].sum()
        # llama.cpp's batched kernels round differently from one-token decoding.
        assert score == pytest.approx(expected, rel=0.05)
    finally:
        fast.close()


def test_stop_strings_end_the_text(llamacpp_model):
    [generation] = llamacpp_model.generate(
        [CHAT_PROMPT], max_new_tokens=40, temperature=0, stop=[","]
    )
    assert generation.finish_reason == "stop"
    assert "," not in generation.text
    assert generation.text.startswith("A ripe")
    assert "," in llamacpp_model._detokenize(generation.token_ids)


def test_length_limit_and_empty_budget(llamacpp_model):
    [limited] = llamacpp_model.generate([TEXT_PROMPT], max_new_tokens=3, temperature=0)
    assert limited.finish_reason == "length"
    assert limited.length == 3
    [empty] = llamacpp_model.generate([TEXT_PROMPT], max_new_tokens=0)
    assert empty.length == 0
    assert empty.text == ""
    assert llamacpp_model.generate([], max_new_tokens=3) == []


def test_prompt_longer_than_the_context_is_rejected(llamacpp_model):
    with pytest.raises(ValueError, match=r"prompts\[1\].*n_ctx=2048"):
        llamacpp_model.generate(["hi", "word " * 3000], max_new_tokens=4)


def test_chat_template_matches_transformers(llamacpp_model, transformers_model):
    assert llamacpp_model._encode_prompt(CHAT_PROMPT, "p") == transformers_model._encode_prompt(
        CHAT_PROMPT, "p"
    )
