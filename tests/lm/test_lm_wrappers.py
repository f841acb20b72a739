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
    RetriesExhaustedError,
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


class ServerLikeModel(FlakyModel):
    """Fails as an HTTP server might: the n-th call with the n-th (kind, Retry-After), or
    answers where that is ``None`` or the list has ended."""

    def __init__(self, failures):
        super().__init__(len(failures))
        self.kinds = failures

    def _maybe_fail(self):
        self.calls += 1
        if self.calls <= self.failures and self.kinds[self.calls - 1] is not None:
            kind, retry_after = self.kinds[self.calls - 1]
            raise TransientLanguageModelError(
                f"failure {self.calls}", kind=kind, retry_after=retry_after
            )


def test_retrying_model_waits_as_long_as_the_server_asks_within_max_delay():
    delays = []
    failures = [("overloaded", 3.0), ("overloaded", 100.0), ("dropped", None), ("timeout", 0.0)]
    model = RetryingModel(
        ServerLikeModel(failures),
        max_attempts=5,
        initial_delay=0.5,
        backoff=2,
        max_delay=10,
        sleep=delays.append,
    )
    model.generate(["hi"], max_new_tokens=1)
    # Retry-After lengthens a wait, never shortens it, and is bounded by max_delay.
    assert delays == [3.0, 10, 2.0, 4.0]
    assert model.retries == {"overloaded": 2, "dropped": 1, "timeout": 1}


def test_exhausted_retries_are_one_transient_error_of_the_last_kind():
    model = RetryingModel(
        ServerLikeModel([("server_error", None), ("overloaded", 7.0)]),
        max_attempts=2,
        sleep=lambda seconds: None,
    )
    with pytest.raises(RetriesExhaustedError) as raised:
        model.score("p", ["a"])
    assert str(raised.value) == "flaky: score failed 2 time(s) in a row, the last: failure 2"
    assert (raised.value.kind, raised.value.retry_after, raised.value.attempts) == (
        "overloaded",
        7.0,
        2,
    )
    assert isinstance(raised.value.__cause__, TransientLanguageModelError)
    assert model.retries == {"server_error": 1}


def test_profiling_model_counts_retries_per_phase_through_other_wrappers():
    inner = RetryingModel(
        ServerLikeModel([("dropped", None), None, ("server_error", None), ("dropped", None)]),
        max_attempts=2,
        sleep=lambda seconds: None,
    )
    model = ProfilingModel(CallLimitModel(inner, max_calls=10))
    with model.phase("speech"):
        model.generate(["a"])  # one dropped, then answered
    with model.phase("act"), pytest.raises(RetriesExhaustedError):
        model.score("p", ["x"])  # a server error, then dropped again: given up
    model.generate(["b"])
    assert model.phases["speech"].retries == {"dropped": 1}
    assert model.phases["act"].retries == {"server_error": 1}
    assert model.phases["other"].retries == {}
    assert model.retries == {"dropped": 1, "server_error": 1}


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
        "speech": {
            "calls": 1,
            "generated_tokens": 4,
            "prompt_tokens_read": 6,
            "seconds": 1,
            "retries": {},
        },
        "act scoring": {
            "calls": 2,
            "generated_tokens": 0,
            "prompt_tokens_read": 10,
            "seconds": 2,
            "retries": {},
        },
        "other": {
            "calls": 1,
            "generated_tokens": 2,
            "prompt_tokens_read": 3,
            "seconds": 1,
            "retries": {},
        },
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
