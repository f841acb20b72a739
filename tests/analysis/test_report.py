import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from valuegym.analysis.report import build_report, write_report
from valuegym.records import EpisodeRecorder, RunFolder, write_json_atomic

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def synthetic_run(root: Path, *, entropy_slope: float = 1.5, complete: bool = True) -> RunFolder:
    """Two agents over three episodes; utterance entropy = 2 + slope * stress + noise."""
    folder = RunFolder(root)
    folder.create()
    rng = np.random.default_rng(0)
    for episode in range(3):
        recorder = EpisodeRecorder(folder, episode)
        for step in range(20):
            for index, (agent, kind) in enumerate((("a", "lm"), ("b", "greedy"))):
                stress = 0.1 + 0.8 * index + 0.005 * step + rng.uniform(-0.05, 0.05)
                mood = 0.5 - stress
                recorder.add(
                    "steps",
                    [
                        {
                            "step": step,
                            "agent": agent,
                            "agent_kind": kind,
                            "action": 0,
                            "reward": 1.0 + index,
                            "mood": mood,
                            "stress": stress,
                            "temperature": 1.0,
                            "most_wanted": "food",
                            "env_resource": 100.0 - step,
                            "env_gini": 0.2,
                            "env_cooperation_rate": 0.5,
                        }
                    ],
                )
                recorder.add(
                    "utterances",
                    [
                        {
                            "step": step,
                            "agent": agent,
                            "agent_kind": kind,
                            "mood": mood,
                            "stress": stress,
                            "text": "hi",
                            "mean_token_entropy": 2.0
                            + entropy_slope * stress
                            + rng.normal(0, 0.05),
                            "mean_surprisal": 3.0,
                            "semantic_entropy": float("nan"),
                            "unit": "nats",
                        }
                    ],
                )
        recorder.finish()
    if complete:
        write_json_atomic(
            {
                "scenario": "synthetic",
                "description": "A test run.",
                "env": "e",
                "agents": [{"id": "a", "kind": "lm"}],
                "seed": 0,
            },
            folder.summary_file,
        )
    return folder


def test_report_recovers_the_known_entropy_slope(tmp_path: Path):
    synthetic_run(tmp_path, entropy_slope=1.5)
    report = build_report(tmp_path)
    fit = report.statistics["utterance_slopes"]["mean_token_entropy~stress"]
    assert fit["slope"] == pytest.approx(1.5, abs=0.05)
    assert fit["low"] < 1.5 < fit["high"]
    assert fit["n"] == 120
    # A constant measure has no slope; an all-NaN one is left out.
    assert report.statistics["utterance_slopes"]["mean_surprisal~stress"]["slope"] == pytest.approx(
        0.0, abs=1e-9
    )
    assert "semantic_entropy~stress" not in report.statistics["utterance_slopes"]
    returns = report.statistics["returns_by_kind"]
    assert returns["lm"]["mean"] == pytest.approx(20.0)
    assert returns["greedy"]["mean"] == pytest.approx(40.0)
    assert report.statistics["gini_of_returns"]["mean"] == pytest.approx(1 / 6)
    assert report.statistics["cooperation"]["mean"] == pytest.approx(0.5)
    assert report.statistics["resource"]["final"] == pytest.approx(81.0)


def test_report_writes_markdown_statistics_and_real_pngs(tmp_path: Path):
    synthetic_run(tmp_path)
    markdown_path = write_report(tmp_path)
    markdown = markdown_path.read_text()
    assert markdown.startswith("# Run report: synthetic\n\nA test run.")
    assert "| mean token entropy (nats) | stress | 1.5" in markdown
    names = {
        "entropy_vs_stress.png",
        "entropy_vs_mood.png",
        "returns_by_kind.png",
        "value_trajectories.png",
        "resource.png",
    }
    assert {path.name for path in (tmp_path / "report").glob("*.png")} == names
    for name in names:
        assert f"]({name})" in markdown
        data = (tmp_path / "report" / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        pixels = imread(tmp_path / "report" / name)
        assert pixels.shape[0] >= 500
        assert pixels.shape[1] >= 800
        assert np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0).shape[0] > 20  # drawn
    statistics = json.loads((tmp_path / "report" / "statistics.json").read_text())
    assert statistics["episodes"] == 3
    assert statistics["complete"] is True


def test_partial_run_gets_a_partial_report(tmp_path: Path):
    synthetic_run(tmp_path, complete=False)
    report = build_report(tmp_path)
    assert "did not finish" in report.markdown
    assert report.statistics["complete"] is False


def test_report_of_a_folder_without_records_says_so(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no finished episode records"):
        build_report(tmp_path)


def test_report_is_reproducible(tmp_path: Path):
    synthetic_run(tmp_path)
    first = build_report(tmp_path, seed=4).statistics
    assert build_report(tmp_path, seed=4).statistics == first
