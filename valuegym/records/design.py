"""What a run folder's ``design.json`` holds, and the record schema's version.

:class:`RunDesign` (the scenario's entries, unit, factors and estimands) is what analysis reads of
a scenario besides the rows; :data:`SCHEMA_VERSION` the version of the record schema
(:mod:`valuegym.records.schema`) the rows follow, refused with :func:`outdated`'s message when
it differs. Re-exported by :mod:`valuegym.records.schema`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["SCHEMA_VERSION", "EntryDesign", "RecordSchemaError", "RunDesign", "outdated"]

#: Version of the record schema. 1: run folders written before the schema was declared (no
#: ``design.json``). 2: every row carries its scenario entry; ``design.json``. 3: replay contexts
#: stratified by entry, placebo states drawn independently, manipulation rows are cross-scored
#: samples; ``design.json`` holds the declared design.
SCHEMA_VERSION: Final = 3


class RecordSchemaError(ValueError):
    """Rows or a run folder that do not follow the record schema; the message says what."""


@dataclass(frozen=True)
class EntryDesign:
    """One entry of a scenario's ``agents`` list, as the records name it.

    Attributes:
        entry: The entry's label: its ``id``, else ``<kind><index>``; the ``entry`` column.
        index: Its position in the scenario's ``agents`` list.
        kind: Its agent kind (``lm``, ``greedy``, ...).
        agents: The recorded agent names it expands to (``<entry>_<j>`` when ``count > 1``).
    """

    entry: str
    index: int
    kind: str
    agents: tuple[str, ...]

    def record_columns(self) -> dict[str, Any]:
        """The columns every record row of the entry's agents carries."""
        return {"entry": self.entry, "entry_index": self.index, "agent_kind": self.kind}


@dataclass(frozen=True)
class RunDesign:
    """What analysis needs to know of a run besides its rows (``design.json``).

    Attributes:
        entries: The scenario's agent entries, in order.
        unit: The unit of replication the scenario declared (``episode``; ``seed`` in sweeps).
        factors: Its between-agent factors: factor -> level -> the entries at that level.
        estimands: Its declared estimands as plain data (``name``, ``measure``, ``contrast``,
            ``rows``, ``levels``, ``at``, ``smallest_effect``, ``primary``; see
            :mod:`valuegym.scenarios.design`); empty when no design was declared.
        schema_version: The record schema the run's rows follow.
    """

    entries: tuple[EntryDesign, ...]
    unit: str = "episode"
    factors: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    estimands: tuple[Mapping[str, Any], ...] = ()
    schema_version: int = SCHEMA_VERSION

    @property
    def declared(self) -> bool:
        """Whether the scenario declared a design (estimands)."""
        return bool(self.estimands)

    @property
    def primary(self) -> tuple[str, ...]:
        """The names of the primary estimands."""
        return tuple(e["name"] for e in self.estimands if e.get("primary"))

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``design.json``."""
        return {
            "schema_version": self.schema_version,
            "unit": self.unit,
            # Lists, not mappings: the file's keys are sorted, and levels keep their order
            # (the first is a factor's low level, the last its high one).
            "factors": [
                {
                    "factor": factor,
                    "levels": [{"level": lv, "entries": list(e)} for lv, e in levels.items()],
                }
                for factor, levels in self.factors.items()
            ],
            "estimands": [dict(e) for e in self.estimands],
            "entries": [
                {"entry": e.entry, "index": e.index, "kind": e.kind, "agents": list(e.agents)}
                for e in self.entries
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> RunDesign:
        """Read ``design.json``'s data, refusing another schema version.

        Args:
            data: The parsed file.
            where: The folder, for the message.

        Raises:
            RecordSchemaError: When the version is not :data:`SCHEMA_VERSION`.
        """
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise RecordSchemaError(outdated(where, version))
        return cls(
            entries=tuple(
                EntryDesign(e["entry"], int(e["index"]), e["kind"], tuple(e["agents"]))
                for e in data.get("entries", ())
            ),
            unit=str(data.get("unit", "episode")),
            factors={
                f["factor"]: {lv["level"]: tuple(lv["entries"]) for lv in f["levels"]}
                for f in data.get("factors", ())
            },
            estimands=tuple(dict(e) for e in data.get("estimands", ())),
            schema_version=int(version),
        )


def outdated(where: str, version: Any) -> str:
    """The message for records of another schema version (``None``: before the schema)."""
    found = "1 (written before the record schema was declared)" if version is None else version
    return (
        f"{where}: its records follow record schema version {found}; this valuegym reads "
        f"version {SCHEMA_VERSION}. Rerun the scenario into a new folder to report on it, or "
        "report it with the valuegym version that wrote it"
    )
