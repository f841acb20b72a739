"""The ``llamacpp`` backend: llama-cpp-python on a GGUF file, the fast CPU path.

The model is loaded once. The prompts of a ``generate`` call are decoded together as
separate sequences of one llama.cpp context with a unified key-value cache: one
``llama_decode`` per step for every live sequence. Identical prompts (K samples of one
prompt) are read once and their cache copied to the other sequences, and a prompt that
shares a leading part with another (a system prompt, a persona, a history) copies that
part's cache instead of reading it again (``llama_memory_seq_cp``; the plan is
:func:`valuegym.lm.sequences.plan_rounds`). Each prompt samples with its own seeded
generator, so its random draws do not depend on which other prompts share its call. Decoding goes
through ``llama_decode`` with a batch this module fills, so each step asks for exactly the
logits it needs: the last position's of each sequence while generating, and every position
of a continuation while scoring. The logits are read in place from llama.cpp's buffer
(never through ``Llama.eval_logits``, which copies the whole buffer into Python lists) and
passed to the shared :class:`~valuegym.lm.sampling.TokenSampler`, which computes the
full-vocabulary entropies and draws the token with a seeded numpy generator.

Every ``generate`` call starts from an empty key-value cache, so its output depends only on
its arguments, never on earlier calls. A token's logits depend on how many tokens share
its ``llama_decode`` and on its row among them: llama.cpp's CPU matrix kernels work on tiles
of rows and give the rows left over (or a lone token) to other kernels, which round
differently. Measured on the default Q4_1 model, for the same token after the same prompt:
up to 0.6 logits between a lone token and one of three or more, and with a float32 cache up
to 1.2 logits between the rows of one four-token batch. Where a sequence's cells lie among the
other sequences' in the unified cache counts too: K greedy samples of one prompt, identical
sequences, are bit for bit equal for some steps and then up to 0.5 logits apart (also when
each is decoded alone). So a prompt generated among others
has entropies within a few tenths of a nat of the prompt generated alone, and greedy paths
agree until a near tie, not bit for bit; the same call (prompts and seed) always gives the
same output.

Threads: with ``n_threads=None`` each call uses only the cores that the processes running
beside this one leave free (:func:`valuegym.lm.cpu.threads_for_free_cores`), as llama.cpp's
worker threads spin-wait for each other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from valuegym.lm.base import (
    Generation,
    LanguageModel,
    LanguageModelError,
    LanguageModelUnavailableError,
    Prompt,
)
from valuegym.lm.cpu import (
    cpu_flags,
    llama_extra_buffer_types,
    llama_thread_count,
    threads_for_free_cores,
    use_extra_buffer_types,
)
from valuegym.lm.models import model_label, resolve_gguf_path
from valuegym.lm.prompts import chat_messages, check_generate_arguments, cut_at_stop
from valuegym.lm.sampling import TokenDraw, TokenSampler, Truncation, per_prompt_temperatures
from valuegym.lm.sequences import PromptRead, plan_rounds
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


# Key-value cells of Llama's own context, which valuegym never decodes in (llama.cpp rounds
# n_ctx up to a multiple of 256): ~6 MB instead of ~47 MB for SmolLM2-135M at n_ctx=2048.
_UNUSED_CONTEXT_CELLS = 256


class _Utterance:
    """The tokens and measurements of one prompt's utterance while it is generated."""

    def __init__(self, max_new_tokens: int) -> None:
        self.token_ids: list[int] = []
        self.measurements = np.zeros((max_new_tokens, 3))
        self.finish_reason = "length"

    @property
    def full(self) -> bool:
        return len(self.token_ids) == len(self.measurements)

    def add(self, token_id: int, draw: TokenDraw, row: int) -> None:
        self.measurements[len(self.token_ids)] = (
            draw.token_entropy[row],
            draw.sampled_entropy[row],
            draw.token_logprob[row],
        )
        self.token_ids.append(token_id)

    def generation(
        self, detokenize: Callable[[Sequence[int]], str], stops: tuple[str, ...]
    ) -> Generation:
        count = len(self.token_ids)
        text, _ = cut_at_stop(detokenize(self.token_ids), stops)
        return Generation(
            text=text,
            token_ids=tuple(self.token_ids),
            token_entropy=self.measurements[:count, 0].copy(),
            sampled_entropy=self.measurements[:count, 1].copy(),
            token_logprob=self.measurements[:count, 2].copy(),
            finish_reason=self.finish_reason,
        )


