"""Wrappers that add behaviour around any :class:`LanguageModel` (retries, call limits).

Backends stay plain inference engines; policies about failures and budgets live here and
compose: ``CallLimitModel(RetryingModel(model), max_calls=1000)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from valuegym.lm.base import (
    Generation,
    LanguageModel,
    LanguageModelError,
    Prompt,
    TransientLanguageModelError,
)

__all__ = ["CallLimitExceededError", "CallLimitModel", "RetryingModel"]

_Result = TypeVar("_Result")


class CallLimitExceededError(LanguageModelError):
    """A :class:`CallLimitModel` was called more often than allowed."""


class RetryingModel(LanguageModel):
    """Retries calls that fail with transient errors, with exponential backoff.

    The ``n``-th retry waits ``min(initial_delay * backoff**(n-1), max_delay)`` seconds.
    The last error is raised when every attempt failed.

    Args:
        model: The wrapped model.
        max_attempts: Total attempts per call (1 means no retry).
        initial_delay: Seconds before the first retry.
        backoff: Factor by which the delay grows after each retry.
        max_delay: Upper bound on one delay, in seconds.
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
        self.model = model
        self.max_attempts = max_attempts
        self.initial_delay = initial_delay
        self.backoff = backoff
        self.max_delay = max_delay
        self.retry_on = retry_on
        self._sleep = sleep
        self.name = model.name

    def __repr__(self) -> str:
        return f"RetryingModel({self.model!r}, max_attempts={self.max_attempts})"

    def _call(self, function: Callable[[], _Result]) -> _Result:
        delay = self.initial_delay
        for attempt in range(1, self.max_attempts + 1):
            try:
                return function()
            except self.retry_on:
                if attempt == self.max_attempts:
                    raise
            self._sleep(min(delay, self.max_delay))
            delay *= self.backoff
        raise AssertionError("unreachable: the loop returns or raises")

    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        max_new_tokens: int = 64,
        temperature: float | Sequence[float] = 1.0,
        seed: int | None = None,
        stop: Sequence[str] = (),
    ) -> list[Generation]:
        """Generate with the wrapped model, retrying transient failures.

        Args:
            prompts: The prompts of the batch (text or chat messages).
            max_new_tokens: Upper bound on generated tokens per utterance.
            temperature: Sampling temperature, one for all prompts or one per prompt.
            seed: Seed of the sampler.
            stop: Strings that end an utterance.

        Returns:
            One :class:`Generation` per prompt, in order.
        """
        return self._call(
            lambda: self.model.generate(
                prompts,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                seed=seed,
                stop=stop,
            )
        )

    def score(self, prompt: Prompt, continuations: Sequence[str]) -> np.ndarray:
        """Score with the wrapped model, retrying transient failures.

        Args:
            prompt: The conditioning prompt.
            continuations: Candidate texts that follow the prompt.

        Returns:
            Log-likelihood per continuation, in nats.
        """
        return self._call(lambda: self.model.score(prompt, continuations))

    def close(self) -> None:
        """Close the wrapped model."""
        self.model.close()


class CallLimitModel(LanguageModel):
    """Raises :class:`CallLimitExceededError` once more than ``max_calls`` calls were made.

    Each ``generate`` or ``score`` call counts once, whatever its batch size.

    Args:
        model: The wrapped model.
        max_calls: Calls allowed.
    """

    def __init__(self, model: LanguageModel, *, max_calls: int) -> None:
        if max_calls < 0:
            raise ValueError(f"max_calls: must be >= 0 (got {max_calls})")
        self.model = model
        self.max_calls = max_calls
        self.calls = 0
        self.name = model.name

    def __repr__(self) -> str:
        return f"CallLimitModel({self.model!r}, calls={self.calls}/{self.max_calls})"

    def _count(self) -> None:
        if self.calls >= self.max_calls:
            raise CallLimitExceededError(
                f"{self.name}: call limit of {self.max_calls} language-model calls reached"
            )
        self.calls += 1

    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        max_new_tokens: int = 64,
        temperature: float | Sequence[float] = 1.0,
        seed: int | None = None,
        stop: Sequence[str] = (),
    ) -> list[Generation]:
        """Generate with the wrapped model if the limit allows.

        Args:
            prompts: The prompts of the batch (text or chat messages).
            max_new_tokens: Upper bound on generated tokens per utterance.
            temperature: Sampling temperature, one for all prompts or one per prompt.
            seed: Seed of the sampler.
            stop: Strings that end an utterance.

        Returns:
            One :class:`Generation` per prompt, in order.
        """
        self._count()
        return self.model.generate(
            prompts, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, stop=stop
        )

    def score(self, prompt: Prompt, continuations: Sequence[str]) -> np.ndarray:
        """Score with the wrapped model if the limit allows.

        Args:
            prompt: The conditioning prompt.
            continuations: Candidate texts that follow the prompt.

        Returns:
            Log-likelihood per continuation, in nats.
        """
        self._count()
        return self.model.score(prompt, continuations)

    def close(self) -> None:
        """Close the wrapped model."""
        self.model.close()
