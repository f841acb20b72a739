"""Steering vectors in both local backends, on the embedded model: known answers.

A steering of zeros changes nothing; a token's unembedding direction added at the last
blocks raises that token's probability; llama.cpp's control vectors and transformers' hooks
shift next-token log-probabilities alike; a batch may mix steered and unsteered prompts.
"""

from __future__ import annotations

import numpy as np
import pytest

from valuegym.lm import (
    CallLimitModel,
    LanguageModel,
    ProfilingModel,
    RetryingModel,
    Steering,
    SteeringUnsupportedError,
)
from valuegym.lm.base import Generation

PROMPTS = ["My favourite thing to eat is", "The weather today is", "Once upon a time, a"]
LAST_BLOCKS = (25, 26, 27, 28, 29)
AGREEMENT_PROMPTS = [
    "The capital of France is",
    "She opened the door and saw",
    "In the morning I usually",
    "The best way to learn is",
    "He looked at the sky and",
    "My favourite colour is",
    "The children played in the",
    "After dinner we went to the",
    "The old man said that",
    "Scientists have discovered a new",
    "The cat sat on the",
    "I can't believe that you",
    "The train arrived at the",
    "When I was young, I",
    "The most important thing in life is",
    "She smiled and said",
    "The recipe calls for two cups of",
    "On the weekend, my family likes to",
    "The river flows through the",
    "It was a dark and stormy",
]
CANDIDATES = [" the", " a", " happy", " dog", " water"]


@pytest.fixture(scope="module")
def both(transformers_model, llamacpp_model):
    return {"transformers": transformers_model, "llamacpp": llamacpp_model}


def unembedding(transformers_model, text: str) -> np.ndarray:
    """The unit output-embedding row of the single token ``text``."""
    [token_id] = transformers_model._tokenizer(text, add_special_tokens=False)["input_ids"]
    row = transformers_model._model.lm_head.weight[token_id].detach().float().numpy()
    return row / np.linalg.norm(row)


def assert_same(first: list[Generation], second: list[Generation]) -> None:
    for a, b in zip(first, second, strict=True):
        assert a.token_ids == b.token_ids
        np.testing.assert_array_equal(a.token_logprob, b.token_logprob)
        np.testing.assert_array_equal(a.token_entropy, b.token_entropy)


