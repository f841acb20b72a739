"""The listener appraisal: repetition in meaning within a window, valence, surprise (known maths),
and the default clusterer's repeats at its calibrated rates on the shipped labelled pairs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from valuegym.agents.appraisal import (
    SURPRISE_BOUND,
    Appraiser,
    ListenerSettings,
    surprisal_prompt,
    word_count,
)
from valuegym.lm.base import Generation, LanguageModel, Prompt
from valuegym.measures.clustering import TextClusterer


class SurprisalModel(LanguageModel):
    """Scores a continuation ``-rate * characters`` nats, whatever the prompt; records prompts."""

    name = "test:surprisal"

    def __init__(self, per_character: float = 0.5) -> None:
        self.per_character = per_character
        self.prompts: list[Prompt] = []
        self.calls = 0

    def _generate(
        self, prompts, *, max_new_tokens, temperatures, seed, stop, truncation
    ) -> list[Generation]:
        raise AssertionError("appraisal never generates")

    def _score(self, prompt: Prompt, continuations: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.prompts.append(prompt)
        return np.array([-self.per_character * len(c.strip()) for c in continuations])


class FixedJudge:
    """Valence by exact text, 0 for anything else."""

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table
        self.calls = 0

    def valence(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return np.array([self.table.get(text, 0.0) for text in texts])

    def describe(self) -> dict[str, object]:
        return {"judge": "fixed"}


def _ask(appraiser: Appraiser, text: str, speaker: int = 1, addressee: int = 0):
    return appraiser.appraise(speaker, addressee, True, text, [], "header:")


def test_repeats_count_same_meaning_asks_in_the_window() -> None:
    appraiser = Appraiser([ListenerSettings(), None, None], window=2)
    repeats = [_ask(appraiser, text).repeats[0] for text in ("A b", "a B!", "a b", "a b")]
    # Normalised text: all four are one meaning; the window keeps the last two asks.
    assert repeats == [0, 1, 2, 2]
    appraiser.reset()
    repeats = [_ask(appraiser, text).repeats[0] for text in ("a", "b", "a")]
    assert repeats == [0, 0, 1]
    assert appraiser.last_ask(0) == "a"


def test_only_the_addressee_of_an_ask_counts_repeats_and_the_speaker_never_appraises() -> None:
    appraiser = Appraiser([ListenerSettings(), ListenerSettings(overheard=1.0)] * 1, window=4)
    first = appraiser.appraise(0, 1, True, "help me", [], "h:")
    second = appraiser.appraise(0, 1, False, "help me", [], "h:")  # not an ask: no repeat
    third = appraiser.appraise(0, 1, True, "help me", [], "h:")
    assert [a.repeats.tolist() for a in (first, second, third)] == [[0, 0], [0, 0], [0, 1]]
    assert [row.listener for row in third.listeners] == [1]


def test_valence_is_weighted_for_the_addressee_and_overheard_listeners() -> None:
    judge = FixedJudge({"you idiot": -0.8})
    settings = [
        ListenerSettings(valence_judge=judge, valence_weight=1.5, overheard=0.5),
        None,
        ListenerSettings(valence_judge=judge, valence_weight=1.0, overheard=0.25),
        ListenerSettings(valence_judge=judge, valence_weight=1.0),  # overheard 0: deaf to it
    ]
    appraisal = Appraiser(settings, window=8).appraise(1, 0, False, "you idiot", [], "h:")
    # Addressee: clip(1 x 1.5 x -0.8) = -1; listener 2 overhears: 0.25 x 1 x -0.8.
    np.testing.assert_allclose(appraisal.valence, [-1.0, 0.0, -0.2, 0.0])
    assert [row.listener for row in appraisal.listeners] == [0, 2]
    assert judge.calls == 1  # one judgement per utterance, shared by listeners


def test_surprise_is_surprisal_per_word_against_a_moving_expectation() -> None:
    model = SurprisalModel(per_character=0.5)
    listener = ListenerSettings(model=model, per_nat=0.5, rate=0.25, context_lines=1)
    appraiser = Appraiser([listener, None], window=8)
    texts = ["ab cd", "abcdefgh ij", "a b c d"]
    chat = ["line zero", "line one"]  # the listener's model reads only the last line
    rows = [appraiser.appraise(1, 0, False, t, chat, "agent_1 -> agent_0 (share):") for t in texts]
    per_word = [0.5 * len(t) / word_count(t) for t in texts]  # 1.25, 2.75, 0.875
    assert [r.listeners[0].surprisal for r in rows] == pytest.approx(per_word)
    # The first message sets the expectation (no surprise); then per_nat x (s - expected).
    assert rows[0].surprise[0] == 0.0
    assert math.isnan(rows[0].listeners[0].expected)
    assert rows[1].surprise[0] == pytest.approx(0.5 * (2.75 - 1.25))
    expected = 1.25 + 0.25 * (2.75 - 1.25)
    assert rows[2].listeners[0].expected == pytest.approx(expected)
    assert rows[2].surprise[0] == pytest.approx(0.5 * (0.875 - expected))
    assert model.prompts[0] == surprisal_prompt(["line one"], "agent_1 -> agent_0 (share):")
    assert model.prompts[0] == "line one\nagent_1 -> agent_0 (share):"


def test_surprise_is_bounded_and_off_without_a_model_or_rate() -> None:
    model = SurprisalModel(per_character=100.0)
    appraiser = Appraiser(
        [ListenerSettings(model=model, per_nat=10.0), ListenerSettings(per_nat=1.0)], window=8
    )
    appraiser.appraise(1, 0, False, "a", [], "h:")
    big = appraiser.appraise(1, 0, False, "abcdefghijklmnop", [], "h:")
    assert big.surprise[0] == SURPRISE_BOUND
    quiet = appraiser.appraise(0, 1, False, "abcdefghijklmnop", [], "h:")
    assert quiet.surprise[1] == 0.0
    assert math.isnan(quiet.listeners[0].surprisal)


def test_listeners_sharing_a_model_are_scored_once_per_utterance() -> None:
    model = SurprisalModel()
    shared = ListenerSettings(model=model, per_nat=1.0, overheard=1.0)
    appraiser = Appraiser([None, shared, shared, shared], window=8)
    appraiser.appraise(0, 1, True, "hello there", [], "h:")
    assert model.calls == 1


def test_empty_utterances_are_heard_by_nobody() -> None:
    appraiser = Appraiser([ListenerSettings(), ListenerSettings()], window=8)
    appraisal = appraiser.appraise(0, 1, True, "   ", [], "h:")
    assert appraisal.listeners == ()
    assert not appraisal.repeats.any()


def test_the_default_clusterer_counts_repeats_at_its_calibrated_rates() -> None:
    """Paraphrases and near-duplicates repeat at the rate calibrate() measures; other topics
    do not; the stance-flip merge rate is what the docs state (docs/appraisal.md)."""
    pytest.importorskip("sentence_transformers")
    from valuegym.measures.calibration import calibrate, load_pairs
    from valuegym.measures.clustering import get_clusterer

    clusterer = get_clusterer("embedding")
    pairs = load_pairs()
    calibration = {c.category: c for c in calibrate(clusterer, pairs).categories}
    appraiser = Appraiser([ListenerSettings(clusterer=clusterer), None], window=8)
    rate: dict[str, list[bool]] = {}
    for pair in pairs:
        appraiser.reset()
        _ask(appraiser, pair.a)
        rate.setdefault(pair.category, []).append(bool(_ask(appraiser, pair.b).repeats[0]))
    for category in ("paraphrase", "near_duplicate"):
        assert np.mean(rate[category]) == pytest.approx(1 - calibration[category].false_split_rate)
    assert np.mean(rate["paraphrase"]) >= 0.75
    assert np.mean(rate["near_duplicate"]) >= 0.9
    assert np.mean(rate["different_topic"]) == calibration["different_topic"].false_merge_rate == 0
    # Stance flips (yes/no, accept/decline) merge often: documented, not hidden.
    assert np.mean(rate["yes_no"]) == pytest.approx(calibration["yes_no"].false_merge_rate)


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window"):
        Appraiser([ListenerSettings()], window=0)


def test_text_clusterer_is_the_fallback() -> None:
    assert isinstance(ListenerSettings().clusterer, TextClusterer)
