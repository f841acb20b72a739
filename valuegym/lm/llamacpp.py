"""The ``llamacpp`` backend: llama-cpp-python on a GGUF file, the fast CPU path.

The model is loaded once and the prompts of a batch are generated one after the other
(llama-cpp-python has no batched generation). Decoding goes through llama.cpp's own
``llama_decode`` with a batch this module fills, so each step asks for exactly the logits
it needs: the last position's while generating (``logits_all=False``), and every position
of a continuation while scoring. The logits are read in place from llama.cpp's buffer
(never through ``Llama.eval_logits``, which copies the whole buffer into Python lists) and
passed to the shared :class:`~valuegym.lm.sampling.TokenSampler`, which computes the
full-vocabulary entropies and draws the token with a seeded numpy generator.

Every ``generate`` call starts from an empty key-value cache, so its output depends only on
its arguments, never on earlier calls.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from valuegym.lm.base import Generation, LanguageModel, LanguageModelUnavailableError, Prompt
from valuegym.lm.cpu import cpu_flags, llama_extra_buffer_types, use_extra_buffer_types
from valuegym.lm.models import model_label, resolve_gguf_path
from valuegym.lm.prompts import chat_messages, check_generate_arguments, cut_at_stop
from valuegym.lm.sampling import TokenSampler, per_prompt_temperatures
from valuegym.numeric import log_softmax

__all__ = ["LlamaCppModel"]


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as error:
        raise LanguageModelUnavailableError(
            "backend 'llamacpp' needs llama-cpp-python: pip install 'valuegym[llamacpp]' "
            "(it compiles llama.cpp, a few minutes)"
        ) from error
    return llama_cpp


def _available_cores() -> int:
    """CPU cores this process may run on, capped by ``OMP_NUM_THREADS`` when that is set.

    Ray sets ``OMP_NUM_THREADS`` to a task's CPUs and valuegym's local sweep workers set it to
    their share of the cores, so parallel cells do not oversubscribe the machine.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cores, int(limit))) if limit.isdigit() and int(limit) > 0 else cores


