import numpy as np
import pytest

from valuegym.lm.sequences import common_prefix_length

pytestmark = pytest.mark.slow

CHAT_PROMPT = [{"role": "user", "content": "Write one sentence about apples."}]
TEXT_PROMPT = "The capital of France is"


def test_output_does_not_depend_on_earlier_calls(llamacpp_model):
    prompts = ["x", TEXT_PROMPT, CHAT_PROMPT]
    before = llamacpp_model.generate(prompts, max_new_tokens=10, temperature=1.0, seed=0)
    llamacpp_model.score("Something else entirely", [" and more"])
    llamacpp_model.generate(["y"] * 5, max_new_tokens=3, seed=1)
    after = llamacpp_model.generate(prompts, max_new_tokens=10, temperature=1.0, seed=0)
    for first, second in zip(before, after, strict=True):
        assert first.token_ids == second.token_ids
        np.testing.assert_array_equal(first.token_entropy, second.token_entropy)


CHAT_TOPICS = ["apples", "rivers", "trains", "the moon", "bees", "music"]


def test_batched_greedy_matches_one_at_a_time(llamacpp_model):
    prompts = [[{"role": "user", "content": f"Write one sentence about {t}."}] for t in CHAT_TOPICS]
    batched = llamacpp_model.generate(prompts, max_new_tokens=16, temperature=0)
    for prompt, together in zip(prompts, batched, strict=True):
        [alone] = llamacpp_model.generate([prompt], max_new_tokens=16, temperature=0)
        # Prompts are read together (a shared prefix copied) and each step decodes one token
        # per live sequence in one ubatch. llama.cpp's CPU matrix kernels work on tiles of
        # rows and give leftover rows (or a lone token) to other kernels that round
        # differently: measured up to 0.6-1.2 logits for some tokens on this Q4_1 model
        # (see the llamacpp_context module docstring). So greedy paths agree until a near tie
        # and entropies agree within a few tenths of a nat, not bit for bit.
        agree = common_prefix_length(together.token_ids, alone.token_ids)
        assert agree >= 4
        np.testing.assert_allclose(
            together.token_entropy[:agree], alone.token_entropy[:agree], atol=0.5
        )


def test_samples_of_one_prompt_share_its_read_and_keep_their_own_randomness(llamacpp_model):
    samples = llamacpp_model.generate([CHAT_PROMPT] * 4, max_new_tokens=12, seed=7)
    again = llamacpp_model.generate([CHAT_PROMPT] * 4, max_new_tokens=12, seed=7)
    assert [s.token_ids for s in samples] == [s.token_ids for s in again]
    assert len({s.token_ids for s in samples}) > 1
    # One prompt read: every sample's first distribution is the same.
    assert len({float(s.token_entropy[0]) for s in samples}) == 1
    greedy = llamacpp_model.generate([CHAT_PROMPT] * 3, max_new_tokens=12, temperature=0)
    assert len({(g.token_ids[0], float(g.token_entropy[0])) for g in greedy}) == 1
    # After the shared read each sample is its own sequence of the unified cache, and llama.cpp
    # rounds a row by where its cells lie among the other sequences' and by its place in the
    # batch (here bit for bit equal for 8 steps, then up to 0.5 logits apart; see the
    # llamacpp_context module docstring): greedy samples agree until a near tie, entropies within
    # a few tenths.
    for other in greedy[1:]:
        agree = common_prefix_length(greedy[0].token_ids, other.token_ids)
        assert agree >= 4
        np.testing.assert_allclose(
            other.token_entropy[:agree], greedy[0].token_entropy[:agree], atol=0.5
        )


