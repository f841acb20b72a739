"""The frozen base of every scenario model and the errors its validators raise.

:mod:`valuegym.scenarios.validation` turns these errors into ``(dotted path, message)``
problems: :func:`key_problem` names a key of the model being validated, :func:`invalid_value`
describes the value itself.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

__all__ = ["FrozenSpec", "invalid_value", "key_problem"]


def key_problem(key: str, message: str) -> PydanticCustomError:
    """A validation error about ``key`` of the model being validated (see ``validation.py``)."""
    return PydanticCustomError("scenario", "{message}", {"key": key, "message": message})


def invalid_value(message: str) -> PydanticCustomError:
    """A validation error about the value being validated, with a ready-made message."""
    return PydanticCustomError("invalid", "{message}", {"message": message})


class FrozenSpec(BaseModel):
    """The base of every scenario model: unknown keys refused, frozen, strict types."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
