import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import valuegym.records.folders as records_folders
from valuegym.records import (
    EpisodeRecorder,
    RunFolder,
    SweepFolder,
    SweepPlan,
    write_json_atomic,
    write_table_atomic,
)


def test_same_rows_give_byte_identical_parquet(tmp_path: Path):
    rows = [{"step": i, "agent": "a", "reward": 0.5 * i, "stock_apple": 0.1} for i in range(5)]
    for name in ("one", "two"):
        folder = RunFolder(tmp_path / name)
        folder.create()
        recorder = EpisodeRecorder(folder, 0)
        recorder.add("steps", rows)
        recorder.finish()
    first = (tmp_path / "one/records/steps-e00000.parquet").read_bytes()
    assert first == (tmp_path / "two/records/steps-e00000.parquet").read_bytes()
    table = pq.read_table(tmp_path / "one/records/steps-e00000.parquet")
    assert table.column_names == ["episode", "step", "agent", "reward", "stock_apple"]
    assert table.column("reward").to_pylist() == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_a_crash_while_writing_leaves_no_complete_looking_file(tmp_path, monkeypatch):
    def write_half_then_die(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(records_folders.pq, "write_table", write_half_then_die)
    target = tmp_path / "steps-e00000.parquet"
    with pytest.raises(KeyboardInterrupt):
        write_table_atomic(pa.table({"a": [1]}), target)
    assert not target.exists()
    assert [path.name for path in tmp_path.iterdir()] == [".steps-e00000.parquet.partial"]
    folder = RunFolder(tmp_path / "run")
    folder.create()
    (folder.records_dir / ".steps-e00001.parquet.partial").write_bytes(b"junk")
    folder.create()  # a rerun cleans what the killed run left behind
    assert list(folder.records_dir.iterdir()) == []


def test_finished_episodes_are_those_with_a_steps_file(tmp_path: Path):
    folder = RunFolder(tmp_path)
    folder.create()
    for episode in (0, 2):
        recorder = EpisodeRecorder(folder, episode)
        recorder.add("steps", [{"step": 0, "reward": 1.0}])
        recorder.add("utterances", [{"step": 0, "text": f"episode {episode}"}])
        recorder.finish()
    (folder.records_dir / "utterances-e00001.parquet").write_bytes(b"orphan without steps")
    assert folder.finished_episodes() == [0, 2]
    assert folder.read("utterances").column("text").to_pylist() == ["episode 0", "episode 2"]
    assert folder.read("information").num_rows == 0
    assert not folder.is_complete


def test_episode_tables_with_different_columns_concatenate(tmp_path: Path):
    folder = RunFolder(tmp_path)
    folder.create()
    rows = ({"step": 0, "env_x": None}, {"step": 0, "env_x": 2.5, "env_y": "s"})
    for episode, row in enumerate(rows):
        recorder = EpisodeRecorder(folder, episode)
        recorder.add("steps", [row])
        recorder.finish()
    table = folder.read("steps")
    assert table.column("env_x").to_pylist() == [None, 2.5]
    assert table.column("env_y").to_pylist() == [None, "s"]


def test_summary_json_is_atomic_and_sorted(tmp_path: Path):
    folder = RunFolder(tmp_path)
    with pytest.raises(FileNotFoundError, match="did not finish"):
        folder.read_summary()
    write_json_atomic({"b": 1, "a": [1, 2]}, folder.summary_file)
    assert folder.summary_file.read_text().startswith('{\n  "a"')
    assert folder.read_summary() == json.loads(folder.summary_file.read_text())
    assert folder.is_complete


def test_unknown_record_kind_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="kind: expected one of"):
        RunFolder(tmp_path).episode_file("frames", 0)


CELL_FILES = {
    "summary.json": b"{}\n",
    "records/steps-e00000.parquet": b"PAR1 records",
    "report/figures/a.png": b"\x89PNG",
}


def test_sweep_plan_round_trips(tmp_path: Path):
    layout = SweepFolder(tmp_path / "sweep")
    assert not layout.is_sweep()
    with pytest.raises(FileNotFoundError, match=r"plan\.json; is this a sweep folder"):
        layout.read_plan()
    plan: SweepPlan = {
        "scenario": "grid",
        "cells": [
            {"cell": "point0000-seed0", "overrides": {"agents.0.affect.mood": 0.5}, "seed": 0},
            {"cell": "point0001-seed0", "overrides": {"agents.0.affect.mood": [1, 2]}, "seed": 0},
        ],
    }
    layout.write_plan(plan)
    assert layout.is_sweep()
    assert layout.read_plan() == plan
    assert [path.name for path in layout.root.iterdir()] == ["plan.json"]  # nothing partial


def test_sweep_events_are_read_back_in_order_without_a_torn_last_line(tmp_path: Path):
    layout = SweepFolder(tmp_path)
    assert layout.read_events() == []
    events = [
        {"cell": "a", "status": "finished"},
        {"cell": "b", "status": "failed", "error": "ValueError: x", "traceback": "line\nline"},
    ]
    for event in events:
        layout.append_event(event)
    assert layout.read_events() == events
    with open(layout.events_file, "a", encoding="utf-8") as handle:
        handle.write('{"cell": "c", "sta')  # a kill while appending
    assert layout.read_events() == events


def test_committed_cell_holds_its_files_and_is_never_rewritten(tmp_path: Path):
    layout = SweepFolder(tmp_path)
    layout.create()
    folder = layout.commit_cell("point0000-seed0", CELL_FILES)
    assert folder == layout.cell("point0000-seed0")
    assert {
        path.relative_to(folder.root).as_posix(): path.read_bytes()
        for path in folder.root.rglob("*")
        if path.is_file()
    } == CELL_FILES
    assert layout.finished_cells() == ["point0000-seed0"]
    assert [path.name for path in layout.cells_dir.iterdir()] == ["point0000-seed0"]
    with pytest.raises(FileExistsError, match="already finished"):
        layout.commit_cell("point0000-seed0", {"summary.json": b"other"})
    assert (folder.root / "summary.json").read_bytes() == b"{}\n"


def test_a_cell_killed_while_committing_is_not_finished_and_is_cleared(tmp_path, monkeypatch):
    layout = SweepFolder(tmp_path)
    layout.create()
    real_open = open
    written = []

    def open_then_die_on_the_second_file(path, *args, **kwargs):
        written.append(path)
        if len(written) == 2:
            raise KeyboardInterrupt
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", open_then_die_on_the_second_file)
    with pytest.raises(KeyboardInterrupt):
        layout.commit_cell("point0000-seed0", CELL_FILES)
    monkeypatch.undo()
    staging = layout.staging_dir("point0000-seed0")
    assert (staging / "summary.json").is_file()  # half a cell is on disk ...
    assert layout.finished_cells() == []  # ... and does not count as finished
    assert not layout.cell("point0000-seed0").root.exists()
    layout.create()  # a rerun clears it
    assert list(layout.cells_dir.iterdir()) == []
    layout.commit_cell("point0000-seed0", CELL_FILES)
    assert layout.finished_cells() == ["point0000-seed0"]


@pytest.mark.parametrize("relative", ["../escape.json", "/abs.json", "records//x", "./x", ""])
def test_a_cell_file_outside_the_cell_folder_is_refused(tmp_path: Path, relative: str):
    layout = SweepFolder(tmp_path)
    with pytest.raises(ValueError, match="not a path inside a cell folder"):
        layout.commit_cell("point0000-seed0", {relative: b"x"})
    assert layout.finished_cells() == []
