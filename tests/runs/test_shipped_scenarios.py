"""Every shipped scenario validates, and runs at a tiny size with the real default model."""

import os
from pathlib import Path

import pytest

from valuegym.analysis.report import write_report
from valuegym.runs.runner import run_scenario
from valuegym.scenarios.catalog import shipped_scenarios
from valuegym.scenarios.problems import ScenarioError
from valuegym.scenarios.validation import load_scenario, scenario_with_overrides

SCENARIOS = shipped_scenarios()
EXPECTED = {
    "quickstart.yaml",
    "orchard_variety.yaml",
    "inbox_hammered.yaml",
    "commons_calm_vs_stressed.yaml",
    "commons_evaluation.yaml",
    "conversation_lm.yaml",
    "conversation_hammered.yaml",
}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def tiny(path: Path):
    scenario = load_scenario(path)
    overrides = {"episodes": 1, "max_steps": 3, "sweep": None}
    if scenario.measure.semantic_entropy is not None:
        overrides["measure.semantic_entropy.samples"] = 2
    # Mutual information costs M x M x K scoring calls; test_runner.py covers its wiring.
    overrides["measure.mutual_information"] = None
    if scenario.measure.intervention is not None:
        overrides["measure.intervention.at_step"] = 0
    for index, agent in enumerate(scenario.agents):
        if agent.kind == "lm":
            overrides[f"agents.{index}.lm.max_new_tokens"] = 2
    counterfactual = scenario.measure.counterfactual
    if counterfactual is not None and counterfactual.steer_stress:
        # one sample at 0 and the levels the estimands name (the full grid takes minutes)
        named = {0.0, max(counterfactual.steer_stress)}
        for estimand in scenario.design.estimands if scenario.design else ():
            if estimand.contrast == "steer_stress" and estimand.levels:
                named.update(float(level) for level in estimand.levels)
        overrides["measure.counterfactual.steer_stress"] = sorted(named)
        overrides["measure.counterfactual.samples"] = 1
    try:
        return scenario_with_overrides(scenario, overrides)
    except ScenarioError:  # one agent per factor level: only episodes replicate it
        return scenario_with_overrides(scenario, {**overrides, "episodes": 2})


def test_the_issue_s_scenarios_are_shipped():
    assert {path.name for path in SCENARIOS} >= EXPECTED


@pytest.mark.parametrize("path", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_shipped_scenario_validates_with_its_references(path: Path):
    scenario = load_scenario(path)
    assert scenario.description, "a shipped scenario says what it studies"
    assert path.read_text().startswith("#"), "a shipped scenario opens with a comment"
    if scenario.sweep is not None:
        for grid_path, values in scenario.sweep.grid.items():
            for value in values:
                assert scenario_with_overrides(scenario, {grid_path: value}).sweep is None


@pytest.mark.slow
@pytest.mark.parametrize("path", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_shipped_scenario_runs_at_a_tiny_size(path: Path, tmp_path: Path):
    scenario = tiny(path)
    result = run_scenario(scenario, tmp_path / "a", progress=False)
    if path.name in ("quickstart.yaml", "conversation_hammered.yaml"):
        # The README demo and the closed loop (appraisal, re-simulated intervention), run
        # twice: the same seed gives the same records, byte for byte.
        run_scenario(scenario, tmp_path / "b", progress=False)
        records = sorted((tmp_path / "a" / "records").iterdir())
        assert [p.name for p in records] == sorted(os.listdir(tmp_path / "b" / "records"))
        for record in records:
            assert record.read_bytes() == (tmp_path / "b" / "records" / record.name).read_bytes()
    steps = result.folder.read("steps")
    assert steps.num_rows == 3 * scenario.n_agents * scenario.episodes
    assert write_report(result.folder.root, seed=scenario.seed).is_file()
    assert list(result.folder.report_dir.glob("*.png")), "the report has at least one figure"
    if scenario.uses_language_model:
        utterances = result.folder.read("utterances")
        assert utterances.num_rows >= 1
        assert all(0 < n <= 2 for n in utterances.column("length").to_pylist())
        assert (tmp_path / "a" / "report" / "entropy_vs_stress.png").is_file()


def test_semantic_entropy_uses_the_papers_k_by_default_and_in_shipped_scenarios():
    from valuegym.scenarios.schema import SemanticEntropySpec

    assert SemanticEntropySpec().samples == 10
    measured = [load_scenario(path).measure.semantic_entropy for path in SCENARIOS]
    assert [spec.samples for spec in measured if spec is not None] == [10, 10]
