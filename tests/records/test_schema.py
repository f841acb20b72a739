"""The record schema: declared columns and types, the design file and its version."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pytest

from valuegym.records import (
    SCHEMA_VERSION,
    TABLES,
    EpisodeRecorder,
    RecordSchemaError,
    RunDesign,
    RunFolder,
)
from valuegym.records.schema import EntryDesign, metric_column, metric_names, schema_markdown

DESIGN_DOC = Path(__file__).resolve().parents[2] / "docs" / "design.md"


def test_a_column_the_schema_does_not_declare_is_refused_with_where_to_declare_it():
    with pytest.raises(RecordSchemaError, match=r"steps records: column 'rewrd'.*schema\.py"):
        TABLES["steps"].table([{"episode": 0, "rewrd": 1.0}])


def test_columns_take_their_declared_types_whatever_the_values():
    table = TABLES["utterances"].table(
        [
            {"episode": 0, "step": 1, "total_entropy_tail_bound": None, "top_k": 0},
            {"episode": 0, "step": 2, "total_entropy_tail_bound": None, "top_k": 5},
        ]
    )
    # An all-null column is still the declared double, not Arrow's null type.
    assert table.schema.field("total_entropy_tail_bound").type == pa.float64()
    assert table.schema.field("top_k").type == pa.int64()
    assert table.column("top_k").to_pylist() == [0, 5]


def test_a_value_that_does_not_fit_its_column_is_refused():
    with pytest.raises(RecordSchemaError, match=r"'reward' does not hold double"):
        TABLES["steps"].table([{"episode": 0, "reward": "a lot"}])
    with pytest.raises(RecordSchemaError, match=r"'length' does not hold int64"):
        TABLES["utterances"].table([{"episode": 0, "length": 7.5}])  # never truncated
    assert TABLES["utterances"].table([{"length": 7.0}]).column("length").to_pylist() == [7]


def test_families_hold_values_and_metrics_by_name():
    steps = TABLES["steps"]
    assert steps.column("stock_apple").name == "stock_<value>"
    assert steps.column("env_resource").name == "env_<metric>"
    text = steps.table([{"episode": 0, "env_note": "hello", "env_level": 0.5}])
    assert text.schema.field("env_note").type == pa.string()
    assert text.schema.field("env_level").type == pa.float64()
    columns = ["episode", "stock_apple", "wanting_apple", "env_resource", "env_gini"]
    assert metric_names(columns) == ["resource", "gini"]
    assert metric_column("resource") == "env_resource"


def test_every_table_places_its_rows_by_episode_step_agent_and_entry():
    for schema in TABLES.values():
        for name in ("episode", "step", "agent", "entry", "entry_index", "agent_kind"):
            assert name in schema.names, f"{schema.kind} lacks {name}"
        for column in schema.columns:
            assert column.meaning, f"{schema.kind}.{column.name} says what it holds"


def test_the_design_round_trips_through_its_file(tmp_path: Path):
    folder = RunFolder(tmp_path)
    folder.create()
    design = RunDesign(
        entries=(
            EntryDesign("calm", 0, "softmax", ("calm_0", "calm_1")),
            EntryDesign("lm1", 1, "lm", ("lm1",)),
        ),
        primary=("mean_token_entropy~stress",),
    )
    folder.write_design(design)
    assert folder.read_design() == design
    assert json.loads(folder.design_file.read_text())["schema_version"] == SCHEMA_VERSION


def test_a_folder_from_before_the_schema_is_refused_naming_its_version(tmp_path: Path):
    folder = RunFolder(tmp_path)
    folder.create()
    recorder = EpisodeRecorder(folder, 0)
    recorder.add("steps", [{"step": 0, "reward": math.pi}])
    recorder.finish()
    with pytest.raises(
        RecordSchemaError, match=rf"record schema version 1 .*reads version {SCHEMA_VERSION}"
    ):
        folder.read_design()
    folder.design_file.write_text(json.dumps({"schema_version": 99, "entries": []}))
    with pytest.raises(RecordSchemaError, match=r"version 99"):
        folder.read_design()


def test_the_design_document_shows_the_schema_as_declared():
    text = DESIGN_DOC.read_text(encoding="utf-8")
    begin, end = "<!-- record-schema -->\n", "<!-- /record-schema -->"
    assert begin in text, "docs/design.md marks where the record schema goes"
    shown = text.split(begin, 1)[1].split(end, 1)[0]
    assert shown.strip() == schema_markdown().strip(), (
        "docs/design.md's record schema differs from valuegym/records/schema.py; paste "
        "valuegym.records.schema.schema_markdown() between the markers"
    )
