"""Degenerate replies: empty, or mostly a repetition of themselves.

A steered model can lose fluency in two visible ways: it says nothing, or it loops. The rule
used by the dose-response guard (:mod:`valuegym.analysis.dose`):

* a reply with no word (empty or only whitespace) is degenerate;
* otherwise its words (lower-cased, split on whitespace) are cut into overlapping n-grams
  (``n = 3``); the *repeated share* is the fraction of those n-grams that already occurred
  earlier in the reply. A reply whose repeated share is at least one half is degenerate.

"the the the the" has the 3-grams (the the the) twice: repeated share 1/2, degenerate. A reply of
fewer than ``n + 1`` words has at most one n-gram and is never degenerate by repetition.

Example:
    >>> round(repeated_ngram_share("a b c a b c a b c"), 3)
    0.571
    >>> is_degenerate("a b c a b c a b c"), is_degenerate("I will send it by noon.")
    (True, False)
"""

from __future__ import annotations

from typing import Final

__all__ = ["DEGENERATE_SHARE", "NGRAM", "is_degenerate", "repeated_ngram_share"]

#: Words per n-gram of the repetition rule.
NGRAM: Final = 3
#: A reply whose repeated n-gram share reaches this is degenerate.
DEGENERATE_SHARE: Final = 0.5


def repeated_ngram_share(text: str, n: int = NGRAM) -> float:
    """The fraction of a text's word n-grams that repeat an earlier n-gram of it.

    Args:
        text: The reply.
        n: Words per n-gram (>= 1).

    Returns:
        A share in [0, 1]; 0 when the text has no n-gram.
    """
    if n < 1:
        raise ValueError(f"n: must be >= 1 (got {n})")
    words = text.lower().split()
    grams = [tuple(words[index : index + n]) for index in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def is_degenerate(text: str, *, n: int = NGRAM, share: float = DEGENERATE_SHARE) -> bool:
    """Whether a reply is empty or at least ``share`` repeated word n-grams.

    Args:
        text: The reply.
        n: Words per n-gram.
        share: The repeated share from which a reply is degenerate.

    Returns:
        ``True`` for an empty or looping reply.
    """
    return not text.split() or repeated_ngram_share(text, n) >= share
