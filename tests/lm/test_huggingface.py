import numpy as np
import pytest

from valuegym.lm.models import DEFAULT_MODEL

pytestmark = pytest.mark.slow

CHAT_PROMPT = [{"role": "user", "content": "Write one sentence about apples."}]
TEXT_PROMPT = "The capital of France is"
PROMPTS = [
    CHAT_PROMPT,
    TEXT_PROMPT,
    [{"role": "user", "content": "Name a colour."}],
    "Once upon a time, in a small village by the sea, there lived",
]


def test_batched_greedy_generation_equals_one_at_a_time(transformers_model):
    batched = transformers_model.generate(PROMPTS, max_new_tokens=10, temperature=0)
    for prompt, together in zip(PROMPTS, batched, strict=True):
        [alone] = transformers_model.generate([prompt], max_new_tokens=10, temperature=0)
        assert together.token_ids == alone.token_ids
        assert together.text == alone.text
        # Left padding changes the floating-point path, not the distribution.
        np.testing.assert_allclose(together.token_entropy, alone.token_entropy, atol=1e-3)
        np.testing.assert_allclose(together.token_logprob, alone.token_logprob, atol=1e-3)


def test_score_in_small_batches_equals_one_batch(transformers_model):
    continuations = [" Paris.", " Lyon, of course.", " a city", " not known", " big"]
    whole = transformers_model.score(TEXT_PROMPT, continuations)
    transformers_model.score_batch_size = 2
    try:
        chunked = transformers_model.score(TEXT_PROMPT, continuations)
    finally:
        transformers_model.score_batch_size = 16
    np.testing.assert_allclose(chunked, whole, atol=1e-4)


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

    from valuegym.lm.huggingface import converted_gguf_folder
    from valuegym.lm.models import embedded_model_path

    folder = converted_gguf_folder(embedded_model_path(DEFAULT_MODEL))
    assert (folder / "model.safetensors").is_file()
    assert (folder / "config.json").is_file()
    assert "quantization_config" not in (folder / "config.json").read_text()

    def refuse(*args, **kwargs):
        raise AssertionError("the cached conversion should have been used")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    assert converted_gguf_folder(embedded_model_path(DEFAULT_MODEL)) == folder


def test_cache_folder_follows_xdg_cache_home(monkeypatch, tmp_path):
    from valuegym.lm.huggingface import user_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert user_cache_dir() == tmp_path / "valuegym"


def test_missing_local_folder_is_a_value_error(tmp_path):
    from valuegym.lm.huggingface import TransformersModel

    with pytest.raises(ValueError, match="no such model folder"):
        TransformersModel(tmp_path / "absent")


def test_samples_of_one_prompt_share_one_prompt_pass(transformers_model):
    prompt = [{"role": "user", "content": "Write one sentence about apples."}]
    read_before = transformers_model.prompt_tokens_read
    samples = transformers_model.generate([prompt] * 3 + ["Bees"], max_new_tokens=8, seed=5)
    prompt_length = len(transformers_model._encode_prompt(prompt, "p"))
    bees_length = len(transformers_model._encode_prompt("Bees", "p"))
    assert transformers_model.prompt_tokens_read - read_before == prompt_length + bees_length
    again = transformers_model.generate([prompt] * 3 + ["Bees"], max_new_tokens=8, seed=5)
    assert [s.token_ids for s in samples] == [s.token_ids for s in again]
    assert len({s.token_ids for s in samples[:3]}) > 1
    greedy = transformers_model.generate([prompt] * 2, max_new_tokens=8, temperature=0)
    [alone] = transformers_model.generate([prompt], max_new_tokens=8, temperature=0)
    assert greedy[0].token_ids == greedy[1].token_ids == alone.token_ids
    np.testing.assert_allclose(greedy[1].token_entropy, alone.token_entropy, atol=1e-4)
