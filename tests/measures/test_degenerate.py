"""The degenerate-reply rule, by hand."""

from __future__ import annotations

import pytest

from valuegym.measures.degenerate import is_degenerate, repeated_ngram_share


@pytest.mark.parametrize(
    ("text", "share"),
    [
        ("", 0.0),
        ("hello there", 0.0),  # no 3-gram
        ("I will send the report by noon today.", 0.0),
        ("the the the the", 0.5),  # (the the the) twice: one of two repeats
        ("a b c a b c a b c", 4 / 7),  # 7 3-grams, 3 distinct
        ("Yes yes YES yes yes", 2 / 3),  # lower-cased: 3 3-grams, 1 distinct
        ("ok ok ok ok ok ok ok ok ok ok ok", 8 / 9),
    ],
)
def test_repeated_share_by_hand(text: str, share: float) -> None:
    assert repeated_ngram_share(text) == pytest.approx(share)


@pytest.mark.parametrize(
    ("text", "degenerate"),
    [
        ("", True),
        ("   \n\t ", True),
        ("No.", False),
        ("the the the the", True),  # exactly one half
        ("a b c d a b c", False),  # 5 3-grams, 1 repeated: 0.2
        ("I am fine, thanks. I am fine, thanks. I am fine, thanks.", True),
        ("Sure, I can help with that report this afternoon.", False),
    ],
)
def test_empty_or_half_repeated_is_degenerate(text: str, degenerate: bool) -> None:
    assert is_degenerate(text) is degenerate


def test_the_share_and_the_n_gram_length_are_parameters() -> None:
    assert is_degenerate("a b c d a b c", share=0.19)
    assert not is_degenerate("a b c d a b c", share=0.21)
    assert repeated_ngram_share("a b a b", n=1) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="n: must be >= 1"):
        repeated_ngram_share("a", n=0)
