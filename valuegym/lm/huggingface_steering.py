"""Steering a transformers model: forward hooks that add vectors to decoder layers' outputs.

The hook on ``model.model.layers[i]`` adds, to every position of each batch row, that row's
vector for block ``i`` (:class:`~valuegym.lm.steering.Steering`), so a batch may mix steered
and unsteered rows: an unsteered row gets exactly 0 added, which leaves its floats unchanged.
Left-padding positions get the vector too; they are masked out of attention, so it does not
reach any real token.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from valuegym.lm.steering import Steering

if TYPE_CHECKING:
    import torch

__all__ = ["SteeringHooks"]


class SteeringHooks:
    """Per-row additions to a model's decoder layers, hooked in for a ``with`` block.

    Args:
        layers: The model's decoder layers (``model.model.layers``).
        steerings: One steering (or ``None``) per row of the batch as first run.
        device: Where the model runs.
        dtype: The hidden states' dtype.

    Raises:
        ValueError: If a block index is past the model's layers or a vector's length is not
            the model's hidden size.
    """

    def __init__(
        self,
        layers: Sequence[Any],
        steerings: Sequence[Steering | None],
        *,
        hidden_size: int,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        import torch

        self._layers = layers
        blocks = sorted({block for s in steerings if s is not None for block in s.blocks})
        for index, steering in enumerate(steerings):
            if steering is None:
                continue
            if steering.blocks and steering.blocks[-1] >= len(layers):
                raise ValueError(
                    f"steering[{index}]: block {steering.blocks[-1]} is past the model's "
                    f"{len(layers)} layers"
                )
            if steering.hidden_size not in (None, hidden_size):
                raise ValueError(
                    f"steering[{index}]: vectors of length {steering.hidden_size}, the model's "
                    f"hidden size is {hidden_size}"
                )
        self._by_block: dict[int, torch.Tensor] = {}
        for block in blocks:
            matrix = np.zeros((len(steerings), hidden_size), dtype=np.float32)
            for row, steering in enumerate(steerings):
                if steering is not None and block in steering.additions:
                    matrix[row] = steering.additions[block]
            self._by_block[block] = torch.from_numpy(matrix).to(device=device, dtype=dtype)
        self._current = {block: m.unsqueeze(1) for block, m in self._by_block.items()}

    def select_rows(self, rows: torch.Tensor) -> None:
        """From now on row ``r`` of a batch gets the vectors of original row ``rows[r]``."""
        self._current = {block: m[rows].unsqueeze(1) for block, m in self._by_block.items()}

    @contextlib.contextmanager
    def hooked(self) -> Iterator[SteeringHooks]:
        """Add the vectors inside the ``with`` block; the hooks are removed on leaving it."""
        handles = []
        try:
            for block in self._by_block:
                handles.append(self._layers[block].register_forward_hook(self._hook(block)))
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def _hook(self, block: int) -> Any:
        def add(module: Any, inputs: Any, output: Any) -> Any:
            del module, inputs
            if isinstance(output, tuple):
                return (output[0] + self._current[block], *output[1:])
            return output + self._current[block]

        return add
