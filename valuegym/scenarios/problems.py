"""Problems with a scenario, as ``(dotted path, message)`` pairs, and the error that lists them.

:func:`pydantic_problems` turns pydantic's validation errors on the scenario schema into
short messages at dotted paths (``agents.1.lm.top_p: must be <= 1 (got 1.5)``), with a
did-you-mean for unknown keys; :class:`ScenarioError` carries every problem found.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from valuegym.scenarios.schema import Scenario

__all__ = ["Problem", "ScenarioError", "pydantic_problems", "type_name"]

Problem = tuple[str, str]


class ScenarioError(ValueError):
    """An invalid scenario; ``problems`` lists ``(dotted path, message)`` pairs, every one.

    Args:
        problems: The problems, in the order found.
        source: The file (or other origin) the scenario came from, for messages.
    """

    def __init__(self, problems: Sequence[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(self.format())

    def format(self) -> str:
        """One line per problem: ``path: message`` (``message`` alone for the whole file)."""
        prefix = f"{self.source}: " if self.source else ""
        lines = [
            f"{prefix}{path}: {message}" if path else f"{prefix}{message}"
            for path, message in self.problems
        ]
        return "\n".join(lines)


def type_name(value: Any) -> str:
    """The YAML name of a value's type (mapping, list, string, ...), for messages."""
    names = {
        dict: "mapping",
        list: "list",
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


_MESSAGES = {
    "missing": "required key is missing",
    "int_type": "must be an integer (got {input!r})",
    "float_type": "must be a number (got {input!r})",
    "string_type": "must be a string (got {input!r})",
    "bool_type": "must be true or false (got {input!r})",
    "dict_type": "must be a mapping (got {input_type})",
    "model_type": "must be a mapping (got {input_type})",
    "model_attributes_type": "must be a mapping (got {input_type})",
    "list_type": "must be a list (got {input_type})",
    "greater_than": "must be > {gt} (got {input!r})",
    "greater_than_equal": "must be >= {ge} (got {input!r})",
    "less_than": "must be < {lt} (got {input!r})",
    "less_than_equal": "must be <= {le} (got {input!r})",
    "finite_number": "must be finite (got {input!r})",
    "literal_error": "unknown value {input!r} (expected one of: {expected})",
    "string_pattern_mismatch": (
        "must start with a letter or digit and hold only letters, digits, '_', '-' and '.' "
        "(got {input!r})"
    ),
}


def pydantic_problems(error: ValidationError) -> list[Problem]:
    """Pydantic's errors on the scenario schema as problems: dotted paths, short messages.

    Args:
        error: What ``Scenario.model_validate`` raised.

    Returns:
        One problem per path (the messages at one path joined by "or"), in pydantic's order.
    """
    by_path: dict[str, list[str]] = {}
    for detail in error.errors(include_url=False):
        loc = [part for part in detail["loc"] if not _is_union_tag(part)]
        context = detail.get("ctx") or {}
        if detail["type"] == "scenario":
            loc.append(context["key"])
        path = ".".join(str(part) for part in loc)
        by_path.setdefault(path, [])
        message = _message(detail, loc)
        if message not in by_path[path]:
            by_path[path].append(message)
    return [(path, " or ".join(messages)) for path, messages in by_path.items()]


def _is_union_tag(part: str | int) -> bool:
    """Pydantic names the union member in the location (``int``, ``list[int]``); drop it."""
    return isinstance(part, str) and (
        part in ("int", "str", "float", "bool", "none")
        or "[" in part
        or part.startswith("function")
        or part.endswith("Spec")  # a model member of a union, e.g. FixedStateSpec
    )


def _message(detail: Any, loc: list[Any]) -> str:
    error_type = detail["type"]
    context = dict(detail.get("ctx") or {})
    value = detail.get("input")
    if error_type in ("scenario", "invalid"):
        return str(context["message"])
    if error_type == "extra_forbidden":
        return _unknown_key_message(str(loc[-1]), loc[:-1])
    if error_type == "too_short":
        return (
            "must not be empty"
            if context.get("actual_length") == 0
            else (f"needs at least {context.get('min_length')} items")
        )
    if error_type in _MESSAGES:
        context.setdefault("expected", "")
        context["expected"] = str(context["expected"]).replace(" or ", ", ")
        return _MESSAGES[error_type].format(input=value, input_type=type_name(value), **context)
    message = str(detail["msg"])
    return message[0].lower() + message[1:]


def _unknown_key_message(key: str, parent_loc: list[Any]) -> str:
    model = _model_at(parent_loc)
    if model is None:
        return "unknown key"
    known = list(model.model_fields)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key ({hint}expected one of: {', '.join(known)})"


def _model_at(loc: list[Any]) -> type[BaseModel] | None:
    """The schema model that validates the mapping at ``loc``, if it is one."""
    annotation: Any = Scenario
    for part in loc:
        if isinstance(part, int):
            args = typing.get_args(annotation)
            annotation = args[0] if typing.get_origin(annotation) is list and args else None
            continue
        if typing.get_origin(annotation) is dict:  # a mapping's value, e.g. a background
            annotation = typing.get_args(annotation)[1]
            continue
        model = _unwrap_model(annotation)
        if model is None or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
    return _unwrap_model(annotation)


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        for arg in typing.get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return None
