import math
from collections import Counter

import numpy as np
import pytest

from valuegym.measures import LabelledPair, TextClusterer, calibrate, load_pairs


def test_the_shipped_set_has_a_few_hundred_pairs_in_every_category():
    pairs = load_pairs()
    counts = Counter(pair.category for pair in pairs)
    assert 200 <= len(pairs) <= 400
    assert set(counts) == {
        "paraphrase",
        "near_duplicate",
        "accept_decline",
        "yes_no",
        "agree_disagree",
        "negation",
        "different_topic",
    }
    assert min(counts.values()) >= 30
    same = {pair.category for pair in pairs if pair.same}
    assert same == {"paraphrase", "near_duplicate"}
    assert len({(pair.a, pair.b) for pair in pairs}) == len(pairs)


def test_text_clusterer_calibration_counts_merges_and_splits():
    pairs = [
        LabelledPair("Yes!", "yes", True, "near_duplicate"),
        LabelledPair("Happy to help.", "Glad to help.", True, "paraphrase"),
        LabelledPair("I'm happy to help.", "Happy to help!", True, "paraphrase"),
        LabelledPair("Yes.", "No.", False, "yes_no"),
    ]
    calibration = calibrate(TextClusterer(), pairs)
    rows = {row.category: row for row in calibration.categories}
    assert [row.category for row in calibration.categories] == [
        "near_duplicate",
        "paraphrase",
        "yes_no",
        "all",
    ]
    assert rows["paraphrase"].accuracy == 0.0
    assert rows["paraphrase"].false_split_rate == 1.0
    assert math.isnan(rows["paraphrase"].false_merge_rate)
    assert rows["yes_no"].false_merge_rate == 0.0
    assert calibration.overall.n_pairs == 4
    assert calibration.overall.accuracy == pytest.approx(0.5)
    assert calibration.overall.false_split_rate == pytest.approx(2 / 3)
    assert calibration.to_dict()["clusterer"] == {"clusterer": "text"}
    table = calibration.to_markdown()
    assert "| paraphrase | 2 | 0% | – | 100% |" in table
    assert "| all | 4 | 50% | 0% | 67% |" in table


def test_text_clusterer_on_the_shipped_set_never_merges_different_meanings():
    calibration = calibrate(TextClusterer())
    assert calibration.overall.false_merge_rate == 0.0
    rows = {row.category: row for row in calibration.categories}
    assert rows["paraphrase"].false_split_rate == 1.0
    assert 0.0 < rows["near_duplicate"].false_split_rate < 1.0


def test_a_clusterer_that_merges_everything_fails_every_different_pair():
    class OneCluster:
        def cluster(self, texts):
            return np.zeros(len(texts), dtype=np.int64)

        def describe(self):
            return {"clusterer": "one"}

    calibration = calibrate(OneCluster())
    for row in calibration.categories:
        if row.category in ("paraphrase", "near_duplicate"):
            assert row.accuracy == 1.0
        elif row.category != "all":
            assert row.false_merge_rate == 1.0


def test_load_pairs_reads_a_users_csv_and_names_the_bad_line(tmp_path):
    good = tmp_path / "pairs.csv"
    good.write_text('a,b,same,category\n"Hi, you",Hello,1,greeting\nYes,No,0,\n')
    assert load_pairs(good) == [
        LabelledPair("Hi, you", "Hello", True, "greeting"),
        LabelledPair("Yes", "No", False, "uncategorised"),
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,same,category\nYes,No,0,x\nYes,No,2,x\n")
    with pytest.raises(ValueError, match=r"bad.csv:3: same must be 1 or 0"):
        load_pairs(bad)
    missing = tmp_path / "missing.csv"
    missing.write_text("a,b,label\nYes,No,0\n")
    with pytest.raises(ValueError, match="missing column"):
        load_pairs(missing)