class LlamaCppModel(LanguageModel):
    """A GGUF model run by llama.cpp on the CPU.

    llama.cpp's extra buffer types (AMX, weight repacking) are left off on CPUs that
    advertise AMX, whose kernels crash there; ``VALUEGYM_LLAMA_AMX`` overrides this (see
    :mod:`valuegym.lm.cpu`). :attr:`extra_buffer_types` says what was chosen.

    Args:
        model: An embedded model name (default ``"smollm2-135m"``) or a ``.gguf`` file.
        n_ctx: Key-value cache cells: a prompt plus its generated tokens must fit, and the
            prompts of one ``generate`` call share them (calls that need more are decoded in
            several rounds).
        n_threads: CPU threads, fixed; ``None`` uses, at each call, the cores this process
            may use (at most ``OMP_NUM_THREADS`` when set) that other running processes leave
            free. llama.cpp's threads spin-wait for each other, so on cores shared with
            other busy processes fewer threads can be many times faster.
        n_batch: Tokens decoded per ``llama_decode`` call when reading prompts.
        n_seq_max: Sequences decoded together (prompts of a ``generate`` call per round).
        exact_scoring: Score continuations one token per decode, as generation of a prompt
            alone decodes, so that :meth:`score` of a text generated alone equals the sum
            of its ``token_logprob``. ``False`` decodes each continuation in one batch, several
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
        n_seq_max: int = 32,
    ) -> None:
        llama_cpp = _import_llama_cpp()
        for argument, value in (("n_ctx", n_ctx), ("n_batch", n_batch), ("n_seq_max", n_seq_max)):
            if value < 1:
                raise ValueError(f"{argument}: must be >= 1 (got {value})")
        if n_threads is not None and n_threads < 1:
            raise ValueError(f"n_threads: must be >= 1 (got {n_threads})")
        path = resolve_gguf_path(model)
        threads = n_threads or llama_thread_count()
        self._llama_cpp = llama_cpp
        # Off on CPUs with AMX, where llama.cpp's AMX kernels crash (see valuegym.lm.cpu).
        self.extra_buffer_types = use_extra_buffer_types(cpu_flags())
        with llama_extra_buffer_types(llama_cpp, self.extra_buffer_types):
            # Llama's own context goes unused (generation and scoring run in the sequence
            # context below), so it gets a token-sized cache instead of n_ctx cells.
            self._llama = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=min(n_ctx, _UNUSED_CONTEXT_CELLS),
                n_batch=min(n_batch, n_ctx, _UNUSED_CONTEXT_CELLS),
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
        self._adaptive_threads = n_threads is None
        self._context = self._sequence_context(n_seq_max)
        self._batch = llama_cpp.llama_batch_init(max(self._n_batch, self.n_seq_max), 0, 1)
        self._chat_formatter = self._make_chat_formatter()

    def __repr__(self) -> str:
        return f"LlamaCppModel(name={self.name!r}, n_threads={self.n_threads})"

    def _sequence_context(self, n_seq_max: int) -> Any:
        """A context for ``n_seq_max`` sequences sharing one key-value cache.

        ``Llama`` does not expose ``n_seq_max`` or ``kv_unified``, so this context is made
        beside its own with the same parameters but ``n_ctx``. The unified cache lets every
        sequence use all ``n_ctx`` cells and makes a copied prefix cost no cells (cells are
        tagged with several sequences).
        """
        llama_cpp = self._llama_cpp
        self.n_seq_max = min(n_seq_max, llama_cpp.llama_max_parallel_sequences())
        params = llama_cpp.llama_context_params.from_buffer_copy(self._llama.context_params)
        params.n_ctx = self.n_ctx
        params.n_seq_max = self.n_seq_max
        params.kv_unified = True
        params.n_batch = params.n_ubatch = max(self._n_batch, self.n_seq_max)
        context = llama_cpp.llama_init_from_model(self._llama.model, params)
        if not context:
            raise LanguageModelUnavailableError(
                f"llama.cpp could not create a context for {self.n_seq_max} sequences"
            )
        return context

    def _use_free_cores(self) -> None:
        """Set the thread count to the cores other processes leave free (``n_threads=None``)."""
        if not self._adaptive_threads:
            return
        threads = threads_for_free_cores(self.n_threads)
        self._llama_cpp.llama_set_n_threads(self._context, threads, threads)

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

    def _check_open(self) -> None:
        # llama.cpp dereferences freed memory (a segfault) if a closed model is used.
        if self._context is None:
            raise LanguageModelError(f"{self.name}: the model was closed; load it again")

    def close(self) -> None:
        """Free the llama.cpp batch, context and model; later calls raise instead of crashing."""
        if self._batch is not None:
            self._llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        if self._context is not None:
            self._llama_cpp.llama_free(self._context)
            self._context = None
        self._llama.close()

    def __del__(self) -> None:
        batch = getattr(self, "_batch", None)
        if batch is not None:
            self._llama_cpp.llama_batch_free(batch)
            self._batch = None
        context = getattr(self, "_context", None)
        if context is not None:
            self._llama_cpp.llama_free(context)
            self._context = None

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

    def _memory(self) -> Any:
        return self._llama_cpp.llama_get_memory(self._context)

    def _clear_cache_from(self, position: int) -> None:
        self._llama_cpp.llama_memory_seq_rm(self._memory(), -1, position, -1)

    def _decode_batch(
        self,
        token_ids: Sequence[int],
        positions: Sequence[int],
        sequence_ids: Sequence[int],
        wants_logits: Sequence[bool],
    ) -> np.ndarray:
        """Run the model on tokens of any sequences; return the logits asked for.

        Args:
            token_ids: Tokens to add to the cache (at most the batch's capacity).
            positions: Position of each token in its sequence.
            sequence_ids: Sequence of each token.
            wants_logits: Per token, whether its logits are returned.

        Returns:
            A float32 view of llama.cpp's logits buffer, one row per token that wants logits
            (in batch order), shape ``(rows, vocabulary)``; the next decode overwrites it.
        """
        batch = self._batch
        batch.n_tokens = len(token_ids)
        for index, token_id in enumerate(token_ids):
            batch.token[index] = token_id
            batch.pos[index] = positions[index]
            batch.n_seq_id[index] = 1
            batch.seq_id[index][0] = sequence_ids[index]
            batch.logits[index] = wants_logits[index]
        status = self._llama_cpp.llama_decode(self._context, batch)
        if status != 0:
            raise RuntimeError(
                f"llama_decode failed with status {status} ({len(token_ids)} tokens)"
            )
        pointer = self._llama_cpp.llama_get_logits(self._context)
        return np.ctypeslib.as_array(pointer, shape=(sum(map(bool, wants_logits)), self._n_vocab))

    def _decode(self, token_ids: Sequence[int], start: int, *, all_logits: bool) -> np.ndarray:
        """Run the model on tokens of sequence 0 placed at ``start`` onwards; return logits.

        ``all_logits`` returns every token's logits rather than only the last one's.
        """
        count = len(token_ids)
        return self._decode_batch(
            token_ids,
            range(start, start + count),
            [0] * count,
            [all_logits or index == count - 1 for index in range(count)],
        )

    def _read_prompt(self, prompt_ids: list[int]) -> np.ndarray:
        """Fill an empty cache with the prompt; return the last position's logits (1, V)."""
        self._clear_cache_from(0)
        logits = np.empty(0)
        for start in range(0, len(prompt_ids), self._n_batch):
            logits = self._decode(
                prompt_ids[start : start + self._n_batch], start, all_logits=False
            )
        self._prompt_tokens_read += len(prompt_ids)
        return logits

    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        max_new_tokens: int = 64,
        temperature: float | Sequence[float] = 1.0,
        seed: int | Sequence[np.random.SeedSequence] | None = None,
        stop: Sequence[str] = (),
        truncation: Truncation | None = None,
    ) -> list[Generation]:
        """Generate one utterance per prompt, all prompts as sequences of one batch.

        The end-of-generation token, when drawn, is part of ``token_ids`` and the
        measurements (the choice to stop is part of the utterance's distribution) but not of
        ``text``. With a stop string, tokens run up to the one that completed it.

        Args:
            prompts: The prompts of the batch (text or chat messages); repeat a prompt K
                times for K samples of it (it is read once).
            max_new_tokens: Upper bound on generated tokens per utterance.
            temperature: Sampling temperature, one for all prompts or one per prompt;
                0 means greedy decoding.
            seed: Seed of the sampler; the same seed and prompts give the same output.
            stop: Strings that end an utterance; they are not part of ``text``.
            truncation: Which tokens sampling may draw (top-k, top-p, min-p; default all);
                ``sampled_entropy`` is that of the truncated distribution.

        Returns:
            One :class:`Generation` per prompt, in order.
        """
        self._check_open()
        stops = check_generate_arguments(max_new_tokens, stop)
        temperatures = per_prompt_temperatures(temperature, len(prompts))
        encoded = [self._encode_prompt(p, f"prompts[{i}]") for i, p in enumerate(prompts)]
        for index, prompt_ids in enumerate(encoded):
            if len(prompt_ids) + max_new_tokens > self.n_ctx:
                raise ValueError(
                    f"prompts[{index}]: {len(prompt_ids)} prompt tokens + max_new_tokens="
                    f"{max_new_tokens} exceed the context window n_ctx={self.n_ctx}"
                )
        sampler = TokenSampler(temperatures, seed, truncation)
        utterances = [_Utterance(max_new_tokens) for _ in encoded]
        if max_new_tokens > 0 and encoded:
            self._use_free_cores()
            rounds = plan_rounds(
                encoded,
                new_tokens=max_new_tokens,
                max_cells=self.n_ctx,
                max_sequences=self.n_seq_max,
            )
            for reads in rounds:
                first_logits = self._read_prompts(reads)
                self._generate_round(reads, first_logits, utterances, sampler, stops)
        return [utterance.generation(self._detokenize, stops) for utterance in utterances]

    def _read_prompts(self, reads: list[PromptRead]) -> list[np.ndarray]:
        """Read a round's prompts into an empty cache, one sequence per member.

        A read's shared prefix is copied from the previous read's sequence once that one has
        decoded it; the reads' remaining tokens fill batches of up to ``n_batch`` tokens.
        When a read is done its cache is copied to its other members' sequences.

        Returns:
            Per read, the logits after its last token, shape ``(vocabulary,)``.
        """
        self._llama_cpp.llama_memory_clear(self._memory(), True)
        memory = self._memory()
        first_sequence = np.cumsum([0] + [len(read.members) for read in reads])
        decoded: list[int | None] = [None] * len(reads)
        last_logits: list[np.ndarray] = [np.empty(0)] * len(reads)
        while any(d is None or d < len(r.token_ids) for d, r in zip(decoded, reads, strict=True)):
            for index, read in enumerate(reads):
                if decoded[index] is not None:
                    continue
                if read.shared == 0:
                    decoded[index] = 0
                elif (decoded[index - 1] or 0) >= read.shared:
                    self._llama_cpp.llama_memory_seq_cp(
                        memory,
                        int(first_sequence[index - 1]),
                        int(first_sequence[index]),
                        0,
                        read.shared,
                    )
                    decoded[index] = read.shared
            tokens, positions, sequences, wants, finishing = self._next_read_batch(
                reads, decoded, first_sequence
            )
            logits = self._decode_batch(tokens, positions, sequences, wants)
            self._prompt_tokens_read += len(tokens)
            for row, index in enumerate(finishing):
                last_logits[index] = logits[row].copy()
                source = int(first_sequence[index])
                for sequence in range(source + 1, int(first_sequence[index + 1])):
                    self._llama_cpp.llama_memory_seq_cp(memory, source, sequence, -1, -1)
        return last_logits

    def _next_read_batch(
        self, reads: list[PromptRead], decoded: list[int | None], first_sequence: np.ndarray
    ) -> tuple[list[int], list[int], list[int], list[bool], list[int]]:
        """The next up to ``n_batch`` prompt tokens of the started reads; updates ``decoded``.

        Returns:
            Tokens, positions, sequences, whether each token's logits are wanted (a read's
            last token), and the reads this batch finishes.
        """
        tokens: list[int] = []
        positions: list[int] = []
        sequences: list[int] = []
        wants: list[bool] = []
        finishing: list[int] = []
        for index, read in enumerate(reads):
            done = decoded[index]
            if done is None or done == len(read.token_ids):
                continue
            take = min(len(read.token_ids) - done, self._n_batch - len(tokens))
            if take == 0:
                break
            tokens.extend(read.token_ids[done : done + take])
            positions.extend(range(done, done + take))
            sequences.extend([int(first_sequence[index])] * take)
            finished = done + take == len(read.token_ids)
            wants.extend([False] * (take - 1) + [finished])
            if finished:
                finishing.append(index)
            decoded[index] = done + take
        return tokens, positions, sequences, wants, finishing

    def _generate_round(
        self,
        reads: list[PromptRead],
        first_logits: list[np.ndarray],
        utterances: list[_Utterance],
        sampler: TokenSampler,
        stops: tuple[str, ...],
    ) -> None:
        """Generate every member of a round's reads, one ``llama_decode`` per step."""
        is_end_of_generation = self._llama_cpp.llama_vocab_is_eog
        # (prompt index, its sequence, position of the token it draws next)
        live: list[tuple[int, int, int]] = []
        rows = []
        sequence = 0
        for read, logits in zip(reads, first_logits, strict=True):
            for member in read.members:
                live.append((member, sequence, len(read.token_ids)))
                rows.append(logits)
                sequence += 1
        logits_matrix = np.stack(rows)
        while live:
            draw = sampler.draw(logits_matrix, [member for member, _, _ in live])
            still_live = []
            for row, (member, sequence, position) in enumerate(live):
                utterance = utterances[member]
                token_id = int(draw.token_ids[row])
                utterance.add(token_id, draw, row)
                if is_end_of_generation(self._vocab, token_id) or (
                    stops and cut_at_stop(self._detokenize(utterance.token_ids), stops)[1]
                ):
                    utterance.finish_reason = "stop"
                elif not utterance.full:
                    still_live.append((member, sequence, position))
            if still_live:
                logits_matrix = self._decode_batch(
                    [utterances[member].token_ids[-1] for member, _, _ in still_live],
                    [position for _, _, position in still_live],
                    [sequence for _, sequence, _ in still_live],
                    [True] * len(still_live),
                )
            live = [(member, sequence, position + 1) for member, sequence, position in still_live]

    def score(self, prompt: Prompt, continuations: Sequence[str]) -> np.ndarray:
        """Log-likelihood of each continuation given the prompt, at temperature 1.

        The prompt is read once; each continuation is then decoded after it, token by token
        or in one pass (see ``exact_scoring``). The prompt and each continuation are
        tokenised separately (a continuation's tokens do not merge with the prompt's). After
        chat messages a continuation is scored as a whole reply: its end-of-turn token is
        included (as a generation's likelihood includes the end token it drew), so
        terseness counts. After plain text it is a continuation, without an end token.

        Args:
            prompt: The conditioning prompt (text or chat messages).
            continuations: Candidate texts that follow the prompt.

        Returns:
            Float array of shape ``(len(continuations),)`` in nats.
        """
        self._check_open()
        prompt_ids = self._encode_prompt(prompt, "prompt")
        is_reply = chat_messages(prompt, "prompt") is not None
        self._use_free_cores()
        continuation_ids = []
        for index, text in enumerate(continuations):
            if not isinstance(text, str):
                raise ValueError(f"continuations[{index}]: expected a string (got {text!r})")
            ids = self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
            if is_reply:
                ids = [*ids, self._llama.token_eos()]
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
                self._prompt_tokens_read += len(chunk)
                targets = ids[offset + 1 : offset + 1 + len(chunk)]
                total += log_probs[np.arange(len(chunk)), targets].sum()
            scores[index] = total
        return scores
