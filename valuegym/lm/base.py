"""The one small interface every language-model backend implements.

A backend generates utterances for a batch of prompts, reporting per generated token
the entropy of the model's full next-token distribution at temperature 1, the entropy
of the distribution the token was actually sampled from, and the sampled token's
log-probability; and it scores given continuations of a prompt. Retry and call limits
are wrappers around a backend (``valuegym.lm.wrappers``), never inside one.

A prompt is either plain text (completion) or a sequence of chat messages
(``{"role": ..., "content": ...}``), to which the backend applies the model's chat
template.

:meth:`LanguageModel.generate` and :meth:`LanguageModel.score` check and normalise their
arguments once, then call the backend's :meth:`~LanguageModel._generate` and
:meth:`~LanguageModel._score`, which do only the model's part.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, final

import numpy as np

from valuegym.lm.prompts import (
    CheckedPrompt,
    Message,
    Prompt,
    check_continuations,
    check_generate_arguments,
    check_prompt,
    check_prompts,
)
from valuegym.lm.sampling import Seed, Truncation, check_seed, per_prompt_temperatures
from valuegym.lm.steering import Steering

__all__ = [
    "Generation",
    "LanguageModel",
    "LanguageModelError",
    "LanguageModelUnavailableError",
    "Message",
    "Prompt",
    "SteeringUnsupportedError",
    "TransientLanguageModelError",
]


class LanguageModelError(RuntimeError):
    """A language-model backend failed to load, to be reached, or to answer."""


class LanguageModelUnavailableError(LanguageModelError):
    """The model cannot be used: backend or model not installed, or server unreachable."""


class SteeringUnsupportedError(LanguageModelError):
    """A steering was sent to a model that cannot add vectors to its residual stream."""


class TransientLanguageModelError(LanguageModelError):
    """A call failed in a way that may succeed when repeated (timeout, overload, reset).

    :class:`~valuegym.lm.wrappers.RetryingModel` retries these by default, waiting at least
    ``retry_after`` seconds when the server asked for that, and counts them by ``kind``.

    Args:
        message: What failed.
        kind: The kind of failure, for the run's count of retries: ``"overloaded"`` (HTTP
            429), ``"server_error"`` (HTTP 5xx), ``"timeout"``, ``"dropped"`` (a connection
            closed before the whole answer came), ``"unreachable"`` or ``"transient"``.
        retry_after: Seconds the server asked to wait before trying again (``Retry-After``).
    """

    def __init__(
        self, message: str, *, kind: str = "transient", retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


@dataclass(frozen=True)
class Generation:
    """One generated utterance and its per-token measurements (all in nats).

    Attributes:
        text: The generated text, stop string excluded.
        token_ids: The generated token ids, in order.
        token_entropy: Per token, the entropy of the model's full next-token distribution
            at temperature 1 (the model's own uncertainty).
        sampled_entropy: Per token, the entropy of the distribution the token was actually
            drawn from (after temperature; 0 for greedy decoding).
        token_logprob: Per token, log p(token | prompt, previous tokens) under the model at
            temperature 1; its negative sum is the utterance's surprisal.
        finish_reason: ``"stop"`` (stop string or end of sequence) or ``"length"``.
        entropy_is_estimate: True when the entropies come from a truncated distribution
            (top-k log-probabilities of an HTTP server) rather than the full vocabulary.
        entropy_tail_bound: With ``entropy_is_estimate``, per token an upper bound on the
            entropy the missing tail can add; the true entropy lies in
            ``[token_entropy, token_entropy + entropy_tail_bound]``. ``None`` otherwise.
    """

    text: str
    token_ids: tuple[int, ...]
    token_entropy: np.ndarray
    sampled_entropy: np.ndarray
    token_logprob: np.ndarray
    finish_reason: str = "stop"
    entropy_is_estimate: bool = False
    entropy_tail_bound: np.ndarray | None = field(default=None)

    @property
    def length(self) -> int:
        """Number of generated tokens."""
        return len(self.token_ids)

    @property
    def surprisal(self) -> float:
        """Total surprisal of the utterance, ``-sum_t log p(y_t | ...)`` in nats."""
        return float(-np.sum(self.token_logprob))


class LanguageModel(abc.ABC):
    """A language model that generates with per-token distributions and scores text.

    Sampling arguments are keyword-only. A fixed ``seed`` gives identical output on CPU.
    A backend implements :meth:`_generate` and :meth:`_score`; the public :meth:`generate`
    and :meth:`score` check the arguments first, so a backend never checks them again.
    """

    #: A short name for records, e.g. ``"llamacpp:smollm2-135m"``.
    name: str = "language-model"
    #: Whether :meth:`_generate` and :meth:`_score` take ``steering=`` (one per prompt).
    supports_steering: ClassVar[bool] = False
    _prompt_tokens_read: int = 0

    @property
    def prompt_tokens_read(self) -> int:
        """Prompt (and scored continuation) tokens decoded so far by this model.

        Tokens whose key-value cache was shared rather than decoded again are not counted;
        0 where the backend cannot know (a server that reports no usage).
        """
        return self._prompt_tokens_read

    @property
    def retries(self) -> dict[str, int]:
        """Calls repeated after a transient failure so far, by the failure's ``kind``.

        Empty for a backend, which never retries; a
        :class:`~valuegym.lm.wrappers.RetryingModel` counts its own and the wrapped model's.
        """
        return {}

    @final
    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        max_new_tokens: int = 64,
        temperature: float | Sequence[float] = 1.0,
        seed: Seed = None,
        stop: Sequence[str] = (),
        truncation: Truncation | None = None,
        steering: Steering | Sequence[Steering | None] | None = None,
    ) -> list[Generation]:
        """Generate one utterance per prompt.

        Args:
            prompts: The prompts of the batch (text or chat messages).
            max_new_tokens: Upper bound on generated tokens per utterance.
            temperature: Sampling temperature, one for all prompts or one per prompt;
                0 means greedy decoding.
            seed: Seed of the sampler, or one :class:`numpy.random.SeedSequence` per prompt
                (:func:`valuegym.lm.sampling.prompt_seed`); the same seed and prompts give the
                same output.
            stop: Strings that end an utterance; they are not part of ``text``.
            truncation: Which tokens sampling may draw (top-k, top-p, min-p; default all);
                ``sampled_entropy`` is that of the truncated distribution.
            steering: Vectors added to the residual stream (:class:`~valuegym.lm.steering.
                Steering`), one for all prompts or one per prompt (``None``: unsteered).

        Returns:
            One :class:`Generation` per prompt, in order.

        Raises:
            ValueError: If an argument is malformed (a prompt, a negative budget or
                temperature, an empty stop string, seed sequences or steerings that do not
                match the prompts).
            SteeringUnsupportedError: If a prompt is steered and the model cannot steer.
        """
        checked = check_prompts(prompts)
        stops = check_generate_arguments(max_new_tokens, stop)
        steerings = self._check_steering(steering, len(checked))
        return self._generate(
            checked,
            max_new_tokens=max_new_tokens,
            temperatures=per_prompt_temperatures(temperature, len(checked)),
            seed=check_seed(seed, len(checked)),
            stop=stops,
            truncation=truncation if truncation is not None else Truncation(),
            **steerings,
        )

    @final
    def score(
        self, prompt: Prompt, continuations: Sequence[str], *, steering: Steering | None = None
    ) -> np.ndarray:
        """Log-likelihood of each continuation given the prompt.

        Args:
            prompt: The conditioning prompt (text or chat messages).
            continuations: Candidate texts that follow the prompt.
            steering: Vectors added to the residual stream while scoring (``None``: none).

        Returns:
            Float array of shape ``(len(continuations),)``: ``sum_t log p(c_t | prompt, c_<t)``
            in nats, at temperature 1.

        Raises:
            ValueError: If the prompt is malformed or a continuation is not text.
            SteeringUnsupportedError: If ``steering`` is given and the model cannot steer.
        """
        if steering is not None and not isinstance(steering, Steering):
            raise ValueError(
                f"steering: must be a Steering or None (got {type(steering).__name__})"
            )
        steerings = self._check_steering(steering, 1)
        return self._score(
            check_prompt(prompt, "prompt"), check_continuations(continuations), **steerings
        )

    def _check_steering(
        self, steering: Steering | Sequence[Steering | None] | None, n_prompts: int
    ) -> dict[str, Any]:
        """The ``steering=`` keyword for :meth:`_generate` / :meth:`_score`, or none.

        Empty when no prompt is steered, so backends that cannot steer keep their signatures.
        """
        if steering is None:
            return {}
        if isinstance(steering, Steering):
            per_prompt: tuple[Steering | None, ...] = (steering,) * n_prompts
        elif isinstance(steering, Sequence) and not isinstance(steering, (str, bytes)):
            per_prompt = tuple(steering)
            if len(per_prompt) != n_prompts:
                raise ValueError(f"steering: {len(per_prompt)} steerings for {n_prompts} prompts")
            for index, entry in enumerate(per_prompt):
                if entry is not None and not isinstance(entry, Steering):
                    raise ValueError(
                        f"steering[{index}]: must be a Steering or None "
                        f"(got {type(entry).__name__})"
                    )
        else:
            raise ValueError(
                f"steering: must be a Steering, one per prompt, or None "
                f"(got {type(steering).__name__})"
            )
        if all(entry is None for entry in per_prompt):
            return {}
        if not self.supports_steering:
            raise SteeringUnsupportedError(
                f"{self.name}: this model cannot be steered (steering needs the 'llamacpp' "
                "or 'transformers' backend)"
            )
        return {"steering": per_prompt}

    @abc.abstractmethod
    def _generate(
        self,
        prompts: tuple[CheckedPrompt, ...],
        *,
        max_new_tokens: int,
        temperatures: np.ndarray,
        seed: int | tuple[np.random.SeedSequence, ...] | None,
        stop: tuple[str, ...],
        truncation: Truncation,
    ) -> list[Generation]:
        """Generate one utterance per prompt from checked arguments (see :meth:`generate`).

        Args:
            prompts: The prompts, each text or a list of ``{"role", "content"}`` dicts.
            max_new_tokens: Upper bound on generated tokens per utterance (>= 0).
            temperatures: One finite, non-negative temperature per prompt; 0 is greedy.
            seed: ``None``, a non-negative root seed, or one seed sequence per prompt.
            stop: Non-empty strings that end an utterance.
            truncation: Which tokens sampling may draw.

        A backend with :attr:`supports_steering` also takes ``steering``: one
        :class:`~valuegym.lm.steering.Steering` or ``None`` per prompt, passed only when some
        prompt is steered.

        Returns:
            One :class:`Generation` per prompt, in order.
        """

    @abc.abstractmethod
    def _score(self, prompt: CheckedPrompt, continuations: tuple[str, ...]) -> np.ndarray:
        """Log-likelihood of each continuation given a checked prompt (see :meth:`score`).

        Args:
            prompt: Text, or a list of ``{"role", "content"}`` dicts.
            continuations: Candidate texts that follow the prompt.

        A backend with :attr:`supports_steering` also takes ``steering``: a one-element tuple
        holding the prompt's :class:`~valuegym.lm.steering.Steering`, passed only when given.

        Returns:
            Float array of shape ``(len(continuations),)`` in nats.
        """

    def close(self) -> None:  # noqa: B027 - optional hook; most backends hold nothing to free
        """Free the resources the backend holds (model weights, HTTP sessions)."""
