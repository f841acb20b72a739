"""Steering vectors: what a backend adds to the residual stream of a prompt.

A :class:`Steering` holds, per block, one vector added to the residual stream after that
block (activation addition), at every position of the prompt and of the generated tokens.
Block ``i`` is the output of decoder layer ``i`` (0-based, as in transformers'
``model.model.layers[i]``); each backend maps that index to its own numbering. Backends that
can steer set :attr:`~valuegym.lm.base.LanguageModel.supports_steering`; the others raise
:class:`~valuegym.lm.base.SteeringUnsupportedError` (defined beside the other model errors, as
:mod:`valuegym.lm.base` checks steerings and this module stays below it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

__all__ = ["Steering"]


@dataclass(frozen=True)
class Steering:
    """What to add to the residual stream for one prompt: per block index, one vector.

    Attributes:
        additions: Block index (0-based, transformers numbering: the output of decoder
            layer ``i``) to the ``(hidden,)`` vector added there; stored as read-only float32
            arrays of one common length.
        label: A short description for records, e.g. ``"stress=+0.80"``.

    Raises:
        ValueError: If a block index is negative, a vector is not one-dimensional and
            finite, or the vectors differ in length.
    """

    additions: Mapping[int, np.ndarray]
    label: str = ""

    def __post_init__(self) -> None:
        checked: dict[int, np.ndarray] = {}
        sizes = set()
        for block, vector in sorted(self.additions.items()):
            if not isinstance(block, (int, np.integer)) or isinstance(block, bool) or block < 0:
                raise ValueError(f"additions: block {block!r} is not a non-negative integer")
            array = np.array(vector, dtype=np.float32)
            if array.ndim != 1 or not np.all(np.isfinite(array)):
                raise ValueError(
                    f"additions[{block}]: must be a finite one-dimensional vector "
                    f"(got shape {array.shape})"
                )
            array.flags.writeable = False
            checked[int(block)] = array
            sizes.add(array.shape[0])
        if len(sizes) > 1:
            raise ValueError(f"additions: the vectors differ in length ({sorted(sizes)})")
        object.__setattr__(self, "additions", MappingProxyType(checked))

    @property
    def blocks(self) -> tuple[int, ...]:
        """The steered block indices, in increasing order."""
        return tuple(self.additions)

    @property
    def hidden_size(self) -> int | None:
        """The vectors' length (``None`` without additions)."""
        return next((vector.shape[0] for vector in self.additions.values()), None)

    def is_zero(self) -> bool:
        """Whether every addition is exactly 0 (steering with it changes nothing)."""
        return all(not np.any(vector) for vector in self.additions.values())

    def key(self) -> bytes:
        """A digest shared by steerings with identical additions (the label is ignored)."""
        digest = hashlib.sha256()
        for block, vector in self.additions.items():
            digest.update(block.to_bytes(4, "little"))
            digest.update(vector.tobytes())
        return digest.digest()
