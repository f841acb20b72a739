"""One utterance's tokens and per-token measurements, collected while a local backend decodes.

The local backends (``llamacpp``, ``transformers``) draw each token with the shared
:class:`~valuegym.lm.sampling.TokenSampler` and hand the draw to a :class:`GenerationBuilder`
per prompt, which keeps the token, its three measurements and whether the utterance ended,
and finally builds the :class:`~valuegym.lm.base.Generation`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from valuegym.lm.base import Generation
from valuegym.lm.prompts import cut_at_stop
from valuegym.lm.sampling import TokenDraw

__all__ = ["GenerationBuilder"]


class GenerationBuilder:
    """The tokens of one utterance and their measurements, as they are drawn.

    The end-of-generation token, when drawn, is kept in ``token_ids`` and the measurements
    (the choice to stop is part of the utterance's distribution); ``text`` leaves it out.
    With stop strings, tokens run up to the one that completed a stop string.

    Args:
        max_new_tokens: The most tokens the utterance may hold.
        detokenize: The text of a sequence of token ids (special tokens left out).
        is_end: Whether a token id ends generation (end of sequence or of turn).
        stops: Strings that end the utterance; ``text`` is cut before the first.
    """

    def __init__(
        self,
        max_new_tokens: int,
        *,
        detokenize: Callable[[Sequence[int]], str],
        is_end: Callable[[int], bool],
        stops: tuple[str, ...],
    ) -> None:
        self.token_ids: list[int] = []
        self.finish_reason = "length"
        # Rows of (token_entropy, sampled_entropy, token_logprob), filled in order.
        self._measurements = np.zeros((max_new_tokens, 3))
        self._detokenize = detokenize
        self._is_end = is_end
        self._stops = stops

    @property
    def live(self) -> bool:
        """Whether the utterance goes on: it has not ended and has room for another token."""
        return self.finish_reason != "stop" and len(self.token_ids) < len(self._measurements)

    def add(self, draw: TokenDraw, row: int) -> int:
        """Append the token drawn in row ``row`` of ``draw``, with its measurements.

        Args:
            draw: The tokens drawn for a batch of rows.
            row: The row of this utterance's token.

        Returns:
            The token id.
        """
        token_id = int(draw.token_ids[row])
        self._measurements[len(self.token_ids)] = (
            draw.token_entropy[row],
            draw.sampled_entropy[row],
            draw.token_logprob[row],
        )
        self.token_ids.append(token_id)
        if self._is_end(token_id) or (
            self._stops and cut_at_stop(self._detokenize(self.token_ids), self._stops)[1]
        ):
            self.finish_reason = "stop"
        return token_id

    def build(self) -> Generation:
        """The utterance as a :class:`~valuegym.lm.base.Generation`."""
        count = len(self.token_ids)
        text, _ = cut_at_stop(self._detokenize(self.token_ids), self._stops)
        return Generation(
            text=text,
            token_ids=tuple(self.token_ids),
            token_entropy=self._measurements[:count, 0].copy(),
            sampled_entropy=self._measurements[:count, 1].copy(),
            token_logprob=self._measurements[:count, 2].copy(),
            finish_reason=self.finish_reason,
        )
