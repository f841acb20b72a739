"""``valuegym plan``: units a design needs, from a pilot's spread between units."""

import json
import math

import pytest

from valuegym.analysis.planning import plan_units
from valuegym.analysis.statistics import minimum_detectable_effect, units_needed
from valuegym.cli import main
from valuegym.runs.runner import run_scenario
from valuegym.scenarios.validation import validate_scenario

COMMONS = {
    "name": "pilot",
    "seed": 3,
    "env": {"id": "valuegym/Commons-v0"},
    "agents": [
        {"id": "calm", "kind": "softmax", "count": 2},
        {"id": "tense", "kind": "softmax", "count": 2, "affect": {"stress_baseline": 0.8}},
    ],
    "episodes": 3,
    "max_steps": 30,
    "design": {
        "factors": {"stress": {"calm": ["calm"], "stressed": ["tense"]}},
        "estimands": [
            {
                "measure": "return",
                "contrast": "stress",
                "rows": "run",
                "smallest_effect": 0.5,
                "primary": True,
            },
            {"measure": "stress", "contrast": "stress", "rows": "run", "smallest_effect": 0.1},
        ],
    },
}


@pytest.fixture(scope="module")
def pilot(tmp_path_factory):
    root = tmp_path_factory.mktemp("plan") / "pilot"
    run_scenario(validate_scenario(COMMONS), root, progress=False)
    return root


def test_units_needed_inverts_the_minimum_detectable_effect():
    for n in (3, 5, 12, 40):
        mde = minimum_detectable_effect(1.7, n)
        assert units_needed(1.7, mde) == n
        assert units_needed(1.7, mde * 1.001) <= n
    # the normal approximation for large n: (1.96 + 0.84) sd / sqrt(n)
    assert minimum_detectable_effect(1.0, 10_000) == pytest.approx(2.8016 / 100, rel=1e-3)
    assert math.isnan(minimum_detectable_effect(1.0, 1))


def test_plan_reads_each_declared_estimand_of_a_pilot(pilot):
    rows = {row.name: row for row in plan_units(pilot)}
    primary = rows["return:stress"]
    assert primary.primary
    assert (primary.units, primary.unit) == (3, "episodes")
    assert primary.sd > 0
    assert primary.effect == 0.5
    assert primary.needed == units_needed(primary.sd, 0.5)
    assert minimum_detectable_effect(primary.sd, primary.needed) <= 0.5
    assert rows["stress:stress"].effect == 0.1
    bigger = {row.name: row for row in plan_units(pilot, effect=5.0)}["return:stress"]
    assert bigger.needed <= primary.needed


def test_plan_command_prints_a_table_or_json(pilot, capsys):
    assert main(["plan", str(pilot), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == ["return:stress", "stress:stress"]
    assert main(["plan", str(pilot), "--effect", "1.0"]) == 0
    out = capsys.readouterr().out
    assert "| return:stress (primary) | 3 episodes |" in out


def test_plan_refuses_a_bad_effect_and_a_run_without_a_design(pilot, tmp_path, capsys):
    assert main(["plan", str(pilot), "--effect", "0"]) == 1
    assert "--effect: must be > 0" in capsys.readouterr().err
    plain = tmp_path / "plain"
    run_scenario(validate_scenario({**COMMONS, "design": None}), plain, progress=False)
    assert main(["plan", str(plain)]) == 1
    assert "declares no estimand" in capsys.readouterr().err
