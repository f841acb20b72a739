"""Plans for decoding many prompts as sequences of one key-value cache, sharing prefixes.

A batch of prompts (token ids) is grouped into *reads*: one per distinct prompt, with the
indices of every prompt of the batch that is that prompt (K samples of one prompt are one
read). Reads are ordered lexicographically, so a read shares the longest possible prefix with
the read just before it; that prefix is copied from the earlier read's cache rather than
decoded again. Reads are packed into *rounds* that fit the cache (cells and sequences); a
backend decodes one round at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PromptRead", "common_prefix_length", "plan_rounds"]


@dataclass(frozen=True)
class PromptRead:
    """One distinct prompt of a round and the prompts of the batch that are it.

    Attributes:
        token_ids: The prompt's tokens.
        members: Indices (in the batch) of the prompts equal to this one, in order; the
            first member's sequence reads the prompt, the others get a copy of its cache.
        shared: Leading tokens copied from the previous read of the round (0 for the first);
            always less than the prompt's length, so every read decodes its last token.
    """

    token_ids: tuple[int, ...]
    members: tuple[int, ...]
    shared: int

    @property
    def cells(self) -> int:
        """Cache cells the read takes beyond what it shares (prompt tokens decoded)."""
        return len(self.token_ids) - self.shared


def common_prefix_length(first: Sequence[int], second: Sequence[int]) -> int:
    """Number of leading tokens two token sequences have in common."""
    length = 0
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        length += 1
    return length


def plan_rounds(
    prompts: Sequence[Sequence[int]],
    *,
    new_tokens: int,
    max_cells: int,
    max_sequences: int,
) -> list[list[PromptRead]]:
    """Group prompts into rounds of reads that fit one key-value cache.

    Args:
        prompts: Token ids of each prompt of the batch (each non-empty, and each with
            ``new_tokens`` fitting in ``max_cells``).
        new_tokens: Tokens each prompt may generate (each takes a cache cell).
        max_cells: Cache cells available to one round.
        max_sequences: Sequences available to one round (one per prompt of the batch).

    Returns:
        Rounds of reads; every prompt index of the batch is a member of exactly one read.
    """
    members: dict[tuple[int, ...], list[int]] = {}
    for index, token_ids in enumerate(prompts):
        members.setdefault(tuple(token_ids), []).append(index)
    rounds: list[list[PromptRead]] = []
    current: list[PromptRead] = []
    cells = sequences = 0
    for token_ids in sorted(members):
        indices = members[token_ids]
        for start in range(0, len(indices), max_sequences):
            chunk = tuple(indices[start : start + max_sequences])
            shared = 0
            if current:
                previous = current[-1].token_ids
                shared = min(common_prefix_length(previous, token_ids), len(token_ids) - 1)
            needed = len(token_ids) - shared + len(chunk) * new_tokens
            if current and (sequences + len(chunk) > max_sequences or cells + needed > max_cells):
                rounds.append(current)
                current, cells, sequences = [], 0, 0
                shared = 0
                needed = len(token_ids) + len(chunk) * new_tokens
            current.append(PromptRead(token_ids, chunk, shared))
            cells += needed
            sequences += len(chunk)
    if current:
        rounds.append(current)
    return rounds
