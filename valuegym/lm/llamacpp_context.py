"""A llama.cpp context whose sequences share one unified key-value cache.

The ``llamacpp`` backend decodes the prompts of a ``generate`` call as separate sequences of
one such context: one ``llama_decode`` per step for every live sequence. Identical prompts (K
samples of one prompt) are read once and their cache copied to the other sequences, and a
prompt that shares a leading part with another (a system prompt, a persona, a history) copies
that part's cache instead of reading it again (``llama_memory_seq_cp``; the plan is
:func:`valuegym.lm.sequences.plan_rounds`). Decoding goes through ``llama_decode`` with a batch
this module fills, so each step asks for exactly the logits it needs: the last position's of
each sequence while generating, and every position of a continuation while scoring. The
logits are read in place from llama.cpp's buffer (never through ``Llama.eval_logits``, which
copies the whole buffer into Python lists).

A token's logits depend on how many tokens share its ``llama_decode`` and on its row among
them: llama.cpp's CPU matrix kernels work on tiles of rows and give the rows left over (or a
lone token) to other kernels, which round differently. Measured on the default Q4_1 model,
for the same token after the same prompt: up to 0.6 logits between a lone token and one of
three or more, and with a float32 cache up to 1.2 logits between the rows of one four-token
batch. Where a sequence's cells lie among the other sequences' in the unified cache counts
too: K greedy samples of one prompt, identical sequences, are bit for bit equal for some steps
and then up to 0.5 logits apart (also when each is decoded alone). So a prompt generated among
others has entropies within a few tenths of a nat of the prompt generated alone, and greedy
paths agree until a near tie, not bit for bit.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import numpy as np

from valuegym.lm.base import LanguageModelError, LanguageModelUnavailableError
from valuegym.lm.sequences import PromptRead
from valuegym.lm.steering import Steering

__all__ = ["SequenceContext"]


class SequenceContext:
    """A llama.cpp context for several sequences sharing one unified key-value cache.

    ``Llama`` does not expose ``n_seq_max`` or ``kv_unified``, so this context is made beside
    the model's own with the same parameters but ``n_ctx``. The unified cache lets every
    sequence use all ``n_ctx`` cells and makes a copied prefix cost no cells (cells are tagged
    with several sequences).

    Args:
        llama_cpp: The imported ``llama_cpp`` package.
        llama: The loaded ``llama_cpp.Llama`` whose model and context parameters are used.
        n_ctx: Key-value cache cells shared by the sequences.
        n_batch: Tokens decoded per ``llama_decode`` call when reading prompts.
        n_seq_max: Sequences wanted (capped at llama.cpp's maximum).

    Attributes:
        n_seq_max: Sequences decoded together.
        n_batch: Tokens decoded per ``llama_decode`` call when reading prompts.
        tokens_read: Prompt (and scored continuation) tokens decoded so far.

    Raises:
        LanguageModelUnavailableError: If llama.cpp cannot create the context.
    """

    def __init__(
        self, llama_cpp: Any, llama: Any, *, n_ctx: int, n_batch: int, n_seq_max: int
    ) -> None:
        self._llama_cpp = llama_cpp
        self._batch: Any = None
        self._context: Any = None
        self.n_batch = n_batch
        self.n_seq_max = min(n_seq_max, llama_cpp.llama_max_parallel_sequences())
        self.tokens_read = 0
        self._n_vocab = llama.n_vocab()
        self.n_layer = int(llama_cpp.llama_model_n_layer(llama.model))
        self.n_embd = int(llama_cpp.llama_model_n_embd(llama.model))
        params = llama_cpp.llama_context_params.from_buffer_copy(llama.context_params)
        params.n_ctx = n_ctx
        params.n_seq_max = self.n_seq_max
        params.kv_unified = True
        params.n_batch = params.n_ubatch = max(n_batch, self.n_seq_max)
        self._context = llama_cpp.llama_init_from_model(llama.model, params)
        if not self._context:
            self._context = None
            raise LanguageModelUnavailableError(
                f"llama.cpp could not create a context for {self.n_seq_max} sequences"
            )
        self._batch = llama_cpp.llama_batch_init(max(n_batch, self.n_seq_max), 0, 1)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` freed the context (using it then would crash llama.cpp)."""
        return self._context is None

    @property
    def handle(self) -> Any:
        """The ``llama_context`` pointer, for llama.cpp calls this class does not make."""
        return self._context

    def set_threads(self, threads: int) -> None:
        """Decode with ``threads`` threads from now on."""
        self._llama_cpp.llama_set_n_threads(self._context, threads, threads)

    def set_control_vector(self, steering: Steering | None) -> None:
        """Add ``steering``'s vectors to every token decoded from now on (``None``: stop).

        llama.cpp adds its control vector's tensor ``il`` to the output of layer ``il``
        (0-based, ``build_cvec(cur, il)`` after each layer) for ``il_start <= il <= il_end``,
        and ``llama_set_adapter_cvec`` fills tensor ``il`` from buffer row ``il - 1``: there is
        no tensor for layer 0. So block ``i`` (the output of decoder layer ``i``, as in
        transformers) is buffer row ``i - 1``, and block 0 cannot be steered here.

        Raises:
            ValueError: If a block is 0 or past the model's layers, or a vector's length is
                not the model's embedding size.
            LanguageModelError: If llama.cpp refuses the control vector.
        """
        llama_cpp = self._llama_cpp
        if steering is None or not steering.additions:
            llama_cpp.llama_set_adapter_cvec(self._context, None, 0, self.n_embd, -1, -1)
            return
        blocks = steering.blocks
        if blocks[0] < 1 or blocks[-1] >= self.n_layer:
            raise ValueError(
                f"steering: blocks {list(blocks)}; llama.cpp steers blocks 1..{self.n_layer - 1} "
                "(it has no control vector for the output of layer 0)"
            )
        if steering.hidden_size != self.n_embd:
            raise ValueError(
                f"steering: vectors of length {steering.hidden_size}, the model's embedding "
                f"size is {self.n_embd}"
            )
        rows = np.zeros((self.n_layer - 1, self.n_embd), dtype=np.float32)
        for block, vector in steering.additions.items():
            rows[block - 1] = vector
        pointer = rows.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        status = llama_cpp.llama_set_adapter_cvec(
            self._context, pointer, rows.size, self.n_embd, blocks[0], blocks[-1]
        )
        if status != 0:
            raise LanguageModelError(f"llama_set_adapter_cvec failed with status {status}")

    def close(self) -> None:
        """Free the batch and the context."""
        if self._batch is not None:
            self._llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        if self._context is not None:
            self._llama_cpp.llama_free(self._context)
            self._context = None

    def __del__(self) -> None:
        self.close()

    def _memory(self) -> Any:
        return self._llama_cpp.llama_get_memory(self._context)

    def clear_from(self, position: int) -> None:
        """Drop every sequence's cache cells from ``position`` on."""
        self._llama_cpp.llama_memory_seq_rm(self._memory(), -1, position, -1)

    def share_prefix(self, length: int, sequences: int) -> None:
        """Copy sequence 0's first ``length`` cells to sequences ``1..sequences-1``.

        In the unified cache a copy tags the same cells with more sequences: it costs none.
        """
        memory = self._memory()
        for sequence in range(1, sequences):
            self._llama_cpp.llama_memory_seq_cp(memory, 0, sequence, 0, length)

    def drop_sequences(self, sequences: int) -> None:
        """Remove sequences ``1..sequences-1`` from the cache (sequence 0 stays)."""
        memory = self._memory()
        for sequence in range(1, sequences):
            self._llama_cpp.llama_memory_seq_rm(memory, sequence, -1, -1)

    def decode_batch(
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

    def decode(self, token_ids: Sequence[int], start: int, *, all_logits: bool) -> np.ndarray:
        """Run the model on tokens of sequence 0 placed at ``start`` onwards; return logits.

        The tokens count as read (:attr:`tokens_read`).

        Args:
            token_ids: Tokens to add to the cache (at most ``n_batch``).
            start: Position of the first token.
            all_logits: Return every token's logits rather than only the last one's.

        Returns:
            A view of llama.cpp's logits buffer, as :meth:`decode_batch` returns.
        """
        count = len(token_ids)
        self.tokens_read += count
        return self.decode_batch(
            token_ids,
            range(start, start + count),
            [0] * count,
            [all_logits or index == count - 1 for index in range(count)],
        )

    def read_prompt(self, prompt_ids: list[int]) -> np.ndarray:
        """Fill an empty cache with the prompt as sequence 0.

        Args:
            prompt_ids: The prompt's tokens.

        Returns:
            The last position's logits, shape ``(1, vocabulary)``.
        """
        self.clear_from(0)
        logits = np.empty(0)
        for start in range(0, len(prompt_ids), self.n_batch):
            logits = self.decode(prompt_ids[start : start + self.n_batch], start, all_logits=False)
        return logits

    def read_prompts(self, reads: list[PromptRead]) -> list[np.ndarray]:
        """Read a round's prompts into an empty cache, one sequence per member.

        A read's shared prefix is copied from the previous read's sequence once that one has
        decoded it; the reads' remaining tokens fill batches of up to ``n_batch`` tokens.
        When a read is done its cache is copied to its other members' sequences.

        Args:
            reads: The round's reads (:func:`valuegym.lm.sequences.plan_rounds`); the members
                of read ``i`` get the sequences after those of reads ``0..i-1``.

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
            logits = self.decode_batch(tokens, positions, sequences, wants)
            self.tokens_read += len(tokens)
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
            take = min(len(read.token_ids) - done, self.n_batch - len(tokens))
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
