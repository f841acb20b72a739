import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from valuegym.analysis.sweep_report import build_sweep_report, is_sweep_folder, write_sweep_report
from valuegym.scenarios.sweeps import run_sweep
from valuegym.scenarios.validation import validate_scenario

SWEEP = {
    "name": "report-sweep",
    "seed": 0,
    "env": {"id": "valuegym/Orchard-v0", "args": {"episode_length": 30}},
    "agents": [{"id": "eater", "kind": "softmax"}],
    "episodes": 2,
    "max_steps": 30,
    "sweep": {"grid": {"agents.0.affect.stress_baseline": [0.0, 0.9]}, "seeds": 3},
}


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    outcome = run_sweep(validate_scenario(SWEEP), folder, workers=2, progress=False)
    assert outcome.complete
    return folder


def test_groups_hold_each_values_cells_and_their_mean(sweep_dir):
    report = build_sweep_report(sweep_dir, seed=0)
    groups = report.statistics["by_parameter"]["agents.0.affect.stress_baseline"]["stress"]
    assert [group["value"] for group in groups] == [0.0, 0.9]
    assert [group["n"] for group in groups] == [3, 3]
    plan = json.loads((sweep_dir / "plan.json").read_text())
    for group in groups:
        cells = [
            c["cell"]
            for c in plan["cells"]
            if c["overrides"]["agents.0.affect.stress_baseline"] == group["value"]
        ]
        per_cell = [
            np.concatenate(
                [
                    pq.read_table(path).column("stress").to_numpy()
                    for path in sorted((sweep_dir / "cells" / cell / "records").glob("steps-*"))
                ]
            ).mean()
            for cell in cells
        ]
        assert group["mean"] == pytest.approx(np.mean(per_cell), rel=1e-12)
        assert group["low"] <= group["mean"] <= group["high"]
    assert groups[1]["mean"] > groups[0]["mean"]  # a higher stress baseline, more stress


def test_report_is_written_with_png_figures(sweep_dir):
    path = write_sweep_report(sweep_dir)
    text = path.read_text()
    assert "| stress | 0.9 |" in text
    figures = sorted((sweep_dir / "report").glob("*.png"))
    assert any("stress_vs_agents_0_affect_stress_baseline" in f.name for f in figures)
    for figure in figures:
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert figure.stat().st_size > 5_000
    assert json.loads((sweep_dir / "report" / "statistics.json").read_text())["cells"]


def test_not_a_sweep_folder(tmp_path):
    assert not is_sweep_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"plan\.json"):
        build_sweep_report(tmp_path)


def test_cell_measures_read_the_commons_metrics(tmp_path):
    from valuegym.analysis.sweep_report import cell_measures
    from valuegym.scenarios.runner import run_scenario

    scenario = validate_scenario(
        {
            "name": "commons-cell",
            "env": {"id": "valuegym/Commons-v0", "args": {"n_agents": 3}},
            "agents": [{"id": "villager", "kind": "greedy", "count": 3}],
            "max_steps": 12,
        }
    )
    run_scenario(scenario, tmp_path / "run", progress=False)
    measures = cell_measures(tmp_path / "run")
    assert {"return", "stress", "mood", "cooperation", "gini", "resource"} <= set(measures)
    assert 0.0 <= measures["cooperation"] <= 1.0
    assert 0.0 <= measures["gini"] <= 1.0
