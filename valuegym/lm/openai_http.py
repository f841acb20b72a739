"""The ``openai`` backend: any OpenAI-compatible HTTP server (vLLM, llama.cpp, Ollama, hosted).

Text prompts go to ``/v1/completions``, chat prompts to ``/v1/chat/completions``, both with
the top-``k`` log-probabilities of every generated token. A server returns only those ``k``
probabilities, so the full-vocabulary entropy is known only within an interval;
:func:`top_k_entropy_interval` computes it and each :class:`Generation` is marked
``entropy_is_estimate=True`` with the interval's width in ``entropy_tail_bound``.

The bound. Let the server list the probabilities ``p_1..p_m`` of distinct tokens, with
``s = sum p_i``, tail mass ``r = 1 - s``, spread over at most ``M = V - m`` unlisted tokens
(``V`` the vocabulary size), each of probability at most ``c``. Then the true entropy is
``H = A + H_tail`` with ``A = -sum p_i log p_i`` and, for the unlisted probabilities
``q_j`` (``sum q_j = r``, ``q_j <= c``):

- ``H_tail <= r log(M / r)`` (the tail spread uniformly maximises it);
- ``H_tail >= r log(1 / c)`` (every ``-log q_j >= -log c``).

Without knowing the order of the listed tokens, ``c = r``, and the lower end is the entropy
of the distribution with the tail lumped into one outcome (grouping outcomes never raises
entropy). When the listed tokens include the ``k`` most likely ones, every unlisted token
is at most as likely as the ``k``-th largest listed one, ``c = min(r, p_(k))``, which
tightens the lower end. The reported ``token_entropy`` is the lower end and
``entropy_tail_bound = r log(M c / r)`` the width. (The entropy of the renormalised top-k
is not used: without the ordering assumption it can exceed the true entropy.)

``sampled_entropy`` is the entropy of the listed probabilities raised to ``1/T`` and
renormalised: an estimate of the tempered distribution (0 at ``T = 0``), without a bound.
Servers return token strings, not ids, so ``token_ids`` holds ``-1`` per generated token.

``score`` uses ``echo`` on ``/v1/completions`` (prompt log-probabilities). Some servers
misalign echoed log-probabilities (llama-cpp-python does for models without a BOS token),
so the first ``score`` call checks the echoed log-probability of a greedily generated token
against the one generation reported, and raises :class:`ScoringUnsupportedError` when they
disagree. Requests go through :class:`~valuegym.lm.http_client.JsonClient`, which maps
failures to typed errors; retries and call limits are wrappers (:mod:`valuegym.lm.wrappers`).

Throughput: the requests of one ``generate`` call are sent concurrently (at most
``max_concurrency`` in flight), so a server that batches (vLLM, SGLang, llama.cpp's server
with parallel slots) decodes them together; identical prompts at one temperature (K samples)
go as one request with ``n=K``. A server that answers such a request with fewer choices
than asked gets the missing samples as separate requests, and ``n`` is not sent to it again.
Each request keeps its own time-out; results come back in prompt order.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from valuegym.lm.base import Generation, LanguageModel, LanguageModelError
from valuegym.lm.http_client import JsonClient, ServerUnreachableError
from valuegym.lm.prompts import CheckedPrompt
from valuegym.lm.sampling import Truncation

__all__ = [
    "OpenAICompatibleModel",
    "ScoringUnsupportedError",
    "ServerUnreachableError",
    "top_k_entropy_interval",
]

#: A vocabulary size at least as large as that of common open models; overestimating it
#: only widens the entropy bound (logarithmically).
DEFAULT_VOCABULARY_BOUND = 262_144
_ECHO_TOLERANCE_NATS = 1e-2


class ScoringUnsupportedError(LanguageModelError, NotImplementedError):
    """The server cannot score continuations (no usable ``echo`` log-probabilities)."""


def top_k_entropy_interval(
    log_probs: Sequence[float], *, vocab_size: int, top_k: int | None = None
) -> tuple[float, float]:
    """Bounds on the entropy of a distribution known only through some probabilities.

    See the module docstring for the derivation.

    Args:
        log_probs: Log-probabilities (nats) of distinct tokens of the distribution.
        vocab_size: An upper bound on the number of tokens of the distribution.
        top_k: When the listed tokens include the ``top_k`` most likely ones, that number
            (tightens the lower end); ``None`` assumes nothing about their order.

    Returns:
        ``(lower, width)``: the true entropy lies in ``[lower, lower + width]``.

    Raises:
        ValueError: If a log-probability is positive or there are more than ``vocab_size``.
    """
    probabilities = np.exp(np.asarray(log_probs, dtype=np.float64))
    if probabilities.size > vocab_size:
        raise ValueError(f"log_probs: {probabilities.size} tokens exceed vocab_size={vocab_size}")
    if np.any(probabilities > 1 + 1e-9):
        raise ValueError("log_probs: log-probabilities must be <= 0")
    probabilities = probabilities[probabilities > 0]
    listed_entropy = float(-np.sum(probabilities * np.log(probabilities)))
    tail_mass = max(0.0, 1.0 - float(np.sum(probabilities)))
    unlisted = vocab_size - probabilities.size
    if tail_mass <= 1e-12 or unlisted == 0:
        return listed_entropy, 0.0
    cap = tail_mass
    if top_k is not None and 0 < top_k <= probabilities.size:
        cap = min(tail_mass, float(np.sort(probabilities)[::-1][top_k - 1]))
    lower = listed_entropy + tail_mass * math.log(1.0 / cap)
    width = max(0.0, tail_mass * math.log(unlisted * cap / tail_mass))
    return lower, width


def _tempered_entropy(log_probs: Sequence[float], temperature: float) -> float:
    if temperature == 0 or len(log_probs) == 0:
        return 0.0
    scaled = np.asarray(log_probs, dtype=np.float64) / temperature
    scaled -= scaled.max()
    weights = np.exp(scaled)
    weights /= weights.sum()
    positive = weights[weights > 0]
    return float(-np.sum(positive * np.log(positive)))


def _truncation_params(truncation: Truncation | None) -> dict[str, Any]:
    """The request fields of a truncation (top_k and min_p as vLLM and llama.cpp name them)."""
    if truncation is None or truncation.is_identity:
        return {}
    fields: dict[str, Any] = {"top_p": truncation.top_p}
    if truncation.top_k:
        fields["top_k"] = truncation.top_k
    if truncation.min_p:
        fields["min_p"] = truncation.min_p
    return fields


class OpenAICompatibleModel(LanguageModel):
    """A model served over the OpenAI HTTP API, measured through top-k log-probabilities.

    Args:
        base_url: The API root, e.g. ``"http://localhost:8000/v1"``.
        model: The model name sent with each request.
        api_key_env: Environment variable holding the API key (read at each request, never
            stored or logged); no ``Authorization`` header when it is unset.
        timeout: Seconds to wait for a connection and for each answer.
        top_logprobs: Log-probabilities requested per token (OpenAI allows up to 20).
        vocab_size: Upper bound on the model's vocabulary size, for the entropy bound.
        sampling_params: Extra request fields, e.g. ``{"top_k": 0, "min_p": 0.0}`` so that a
            llama.cpp or vLLM server samples from the plain tempered distribution.
        max_concurrency: Requests of one ``generate`` call in flight at once.
        use_n: Ask for K samples of one prompt in one request (``n=K``).
    """

    def __init__(
        self,
        base_url: str = "http://localhost:8000/v1",
        model: str = "default",
        *,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        top_logprobs: int = 20,
        vocab_size: int = DEFAULT_VOCABULARY_BOUND,
        sampling_params: Mapping[str, Any] | None = None,
        max_concurrency: int = 8,
        use_n: bool = True,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url: expected an http(s) URL (got {base_url!r})")
        if timeout <= 0:
            raise ValueError(f"timeout: must be > 0 (got {timeout})")
        if not 1 <= top_logprobs <= 20:
            raise ValueError(f"top_logprobs: must be in [1, 20] (got {top_logprobs})")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency: must be >= 1 (got {max_concurrency})")
        if vocab_size < top_logprobs:
            raise ValueError(f"vocab_size: must be >= top_logprobs (got {vocab_size})")
        self._client = JsonClient(base_url, api_key_env=api_key_env, timeout=timeout)
        self.model = model
        self.top_logprobs = top_logprobs
        self.vocab_size = vocab_size
        self.sampling_params = dict(sampling_params or {})
        self.max_concurrency = max_concurrency
        self.use_n = use_n
        self._usage_lock = threading.Lock()
        self.name = f"openai:{model}"
        self._echo_checked = False

    @property
    def base_url(self) -> str:
        """The API root, without a trailing slash."""
        return self._client.base_url

    def __repr__(self) -> str:
        return f"OpenAICompatibleModel(base_url={self.base_url!r}, model={self.model!r})"

    def _post(self, endpoint: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a JSON body and return the answer, counting the prompt tokens it reports."""
        answer = self._client.post(endpoint, body)
        usage = answer.get("usage") or {}
        with self._usage_lock:  # requests of one call run in threads
            self._prompt_tokens_read += int(usage.get("prompt_tokens") or 0)
        return answer

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
        """Generate every prompt by requests sent concurrently, with estimated entropies.

        The seed sent to the server is derived per prompt; servers that honour it give the
        same output for the same seed. See :meth:`LanguageModel._generate`.
        """
        if max_new_tokens == 0 or not prompts:
            return [self._empty_generation() for _ in prompts]
        if seed is None:
            seeds: list[int | None] = [None] * len(prompts)
        elif isinstance(seed, int):
            seeds = np.random.SeedSequence(seed).generate_state(len(prompts)).tolist()
        else:  # one seed sequence per prompt
            seeds = [int(sequence.generate_state(1)[0]) for sequence in seed]
        # Identical prompts at one temperature: one request for all their samples.
        groups: dict[tuple[bool, str, float], list[int]] = {}
        for index, prompt in enumerate(prompts):
            text = prompt if isinstance(prompt, str) else json.dumps(prompt)
            key = (isinstance(prompt, str), text, float(temperatures[index]))
            groups.setdefault(key, []).append(index)
        requests = []
        for members in groups.values():
            if self.use_n and len(members) > 1:
                requests.append(members)
            else:
                requests.extend([member] for member in members)

        def answer(members: list[int]) -> list[Generation]:
            first = members[0]
            body: dict[str, Any] = {
                "model": self.model,
                "max_tokens": max_new_tokens,
                "temperature": float(temperatures[first]),
                "top_p": 1.0,
                **self.sampling_params,
                **_truncation_params(truncation),
            }
            if stop:
                body["stop"] = list(stop)
            prompt_seed = seeds[first]
            if prompt_seed is not None:
                body["seed"] = int(prompt_seed)
            if len(members) > 1:
                body["n"] = len(members)
            return self._request(prompts[first], body, len(members))

        generations: list[Generation | None] = [None] * len(prompts)
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(requests))) as pool:
            futures = [pool.submit(answer, members) for members in requests]
            missing: list[int] = []
            for members, future in zip(requests, futures, strict=True):
                answered = future.result()
                for member, generation in zip(members, answered, strict=False):
                    generations[member] = generation
                missing.extend(members[len(answered) :])
            if missing:  # the server ignored n: the other samples one request each
                self.use_n = False
                refills = [pool.submit(answer, [member]) for member in missing]
                for member, future in zip(missing, refills, strict=True):
                    generations[member] = future.result()[0]
        return [generation for generation in generations if generation is not None]

    def _request(
        self, prompt: CheckedPrompt, body: dict[str, Any], samples: int
    ) -> list[Generation]:
        """Send one request (for ``samples`` samples of a prompt); its choices in order."""
        temperature = float(body["temperature"])
        if isinstance(prompt, str):
            body.update(prompt=prompt, logprobs=self.top_logprobs)
            choices = self._choices(self._post("completions", body), samples)
            results = [
                (choice.get("text") or "", self._completion_tokens(choice), choice)
                for choice in choices
            ]
        else:
            body.update(messages=prompt, logprobs=True)
            body["top_logprobs"] = self.top_logprobs
            choices = self._choices(self._post("chat/completions", body), samples)
            results = [
                (
                    (choice.get("message") or {}).get("content") or "",
                    self._chat_tokens(choice),
                    choice,
                )
                for choice in choices
            ]
        return [
            self._generation(
                text,
                tokens,
                temperature,
                "length" if choice.get("finish_reason") == "length" else "stop",
            )
            for text, tokens, choice in results
        ]

    def _choices(self, answer: Mapping[str, Any], samples: int) -> list[dict[str, Any]]:
        """The answer's first ``samples`` choices, ordered by their ``index``."""
        self._first_choice(answer)
        choices = sorted(answer["choices"], key=lambda choice: choice.get("index", 0))
        return choices[:samples]

    @staticmethod
    def _empty_generation() -> Generation:
        empty = np.zeros(0)
        return Generation(
            text="",
            token_ids=(),
            token_entropy=empty,
            sampled_entropy=empty.copy(),
            token_logprob=empty.copy(),
            finish_reason="length",
            entropy_is_estimate=True,
            entropy_tail_bound=empty.copy(),
        )

    def _first_choice(self, answer: Mapping[str, Any]) -> dict[str, Any]:
        choices = answer.get("choices")
        if not choices:
            raise LanguageModelError(f"{self.base_url}: answer without choices: {answer!r:.300}")
        return choices[0]

    def _completion_tokens(self, choice: Mapping[str, Any]) -> list[tuple[float, list[float]]]:
        """(sampled token's log-prob, listed log-probs) per token of a completions answer."""
        logprobs = choice.get("logprobs")
        if not logprobs:
            raise LanguageModelError(f"{self.base_url}: the server returned no logprobs")
        pairs = []
        for sampled, top in zip(
            logprobs.get("token_logprobs") or [], logprobs.get("top_logprobs") or [], strict=False
        ):
            pairs.append((float(sampled), [float(value) for value in (top or {}).values()]))
        return pairs

    def _chat_tokens(self, choice: Mapping[str, Any]) -> list[tuple[float, list[float]]]:
        """(sampled token's log-prob, listed log-probs) per token of a chat answer."""
        logprobs = choice.get("logprobs")
        if not logprobs or logprobs.get("content") is None:
            raise LanguageModelError(f"{self.base_url}: the server returned no logprobs")
        pairs = []
        for entry in logprobs["content"]:
            sampled = float(entry["logprob"])
            listed = {
                item["token"]: float(item["logprob"]) for item in entry.get("top_logprobs", [])
            }
            if entry["token"] not in listed:
                listed[entry["token"]] = sampled
            pairs.append((sampled, list(listed.values())))
        return pairs

    def _generation(
        self,
        text: str,
        tokens: list[tuple[float, list[float]]],
        temperature: float,
        finish_reason: str,
    ) -> Generation:
        lower = np.empty(len(tokens))
        width = np.empty(len(tokens))
        sampled_entropy = np.empty(len(tokens))
        for index, (_, listed) in enumerate(tokens):
            top_k = self.top_logprobs if len(listed) >= self.top_logprobs else None
            lower[index], width[index] = top_k_entropy_interval(
                listed, vocab_size=self.vocab_size, top_k=top_k
            )
            sampled_entropy[index] = _tempered_entropy(listed, temperature)
        return Generation(
            text=text,
            token_ids=(-1,) * len(tokens),
            token_entropy=lower,
            sampled_entropy=sampled_entropy,
            token_logprob=np.array([sampled for sampled, _ in tokens], dtype=np.float64),
            finish_reason=finish_reason,
            entropy_is_estimate=True,
            entropy_tail_bound=width,
        )

    def _echo_logprobs(self, text: str) -> tuple[list[float | None], list[int], list[str]]:
        body = {
            "model": self.model,
            "prompt": text,
            "max_tokens": 1,
            "temperature": 0.0,
            "echo": True,
            "logprobs": 1,
        }
        logprobs = self._first_choice(self._post("completions", body)).get("logprobs") or {}
        offsets = logprobs.get("text_offset")
        values = logprobs.get("token_logprobs")
        tokens = logprobs.get("tokens")
        if not offsets or values is None or tokens is None:
            raise ScoringUnsupportedError(f"{self.base_url}: the server does not echo logprobs")
        return values, offsets, tokens

    def _check_echo(self) -> None:
        """Check that echoed prompt log-probabilities agree with generation's."""
        probe = "The capital of France is"
        generated = self.generate([probe], max_new_tokens=1, temperature=0.0)[0]
        if generated.length == 0 or not generated.text:
            raise ScoringUnsupportedError(f"{self.base_url}: could not probe echoed logprobs")
        values, offsets, _ = self._echo_logprobs(probe + generated.text)
        matching = [v for v, o in zip(values, offsets, strict=False) if o == len(probe)]
        if (
            not matching
            or matching[0] is None
            or not math.isclose(
                matching[0], generated.token_logprob[0], abs_tol=_ECHO_TOLERANCE_NATS
            )
        ):
            raise ScoringUnsupportedError(
                f"{self.base_url}: the server's echoed prompt log-probabilities disagree with "
                f"its generation log-probabilities (echo gave {matching[:1]}, generation "
                f"{generated.token_logprob[0]:.4f}), so score() cannot be trusted; use a "
                "local backend (llamacpp, transformers) to score"
            )
        self._echo_checked = True

    def _score(self, prompt: CheckedPrompt, continuations: tuple[str, ...]) -> np.ndarray:
        """Log-likelihood of each continuation given a text prompt, from echoed logprobs.

        Tokens of ``prompt + continuation`` that hold any character of the continuation
        are counted (a token straddling the boundary is counted whole). Chat prompts cannot
        be scored: chat templates are applied server-side, where echo is not available.

        Raises:
            ScoringUnsupportedError: If the prompt is chat messages or the server cannot echo
                log-probabilities faithfully.
        """
        if not isinstance(prompt, str):
            raise ScoringUnsupportedError(
                "score: chat prompts cannot be scored over HTTP (echo works on text "
                "completions only); pass the prompt as text"
            )
        if not self._echo_checked:
            self._check_echo()
        scores = np.zeros(len(continuations))
        for index, continuation in enumerate(continuations):
            if not continuation:
                continue
            full_text = prompt + continuation
            values, offsets, tokens = self._echo_logprobs(full_text)
            total = 0.0
            for value, offset, token in zip(values, offsets, tokens, strict=False):
                if offset + len(token) > len(prompt) and offset < len(full_text):
                    if value is None:
                        raise ScoringUnsupportedError(
                            f"{self.base_url}: no log-probability for the first token"
                        )
                    total += value
            scores[index] = total
        return scores
