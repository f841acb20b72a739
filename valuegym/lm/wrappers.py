"""Wrappers that add behaviour around any :class:`LanguageModel` (retries, call limits, profiles).

Backends stay plain inference engines; policies about failures and budgets, and
measurements of the calls, live here and compose:
``ProfilingModel(CallLimitModel(RetryingModel(model), max_calls=1000))``. Every wrapper is a
:class:`ForwardingModel`: it forwards ``generate``, ``score`` and ``close`` to the wrapped
model through one hook, :meth:`ForwardingModel._forward`, which a wrapper overrides. The
arguments are checked once, by the outermost ``generate`` or ``score``; a wrapper hands them on
to the wrapped model's :meth:`~valuegym.lm.base.LanguageModel._generate` and ``_score`` as they
are, a steering (``steering=``, one per prompt) included.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from valuegym.lm.base import (
    Generation,
    LanguageModel,
    LanguageModelError,
    TransientLanguageModelError,
)
from valuegym.lm.prompts import CheckedPrompt
from valuegym.lm.sampling import Truncation

if TYPE_CHECKING:
    from valuegym.lm.steering import Steering

__all__ = [
    "CallLimitExceededError",
    "CallLimitModel",
    "ForwardingModel",
    "PhaseProfile",
    "ProfilingModel",
    "RetriesExhaustedError",
    "RetryingModel",
]

_Result = TypeVar("_Result")


class CallLimitExceededError(LanguageModelError):
    """A :class:`CallLimitModel` was called more often than allowed."""


class RetriesExhaustedError(TransientLanguageModelError):
    """A :class:`RetryingModel` call failed transiently on every attempt.

    It is of the last failure's kind, so a caller that handles transient failures still does.

    Args:
        message: One line: the model, the attempts, and the last failure.
        attempts: Attempts made.
        last_error: The last attempt's failure.
    """

    def __init__(
        self, message: str, *, attempts: int, last_error: TransientLanguageModelError
    ) -> None:
        super().__init__(message, kind=last_error.kind, retry_after=last_error.retry_after)
        self.attempts = attempts
        self.last_error = last_error


class ForwardingModel(LanguageModel):
    """A wrapper that forwards every call to the wrapped model through :meth:`_forward`.

    Args:
        model: The wrapped model.
    """

    def __init__(self, model: LanguageModel) -> None:
        self.model = model
        self.name = model.name

    # A class constant in backends; a wrapper can steer when the model it wraps can.
    @property
    def supports_steering(self) -> bool:  # type: ignore[override]
        """Whether the wrapped model can be steered."""
        return self.model.supports_steering

    @property
    def prompt_tokens_read(self) -> int:
        """The wrapped model's count of prompt tokens read."""
        return self.model.prompt_tokens_read

    @property
    def retries(self) -> dict[str, int]:
        """The wrapped model's count of retries, by kind of failure."""
        return self.model.retries

    def _forward(self, kind: str, call: Callable[[], _Result]) -> _Result:
        """Run one call of the wrapped model (``kind``: ``"generate"`` or ``"score"``)."""
        del kind
        return call()

    def _generate(
        self,
        prompts: tuple[CheckedPrompt, ...],
        *,
        max_new_tokens: int,
        temperatures: np.ndarray,
        seed: int | tuple[np.random.SeedSequence, ...] | None,
        stop: tuple[str, ...],
        truncation: Truncation,
        steering: tuple[Steering | None, ...] | None = None,
    ) -> list[Generation]:
        """Generate with the wrapped model (see :meth:`LanguageModel._generate`)."""
        # Only a steered call passes steering on: unsteerable models do not take it.
        steered = {} if steering is None else {"steering": steering}
        return self._forward(
            "generate",
            lambda: self.model._generate(
                prompts,
                max_new_tokens=max_new_tokens,
                temperatures=temperatures,
                seed=seed,
                stop=stop,
                truncation=truncation,
                **steered,
            ),
        )

    def _score(
        self,
        prompt: CheckedPrompt,
        continuations: tuple[str, ...],
        steering: tuple[Steering | None, ...] | None = None,
    ) -> np.ndarray:
        """Score with the wrapped model (see :meth:`LanguageModel._score`)."""
        steered = {} if steering is None else {"steering": steering}
        return self._forward("score", lambda: self.model._score(prompt, continuations, **steered))

    def close(self) -> None:
        """Close the wrapped model."""
        self.model.close()


