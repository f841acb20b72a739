import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from valuegym.cli import main
from valuegym.scenarios.catalog import SHIPPED_DIR, resolve_scenario_path, shipped_scenarios

REPOSITORY = Path(__file__).resolve().parents[2]


def test_shipped_scenarios_live_in_the_package_and_the_checkout_links_to_them():
    names = {path.name for path in shipped_scenarios()}
    assert {"quickstart.yaml", "stress_sweep.yaml"} <= names
    assert all(path.parent == SHIPPED_DIR for path in shipped_scenarios())
    assert (SHIPPED_DIR / "profiles" / "calm.yaml").is_file()
    assert SHIPPED_DIR.parent == Path(__file__).resolve().parents[2] / "valuegym" / "scenarios"
    assert (REPOSITORY / "scenarios").resolve() == SHIPPED_DIR


@pytest.mark.parametrize("name", ["quickstart", "quickstart.yaml", "scenarios/quickstart.yaml"])
def test_a_missing_path_naming_a_shipped_scenario_resolves_to_it(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    assert resolve_scenario_path(name) == SHIPPED_DIR / "quickstart.yaml"


def test_an_existing_file_wins_and_unknown_names_stay_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart.yaml").write_text("name: mine\n")
    assert resolve_scenario_path("quickstart.yaml") == Path("quickstart.yaml")
    assert resolve_scenario_path("nonesuch") == Path("nonesuch")
    assert resolve_scenario_path("elsewhere/quickstart.yaml") == Path("elsewhere/quickstart.yaml")


def test_shipped_scenarios_validate_and_list_by_name_from_any_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "quickstart", "commons_calm_vs_stressed"]) == 0  # with a profile
    assert "quickstart: ok (quickstart: valuegym/Conversation-v0" in capsys.readouterr().out
    assert main(["list", "scenarios"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [path.name for path in shipped_scenarios()]
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "mine.yaml").write_text(
        "name: mine\ndescription: my own\nenv: {id: valuegym/Orchard-v0}\n"
        "agents: [{kind: greedy}]\n"
    )
    assert main(["list", "scenarios"]) == 0
    assert "scenarios/mine.yaml  my own" in capsys.readouterr().out


@pytest.mark.slow
def test_the_wheel_carries_every_shipped_scenario_and_profile(tmp_path):
    # Built from a copy, so that the checkout gets no build/ or egg-info folders.
    source = tmp_path / "source"
    shutil.copytree(
        REPOSITORY / "valuegym", source / "valuegym", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPOSITORY / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path),
            str(source),
        ],
        check=True,
        cwd=tmp_path,
    )
    [wheel] = tmp_path.glob("valuegym-*.whl")
    packaged = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        path.relative_to(SHIPPED_DIR.parents[2]).as_posix() for path in SHIPPED_DIR.rglob("*.yaml")
    }
    assert "valuegym/scenarios/shipped/quickstart.yaml" in shipped
    assert "valuegym/scenarios/shipped/profiles/calm.yaml" in shipped
    assert shipped <= packaged
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in packaged)
