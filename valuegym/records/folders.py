"""The run folder: per-episode Parquet records, the resolved scenario and the summary.

Layout of a run folder::

    scenario.yaml                  the resolved scenario (written first)
    design.json                    the record schema version, the scenario's entries and its
                                   primary contrasts (valuegym.records.schema.RunDesign)
    records/steps-e00000.parquet   one row per agent and step of episode 0
    records/utterances-e00000.parquet   one row per utterance of episode 0 (LM agents)
    records/information-e00000.parquet  mutual information estimates of episode 0 (if measured)
    manifest.json                  what produced the numbers (see valuegym.manifest)
    summary.json                   written last: a run without it did not finish
    report/                        report.md and PNG figures

Every file is written atomically: to a hidden temporary name in the same folder, flushed and
fsynced, then renamed over the final name (and the folder fsynced), so a killed run leaves
each episode either completely on disk or not at all, and never a file that looks complete
but is not. Record files hold no timestamps, so the same scenario and seed give
byte-identical Parquet; timing goes into the summary only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypedDict

import pyarrow as pa
import pyarrow.parquet as pq

from valuegym.records.schema import RECORD_KINDS, TABLES, RecordSchemaError, RunDesign, outdated

__all__ = [
    "EpisodeRecorder",
    "PlannedCell",
    "RunFolder",
    "SweepFolder",
    "SweepPlan",
    "rows_table",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_table_atomic",
]

_PARTIAL_SUFFIX: Final = ".partial"
_EPISODE_FILE = re.compile(r"^(?P<kind>[a-z]+)-e(?P<episode>\d{5,})\.parquet$")


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable; not every platform can open a folder for this.
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_bytes_atomic(data: bytes, path: Path) -> None:
    """Write ``data`` to ``path`` so that ``path`` never holds a partial file.

    Args:
        data: The complete contents.
        path: The final file name; its folder must exist.
    """
    temporary = path.with_name(f".{path.name}{_PARTIAL_SUFFIX}")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_folder(path.parent)


def write_json_atomic(data: Mapping[str, Any], path: Path) -> None:
    """Write a JSON document atomically (sorted keys, indented, trailing newline).

    Args:
        data: JSON-able mapping.
        path: The final file name.
    """
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=True) + "\n"
    write_bytes_atomic(text.encode("utf-8"), path)


def write_table_atomic(table: pa.Table, path: Path) -> None:
    """Write a Parquet file atomically; the same table always gives the same bytes.

    Args:
        table: The rows to write.
        path: The final file name.
    """
    temporary = path.with_name(f".{path.name}{_PARTIAL_SUFFIX}")
    pq.write_table(table, temporary, compression="zstd", write_statistics=True)
    with open(temporary, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_folder(path.parent)


@dataclass(frozen=True)
class _DesignedFolder:
    """A folder with a ``design.json`` (:class:`RunDesign`): a run's or a sweep's."""

    root: Path

    @property
    def design_file(self) -> Path:
        """The design: schema version, entries, primary contrasts (:class:`RunDesign`)."""
        return self.root / "design.json"

    def write_design(self, design: RunDesign) -> None:
        """Write ``design.json`` (atomically)."""
        write_json_atomic(design.to_dict(), self.design_file)

    def read_design(self) -> RunDesign:
        """The design, checked against this valuegym's record schema version.

        Raises:
            RecordSchemaError: When the folder has no ``design.json`` (records written before
                the schema was declared) or another schema version.
        """
        if not self.design_file.is_file():
            raise RecordSchemaError(outdated(str(self.root), None))
        data = json.loads(self.design_file.read_text(encoding="utf-8"))
        return RunDesign.from_dict(data, str(self.root))


@dataclass(frozen=True)
class RunFolder(_DesignedFolder):
    """The files of one run, by name.

    Args:
        root: The run folder.
    """

    @property
    def scenario_file(self) -> Path:
        """The resolved scenario, as YAML."""
        return self.root / "scenario.yaml"

    @property
    def records_dir(self) -> Path:
        """Where the per-episode Parquet files go."""
        return self.root / "records"

    @property
    def summary_file(self) -> Path:
        """The summary JSON, written last."""
        return self.root / "summary.json"

    @property
    def manifest_file(self) -> Path:
        """The run manifest JSON (versions, language models and builds, CPU, scenario)."""
        return self.root / "manifest.json"

    @property
    def report_dir(self) -> Path:
        """The report's Markdown and figures."""
        return self.root / "report"

    def episode_file(self, kind: str, episode: int) -> Path:
        """The Parquet file of one record kind and episode.

        Args:
            kind: One of :data:`RECORD_KINDS`.
            episode: Episode number from 0.

        Returns:
            The path (which may not exist yet).
        """
        if kind not in RECORD_KINDS:
            raise ValueError(f"kind: expected one of {RECORD_KINDS} (got {kind!r})")
        return self.records_dir / f"{kind}-e{episode:05d}.parquet"

    def write_episode(self, kind: str, episode: int, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write one table of one episode atomically, through the record schema.

        Args:
            kind: One of :data:`RECORD_KINDS`.
            episode: Episode number from 0.
            rows: The rows (see :func:`rows_table`).
        """
        write_table_atomic(rows_table(kind, rows), self.episode_file(kind, episode))

    def create(self) -> None:
        """Make the folders and remove temporary files a killed run left behind."""
        self.records_dir.mkdir(parents=True, exist_ok=True)
        for folder in (self.root, self.records_dir):
            for leftover in folder.glob(f".*{_PARTIAL_SUFFIX}"):
                leftover.unlink()

    def finished_episodes(self) -> list[int]:
        """Episodes whose records are completely on disk (their steps file exists)."""
        if not self.records_dir.is_dir():
            return []
        episodes = []
        for path in self.records_dir.iterdir():
            match = _EPISODE_FILE.match(path.name)
            if match and match["kind"] == "steps":
                episodes.append(int(match["episode"]))
        return sorted(episodes)

    @property
    def is_complete(self) -> bool:
        """Whether the run finished (its summary was written)."""
        return self.summary_file.is_file()

    def read(self, kind: str) -> pa.Table:
        """All finished episodes' rows of one kind, in episode order.

        Args:
            kind: One of :data:`RECORD_KINDS`.

        Returns:
            The concatenated table (no rows and no columns when nothing was recorded).
        """
        tables = [
            pq.read_table(self.episode_file(kind, episode))
            for episode in self.finished_episodes()
            if self.episode_file(kind, episode).is_file()
        ]
        if not tables:
            return pa.table({})
        return pa.concat_tables(tables, promote_options="permissive")

    def read_summary(self) -> dict[str, Any]:
        """The summary of a finished run.

        Raises:
            FileNotFoundError: When the run did not finish.
        """
        if not self.is_complete:
            raise FileNotFoundError(f"{self.summary_file}: no summary; the run did not finish")
        return dict(json.loads(self.summary_file.read_text(encoding="utf-8")))


class PlannedCell(TypedDict):
    """One cell of a sweep's plan.

    Attributes:
        cell: The cell's id, also its folder name under ``cells/``.
        overrides: Dotted path -> value of the cell's grid point (empty for seeds only).
        seed: The cell's seed.
    """

    cell: str
    overrides: dict[str, Any]
    seed: int


class SweepPlan(TypedDict):
    """A sweep's plan, as :meth:`SweepFolder.write_plan` writes it.

    Attributes:
        scenario: The sweep scenario's name.
        cells: Every cell, in plan order.
    """

    scenario: str
    cells: list[PlannedCell]


@dataclass(frozen=True)
class SweepFolder(_DesignedFolder):
    """The files of one sweep, by name: its plan, its event log and one run folder per cell.

    Layout of a sweep folder::

        scenario.yaml     the sweep scenario as given (resolved)
        design.json       its record schema version, entries and primary contrasts
        plan.json         every cell: id, overrides, seed (a rerun must find the same plan)
        events.jsonl      one line per finished or failed cell, appended in order
        cells/<cell id>/  one finished run folder per cell (records, scenario, summary)
        report/           the aggregated report

    A cell's files are written into a hidden staging folder, ``cells/.<cell id>.partial/``,
    which is then renamed to ``cells/<cell id>/``. The rename is the commit: a cell folder
    exists only once its files are completely on disk, and a staging folder is never a
    finished cell.

    Args:
        root: The sweep folder.
    """

    @property
    def plan_file(self) -> Path:
        """Every cell: id, overrides, seed (a rerun must find the same plan)."""
        return self.root / "plan.json"

    @property
    def scenario_file(self) -> Path:
        """The sweep's scenario, as YAML."""
        return self.root / "scenario.yaml"

    @property
    def events_file(self) -> Path:
        """One JSON line per finished or failed cell, appended in order."""
        return self.root / "events.jsonl"

    @property
    def cells_dir(self) -> Path:
        """The cells' run folders."""
        return self.root / "cells"

    @property
    def report_dir(self) -> Path:
        """The sweep report's Markdown and figures."""
        return self.root / "report"

    def cell(self, cell_id: str) -> RunFolder:
        """The run folder of one finished cell."""
        return RunFolder(self.cells_dir / cell_id)

    def staging_dir(self, cell_id: str) -> Path:
        """Where a cell's files are written before the rename that commits them."""
        return self.cells_dir / f".{cell_id}{_PARTIAL_SUFFIX}"

    def is_sweep(self) -> bool:
        """Whether the folder holds a sweep (it has a plan)."""
        return self.plan_file.is_file()

    def create(self) -> None:
        """Make the folders and remove the staging folders a killed sweep left behind."""
        self.cells_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.cells_dir.glob(self.staging_dir("*").name):
            shutil.rmtree(leftover)

    def write_plan(self, plan: SweepPlan) -> None:
        """Write the plan atomically, making the sweep folder if needed.

        Args:
            plan: The scenario's name and every cell (overrides JSON-able).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(plan, self.plan_file)

    def read_plan(self) -> SweepPlan:
        """The plan :meth:`write_plan` wrote.

        Raises:
            FileNotFoundError: When the folder holds no sweep.
        """
        if not self.is_sweep():
            raise FileNotFoundError(
                f"{self.root}: no {self.plan_file.name}; is this a sweep folder?"
            )
        plan: SweepPlan = json.loads(self.plan_file.read_text(encoding="utf-8"))
        return plan

    def append_event(self, event: Mapping[str, Any]) -> None:
        """Append one event as a JSON line and make it durable before returning.

        Args:
            event: JSON-able mapping, e.g. ``{"cell": id, "status": "finished"}``.
        """
        with open(self.events_file, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def read_events(self) -> list[dict[str, Any]]:
        """The events in the order they were appended.

        A last line without its newline was torn by a kill while it was appended; it is
        left out, as the event it would have recorded did not finish being recorded.
        """
        if not self.events_file.is_file():
            return []
        lines = self.events_file.read_text(encoding="utf-8").split("\n")
        # split leaves "" after the last newline, or the torn line when there is none
        return [dict(json.loads(line)) for line in lines[:-1]]

    def commit_cell(self, cell_id: str, files: Mapping[str, bytes]) -> RunFolder:
        """Write a cell's files into its staging folder, then rename that to the cell folder.

        Args:
            cell_id: The cell's folder name.
            files: The cell's run folder: relative POSIX path -> contents.

        Returns:
            The finished cell's run folder.

        Raises:
            FileExistsError: When the cell is already finished (it is never rewritten).
            ValueError: When a path would land outside the cell's folder.
        """
        finished = self.cell(cell_id).root
        if finished.exists():
            raise FileExistsError(f"{finished}: the cell is already finished")
        staging = self.staging_dir(cell_id)
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        folders = {staging}
        for relative, data in files.items():
            parts = relative.split("/")
            if any(part in ("", ".", "..") for part in parts):
                raise ValueError(f"files: {relative!r} is not a path inside a cell folder")
            target = staging.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            folders.update(staging.joinpath(*parts[:depth]) for depth in range(1, len(parts)))
            with open(target, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        # The entries must be durable before the rename makes the cell look finished.
        for folder in folders:
            _fsync_folder(folder)
        os.replace(staging, finished)
        _fsync_folder(self.cells_dir)
        return self.cell(cell_id)

    def finished_cells(self) -> list[str]:
        """The ids of the committed cells, sorted (staging folders are not cells)."""
        if not self.cells_dir.is_dir():
            return []
        return sorted(
            path.name
            for path in self.cells_dir.iterdir()
            if path.is_dir() and not path.name.startswith(".")
        )


class EpisodeRecorder:
    """Collects one episode's rows in memory and writes them when the episode ends.

    The steps file is written last, so its existence marks the episode as finished.

    Args:
        folder: The run folder.
        episode: Episode number from 0.
    """

    def __init__(self, folder: RunFolder, episode: int) -> None:
        self.folder = folder
        self.episode = episode
        self._rows: dict[str, list[dict[str, Any]]] = {kind: [] for kind in RECORD_KINDS}

    def add(self, kind: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append rows of one kind; each gets the episode number as its first column.

        Args:
            kind: One of :data:`RECORD_KINDS`.
            rows: Flat mappings of column name to scalar (or list of numbers).
        """
        self._rows[kind].extend({"episode": self.episode, **row} for row in rows)

    def row_count(self, kind: str) -> int:
        """Rows collected so far of one kind."""
        return len(self._rows[kind])

    def rows(self, kind: str) -> list[dict[str, Any]]:
        """The rows of one kind collected so far (each with its ``episode``)."""
        return list(self._rows[kind])

    def finish(self) -> None:
        """Write the episode's files atomically, the steps file last."""
        for kind in (*[k for k in RECORD_KINDS if k != "steps"], "steps"):
            rows = self._rows[kind]
            if rows or kind == "steps":
                self.folder.write_episode(kind, self.episode, rows)


def rows_table(kind: str, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows of one record table as a table of the schema's types (see :data:`TABLES`).

    Args:
        kind: One of :data:`RECORD_KINDS`.
        rows: Flat mappings of column name to value; the union of their columns, in
            first-seen order, becomes the table's (a row's missing cells are null).

    Raises:
        RecordSchemaError: When a column is not declared or a value does not fit its type.
    """
    return TABLES[kind].table(rows)
