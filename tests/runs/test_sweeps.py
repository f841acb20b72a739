import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from valuegym.records import RunFolder
from valuegym.runs.sweeps import plan_sweep, run_sweep, start_local_ray
from valuegym.scenarios.validation import ScenarioError, validate_scenario

SWEEP = {
    "name": "orchard-sweep",
    "seed": 0,
    "env": {"id": "valuegym/Orchard-v0", "args": {"episode_length": 25}},
    "agents": [{"id": "eater", "kind": "softmax", "affect": {"stress_baseline": 0.0}}],
    "episodes": 2,
    "max_steps": 25,
    "sweep": {"grid": {"agents.0.affect.stress_baseline": [0.0, 0.8]}, "seeds": 2},
}


def record_bytes(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*.parquet"))
    }


def finished_events(folder: Path) -> list[str]:
    lines = (folder / "events.jsonl").read_text().splitlines()
    return [json.loads(line)["cell"] for line in lines if json.loads(line)["status"] == "finished"]


def test_plan_crosses_grid_with_seeds_and_validates_each_cell():
    plan = plan_sweep(validate_scenario(SWEEP))
    assert [cell.cell_id for cell, _ in plan] == [
        "point0000-seed0",
        "point0000-seed1",
        "point0001-seed0",
        "point0001-seed1",
    ]
    cell, scenario = plan[3]
    assert cell.overrides == {"agents.0.affect.stress_baseline": 0.8}
    assert scenario.seed == 1
    assert scenario.agents[0].affect["stress_baseline"] == 0.8
    assert scenario.sweep is None


def test_bad_override_path_is_refused_before_any_cell_runs(tmp_path):
    bad = {**SWEEP, "sweep": {"grid": {"agents.3.affect.stress_baseline": [0.1]}, "seeds": 1}}
    with pytest.raises(ScenarioError, match=r"agents\.3"):
        validate_scenario(bad)
    out_of_range = {**SWEEP, "sweep": {"grid": {"agents.0.affect.stress_baseline": [0.5, 3.0]}}}
    with pytest.raises(ScenarioError, match=r"stress_baseline"):
        validate_scenario(out_of_range)
    scenario_file = tmp_path / "bad.yaml"
    scenario_file.write_text(yaml.safe_dump(bad))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "valuegym.cli",
            "run",
            str(scenario_file),
            "--output",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "agents.3" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_local_and_ray_executors_give_identical_records(tmp_path):
    ray = pytest.importorskip("ray")
    scenario = validate_scenario(SWEEP)
    local = run_sweep(scenario, tmp_path / "local", executor="local", workers=2, progress=False)
    assert local.complete
    start_local_ray(2)

    def worker_state() -> tuple[int, bool]:
        import os
        import sys

        return os.nice(0), "valuegym.runs.runner" in sys.modules

    try:
        # Cells run at the user's priority (not Ray's niceness 15), the runner already imported.
        probe = ray.remote(num_cpus=1)(worker_state)
        assert ray.get([probe.remote() for _ in range(2)]) == [(0, True)] * 2
        remote = run_sweep(scenario, tmp_path / "ray", executor="ray", progress=False)
    finally:
        ray.shutdown()
    assert remote.complete
    local_records = record_bytes(tmp_path / "local" / "cells")
    assert len(local_records) >= 4
    assert local_records == record_bytes(tmp_path / "ray" / "cells")
    for cell in local.cells:
        assert RunFolder(tmp_path / "local" / "cells" / cell.cell_id).is_complete
    # the seeds matter and so does the swept stress: cells differ
    per_cell = {
        name.split("/")[0]: data for name, data in local_records.items() if "steps-e00000" in name
    }
    assert len(set(per_cell.values())) == 4


