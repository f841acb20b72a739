import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from valuegym.analysis.sweep_report import build_sweep_report, is_sweep_folder, write_sweep_report
from valuegym.records import (
    EpisodeRecorder,
    RecordSchemaError,
    RunDesign,
    RunFolder,
    SweepFolder,
)
from valuegym.records.schema import EntryDesign
from valuegym.runs.sweeps import run_sweep
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
    against = report.statistics["by_parameter"]["agents.0.affect.stress_baseline"]["stress"]
    groups = against["levels"]
    assert [group["level"] for group in groups] == [0.0, 0.9]
    assert [(group["n_units"], group["unit"], group["method"]) for group in groups] == [
        (3, "seeds", "t"),
        (3, "seeds", "t"),
    ]
    plan = json.loads((sweep_dir / "plan.json").read_text())
    for group in groups:
        cells = [
            c["cell"]
            for c in plan["cells"]
            if c["overrides"]["agents.0.affect.stress_baseline"] == group["level"]
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
        assert group["value"] == pytest.approx(np.mean(per_cell), rel=1e-12)
        assert group["low"] <= group["value"] <= group["high"]
    assert groups[1]["value"] > groups[0]["value"]  # a higher stress baseline, more stress
    # With two levels each seed's slope is its difference over 0.9; they average to the
    # difference of the level means.
    slope = against["slope"]
    assert slope["value"] == pytest.approx((groups[1]["value"] - groups[0]["value"]) / 0.9)
    assert slope["low"] > 0
    trend = report.statistics["trends"]["stress~agents.0.affect.stress_baseline"]
    assert trend["value"] == slope["value"]
    assert trend["primary"] is False


def test_report_is_written_with_png_figures(sweep_dir):
    path = write_sweep_report(sweep_dir)
    text = path.read_text()
    assert "| stress at 0.9 |" in text
    assert "## Trends across levels" in text
    assert "| stress~agents.0.affect.stress_baseline |" in text
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
    from valuegym.runs.runner import run_scenario

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


DESIGN = RunDesign(entries=(EntryDesign("a", 0, "greedy", ("a",)),))


def sweep_estimand(name: str, smallest: float = 0.5, levels=None) -> dict:
    measure, parameter = name.split("~")
    return {
        "name": name,
        "measure": measure,
        "contrast": parameter,
        "rows": "sweep",
        "levels": levels,
        "at": {},
        "smallest_effect": smallest,
        "primary": True,
    }


def fake_sweep(root: Path, cells: np.ndarray, levels: list[float], primary: list[str]) -> Path:
    """A sweep folder whose cell ``(level, seed)`` has mean stress ``cells[level, seed]``."""
    parameter = "agents.0.affect.stress_baseline"
    plan = []
    for row, level in enumerate(levels):
        for seed in range(cells.shape[1]):
            cell_id = f"c{row}s{seed}"
            plan.append({"cell": cell_id, "overrides": {parameter: level}, "seed": seed})
            folder = RunFolder(root / "cells" / cell_id)
            folder.create()
            folder.write_design(DESIGN)
            recorder = EpisodeRecorder(folder, 0)
            for offset in (-0.1, 0.1):  # two steps around the cell's mean
                recorder.add(
                    "steps",
                    [
                        {
                            "step": 0,
                            "agent": "a",
                            "agent_kind": "greedy",
                            "reward": 1.0,
                            "mood": 0.0,
                            "stress": cells[row, seed] + offset,
                        }
                    ],
                )
            recorder.finish()
    sweep = SweepFolder(root)
    sweep.write_plan({"scenario": "fake", "cells": plan})
    sweep.write_design(
        RunDesign(DESIGN.entries, unit="seed", estimands=tuple(sweep_estimand(p) for p in primary))
    )
    return root


def test_sweep_slope_is_fitted_per_seed_and_the_primary_comes_first(tmp_path):
    # Seed 0: slope 1; seed 1: slope 2; seed 2: slope 3 (each seed shifted as a whole).
    levels = [0.0, 0.5, 1.0]
    cells = np.array(
        [
            [s + k * level for k, s in zip((1, 2, 3), (5.0, 0.0, 2.0), strict=True)]
            for level in levels
        ]
    )
    fake_sweep(tmp_path, cells, levels, primary=["stress~agents.0.affect.stress_baseline"])
    report = build_sweep_report(tmp_path)
    slope = report.statistics["by_parameter"]["agents.0.affect.stress_baseline"]["stress"]["slope"]
    half = 4.302653 * 1.0 / np.sqrt(3)  # t(0.975, 2) * sd of (1, 2, 3) / sqrt(3)
    assert (slope["value"], slope["low"], slope["high"]) == pytest.approx(
        (2.0, 2.0 - half, 2.0 + half), abs=1e-5
    )
    assert (slope["n_units"], slope["unit"]) == (3, "seeds")
    trends = list(report.statistics["trends"].items())
    assert trends[0][0] == "stress~agents.0.affect.stress_baseline"
    assert trends[0][1]["primary"] is True
    assert all(not t["primary"] for _, t in trends[1:])
    assert trends[0][1]["smallest_effect"] == 0.5
    assert trends[0][1]["reading"] == "pilot (3 seeds): no conclusion"
    assert report.estimands[0].name == "stress~agents.0.affect.stress_baseline"
    assert report.sections[0][0] == "Trends across levels"
    assert "| pilot |" in report.markdown


def test_a_declared_difference_between_two_swept_values_is_read_per_seed(tmp_path):
    levels = [0.0, 0.5, 1.0]
    cells = np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [9.0] * 5, [2.0, 3.5, 4.0, 5.0, 6.5]])
    fake_sweep(tmp_path, cells, levels, primary=[])
    name = "stress~agents.0.affect.stress_baseline"
    SweepFolder(tmp_path).write_design(
        RunDesign(DESIGN.entries, unit="seed", estimands=(sweep_estimand(name, levels=[0.0, 1.0]),))
    )
    report = build_sweep_report(tmp_path)
    difference = report.statistics["trends"][f"{name}: 0.0 -> 1.0"]
    per_seed = np.array([1.0, 1.5, 1.0, 1.0, 1.5])
    half = 2.776445 * per_seed.std(ddof=1) / np.sqrt(5)  # t(0.975, 4)
    assert (difference["value"], difference["low"], difference["high"]) == pytest.approx(
        (per_seed.mean(), per_seed.mean() - half, per_seed.mean() + half), abs=1e-5
    )
    assert difference["primary"] is True
    assert difference["pilot"] is False


def test_a_sweep_with_a_cell_from_before_the_record_schema_is_refused(tmp_path):
    fake_sweep(tmp_path, np.zeros((2, 2)), [0.0, 1.0], primary=[])
    RunFolder(tmp_path / "cells" / "c1s0").design_file.unlink()
    with pytest.raises(RecordSchemaError, match=r"c1s0: its records follow .*version 1"):
        build_sweep_report(tmp_path)