class RetryingModel(ForwardingModel):
    """Retries calls that fail with transient errors, with exponential backoff.

    The ``n``-th retry waits ``min(initial_delay * backoff**(n-1), max_delay)`` seconds, or
    longer when the failure asked for it (an HTTP ``Retry-After``), never over ``max_delay``.
    Each retry is counted by the failure's kind in :attr:`retries`. When every attempt failed,
    :class:`RetriesExhaustedError` says so in one line, from the last failure.

    Args:
        model: The wrapped model.
        max_attempts: Total attempts per call (1 means no retry).
        initial_delay: Seconds before the first retry.
        backoff: Factor by which the delay grows after each retry.
        max_delay: Upper bound on one delay, in seconds (``Retry-After`` included).
        retry_on: Exception types that count as transient.
        sleep: Function that waits (replaceable in tests).
    """

    def __init__(
        self,
        model: LanguageModel,
        *,
        max_attempts: int = 3,
        initial_delay: float = 0.5,
        backoff: float = 2.0,
        max_delay: float = 30.0,
        retry_on: tuple[type[BaseException], ...] = (TransientLanguageModelError,),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts: must be >= 1 (got {max_attempts})")
        if initial_delay < 0 or max_delay < 0:
            raise ValueError("initial_delay, max_delay: must be >= 0")
        if backoff < 1:
            raise ValueError(f"backoff: must be >= 1 (got {backoff})")
        super().__init__(model)
        self.max_attempts = max_attempts
        self.initial_delay = initial_delay
        self.backoff = backoff
        self.max_delay = max_delay
        self.retry_on = retry_on
        self._sleep = sleep
        self._retries: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"RetryingModel({self.model!r}, max_attempts={self.max_attempts})"

    @property
    def retries(self) -> dict[str, int]:
        """Retries made by this wrapper and the models inside it, by kind of failure."""
        return dict(self._retries + Counter(self.model.retries))

    def _forward(self, kind: str, call: Callable[[], _Result]) -> _Result:
        delay = self.initial_delay
        for attempt in range(1, self.max_attempts + 1):
            try:
                return call()
            except self.retry_on as error:
                if not isinstance(error, TransientLanguageModelError):
                    if attempt == self.max_attempts:
                        raise
                    failure, asked = type(error).__name__, 0.0
                elif attempt == self.max_attempts:
                    raise RetriesExhaustedError(
                        f"{self.name}: {kind} failed {attempt} time(s) in a row, the last: {error}",
                        attempts=attempt,
                        last_error=error,
                    ) from error
                else:
                    failure, asked = error.kind, error.retry_after or 0.0
                self._retries[failure] += 1
            self._sleep(min(max(delay, asked), self.max_delay))
            delay *= self.backoff
        raise AssertionError("unreachable: the loop returns or raises")


class CallLimitModel(ForwardingModel):
    """Raises :class:`CallLimitExceededError` once more than ``max_calls`` calls were made.

    Each ``generate`` or ``score`` call counts once, whatever its batch size.

    Args:
        model: The wrapped model.
        max_calls: Calls allowed.
    """

    def __init__(self, model: LanguageModel, *, max_calls: int) -> None:
        if max_calls < 0:
            raise ValueError(f"max_calls: must be >= 0 (got {max_calls})")
        super().__init__(model)
        self.max_calls = max_calls
        self.calls = 0

    def __repr__(self) -> str:
        return f"CallLimitModel({self.model!r}, calls={self.calls}/{self.max_calls})"

    def _forward(self, kind: str, call: Callable[[], _Result]) -> _Result:
        if self.calls >= self.max_calls:
            raise CallLimitExceededError(
                f"{self.name}: call limit of {self.max_calls} language-model calls reached"
            )
        self.calls += 1
        return call()


@dataclass
class PhaseProfile:
    """What the model did in one phase of a run (speech, act scoring, semantic samples...).

    Attributes:
        calls: ``generate`` and ``score`` calls.
        generated_tokens: Tokens generated (end-of-sequence tokens included).
        prompt_tokens_read: Prompt (and scored continuation) tokens the backend decoded;
            tokens whose cache was shared are not read again and not counted.
        seconds: Wall-clock seconds inside the model (waits before retries included).
        retries: Calls repeated after a transient failure, by kind of failure
            (:attr:`~valuegym.lm.base.LanguageModel.retries`).
    """

    calls: int = 0
    generated_tokens: int = 0
    prompt_tokens_read: int = 0
    seconds: float = 0.0
    retries: dict[str, int] = field(default_factory=dict)

    def add_retries(self, retries: Mapping[str, int]) -> None:
        """Count these retries too (kinds with no retry are left out)."""
        for kind, count in retries.items():
            if count:
                self.retries[kind] = self.retries.get(kind, 0) + count

    def to_dict(self) -> dict[str, Any]:
        """The profile as a plain dict (for summaries and records)."""
        return {
            "calls": self.calls,
            "generated_tokens": self.generated_tokens,
            "prompt_tokens_read": self.prompt_tokens_read,
            "seconds": self.seconds,
            "retries": dict(self.retries),
        }


class ProfilingModel(ForwardingModel):
    """Counts tokens and seconds in the wrapped model, per phase label.

    Calls made inside ``with profiler.phase("speech"):`` count towards ``"speech"``; other
    calls towards ``default_phase``. Prompt tokens come from the backend's
    ``prompt_tokens_read`` counter (0 where a backend cannot know them), retries from the
    wrapped model's ``retries`` (a :class:`RetryingModel` inside this one).

    Args:
        model: The wrapped model.
        default_phase: The label of calls made outside any :meth:`phase` block.
        clock: Function giving seconds (replaceable in tests).
    """

    def __init__(
        self,
        model: LanguageModel,
        *,
        default_phase: str = "other",
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(model)
        self.phases: dict[str, PhaseProfile] = {}
        self._phase = default_phase
        self._clock = clock

    def __repr__(self) -> str:
        return f"ProfilingModel({self.model!r}, phases={sorted(self.phases)})"

    @contextlib.contextmanager
    def phase(self, label: str) -> Iterator[PhaseProfile]:
        """Count the calls made inside the ``with`` block towards ``label``."""
        previous, self._phase = self._phase, label
        try:
            yield self.phases.setdefault(label, PhaseProfile())
        finally:
            self._phase = previous

    def _forward(self, kind: str, call: Callable[[], _Result]) -> _Result:
        profile = self.phases.setdefault(self._phase, PhaseProfile())
        read_before = self.model.prompt_tokens_read
        retries_before = Counter(self.model.retries)
        start = self._clock()
        try:
            result = call()
        finally:
            profile.seconds += self._clock() - start
            profile.calls += 1
            profile.prompt_tokens_read += self.model.prompt_tokens_read - read_before
            profile.add_retries(Counter(self.model.retries) - retries_before)
        if kind == "generate" and isinstance(result, list):
            profile.generated_tokens += sum(generation.length for generation in result)
        return result

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Every phase's profile as plain dicts, by label."""
        return {label: profile.to_dict() for label, profile in self.phases.items()}
