"""The ``llamacpp`` backend: llama-cpp-python on a GGUF file, the fast CPU path.

The model is loaded once. The prompts of a ``generate`` call are decoded together as
separate sequences of one llama.cpp context with a unified key-value cache
(:class:`~valuegym.lm.llamacpp_context.SequenceContext`): one ``llama_decode`` per step for
every live sequence, identical prompts (K samples of one prompt) read once, and a prompt that
shares a leading part with another (a system prompt, a persona, a history) copying that
part's cache instead of reading it again. Each prompt samples with its own seeded generator
(the shared :class:`~valuegym.lm.sampling.TokenSampler`, which computes the full-vocabulary
entropies from logits read in place), so its random draws do not depend on which other
prompts share its call.

Every ``generate`` call starts from an empty key-value cache, so its output depends only on
its arguments, never on earlier calls; the same call (prompts and seed) always gives the same
output. A prompt generated among others has entropies within a few tenths of a nat of the
prompt generated alone, and greedy paths agree until a near tie, not bit for bit: llama.cpp
rounds a token's logits by the batch it is decoded in (see :mod:`valuegym.lm.llamacpp_context`).

Steering (:class:`~valuegym.lm.steering.Steering`) uses llama.cpp's control vectors, of
which a context holds one at a time: a call groups its prompts by steering
(:meth:`Steering.key`; unsteered and all-zero steerings form one group) and generates or
scores group by group, each prompt keeping its seed and its place in the output. As batch
composition changes llama.cpp's rounding, a prompt's output depends on its group's other
prompts, not on the other groups': contrasts between steerings compare like groupings.

Threads: with ``n_threads=None`` each call uses only the cores that the processes running
beside this one leave free (:func:`valuegym.lm.cpu.threads_for_free_cores`), as llama.cpp's
worker threads spin-wait for each other.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from valuegym.lm.base import (
    Generation,
    LanguageModel,
    LanguageModelError,
    LanguageModelUnavailableError,
)
from valuegym.lm.cpu import (
    cpu_flags,
    llama_extra_buffer_types,
    llama_thread_count,
    threads_for_free_cores,
    use_extra_buffer_types,
)
from valuegym.lm.generations import GenerationBuilder
from valuegym.lm.llamacpp_context import SequenceContext
from valuegym.lm.models import model_label, resolve_gguf_path
from valuegym.lm.prompts import CheckedPrompt
from valuegym.lm.sampling import TokenSampler, Truncation
from valuegym.lm.sequences import PromptRead, plan_rounds
from valuegym.lm.steering import Steering
from valuegym.numeric import log_softmax

__all__ = ["LlamaCppModel"]


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as error:
        raise LanguageModelUnavailableError(
            "backend 'llamacpp' needs llama-cpp-python: pip install 'valuegym[demo]' "
            "(it compiles llama.cpp, a few minutes)"
        ) from error
    return llama_cpp


# Key-value cells of Llama's own context, which valuegym never decodes in (llama.cpp rounds
# n_ctx up to a multiple of 256): ~6 MB instead of ~47 MB for SmolLM2-135M at n_ctx=2048.
_UNUSED_CONTEXT_CELLS = 256


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
            of its ``token_logprob``. ``False`` decodes all continuations of a call together,
            one sequence each sharing the prompt's cache, in batches of ``n_batch`` tokens:
            several times faster, but llama.cpp's batched kernels round differently (here up
            to 0.15 nats per token, a few tenths of a nat over 15 tokens). The batched
            scores are deterministic and do not depend on the continuations' order or
            repeats (the distinct ones are decoded in a fixed order), but a continuation
            scored beside other ones can differ by a few tenths of a nat.

    Raises:
        LanguageModelUnavailableError: If llama-cpp-python or the model is not installed.
        ValueError: If the model is not a GGUF file, an argument is out of range or
            ``VALUEGYM_LLAMA_AMX`` is neither ``0`` nor ``1``.
    """

    supports_steering = True

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
        self._vocab = llama_cpp.llama_model_get_vocab(self._llama.model)
        self._adaptive_threads = n_threads is None
        self._sequences = SequenceContext(
            llama_cpp, self._llama, n_ctx=n_ctx, n_batch=min(n_batch, n_ctx), n_seq_max=n_seq_max
        )
        self.n_seq_max = self._sequences.n_seq_max
        self._chat_formatter = self._make_chat_formatter()

    def __repr__(self) -> str:
        return f"LlamaCppModel(name={self.name!r}, n_threads={self.n_threads})"

    @property
    def prompt_tokens_read(self) -> int:
        """Prompt (and scored continuation) tokens decoded so far; shared prefixes count once."""
        return self._sequences.tokens_read

    def _use_free_cores(self) -> None:
        """Set the thread count to the cores other processes leave free (``n_threads=None``)."""
        if self._adaptive_threads:
            self._sequences.set_threads(threads_for_free_cores(self.n_threads))

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
        if self._sequences.closed:
            raise LanguageModelError(f"{self.name}: the model was closed; load it again")

    def close(self) -> None:
        """Free the llama.cpp batch, context and model; later calls raise instead of crashing."""
        self._sequences.close()
        self._llama.close()

    def _encode_prompt(self, prompt: CheckedPrompt, where: str) -> list[int]:
        if isinstance(prompt, str):
            ids = self._llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)
        else:
            if self._chat_formatter is None:
                raise ValueError(
                    f"{where}: chat messages need a chat template, and {self.path.name} has none"
                )
            text = self._chat_formatter(messages=prompt).prompt
            # The template already holds every special token the model expects.
            ids = self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if not ids:
            raise ValueError(f"{where}: the prompt encodes to no tokens")
        return list(ids)

    def _detokenize(self, token_ids: Sequence[int]) -> str:
        return self._llama.detokenize(list(token_ids)).decode("utf-8", errors="replace")

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
        """Generate every prompt as a sequence of one batch; K copies of a prompt read it once.

        Steered prompts are generated in groups of one steering each (one control vector
        per context), one group after the other; the control vector is cleared afterwards.
        See :meth:`LanguageModel._generate`.
        """
        self._check_open()
        encoded = [self._encode_prompt(p, f"prompts[{i}]") for i, p in enumerate(prompts)]
        for index, prompt_ids in enumerate(encoded):
            if len(prompt_ids) + max_new_tokens > self.n_ctx:
                raise ValueError(
                    f"prompts[{index}]: {len(prompt_ids)} prompt tokens + max_new_tokens="
                    f"{max_new_tokens} exceed the context window n_ctx={self.n_ctx}"
                )
        sampler = TokenSampler(temperatures, seed, truncation)
        is_end_of_generation = self._llama_cpp.llama_vocab_is_eog
        builders = [
            GenerationBuilder(
                max_new_tokens,
                detokenize=self._detokenize,
                is_end=lambda token_id: bool(is_end_of_generation(self._vocab, token_id)),
                stops=stop,
            )
            for _ in encoded
        ]
        if max_new_tokens > 0 and encoded:
            self._use_free_cores()
            for group_steering, members in _steering_groups(steering, len(encoded)):
                self._sequences.set_control_vector(group_steering)
                try:
                    rounds = plan_rounds(
                        [encoded[member] for member in members],
                        new_tokens=max_new_tokens,
                        max_cells=self.n_ctx,
                        max_sequences=self.n_seq_max,
                    )
                    for local_reads in rounds:
                        reads = [_in_batch(read, members) for read in local_reads]
                        first_logits = self._sequences.read_prompts(reads)
                        self._generate_round(reads, first_logits, builders, sampler)
                finally:
                    if group_steering is not None:
                        self._sequences.set_control_vector(None)
        return [builder.build() for builder in builders]

    def _generate_round(
        self,
        reads: list[PromptRead],
        first_logits: list[np.ndarray],
        builders: list[GenerationBuilder],
        sampler: TokenSampler,
    ) -> None:
        """Generate every member of a round's reads, one ``llama_decode`` per step."""
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
            for row, (member, _, _) in enumerate(live):
                builders[member].add(draw, row)
            live = [entry for entry in live if builders[entry[0]].live]
            if live:
                logits_matrix = self._sequences.decode_batch(
                    [builders[member].token_ids[-1] for member, _, _ in live],
                    [position for _, _, position in live],
                    [sequence for _, sequence, _ in live],
                    [True] * len(live),
                )
            live = [(member, sequence, position + 1) for member, sequence, position in live]

    def _score(
        self,
        prompt: CheckedPrompt,
        continuations: tuple[str, ...],
        steering: tuple[Steering | None, ...] | None = None,
    ) -> np.ndarray:
        """Log-likelihood of each continuation given the prompt, at temperature 1.

        The prompt is read once; each continuation is then decoded after it, token by token,
        or all continuations together as sequences sharing the prompt's cache (see
        ``exact_scoring``). The prompt and each continuation are tokenised separately (a
        continuation's tokens do not merge with the prompt's). After chat messages a
        continuation is scored as a whole reply: its end-of-turn token is included (as a
        generation's likelihood includes the end token it drew), so terseness counts. After
        plain text it is a continuation, without an end token. A steering is set as the
        context's control vector for the call and cleared afterwards.
        """
        self._check_open()
        [(prompt_steering, _)] = _steering_groups(steering, 1)
        self._sequences.set_control_vector(prompt_steering)
        try:
            return self._score_steered(prompt, continuations)
        finally:
            if prompt_steering is not None:
                self._sequences.set_control_vector(None)

    def _score_steered(self, prompt: CheckedPrompt, continuations: tuple[str, ...]) -> np.ndarray:
        """:meth:`_score` under the context's current control vector."""
        prompt_ids = self._encode_prompt(prompt, "prompt")
        self._use_free_cores()
        continuation_ids = []
        for index, text in enumerate(continuations):
            ids = self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
            if not isinstance(prompt, str):
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
        first_token_log_probs = log_softmax(self._sequences.read_prompt(prompt_ids)[0])
        start = len(prompt_ids)
        if self.exact_scoring:
            for index, ids in enumerate(continuation_ids):
                if ids:
                    scores[index] = self._score_alone(ids, start, first_token_log_probs)
            return scores
        # Distinct continuations in a fixed order: the batches, hence the roundings, do not
        # depend on the order of the call's continuations or on repeats among them (they do
        # depend on which continuations share the call).
        distinct = sorted({tuple(ids) for ids in continuation_ids if ids})
        together = self._score_together(distinct, start, first_token_log_probs)
        for index, ids in enumerate(continuation_ids):
            if ids:
                scores[index] = together[tuple(ids)]
        return scores

    def _score_alone(self, ids: list[int], start: int, first_token_log_probs: np.ndarray) -> float:
        """A continuation's log-likelihood, decoded one token per ``llama_decode``."""
        total = first_token_log_probs[ids[0]]
        self._sequences.clear_from(start)
        # The last token's own logits would predict past the continuation: not decoded.
        for offset, token_id in enumerate(ids[:-1]):
            logits = self._sequences.decode([token_id], start + offset, all_logits=True)
            total += log_softmax(logits)[0, ids[offset + 1]]
        return float(total)

    def _score_together(
        self, continuations: list[tuple[int, ...]], start: int, first_token_log_probs: np.ndarray
    ) -> dict[tuple[int, ...], float]:
        """Log-likelihoods of continuations decoded together, one sequence each.

        The prompt, read as sequence 0, is shared with the other sequences; the
        continuations fill groups of up to ``n_seq_max`` sequences whose cells fit the cache,
        and each group's tokens fill batches of ``n_batch`` tokens, logits for every row.
        """
        totals = {ids: float(first_token_log_probs[ids[0]]) for ids in continuations}
        group: list[tuple[int, ...]] = []
        cells = start
        for ids in (ids for ids in continuations if len(ids) > 1):
            if group and (len(group) == self.n_seq_max or cells + len(ids) - 1 > self.n_ctx):
                self._decode_group(group, start, totals)
                group, cells = [], start
            group.append(ids)
            cells += len(ids) - 1
        if group:
            self._decode_group(group, start, totals)
        return totals

    def _decode_group(
        self, group: list[tuple[int, ...]], start: int, totals: dict[tuple[int, ...], float]
    ) -> None:
        """Decode a group's continuations as sequences ``0..len(group)-1``; add to ``totals``."""
        sequences = self._sequences
        sequences.clear_from(start)
        sequences.share_prefix(start, len(group))
        # The last token's own logits would predict past the continuation: not decoded.
        tokens = [token for ids in group for token in ids[:-1]]
        targets = [token for ids in group for token in ids[1:]]
        positions = [start + offset for ids in group for offset in range(len(ids) - 1)]
        owners = [sequence for sequence, ids in enumerate(group) for _ in ids[1:]]
        sums = np.zeros(len(group))
        for begin, end in _batches(len(tokens), sequences.n_batch):
            logits = sequences.decode_batch(
                tokens[begin:end], positions[begin:end], owners[begin:end], [True] * (end - begin)
            )
            log_probs = log_softmax(logits)[np.arange(end - begin), targets[begin:end]]
            np.add.at(sums, owners[begin:end], log_probs)
        sequences.tokens_read += len(tokens)
        sequences.drop_sequences(len(group))
        for ids, total in zip(group, sums, strict=True):
            totals[ids] += float(total)