@pytest.mark.slow
def test_killed_sweep_resumes_and_runs_each_cell_exactly_once(tmp_path):
    long = {
        **SWEEP,
        "episodes": 3,
        "max_steps": 400,
        "env": {"id": "valuegym/Orchard-v0", "args": {"episode_length": 400}},
        "sweep": {"grid": {"agents.0.affect.stress_baseline": [0.0, 0.4, 0.8]}, "seeds": 2},
    }
    scenario_file = tmp_path / "sweep.yaml"
    scenario_file.write_text(yaml.safe_dump(long))
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "valuegym.cli",
        "run",
        str(scenario_file),
        "--output",
        str(out),
        "--executor",
        "local",
        "--workers",
        "1",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 300
    cells = out / "cells"
    while time.monotonic() < deadline and process.poll() is None:
        finished = [p for p in cells.glob("point*")] if cells.is_dir() else []
        if len(finished) >= 2:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the sweep finished before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = {
        p.name: {
            f.relative_to(p).as_posix(): (f.stat().st_ino, f.stat().st_mtime_ns, f.read_bytes())
            for f in p.rglob("*")
            if f.is_file()
        }
        for p in cells.glob("point*")
    }
    assert 2 <= len(before) < 6
    assert all(RunFolder(cells / name).is_complete for name in before)

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    plan = plan_sweep(validate_scenario(long))
    ids = [cell.cell_id for cell, _ in plan]
    assert sorted(p.name for p in cells.iterdir()) == sorted(ids)  # no partial leftovers
    events = finished_events(out)
    assert sorted(events) == sorted(ids)  # each cell committed exactly once in total
    for name, files in before.items():
        after = {
            f.relative_to(cells / name).as_posix(): (
                f.stat().st_ino,
                f.stat().st_mtime_ns,
                f.read_bytes(),
            )
            for f in (cells / name).rglob("*")
            if f.is_file()
        }
        assert after == files  # finished cells were neither rewritten nor lost
    assert (out / "report" / "report.md").is_file()


def test_a_failing_cell_is_reported_and_the_rest_go_on(tmp_path):
    failing = {**SWEEP, "sweep": {"grid": {"env.args.pick_effort": [0.3, -5.0]}, "seeds": 1}}
    outcome = run_sweep(validate_scenario(failing), tmp_path / "out", workers=2, progress=False)
    assert len(outcome.ran) == 1
    assert len(outcome.failures) == 1
    failure = outcome.failures[0]
    assert failure.cell.overrides == {"env.args.pick_effort": -5.0}
    assert "pick_effort" in failure.error
    assert not outcome.complete
    rerun = run_sweep(validate_scenario(failing), tmp_path / "out", workers=2, progress=False)
    assert [cell.cell_id for cell in rerun.skipped] == [outcome.ran[0].cell_id]


def test_a_folder_holding_another_sweep_is_refused(tmp_path):
    run_sweep(
        validate_scenario({**SWEEP, "sweep": {"grid": {}, "seeds": 1}}),
        tmp_path,
        workers=1,
        progress=False,
    )
    with pytest.raises(ScenarioError, match="different sweep"):
        run_sweep(validate_scenario(SWEEP), tmp_path, workers=1, progress=False)


def test_a_cell_committed_without_its_event_is_logged_once_on_resume(tmp_path):
    # A kill between a cell's commit and its event: the resumed sweep skips the cell and the
    # event log catches up, so it lists every committed cell exactly once.
    scenario = validate_scenario(SWEEP)
    out = tmp_path / "out"
    assert run_sweep(scenario, out, workers=1, progress=False).complete
    events = out / "events.jsonl"
    lines = events.read_text().splitlines()
    events.write_text("\n".join(lines[:-1]) + "\n")  # the last commit's event never written
    outcome = run_sweep(scenario, out, workers=1, progress=False)
    assert outcome.ran == []
    assert len(outcome.skipped) == 4
    assert sorted(finished_events(out)) == sorted(c.cell_id for c, _ in plan_sweep(scenario))
    assert json.loads(events.read_text().splitlines()[-1])["recovered"] is True
