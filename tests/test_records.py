import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import valuegym.records.folders as records_folders
from valuegym.records import (
    EpisodeRecorder,
    RunFolder,
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
