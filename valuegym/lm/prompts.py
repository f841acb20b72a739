"""Checks of the arguments every backend receives: prompts, token budgets, stop strings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from valuegym.lm.base import Prompt

__all__ = ["chat_messages", "check_generate_arguments", "cut_at_stop"]


def chat_messages(prompt: Prompt, where: str) -> list[dict[str, str]] | None:
    """The chat messages of a prompt, or ``None`` for a plain-text prompt.

    Args:
        prompt: Plain text, or a sequence of ``{"role": ..., "content": ...}`` mappings.
        where: Where the prompt came from, for error messages (e.g. ``"prompts[2]"``).

    Returns:
        The messages as plain dicts, or ``None`` when ``prompt`` is a string.

    Raises:
        ValueError: If the prompt is neither text nor well-formed messages.
    """
    if isinstance(prompt, str):
        return None
    if not isinstance(prompt, Sequence) or len(prompt) == 0:
        raise ValueError(f"{where}: expected text or a non-empty list of chat messages")
    messages = []
    for index, message in enumerate(prompt):
        if not isinstance(message, Mapping):
            raise ValueError(f"{where}[{index}]: expected a mapping with 'role' and 'content'")
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not isinstance(content, str):
            raise ValueError(f"{where}[{index}]: 'role' and 'content' must both be strings")
        messages.append({"role": role, "content": content})
    return messages


def check_generate_arguments(max_new_tokens: int, stop: Sequence[str]) -> tuple[str, ...]:
    """Validate the token budget and stop strings of a ``generate`` call.

    Args:
        max_new_tokens: Upper bound on generated tokens per utterance.
        stop: Strings that end an utterance.

    Returns:
        The stop strings as a tuple.

    Raises:
        ValueError: If the budget is negative or a stop string is empty or not text.
    """
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise ValueError(f"max_new_tokens: expected an integer (got {max_new_tokens!r})")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens: must be >= 0 (got {max_new_tokens})")
    if isinstance(stop, str):
        raise ValueError("stop: expected a list of strings, not a single string")
    stops = tuple(stop)
    for index, text in enumerate(stops):
        if not isinstance(text, str) or not text:
            raise ValueError(f"stop[{index}]: expected a non-empty string (got {text!r})")
    return stops


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest stop string.

    Args:
        text: Generated text.
        stops: Stop strings.

    Returns:
        The text before the first stop string, and whether one was found.
    """
    positions = [position for position in (text.find(s) for s in stops) if position >= 0]
    if not positions:
        return text, False
    return text[: min(positions)], True