def test_many_prompts_fill_several_rounds(default_gguf):
    from valuegym.lm.llamacpp import LlamaCppModel

    small = LlamaCppModel(default_gguf, n_threads=1, n_ctx=256, n_seq_max=2)
    try:
        prompts = [TEXT_PROMPT, "Bees like", "Winter is", CHAT_PROMPT]
        together = small.generate(prompts, max_new_tokens=6, temperature=0)
        for prompt, generation in zip(prompts, together, strict=True):
            [alone] = small.generate([prompt], max_new_tokens=6, temperature=0)
            assert generation.token_ids[0] == alone.token_ids[0]
            assert generation.length == 6 or generation.finish_reason == "stop"
    finally:
        small.close()


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
        [generation] = fast.generate([CHAT_PROMPT], max_new_tokens=80, temperature=0)
        assert generation.finish_reason == "stop"
        [score] = fast.score(CHAT_PROMPT, [generation.text])
        expected = generation.token_logprob.sum()  # the end-of-turn token is scored too
        # llama.cpp's batched kernels round differently from one-token decoding.
        assert score == pytest.approx(expected, rel=0.05)
    finally:
        fast.close()


# Replies of 13 to 17 tokens, as the replay's manipulation check scores.
REPLIES = [
    " I pick apples every morning before the sun gets too hot to work.",
    " The orchard smells of cider whenever the wind turns to the south.",
    " Nobody told me the ladder was broken until I fell off it today.",
    " We share the harvest with our neighbours at the end of each autumn.",
    " Honestly, I am too tired to talk about fruit right now, sorry.",
]


def test_scoring_all_replies_together_is_close_deterministic_and_leaves_no_trace(default_gguf):
    from valuegym.lm.llamacpp import LlamaCppModel

    # Three sequences and 16-token batches: the replies fill two groups and span batches.
    options = {"n_threads": 1, "n_seq_max": 3, "n_batch": 16}
    together = LlamaCppModel(default_gguf, exact_scoring=False, **options)
    exact = LlamaCppModel(default_gguf, **options)
    try:
        batched = together.score(CHAT_PROMPT, REPLIES)
        one_by_one = exact.score(CHAT_PROMPT, REPLIES)
        # llama.cpp's batched kernels round differently from one-token decoding...
        assert np.all(batched != one_by_one)
        np.testing.assert_array_less(np.abs(batched - one_by_one), 0.5)
        # ...but alike whatever the order of the replies and however often one is repeated.
        order = [3, 0, 4, 2, 1, 0]
        reordered = together.score(CHAT_PROMPT, [REPLIES[i] for i in order])
        np.testing.assert_allclose(reordered, batched[order], rtol=0, atol=1e-9)
        # The extra sequences are gone: generation and exact scoring are a fresh model's.
        prompts = [CHAT_PROMPT, TEXT_PROMPT, TEXT_PROMPT]
        generated = together.generate(prompts, max_new_tokens=8, temperature=1.0, seed=3)
        reference = exact.generate(prompts, max_new_tokens=8, temperature=1.0, seed=3)
        for first, second in zip(generated, reference, strict=True):
            assert first.token_ids == second.token_ids
            np.testing.assert_array_equal(first.token_entropy, second.token_entropy)
        together.exact_scoring = True
        np.testing.assert_array_equal(together.score(CHAT_PROMPT, REPLIES), one_by_one)
    finally:
        together.close()
        exact.close()


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


def test_a_closed_model_raises_instead_of_crashing(default_gguf):
    from valuegym.lm import LanguageModelError
    from valuegym.lm.llamacpp import LlamaCppModel

    model = LlamaCppModel(default_gguf, n_threads=1)
    model.close()
    with pytest.raises(LanguageModelError, match="closed"):
        model.generate([TEXT_PROMPT], max_new_tokens=2)
    with pytest.raises(LanguageModelError, match="closed"):
        model.score(TEXT_PROMPT, [" Paris."])


def test_only_the_sequence_context_holds_the_full_cache(default_gguf):
    # Llama's own context is never decoded in: it gets 256 cells, the sequence context n_ctx.
    from valuegym.lm.llamacpp import LlamaCppModel

    model = LlamaCppModel(default_gguf, n_threads=1, n_ctx=4096, n_seq_max=2)
    try:
        llama_cpp = model._llama_cpp
        assert llama_cpp.llama_n_ctx(model._sequences.handle) == 4096
        assert llama_cpp.llama_n_ctx(model._llama._ctx.ctx) == 256
        long_prompt = "apple " * 1000  # well past 256 tokens, inside 4096
        [generation] = model.generate([long_prompt], max_new_tokens=4, temperature=0)
        assert generation.length == 4 or generation.finish_reason == "stop"
    finally:
        model.close()
