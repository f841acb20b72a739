import numpy as np
import pytest

from valuegym.agents.lm.models import DEFAULT_MODEL

pytestmark = pytest.mark.slow

CHAT_PROMPT = [{"role": "user", "content": "Write one sentence about apples."}]
TEXT_PROMPT = "The capital of France is"
PROMPTS = [
    CHAT_PROMPT,
    TEXT_PROMPT,
    [{"role": "user", "content": "Name a colour."}],
    "Once upon a time, in a small village by the sea, there lived",
]


def test_every_token_has_finite_non_negative_entropy(transformers_model):
    generations = transformers_model.generate(PROMPTS, max_new_tokens=12, temperature=0.8, seed=1)
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


def test_sampled_entropy_is_zero_when_greedy_and_rises_with_temperature(transformers_model):
    means = []
    for temperature in (0.0, 0.3, 1.0, 2.0):
        generations = transformers_model.generate(
            PROMPTS, max_new_tokens=8, temperature=temperature, seed=3
        )
        means.append(np.concatenate([g.sampled_entropy for g in generations]).mean())
        if temperature == 1.0:
            for generation in generations:
                np.testing.assert_array_equal(generation.sampled_entropy, generation.token_entropy)
    assert means[0] == 0.0
    assert means[0] < means[1] < means[2] < means[3]


def test_same_seed_same_text_different_seed_different_text(transformers_model):
    first = transformers_model.generate(PROMPTS, max_new_tokens=8, temperature=1.0, seed=7)
    again = transformers_model.generate(PROMPTS, max_new_tokens=8, temperature=1.0, seed=7)
    other = transformers_model.generate(PROMPTS, max_new_tokens=8, temperature=1.0, seed=8)
    assert [g.text for g in first] == [g.text for g in again]
    for a, b in zip(first, again, strict=True):
        assert a.token_ids == b.token_ids
        np.testing.assert_array_equal(a.token_entropy, b.token_entropy)
    assert [g.text for g in first] != [g.text for g in other]


def test_batched_greedy_generation_equals_one_at_a_time(transformers_model):
    batched = transformers_model.generate(PROMPTS, max_new_tokens=10, temperature=0)
    for prompt, together in zip(PROMPTS, batched, strict=True):
        [alone] = transformers_model.generate([prompt], max_new_tokens=10, temperature=0)
        assert together.token_ids == alone.token_ids
        assert together.text == alone.text
        # Left padding changes the floating-point path, not the distribution.
        np.testing.assert_allclose(together.token_entropy, alone.token_entropy, atol=1e-3)
        np.testing.assert_allclose(together.token_logprob, alone.token_logprob, atol=1e-3)


def test_score_ranks_the_likely_continuation_first(transformers_model):
    scores = transformers_model.score(TEXT_PROMPT, [" Paris.", " a purple banana.", ""])
    assert scores.shape == (3,)
    assert scores[0] > scores[1] + 5
    assert scores[0] > -3
    assert scores[2] == 0.0
    chat_scores = transformers_model.score(
        CHAT_PROMPT, ["Apples are sweet.", "Zebra quantum fork."]
    )
    assert chat_scores[0] > chat_scores[1]


def test_score_in_small_batches_equals_one_batch(transformers_model):
    continuations = [" Paris.", " Lyon, of course.", " a city", " not known", " big"]
    whole = transformers_model.score(TEXT_PROMPT, continuations)
    transformers_model.score_batch_size = 2
    try:
        chunked = transformers_model.score(TEXT_PROMPT, continuations)
    finally:
        transformers_model.score_batch_size = 16
    np.testing.assert_allclose(chunked, whole, atol=1e-4)


def test_generated_logprobs_agree_with_score(transformers_model):
    for prompt in (TEXT_PROMPT, CHAT_PROMPT):
        [generation] = transformers_model.generate([prompt], max_new_tokens=16, temperature=0)
        logprobs = generation.token_logprob
        if generation.finish_reason == "stop":  # the end token is not part of the text
            logprobs = logprobs[:-1]
        [score] = transformers_model.score(prompt, [generation.text])
        assert score == pytest.approx(logprobs.sum(), abs=1e-3)


def test_stop_strings_and_limits(transformers_model):
    [stopped, limited] = transformers_model.generate(
        [CHAT_PROMPT, TEXT_PROMPT], max_new_tokens=30, temperature=0, stop=[","]
    )
    assert stopped.finish_reason == "stop"
    assert "," not in stopped.text
    assert stopped.text.startswith("A ripe")
    [limited] = transformers_model.generate([TEXT_PROMPT], max_new_tokens=3, temperature=0)
    assert limited.finish_reason == "length"
    assert limited.length == 3
    [empty] = transformers_model.generate([TEXT_PROMPT], max_new_tokens=0)
    assert empty.length == 0
    assert transformers_model.generate([], max_new_tokens=3) == []


def test_bad_prompt_is_named(transformers_model):
    with pytest.raises(ValueError, match=r"prompts\[1\]: the prompt encodes to no tokens"):
        transformers_model.generate(["hi", ""], max_new_tokens=2)


def test_converted_gguf_is_cached_and_not_converted_again(transformers_model, monkeypatch):
    import transformers

    from valuegym.agents.lm.huggingface import converted_gguf_folder
    from valuegym.agents.lm.models import embedded_model_path

    folder = converted_gguf_folder(embedded_model_path(DEFAULT_MODEL))
    assert (folder / "model.safetensors").is_file()
    assert (folder / "config.json").is_file()
    assert "quantization_config" not in (folder / "config.json").read_text()

    def refuse(*args, **kwargs):
        raise AssertionError("the cached conversion should have been used")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    assert converted_gguf_folder(embedded_model_path(DEFAULT_MODEL)) == folder


def test_cache_folder_follows_xdg_cache_home(monkeypatch, tmp_path):
    from valuegym.agents.lm.huggingface import user_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert user_cache_dir() == tmp_path / "valuegym"


def test_missing_local_folder_is_a_value_error(tmp_path):
    from valuegym.agents.lm.huggingface import TransformersModel

    with pytest.raises(ValueError, match="no such model folder"):
        TransformersModel(tmp_path / "absent")