@pytest.mark.parametrize("backend", ["transformers", "llamacpp"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_zero_steering_changes_nothing(both, backend, temperature):
    model = both[backend]
    zero = Steering({block: np.zeros(576, np.float32) for block in (10, 20)}, label="zero")
    assert zero.is_zero()
    options = {"max_new_tokens": 8, "temperature": temperature, "seed": 7}
    plain = model.generate(PROMPTS, **options)
    steered = model.generate(PROMPTS, **options, steering=zero)
    assert_same(plain, steered)
    np.testing.assert_array_equal(
        model.score(PROMPTS[0], [" apple", " bread"]),
        model.score(PROMPTS[0], [" apple", " bread"], steering=zero),
    )


@pytest.mark.parametrize("backend", ["transformers", "llamacpp"])
def test_unembedding_direction_raises_its_token(both, transformers_model, backend):
    model = both[backend]
    direction = unembedding(transformers_model, " apple")
    steering = Steering({block: 8.0 * direction for block in LAST_BLOCKS}, label="apple=8")
    plain = model.score(PROMPTS[0], [" apple"])[0]
    steered = model.score(PROMPTS[0], [" apple"], steering=steering)[0]
    # About -5.7 nats unsteered; +2.6 nats at this strength in both backends.
    assert steered - plain > 2.0
    # Not a general shift: a related token moves far less (+0.1 nats).
    bread = model.score(PROMPTS[0], [" bread"], steering=steering) - model.score(
        PROMPTS[0], [" bread"]
    )
    assert steered - plain > bread[0] + 1.5


def test_backends_agree_on_log_prob_shifts(both):
    rng = np.random.default_rng(2024)
    direction = rng.standard_normal(576).astype(np.float32)
    # Moderate at block 15: the shifts spread about 0.5 nats (0.97 correlation on 10 candidates).
    steering = Steering({15: 20.0 * direction / np.linalg.norm(direction)}, label="random")
    shifts = {}
    for backend, model in both.items():
        shifts[backend] = np.concatenate(
            [
                model.score(prompt, CANDIDATES, steering=steering) - model.score(prompt, CANDIDATES)
                for prompt in AGREEMENT_PROMPTS
            ]
        )
    correlation = np.corrcoef(shifts["transformers"], shifts["llamacpp"])[0, 1]
    spread = np.std(shifts["transformers"])
    print(f"log-prob shifts: correlation {correlation:.3f}, spread {spread:.3f} nats")
    assert spread > 0.2  # the steering does move the log-probabilities
    assert correlation >= 0.9


def test_transformers_mixed_batch_leaves_unsteered_rows_alone(transformers_model, both):
    steering = Steering(
        {block: 16.0 * unembedding(transformers_model, " apple") for block in LAST_BLOCKS}
    )
    options = {"max_new_tokens": 8, "temperature": 1.0, "seed": 3}
    plain = transformers_model.generate(PROMPTS, **options)
    mixed = transformers_model.generate(PROMPTS, **options, steering=[None, steering, None])
    assert_same([plain[0], plain[2]], [mixed[0], mixed[2]])
    assert mixed[1].token_ids != plain[1].token_ids
    # Copies of one prompt with different steerings do not share a prompt pass.
    pair = transformers_model.generate(
        [PROMPTS[1], PROMPTS[1]], **options, steering=[steering, None]
    )
    assert pair[0].token_ids != pair[1].token_ids
    # Copies with one steering share their prompt pass and stay steered after it.
    greedy = {"max_new_tokens": 8, "temperature": 0.0}
    [alone] = transformers_model.generate([PROMPTS[1]], **greedy, steering=steering)
    copies = transformers_model.generate([PROMPTS[1]] * 2, **greedy, steering=steering)
    assert copies[0].token_ids == copies[1].token_ids == alone.token_ids


def test_llamacpp_groups_by_steering(llamacpp_model, transformers_model):
    steering = Steering(
        {block: 16.0 * unembedding(transformers_model, " apple") for block in LAST_BLOCKS}
    )
    options = {"max_new_tokens": 8, "temperature": 1.0, "seed": 3}
    mixed = llamacpp_model.generate(PROMPTS, **options, steering=[None, steering, None])
    # Each group is generated as if alone; each prompt keeps its seed (the per-prompt seeds).
    seeds = np.random.SeedSequence(3).spawn(3)
    unsteered = llamacpp_model.generate(
        [PROMPTS[0], PROMPTS[2]], **options | {"seed": (seeds[0], seeds[2])}
    )
    steered = llamacpp_model.generate(
        [PROMPTS[1]], **options | {"seed": (seeds[1],)}, steering=steering
    )
    assert_same([mixed[0], mixed[2], mixed[1]], [*unsteered, *steered])
    assert mixed[1].token_ids != llamacpp_model.generate(PROMPTS, **options)[1].token_ids
    # The control vector was cleared: an unsteered call after a steered one is as before.
    assert_same(
        llamacpp_model.generate(
            [PROMPTS[0], PROMPTS[2]], **options | {"seed": (seeds[0], seeds[2])}
        ),
        unsteered,
    )


@pytest.mark.parametrize("block", [1, 15])
def test_llamacpp_block_b_is_transformers_block_b(both, block):
    """The block -> control-vector row mapping on its own: llama.cpp steered at block b moves
    the log-probabilities as transformers steered at b does (same sign), not as at b -/+ 1."""
    rng = np.random.default_rng(block)
    direction = rng.standard_normal(576).astype(np.float32)
    vector = 20.0 * direction / np.linalg.norm(direction)
    prompts = AGREEMENT_PROMPTS[:6]

    def shifts(model, at: int) -> np.ndarray:
        steering = Steering({at: vector})
        return np.concatenate(
            [
                model.score(p, CANDIDATES, steering=steering) - model.score(p, CANDIDATES)
                for p in prompts
            ]
        )

    llamacpp = shifts(both["llamacpp"], block)
    correlation = {
        at: float(np.corrcoef(llamacpp, shifts(both["transformers"], at))[0, 1])
        for at in (block - 1, block, block + 1)
    }
    # Measured: block 1: 0.80 / 0.99 / 0.80; block 15: 0.75 / 0.96 / 0.91.
    assert correlation[block] >= 0.9
    assert correlation[block] > max(correlation[block - 1], correlation[block + 1]) + 0.03


def test_steering_checks_its_blocks(both):
    past_the_end = Steering({30: np.ones(576, np.float32)})
    with pytest.raises(ValueError, match="block 30"):
        both["transformers"].score(PROMPTS[0], [" x"], steering=past_the_end)
    with pytest.raises(ValueError, match=r"blocks 1\.\.29"):
        both["llamacpp"].score(PROMPTS[0], [" x"], steering=Steering({0: np.ones(576)}))
    with pytest.raises(ValueError, match="2 steerings for 3 prompts"):
        both["llamacpp"].generate(PROMPTS, steering=[None, None])


class Unsteerable(LanguageModel):
    name = "fake:unsteerable"

    def _generate(self, prompts, **options):
        return [Generation("x", (1,), np.zeros(1), np.zeros(1), np.zeros(1)) for _ in prompts]

    def _score(self, prompt, continuations):
        return np.zeros(len(continuations))


class Steerable(Unsteerable):
    name = "fake:steerable"
    supports_steering = True

    def __init__(self):
        self.seen = []

    def _generate(self, prompts, steering=None, **options):
        self.seen.append(steering)
        return super()._generate(prompts, **options)

    def _score(self, prompt, continuations, steering=None):
        self.seen.append(steering)
        return super()._score(prompt, continuations)


def test_models_that_cannot_steer_refuse_and_wrappers_forward():
    from valuegym.lm.openai_http import OpenAICompatibleModel

    steering = Steering({1: np.ones(4)}, label="ones")
    for model in (Unsteerable(), RetryingModel(Unsteerable()), OpenAICompatibleModel()):
        assert not model.supports_steering
        with pytest.raises(SteeringUnsupportedError, match=model.name):
            model.generate(["a"], steering=steering)
        with pytest.raises(SteeringUnsupportedError):
            model.score("a", ["b"], steering=steering)
    # None for every prompt is not steering.
    assert Unsteerable().generate(["a", "b"], steering=[None, None])[0].text == "x"
    inner = Steerable()
    wrapped = ProfilingModel(CallLimitModel(RetryingModel(inner), max_calls=5))
    assert wrapped.supports_steering
    wrapped.generate(["a", "b"], steering=[None, steering])
    wrapped.generate(["a", "b"], steering=[None, None])
    wrapped.score("a", ["b"], steering=steering)
    assert inner.seen == [(None, steering), None, (steering,)]
    assert steering.key() == Steering({1: np.ones(4)}, label="other").key()
    assert steering.key() != Steering({2: np.ones(4)}).key()