def _steering_groups(
    steering: tuple[Steering | None, ...] | None, n_prompts: int
) -> list[tuple[Steering | None, list[int]]]:
    """The prompts' indices grouped by steering, in order of first appearance.

    Unsteered prompts and all-zero steerings (which change nothing) form the group ``None``.
    """
    groups: dict[bytes | None, tuple[Steering | None, list[int]]] = {}
    for index in range(n_prompts):
        entry = steering[index] if steering is not None else None
        if entry is not None and entry.is_zero():
            entry = None
        key = entry.key() if entry is not None else None
        groups.setdefault(key, (entry, []))[1].append(index)
    return list(groups.values())


def _in_batch(read: PromptRead, members: list[int]) -> PromptRead:
    """A read planned over a group's prompts, its members renumbered to the whole batch's."""
    return PromptRead(read.token_ids, tuple(members[m] for m in read.members), read.shared)


def _batches(count: int, size: int) -> list[tuple[int, int]]:
    """``(begin, end)`` of ``count`` tokens in batches of at most ``size``, none of one token.

    llama.cpp rounds a lone row's logits as one-token decoding does and rows decoded with
    others with its batched kernels; so a last batch of one token takes one from the batch
    before it (where ``size`` allows), keeping every score on the batched kernels.
    """
    bounds = [*range(0, count, size), count]
    if count > 1 and size > 2 and bounds[-1] - bounds[-2] == 1:
        bounds[-2] -= 1
    return list(itertools.pairwise(bounds))
