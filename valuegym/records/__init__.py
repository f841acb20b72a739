"""A run's records: the run and sweep folders, atomic writes, and the record schema.

:mod:`valuegym.records.schema` declares every record table's columns, types and meaning once;
the runner writes rows through it and analysis reads them by it.
:mod:`valuegym.records.folders` names the files of run and sweep folders and writes them
atomically.
"""

from valuegym.records.folders import (
    EpisodeRecorder,
    PlannedCell,
    RunFolder,
    SweepFolder,
    SweepPlan,
    rows_table,
    write_bytes_atomic,
    write_json_atomic,
    write_table_atomic,
)
from valuegym.records.schema import (
    RECORD_KINDS,
    SCHEMA_VERSION,
    TABLES,
    Column,
    RecordSchemaError,
    RunDesign,
    TableSchema,
)

__all__ = [
    "RECORD_KINDS",
    "SCHEMA_VERSION",
    "TABLES",
    "Column",
    "EpisodeRecorder",
    "PlannedCell",
    "RecordSchemaError",
    "RunDesign",
    "RunFolder",
    "SweepFolder",
    "SweepPlan",
    "TableSchema",
    "rows_table",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_table_atomic",
]
