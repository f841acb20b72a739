import numpy as np
import pytest

pytestmark = pytest.mark.slow

CHAT_PROMPT = [{"role": "user", "content": "Write one sentence about apples."}]
TEXT_PROMPT = "The capital of France is"


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


def test_batched_scoring_is_close_to_exact_scoring(default_gguf):
    from valuegym.lm.llamacpp import LlamaCppModel

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


@pytest.mark.parametrize("setting", ["0", "1"])
def test_buffer_type_override_loads_and_generates(default_gguf, monkeypatch, setting):
    # "0" is the path taken on CPUs with AMX: exercised for real on whatever CPU runs this.
    from valuegym.lm.cpu import AMX_OVERRIDE_VARIABLE
    from valuegym.lm.llamacpp import LlamaCppModel

    monkeypatch.setenv(AMX_OVERRIDE_VARIABLE, setting)
    model = LlamaCppModel(default_gguf, n_threads=1)
    try:
        assert model.extra_buffer_types is (setting == "1")
        assert model._llama.model_params.use_extra_bufts is (setting == "1")
        [generation] = model.generate([TEXT_PROMPT], max_new_tokens=8, temperature=0)
        assert generation.length == 8
        assert generation.text.strip()
    finally:
        model.close()
