"""Every shipped scenario's records, pinned by hash, column by column.

Each shipped scenario runs at a small size (2 episodes of 6 steps, LM agents on the
deterministic :class:`FakeModel` so the pins do not depend on the CPU's floating point in
llama.cpp) and every recorded column is hashed. ``tests/data/record_pins.json`` holds the hashes
of the columns as the code wrote them when the pins were taken. A column may be added; a pinned
column may change only when it is listed in :data:`CHANGED` with the reason. Regenerate after an
intended change with ``VALUEGYM_WRITE_PINS=1 pytest tests/runs/test_record_pins.py``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from valuegym.runs.runner import run_scenario
from valuegym.scenarios.catalog import shipped_scenarios
from valuegym.scenarios.validation import load_scenario, scenario_with_overrides

PINS = Path(__file__).parents[1] / "data" / "record_pins.json"
SCENARIOS = shipped_scenarios()

#: (scenario stem, table, column) -> why it differs from its pin.
CHANGED: dict[tuple[str, str, str], str] = {}


def _pin_size(path: Path):
    scenario = load_scenario(path)
    overrides: dict[str, Any] = {"episodes": 2, "max_steps": 6, "sweep": None}
    if scenario.measure.semantic_entropy is not None:
        overrides["measure.semantic_entropy.samples"] = 2
        overrides["measure.semantic_entropy.clusterer"] = "text"
    if scenario.measure.mutual_information is not None:
        overrides["measure.mutual_information.samples"] = 2
    if scenario.appraisal is not None:  # no sentence embedder: its floats are the CPU's
        overrides["appraisal.repetition.clusterer"] = "text"
        overrides["appraisal.valence.judge"] = "off"
    if scenario.measure.intervention is not None:
        overrides["measure.intervention.at_step"] = 0
    for index, agent in enumerate(scenario.agents):
        if agent.kind == "lm":
            overrides[f"agents.{index}.lm.max_new_tokens"] = 4
            if agent.language_model.steering is not None:  # the FakeModel cannot steer
                overrides[f"agents.{index}.lm.steering"] = None
    counterfactual = scenario.measure.counterfactual
    if counterfactual is not None and counterfactual.steer_stress:
        overrides["measure.counterfactual.steer_stress"] = None
        overrides["measure.counterfactual.dose_response"] = None
    if scenario.design is not None and any(
        e.contrast == "steer_stress" for e in scenario.design.estimands
    ):
        overrides["design"] = None
    return scenario_with_overrides(scenario, overrides)


def _canonical(value: Any) -> Any:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


def column_hashes(folder: Path) -> dict[str, dict[str, str]]:
    """``{table: {column: sha256}}`` of every record table in a run folder."""
    from valuegym.records import RECORD_KINDS, RunFolder

    run = RunFolder(folder)
    hashes: dict[str, dict[str, str]] = {}
    for kind in RECORD_KINDS:
        table = run.read(kind)
        if table.num_columns == 0:
            continue
        hashes[kind] = {
            name: hashlib.sha256(
                json.dumps(_canonical(table.column(name).to_pylist())).encode()
            ).hexdigest()
            for name in table.column_names
        }
    return hashes


def _check_declared_types(folder: Path) -> None:
    from valuegym.records import RECORD_KINDS, TABLES, RunFolder

    for kind in RECORD_KINDS:
        for found in RunFolder(folder).read(kind).schema:
            column = TABLES[kind].column(found.name)
            assert found.type in (column.type, column.alternative), f"{kind}.{found.name}"


@pytest.mark.parametrize("path", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_shipped_scenario_records_match_their_pins(path: Path, tmp_path: Path, fake_model):
    scenario = _pin_size(path)
    run_scenario(
        scenario,
        tmp_path / "run",
        progress=False,
        load_model=lambda backend, name, **options: type(fake_model)(),
    )
    found = column_hashes(tmp_path / "run")
    _check_declared_types(tmp_path / "run")
    pins = json.loads(PINS.read_text()) if PINS.is_file() else {}
    if os.environ.get("VALUEGYM_WRITE_PINS"):
        pins[path.stem] = found
        PINS.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")
        return
    pinned = pins[path.stem]
    assert set(pinned) <= set(found), f"tables no longer written: {set(pinned) - set(found)}"
    for table, columns in pinned.items():
        for column, digest in columns.items():
            if (path.stem, table, column) in CHANGED:
                continue
            assert column in found[table], f"{table}.{column} is no longer recorded"
            assert found[table][column] == digest, f"{table}.{column} differs from its pin"
