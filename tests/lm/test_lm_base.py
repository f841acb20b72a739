"""The template of LanguageModel: generate and score check once, backends get checked arguments."""

import numpy as np
import pytest

from valuegym.lm.base import Generation, LanguageModel
from valuegym.lm.sampling import Truncation, prompt_seed
from valuegym.lm.wrappers import CallLimitModel, ProfilingModel, RetryingModel


class RecordingModel(LanguageModel):
    """Records what its hooks receive; answers with empty generations and zero scores."""

    name = "recording"

    def __init__(self):
        self.generate_calls = []
        self.score_calls = []

    def _generate(self, prompts, *, max_new_tokens, temperatures, seed, stop, truncation):
        self.generate_calls.append(
            {
                "prompts": prompts,
                "max_new_tokens": max_new_tokens,
                "temperatures": temperatures,
                "seed": seed,
                "stop": stop,
                "truncation": truncation,
            }
        )
        empty = np.zeros(0)
        return [Generation("", (), empty, empty, empty) for _ in prompts]

    def _score(self, prompt, continuations):
        self.score_calls.append((prompt, continuations))
        return np.zeros(len(continuations))


def test_generate_hands_the_backend_checked_and_normalised_arguments():
    model = RecordingModel()
    chat = ({"role": "user", "content": "hi", "extra": "dropped"},)
    model.generate(["text", chat], max_new_tokens=5, temperature=0.5, seed=np.int64(3), stop=["\n"])
    [call] = model.generate_calls
    assert call["prompts"] == ("text", [{"role": "user", "content": "hi"}])
    assert call["max_new_tokens"] == 5
    np.testing.assert_array_equal(call["temperatures"], [0.5, 0.5])
    assert call["seed"] == 3
    assert type(call["seed"]) is int
    assert call["stop"] == ("\n",)
    assert call["truncation"] == Truncation()


def test_generate_passes_seed_sequences_and_truncation_through():
    model = RecordingModel()
    seeds = [prompt_seed(9, 4), prompt_seed(9, 1)]
    truncation = Truncation(top_k=5)
    model.generate(["a", "b"], temperature=[0.0, 1.0], seed=seeds, truncation=truncation)
    [call] = model.generate_calls
    assert call["seed"] == tuple(seeds)
    assert call["truncation"] is truncation
    np.testing.assert_array_equal(call["temperatures"], [0.0, 1.0])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"prompts": "one string"}, "not a single string"),
        ({"prompts": ["a", 3]}, r"prompts\[1\]"),
        ({"prompts": ["a"], "max_new_tokens": -1}, "max_new_tokens"),
        ({"prompts": ["a"], "temperature": -0.5}, "temperature"),
        ({"prompts": ["a"], "stop": [""]}, r"stop\[0\]"),
        ({"prompts": ["a", "b"], "seed": [prompt_seed(0, 0)]}, "one seed sequence per prompt"),
    ],
)
def test_bad_generate_arguments_never_reach_the_backend(arguments, message):
    model = RecordingModel()
    with pytest.raises(ValueError, match=message):
        model.generate(**arguments)
    assert model.generate_calls == []


def test_score_hands_the_backend_a_checked_prompt_and_continuations():
    model = RecordingModel()
    model.score([{"role": "user", "content": "q"}], ["yes", "no"])
    assert model.score_calls == [([{"role": "user", "content": "q"}], ("yes", "no"))]
    with pytest.raises(ValueError, match=r"continuations\[0\]"):
        model.score("q", [3])
    with pytest.raises(ValueError, match="prompt"):
        model.score([], ["yes"])
    assert len(model.score_calls) == 1


def test_wrappers_hand_on_the_arguments_checked_once():
    inner = RecordingModel()
    model = ProfilingModel(CallLimitModel(RetryingModel(inner), max_calls=5))
    seeds = [prompt_seed(1, 0)]
    model.generate([[{"role": "user", "content": "hi"}]], temperature=[0.3], seed=seeds)
    [call] = inner.generate_calls
    assert call["prompts"] == ([{"role": "user", "content": "hi"}],)
    assert call["seed"] == tuple(seeds)
    np.testing.assert_array_equal(call["temperatures"], [0.3])
    model.score("q", ["a"])
    assert inner.score_calls == [("q", ("a",))]
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(["a"], max_new_tokens=-1)
    assert model.model.calls == 2  # the bad call never reached the call limit
