"""Prompts, and the checks of the arguments every backend receives.

A prompt is either plain text (completion) or a sequence of chat messages
(``{"role": ..., "content": ...}``), to which the backend applies the model's chat template.
:meth:`valuegym.lm.base.LanguageModel.generate` and ``score`` run these checks once, so a
backend receives each prompt as text or as a list of plain ``{"role", "content"}`` dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Message = Mapping[str, str]
Prompt = str | Sequence[Message]
#: A prompt as backends receive it: text, or chat messages as plain dicts.
CheckedPrompt = str | list[dict[str, str]]

__all__ = [
    "CheckedPrompt",
    "Message",
    "Prompt",
    "check_continuations",
    "check_generate_arguments",
    "check_prompt",
    "check_prompts",
    "cut_at_stop",
]


def check_prompt(prompt: Prompt, where: str) -> CheckedPrompt:
    """A prompt, checked: the text itself, or its chat messages as plain dicts.

    Args:
        prompt: Plain text, or a sequence of ``{"role": ..., "content": ...}`` mappings.
        where: Where the prompt came from, for error messages (e.g. ``"prompts[2]"``).

    Returns:
        The text, or the messages as dicts holding only ``role`` and ``content``.

    Raises:
        ValueError: If the prompt is neither text nor well-formed messages.
    """
    if isinstance(prompt, str):
        return prompt
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


def check_prompts(prompts: Sequence[Prompt]) -> tuple[CheckedPrompt, ...]:
    """The prompts of a ``generate`` call, each checked by :func:`check_prompt`.

    Args:
        prompts: The prompts of the batch.

    Returns:
        The checked prompts, in order.

    Raises:
        ValueError: If ``prompts`` is a single string or a prompt is malformed.
    """
    if isinstance(prompts, str):
        raise ValueError("prompts: expected a list of prompts, not a single string")
    return tuple(check_prompt(prompt, f"prompts[{index}]") for index, prompt in enumerate(prompts))


def check_continuations(continuations: Sequence[str]) -> tuple[str, ...]:
    """The continuations of a ``score`` call, checked.

    Args:
        continuations: Candidate texts that follow a prompt.

    Returns:
        The continuations as a tuple.

    Raises:
        ValueError: If ``continuations`` is a single string or holds something other than text.
    """
    if isinstance(continuations, str):
        raise ValueError("continuations: expected a list of strings, not a single string")
    texts = tuple(continuations)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"continuations[{index}]: expected a string (got {text!r})")
    return texts


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