class LlamaCppModel(LanguageModel):
    """A GGUF model run by llama.cpp on the CPU.

    llama.cpp's extra buffer types (AMX, weight repacking) are left off on CPUs that
    advertise AMX, whose kernels crash there; ``VALUEGYM_LLAMA_AMX`` overrides this (see
    :mod:`valuegym.lm.cpu`). :attr:`extra_buffer_types` says what was chosen.

    Args:
        model: An embedded model name (default ``"smollm2-135m"``) or a ``.gguf`` file.
        n_ctx: Context window in tokens (prompt plus generated tokens).
        n_threads: CPU threads; defaults to every core this process may use (at most
                ``OMP_NUM_THREADS`` when set). llama.cpp's
            threads spin-wait for each other, so on cores shared with other busy processes
            fewer threads can be many times faster.
        n_batch: Tokens decoded per ``llama_decode`` call when reading a prompt.
        exact_scoring: Score continuations one token per decode, as generation decodes, so
            that :meth:`score` of a generated text equals the sum of its generated
            ``token_logprob``. ``False`` decodes each continuation in one batch, several
            times faster, but llama.cpp's batched kernels round differently (here up to
            0.15 nats per token, a few percent of a sum).

    Raises:
        LanguageModelUnavailableError: If llama-cpp-python or the model is not installed.
        ValueError: If the model is not a GGUF file, an argument is out of range or
            ``VALUEGYM_LLAMA_AMX`` is neither ``0`` nor ``1``.
    """

    def __init__(
        self,
        model: str | Path = "smollm2-135m",
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_batch: int = 512,
        exact_scoring: bool = True,
    ) -> None:
        llama_cpp = _import_llama_cpp()
        for argument, value in (("n_ctx", n_ctx), ("n_batch", n_batch)):
            if value < 1:
                raise ValueError(f"{argument}: must be >= 1 (got {value})")
        if n_threads is not None and n_threads < 1:
            raise ValueError(f"n_threads: must be >= 1 (got {n_threads})")
        path = resolve_gguf_path(model)
        threads = n_threads or _available_cores()
        self._llama_cpp = llama_cpp
        # Off on CPUs with AMX, where llama.cpp's AMX kernels crash (see valuegym.lm.cpu).
        self.extra_buffer_types = use_extra_buffer_types(cpu_flags())
        with llama_extra_buffer_types(llama_cpp, self.extra_buffer_types):
            self._llama = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_batch=min(n_batch, n_ctx),
                n_threads=threads,
                n_threads_batch=threads,
                logits_all=False,
                verbose=False,
            )
        self.name = f"llamacpp:{model_label(model)}"
        self.path = path
        self.n_ctx = n_ctx
        self.n_threads = threads
        self.exact_scoring = exact_scoring
        self._n_batch = min(n_batch, n_ctx)
        self._n_vocab = self._llama.n_vocab()
        self._vocab = llama_cpp.llama_model_get_vocab(self._llama.model)
        self._batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)
        self._chat_formatter = self._make_chat_formatter()

    def __repr__(self) -> str:
        return f"LlamaCppModel(name={self.name!r}, n_threads={self.n_threads})"

    def _make_chat_formatter(self) -> Any:
        template = self._llama.metadata.get("tokenizer.chat_template")
        if template is None:
            return None
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        def token_text(token_id: int) -> str:
            if token_id < 0:
                return ""
            return self._llama.detokenize([token_id], special=True).decode("utf-8", "replace")

        return Jinja2ChatFormatter(
            template=template,
            eos_token=token_text(self._llama.token_eos()),
            bos_token=token_text(self._llama.token_bos()),
            add_generation_prompt=True,
        )

    def close(self) -> None:
        """Free the llama.cpp batch, context and model."""
        if self._batch is not None:
            self._llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        self._llama.close()

    def __del__(self) -> None:
        batch = getattr(self, "_batch", None)
        if batch is not None:
            self._llama_cpp.llama_batch_free(batch)
            self._batch = None

    def _encode_prompt(self, prompt: Prompt, where: str) -> list[int]:
        messages = chat_messages(prompt, where)
        if messages is None:
            ids = self._llama.tokenize(str(prompt).encode("utf-8"), add_bos=True, special=False)
        else:
            if self._chat_formatter is None:
                raise ValueError(
                    f"{where}: chat messages need a chat template, and {self.path.name} has none"
                )
            text = self._chat_formatter(messages=messages).prompt
            # The template already holds every special token the model expects.
            ids = self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if not ids:
            raise ValueError(f"{where}: the prompt encodes to no tokens")
        return list(ids)

    def _detokenize(self, token_ids: Sequence[int]) -> str:
        return self._llama.detokenize(list(token_ids)).decode("utf-8", errors="replace")

    def _clear_cache_from(self, position: int) -> None:
        memory = self._llama_cpp.llama_get_memory(self._llama.ctx)
        self._llama_cpp.llama_memory_seq_rm(memory, -1, position, -1)

    def _decode(self, token_ids: Sequence[int], start: int, *, all_logits: bool) -> np.ndarray:
        """Run the model on tokens placed at ``start`` onwards and return logits.

        Args:
            token_ids: Tokens to append to the cache (at most ``n_batch`` of them).
            start: Position of the first token.
            all_logits: Return the logits of every token rather than only the last one.

        Returns:
            A float32 view of llama.cpp's logits buffer, shape ``(rows, vocabulary)``; it is
            overwritten by the next decode.
        """
        batch = self._batch
        count = len(token_ids)
        batch.n_tokens = count
        for index, token_id in enumerate(token_ids):
            batch.token[index] = token_id
            batch.pos[index] = start + index
            batch.n_seq_id[index] = 1
            batch.seq_id[index][0] = 0
            batch.logits[index] = all_logits or index == count - 1
        status = self._llama_cpp.llama_decode(self._llama.ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode failed with status {status} at position {start}")
        rows = count if all_logits else 1
        pointer = self._llama_cpp.llama_get_logits(self._llama.ctx)
        return np.ctypeslib.as_array(pointer, shape=(rows, self._n_vocab))

    def _read_prompt(self, prompt_ids: list[int]) -> np.ndarray:
        """Fill an empty cache with the prompt; return the last position's logits (1, V)."""
        self._clear_cache_from(0)
        logits = np.empty(0)
        for start in range(0, len(prompt_ids), self._n_batch):
            logits = self._decode(
                prompt_ids[start : start + self._n_batch], start, all_logits=False
            )
        return logits

    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        max_new_tokens: int = 64,
        temperature: float | Sequence[float] = 1.0,
        seed: int | None = None,
        stop: Sequence[str] = (),
    ) -> list[Generation]:
        """Generate one utterance per prompt, the prompts one after the other.

        The end-of-generation token, when drawn, is part of ``token_ids`` and the
        measurements (the choice to stop is part of the utterance's distribution) but not of
        ``text``. With a stop string, tokens run up to the one that completed it.

        Args:
            prompts: The prompts of the batch (text or chat messages).
            max_new_tokens: Upper bound on generated tokens per utterance.
            temperature: Sampling temperature, one for all prompts or one per prompt;
                0 means greedy decoding.
            seed: Seed of the sampler; the same seed and prompts give the same output.
            stop: Strings that end an utterance; they are not part of ``text``.

        Returns:
            One :class:`Generation` per prompt, in order.
        """
        stops = check_generate_arguments(max_new_tokens, stop)
        temperatures = per_prompt_temperatures(temperature, len(prompts))
        encoded = [self._encode_prompt(p, f"prompts[{i}]") for i, p in enumerate(prompts)]
        for index, prompt_ids in enumerate(encoded):
            if len(prompt_ids) + max_new_tokens > self.n_ctx:
                raise ValueError(
                    f"prompts[{index}]: {len(prompt_ids)} prompt tokens + max_new_tokens="
                    f"{max_new_tokens} exceed the context window n_ctx={self.n_ctx}"
                )
        sampler = TokenSampler(temperatures, seed)
        return [
            self._generate_one(prompt_ids, index, sampler, max_new_tokens, stops)
            for index, prompt_ids in enumerate(encoded)
        ]

    def _generate_one(
        self,
        prompt_ids: list[int],
        prompt_index: int,
        sampler: TokenSampler,
        max_new_tokens: int,
        stops: tuple[str, ...],
    ) -> Generation:
        is_end_of_generation = self._llama_cpp.llama_vocab_is_eog
        token_ids: list[int] = []
        token_entropy = np.zeros(max_new_tokens)
        sampled_entropy = np.zeros(max_new_tokens)
        token_logprob = np.zeros(max_new_tokens)
        finish_reason = "length"
        logits = self._read_prompt(prompt_ids)
        position = len(prompt_ids)
        for step in range(max_new_tokens):
            draw = sampler.draw(logits, (prompt_index,))
            token_id = int(draw.token_ids[0])
            token_ids.append(token_id)
            token_entropy[step] = draw.token_entropy[0]
            sampled_entropy[step] = draw.sampled_entropy[0]
            token_logprob[step] = draw.token_logprob[0]
            if is_end_of_generation(self._vocab, token_id) or (
                stops and cut_at_stop(self._detokenize(token_ids), stops)[1]
            ):
                finish_reason = "stop"
                break
            if step < max_new_tokens - 1:
                logits = self._decode((token_id,), position, all_logits=False)
                position += 1
        count = len(token_ids)
        text, _ = cut_at_stop(self._detokenize(token_ids), stops)
        return Generation(
            text=text,
            token_ids=tuple(token_ids),
            token_entropy=token_entropy[:count],
            sampled_entropy=sampled_entropy[:count],
            token_logprob=token_logprob[:count],
            finish_reason=finish_reason,
        )

    def score(self, prompt: Prompt, continuations: Sequence[str]) -> np.ndarray:
        """Log-likelihood of each continuation given the prompt, at temperature 1.

        The prompt is read once; each continuation is then decoded after it, token by token
        or in one pass (see ``exact_scoring``). The prompt and each continuation are
        tokenised separately (a continuation's tokens do not merge with the prompt's).

        Args:
            prompt: The conditioning prompt (text or chat messages).
            continuations: Candidate texts that follow the prompt.

        Returns:
            Float array of shape ``(len(continuations),)`` in nats.
        """
        prompt_ids = self._encode_prompt(prompt, "prompt")
        continuation_ids = []
        for index, text in enumerate(continuations):
            if not isinstance(text, str):
                raise ValueError(f"continuations[{index}]: expected a string (got {text!r})")
            ids = self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
            if len(prompt_ids) + len(ids) > self.n_ctx:
                raise ValueError(
                    f"continuations[{index}]: prompt and continuation ({len(prompt_ids)} + "
                    f"{len(ids)} tokens) exceed the context window n_ctx={self.n_ctx}"
                )
            continuation_ids.append(ids)
        scores = np.zeros(len(continuation_ids))
        if not any(continuation_ids):
            return scores
        first_token_log_probs = log_softmax(self._read_prompt(prompt_ids)[0])
        start = len(prompt_ids)
        # The last token's own logits would predict past the continuation: not decoded.
        chunk_size = 1 if self.exact_scoring else self._n_batch
        for index, ids in enumerate(continuation_ids):
            if not ids:
                continue
            total = first_token_log_probs[ids[0]]
            context = ids[:-1]
            self._clear_cache_from(start)
            for offset in range(0, len(context), chunk_size):
                chunk = context[offset : offset + chunk_size]
                log_probs = log_softmax(self._decode(chunk, start + offset, all_logits=True))
                targets = ids[offset + 1 : offset + 1 + len(chunk)]
                total += log_probs[np.arange(len(chunk)), targets].sum()
            scores[index] = total
        return scores
