import numpy as np
import pytest

from valuegym.lm.base import (
    Generation,
    LanguageModel,
    LanguageModelError,
    TransientLanguageModelError,
)
from valuegym.lm.wrappers import (
    CallLimitExceededError,
    CallLimitModel,
    ForwardingModel,
    ProfilingModel,
    RetryingModel,
)


class FlakyModel(LanguageModel):
    """Fails with a given error a fixed number of times, then answers."""

    name = "flaky"

    def __init__(self, failures, error=TransientLanguageModelError):
        self.failures = failures
        self.error = error
        self.calls = 0
        self.closed = False

    def _maybe_fail(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"failure {self.calls}")

    def _generate(self, prompts, *, max_new_tokens, temperatures, seed, stop, truncation):
        self._maybe_fail()
        empty = np.zeros(0)
        return [Generation(str(p), (), empty, empty, empty) for p in prompts]

    def _score(self, prompt, continuations):
        self._maybe_fail()
        return -np.arange(len(continuations), dtype=float)

    def close(self):
        self.closed = True


def test_retrying_model_retries_transient_errors_with_exponential_backoff():
    delays = []
    model = RetryingModel(
        FlakyModel(failures=3), max_attempts=4, initial_delay=0.5, backoff=2, sleep=delays.append
    )
    [generation] = model.generate(["hi"], max_new_tokens=3)
    assert generation.text == "hi"
    assert model.model.calls == 4
    assert delays == [0.5, 1.0, 2.0]


def test_retrying_model_caps_delay_and_reraises_the_last_error():
    delays = []
    model = RetryingModel(
        FlakyModel(failures=10),
        max_attempts=4,
        initial_delay=1,
        backoff=10,
        max_delay=5,
        sleep=delays.append,
    )
    with pytest.raises(TransientLanguageModelError, match="failure 4"):
        model.score("p", ["a"])
    assert delays == [1, 5, 5]


def test_retrying_model_does_not_retry_other_errors():
    delays = []
    model = RetryingModel(FlakyModel(failures=1, error=LanguageModelError), sleep=delays.append)
    with pytest.raises(LanguageModelError, match="failure 1"):
        model.generate(["x"])
    assert model.model.calls == 1
    assert delays == []


def test_call_limit_model_counts_every_call_and_then_raises():
    inner = FlakyModel(failures=0)
    model = CallLimitModel(inner, max_calls=2)
    model.generate(["a", "b"])
    np.testing.assert_array_equal(model.score("p", ["x", "y"]), [0.0, -1.0])
    with pytest.raises(CallLimitExceededError, match="call limit of 2"):
        model.generate(["c"])
    assert inner.calls == 2
    model.close()
    assert inner.closed


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda m: RetryingModel(m, max_attempts=0), "max_attempts"),
        (lambda m: RetryingModel(m, backoff=0.5), "backoff"),
        (lambda m: CallLimitModel(m, max_calls=-1), "max_calls"),
    ],
)
def test_wrapper_arguments_are_validated(factory, message):
    with pytest.raises(ValueError, match=message):
        factory(FlakyModel(0))


class CountingModel(FlakyModel):
    """Generates two tokens per prompt and reads three prompt tokens per prompt."""

    def _generate(self, prompts, *, max_new_tokens, temperatures, seed, stop, truncation):
        self._prompt_tokens_read += 3 * len(prompts)
        empty = np.zeros(2)
        return [Generation(str(p), (1, 2), empty, empty, empty) for p in prompts]

    def _score(self, prompt, continuations):
        self._prompt_tokens_read += 5
        return np.zeros(len(continuations))


def test_profiling_model_counts_tokens_and_seconds_per_phase():
    ticks = iter(range(100))
    model = ProfilingModel(
        RetryingModel(CallLimitModel(CountingModel(0), max_calls=10)), clock=lambda: next(ticks)
    )
    with model.phase("speech") as speech:
        model.generate(["a", "b"])
    with model.phase("act scoring"):
        model.score("p", ["x", "y"])
        model.score("p", ["z"])
    model.generate(["c"])
    assert speech.generated_tokens == 4
    assert model.to_dict() == {
        "speech": {"calls": 1, "generated_tokens": 4, "prompt_tokens_read": 6, "seconds": 1},
        "act scoring": {"calls": 2, "generated_tokens": 0, "prompt_tokens_read": 10, "seconds": 2},
        "other": {"calls": 1, "generated_tokens": 2, "prompt_tokens_read": 3, "seconds": 1},
    }
    assert model.prompt_tokens_read == 19


def test_every_wrapper_forwards_through_one_base():
    for wrapper in (RetryingModel, CallLimitModel, ProfilingModel):
        assert issubclass(wrapper, ForwardingModel)
    inner = CountingModel(0)
    model = ProfilingModel(CallLimitModel(inner, max_calls=1))
    model.generate(["a"])
    with pytest.raises(CallLimitExceededError):
        model.generate(["b"])
    assert model.phases["other"].calls == 2
    model.close()
    assert inner.closed
