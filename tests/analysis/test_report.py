import json
import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from valuegym.analysis.report import build_report, write_report
from valuegym.records import (
    EpisodeRecorder,
    RecordSchemaError,
    RunDesign,
    RunFolder,
    write_json_atomic,
)
from valuegym.records.schema import EntryDesign
from valuegym.runs.runner import run_scenario
from valuegym.scenarios.validation import validate_scenario

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def synthetic_run(
    root: Path,
    *,
    entropy_slope: float = 1.5,
    persona: tuple[float, float] = (0.0, 0.0),
    episodes: int = 3,
    episode_sd: float = 0.0,
    complete: bool = True,
    estimands: tuple[dict, ...] = (),
) -> RunFolder:
    """Two agents; utterance entropy = 2 + persona + episode + slope * stress + noise.

    Agent b is far more stressed than agent a, so a persona effect alone would look like a
    stress effect to a slope pooled over agents.
    """
    folder = RunFolder(root)
    folder.create()
    entries = (EntryDesign("a", 0, "lm", ("a",)), EntryDesign("b", 1, "greedy", ("b",)))
    folder.write_design(
        RunDesign(
            entries=entries,
            factors={"stress": {"low": ("a",), "high": ("b",)}},
            estimands=estimands,
        )
    )
    rng = np.random.default_rng(0)
    for episode in range(episodes):
        recorder = EpisodeRecorder(folder, episode)
        shift = rng.normal(0.0, episode_sd)
        for step in range(20):
            for index, (agent, kind) in enumerate((("a", "lm"), ("b", "greedy"))):
                stress = 0.1 + 0.8 * index + 0.01 * step + rng.uniform(-0.05, 0.05)
                mood = 0.5 - stress + rng.uniform(-0.1, 0.1)
                state = {
                    "agent": agent,
                    "entry": agent,
                    "entry_index": index,
                    "agent_kind": kind,
                    "mood": mood,
                    "stress": stress,
                }
                recorder.add(
                    "steps",
                    [
                        {
                            "step": step,
                            **state,
                            "action": 0,
                            "reward": 1.0 + index,
                            "temperature": 1.0,
                            "most_wanted": "food",
                            "env_resource": 100.0 - step,
                            "env_gini": 0.2,
                            "env_cooperation_rate": 0.5,
                        }
                    ],
                )
                entropy = (
                    2.0 + persona[index] + shift + entropy_slope * stress + rng.normal(0, 0.05)
                )
                recorder.add(
                    "utterances",
                    [
                        {
                            "step": step,
                            **state,
                            "sampling_temperature": 0.7 * math.exp(0.5 * stress - 0.2 * mood),
                            "length": float(rng.integers(5, 20)),
                            "text": "hi",
                            "mean_token_entropy": entropy,
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


def test_report_recovers_the_known_entropy_slope_over_episodes(tmp_path: Path):
    synthetic_run(tmp_path, entropy_slope=1.5)
    report = build_report(tmp_path)
    contrast = report.statistics["contrasts"]["mean_token_entropy~stress"]
    assert contrast["value"] == pytest.approx(1.5, abs=0.3)
    assert contrast["low"] < 1.5 < contrast["high"]
    assert (contrast["n_units"], contrast["unit"], contrast["method"]) == (3, "episodes", "t")
    assert contrast["primary"] is False
    # A constant measure has a slope of 0 in every episode: no spread, an exact 0.
    flat = report.statistics["contrasts"]["mean_surprisal~stress"]
    assert (flat["value"], flat["low"], flat["high"]) == pytest.approx((0.0, 0.0, 0.0), abs=1e-9)
    assert "semantic_entropy~stress" not in report.statistics["contrasts"]
    # Agents of an episode are one unit: every episode has the same returns, so no spread.
    returns = report.statistics["returns_by_kind"]
    assert returns["a (lm)"]["value"] == pytest.approx(20.0)
    assert returns["b (greedy)"]["value"] == pytest.approx(40.0)
    assert returns["a (lm)"]["n_units"] == 3
    assert report.statistics["gini_of_returns"]["value"] == pytest.approx(1 / 6)
    assert report.statistics["cooperation"]["value"] == pytest.approx(0.5)
    assert report.statistics["resource"]["final"] == pytest.approx(81.0)


def test_a_persona_cannot_pose_as_an_effect_of_stress(tmp_path: Path):
    # No stress effect; the stressed agent's persona speaks with 1.5 nats more entropy.
    synthetic_run(tmp_path, entropy_slope=0.0, persona=(0.0, 1.5))
    contrast = build_report(tmp_path).statistics["contrasts"]["mean_token_entropy~stress"]
    assert contrast["low"] < 0.0 < contrast["high"]
    assert abs(contrast["value"]) < 0.3  # a slope pooled over the agents would be about 1.8


ESTIMAND = {
    "name": "stressed_agent",
    "measure": "mean_token_entropy",
    "contrast": "stress",
    "rows": "run",
    "levels": None,
    "at": {},
    "smallest_effect": 0.2,
    "primary": True,
}


def test_declared_estimands_come_first_with_power_and_their_own_families(tmp_path: Path):
    returns = {**ESTIMAND, "name": "returns", "measure": "return", "primary": False}
    synthetic_run(tmp_path, episodes=6, episode_sd=0.3, estimands=(ESTIMAND, returns))
    report = build_report(tmp_path)
    estimands = report.statistics["estimands"]
    assert list(estimands) == ["stressed_agent", "returns"]
    primary = estimands["stressed_agent"]
    # b minus a within each episode: 1.5 nats per unit of stress x 0.8 more stress (the
    # episode's shift cancels within the episode, so the interval is narrow)
    assert primary["value"] == pytest.approx(1.2, abs=0.05)
    assert primary["low"] < 1.2 < primary["high"]
    assert (primary["n_units"], primary["unit"], primary["primary"]) == (6, "episodes", True)
    assert primary["holm_p"] == pytest.approx(primary["p_value"])  # a family of one
    assert primary["mde"] < 0.2
    assert primary["underpowered"] is False
    assert primary["reading"] == "differs from 0 (family-wise 5%)"
    assert estimands["returns"]["value"] == pytest.approx(20.0)  # 40 - 20 per episode
    headings = [heading for heading, _ in report.sections]
    assert headings[0] == "Design and estimands"
    assert headings.index("Designed factors, every measure") < headings.index(
        "Descriptive: utterance measures against the value state"
    )
    assert "| **stressed_agent** (primary) |" in report.markdown
    # The observational slopes are their own family and are labelled descriptive.
    contrasts = report.statistics["contrasts"]
    assert not any(c["primary"] for c in contrasts.values())
    assert "These slopes are observational, not designed contrasts" in report.markdown


def test_a_pilot_prints_no_interval_and_says_how_to_plan(tmp_path: Path):
    synthetic_run(tmp_path, episodes=3, estimands=(ESTIMAND,))
    report = build_report(tmp_path)
    primary = report.statistics["estimands"]["stressed_agent"]
    assert primary["pilot"] is True
    assert primary["reading"] == "pilot (3 episodes): no conclusion"
    lines = report.markdown.splitlines()
    row = next(line for line in lines if line.startswith("| **stressed_agent**"))
    cells = [cell.strip() for cell in row.split("|")]
    assert cells[3:6] == ["pilot", "–", "–"]  # no interval, no p, no Holm p
    assert report.markdown.count("**Pilot:**") == 1
    assert "valuegym plan" in report.markdown


def test_without_a_design_the_report_says_nothing_is_designed(tmp_path: Path):
    synthetic_run(tmp_path)
    report = build_report(tmp_path)
    design = dict(report.sections)["Design"]
    assert "declares no design" in design
    assert "estimands" not in report.statistics


def test_mixed_model_is_fitted_with_enough_episodes_and_declined_without(tmp_path: Path):
    synthetic_run(tmp_path / "many", episodes=8, episode_sd=0.3, persona=(0.0, 0.4))
    report = build_report(tmp_path / "many")
    fit = report.statistics["mixed_models"]["mean_token_entropy"]
    assert fit["formula"] == (
        "mean_token_entropy ~ stress_within + mood_within + (1 | episode) + (1 | agent)"
    )
    # The temperature follows stress and mood exactly, so log(T) is left out and said.
    assert fit["temperature_follows_state"] is True
    assert "log(T) left out" in report.markdown
    assert fit["message"] == ""
    stress = fit["estimates"]["stress_within"]
    assert stress["low"] < 1.5 < stress["high"]
    assert stress["value"] == pytest.approx(1.5, abs=0.3)
    assert (stress["n_units"], stress["unit"]) == (8, "episodes")
    assert f"`{fit['formula']}`" in report.markdown

    synthetic_run(tmp_path / "few", episodes=3)
    few = build_report(tmp_path / "few")
    declined = few.statistics["mixed_models"]["mean_token_entropy"]
    assert declined["estimates"] == {}
    assert declined["message"].startswith("not fitted: 3 episodes")
    assert declined["message"] in few.markdown


def test_report_writes_markdown_statistics_and_real_pngs(tmp_path: Path):
    synthetic_run(tmp_path)
    markdown_path = write_report(tmp_path)
    markdown = markdown_path.read_text()
    assert markdown.startswith("# Run report: synthetic\n\nA test run.")
    assert "| mean_token_entropy~stress | 1." in markdown
    assert "| pilot | – | – |" in markdown
    assert markdown.rstrip().count("t over 3 episodes |") >= 4
    assert markdown.count("**Pilot:**") == 1
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
    # Compared as the JSON written to disk (NaN, where a number is missing, equals itself there).
    first = json.dumps(build_report(tmp_path, seed=4).statistics, sort_keys=True)
    assert json.dumps(build_report(tmp_path, seed=4).statistics, sort_keys=True) == first


def test_mutual_information_is_averaged_per_episode_before_its_interval(tmp_path: Path):
    folder = synthetic_run(tmp_path)
    per_episode = [0.2, 0.4, 0.3]
    for episode, value in enumerate(per_episode):
        recorder = EpisodeRecorder(folder, episode)
        for group, offset in enumerate((-0.05, 0.05)):  # two LM groups in an episode
            recorder.add(
                "information",
                [
                    {
                        "agent": f"lm{group}",
                        "mutual_information": value + offset,
                        "standard_error": 0.1,
                    }
                ],
            )
        recorder.finish()
    estimate = build_report(tmp_path).statistics["mutual_information"]
    half = 4.302653 * 0.1 / np.sqrt(3)  # t(0.975, 2) * sd of the episode means / sqrt(3)
    assert (estimate["value"], estimate["low"], estimate["high"]) == pytest.approx(
        (0.3, 0.3 - half, 0.3 + half), abs=1e-5
    )
    assert (estimate["n_units"], estimate["unit"]) == (3, "episodes")


def test_report_shows_the_summary_profile_most_seconds_first(tmp_path: Path):
    folder = synthetic_run(tmp_path)
    summary = json.loads(folder.summary_file.read_text())
    phase = dict.fromkeys(("calls", "generated_tokens", "prompt_tokens_read"), 0)
    seconds = dict.fromkeys(("model_seconds", "measure_seconds", "env_seconds"), 0.0)
    summary["seconds"] = 9.0
    summary["timing"] = {
        "env": {**phase, **seconds, "env_seconds": 0.5},
        "speech": {**phase, **seconds, "calls": 4, "generated_tokens": 96, "model_seconds": 2.0},
        "total": {**phase, **seconds, "calls": 4, "generated_tokens": 96, "model_seconds": 2.5},
    }
    write_json_atomic(summary, folder.summary_file)
    report = build_report(tmp_path)
    body = next(body for heading, body in report.sections if heading == "Timing")
    lines = body.splitlines()
    assert lines[2] == "| speech | 4 | 96 | 0 | 2.00 | 0.00 | 0.00 |"
    assert lines[3].startswith("| env |")
    assert lines[4].startswith("| total |")
    assert "Wall time of the run: 9.00 s" in body
    assert report.statistics["timing"] == summary["timing"]


def test_returns_are_grouped_by_scenario_entry_so_one_factor_is_compared(tmp_path):
    # Two entries without ids that differ only in stress: the records name their agents
    # softmax0_0.. and softmax1_0.., and the report compares the two entries, not one kind.
    scenario = validate_scenario(
        {
            "name": "two-entries",
            "env": {"id": "valuegym/Commons-v0"},
            "agents": [
                {"kind": "softmax", "count": 2},
                {"kind": "softmax", "count": 2, "affect": {"stress_baseline": 0.8}},
            ],
            "episodes": 2,
            "max_steps": 5,
        }
    )
    run_scenario(scenario, tmp_path, progress=False)
    returns = build_report(tmp_path).statistics["returns_by_kind"]
    assert list(returns) == ["softmax0 (softmax)", "softmax1 (softmax)"]
    steps = RunFolder(tmp_path).read("steps")
    for entry, index in (("softmax0", 0), ("softmax1", 1)):
        rewards = [
            row["reward"]
            for row in steps.to_pylist()
            if row["entry"] == entry and row["entry_index"] == index
        ]
        assert len(rewards) == 2 * 2 * 5  # 2 agents x 2 episodes x 5 steps
        assert returns[f"{entry} (softmax)"]["n_units"] == 2


def test_a_run_folder_from_before_the_record_schema_is_refused(tmp_path: Path):
    folder = synthetic_run(tmp_path)
    folder.design_file.unlink()
    with pytest.raises(RecordSchemaError, match="record schema version 1"):
        build_report(tmp_path)
