import hashlib
import json

import pytest

import valuegym
from valuegym.analysis.report import write_report
from valuegym.analysis.sweep_report import write_sweep_report
from valuegym.cli import main
from valuegym.lm.cpu import cpu_flags, use_extra_buffer_types
from valuegym.lm.models import DEFAULT_MODEL, embedded_model_path
from valuegym.manifest import (
    MixedLanguageModelsError,
    build_manifest,
    lm_manifest_differences,
    manifest_markdown,
    read_manifest,
)
from valuegym.runs.errors import RunError
from valuegym.runs.runner import run_scenario
from valuegym.runs.sweeps import run_sweep
from valuegym.scenarios.validation import validate_scenario

LM_SCENARIO = {
    "name": "manifest-lm",
    "seed": 7,
    "env": {"id": "valuegym/Conversation-v0", "args": {"mode": "text"}},
    "agents": [
        {
            "id": "calm",
            "kind": "lm",
            "affect": {"base_temperature": 0.7, "temperature_stress": 0.5},
            "lm": {"backend": "llamacpp", "max_new_tokens": 12},
        },
        {"id": "fixed", "kind": "lm", "lm": {"backend": "llamacpp", "speech_temperature": 0.3}},
        {"id": "other", "kind": "greedy"},
    ],
    "episodes": 1,
    "max_steps": 4,
}
ORCHARD = {
    "name": "manifest-orchard",
    "seed": 3,
    "env": {"id": "valuegym/Orchard-v0", "args": {"episode_length": 10}},
    "agents": [{"id": "eater", "kind": "softmax"}],
    "episodes": 1,
    "max_steps": 10,
}


def lm_entry(sha="a" * 64, system_info="AVX2 = 1", backend="llamacpp"):
    return {
        "backend": backend,
        "model": DEFAULT_MODEL,
        "model_file": "/models/x.gguf",
        "model_sha256": sha,
        "build": {"llama_cpp_python": "0.3.36", "system_info": system_info},
        "agents": {"calm": {"max_new_tokens": 12}},
    }


def test_manifest_names_versions_cpu_seed_scenario_and_each_language_model():
    scenario = validate_scenario(LM_SCENARIO).to_mapping()
    manifest = build_manifest(scenario)
    assert manifest["valuegym"]["version"] == valuegym.__version__
    commit = manifest["valuegym"]["git_commit"]
    assert commit is None or len(commit) == 40
    assert manifest["python"].count(".") == 2
    assert manifest["packages"]["numpy"] == __import__("numpy").__version__
    assert set(manifest["packages"]) >= {"gymnasium", "pettingzoo", "torch", "llama-cpp-python"}
    assert manifest["cpu"]["model"]
    assert set(manifest["cpu"]["flags"]) <= cpu_flags()
    assert manifest["seed"] == 7
    assert manifest["scenario"] == scenario
    [lm] = manifest["language_models"]  # both LM agents share one model
    path = embedded_model_path(DEFAULT_MODEL)
    assert lm["backend"] == "llamacpp"
    assert lm["model"] == DEFAULT_MODEL
    assert lm["model_file"] == str(path)
    assert lm["model_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "CPU :" in lm["build"]["system_info"]
    assert lm["build"]["llama_cpp_python"] == __import__("llama_cpp").__version__
    assert lm["build"]["extra_buffer_types"] is use_extra_buffer_types(cpu_flags())
    assert lm["agents"]["calm"]["max_new_tokens"] == 12
    assert lm["agents"]["calm"]["base_temperature"] == 0.7
    assert lm["agents"]["calm"]["temperature_stress"] == 0.5
    assert lm["agents"]["fixed"]["speech_temperature"] == 0.3
    json.dumps(manifest)  # JSON-able
    section = manifest_markdown(manifest)
    assert section.startswith("- valuegym ")
    assert f"sha256 {lm['model_sha256'][:16]}" in section
    assert "calm, fixed" in section


def test_every_run_folder_gets_a_manifest_and_its_report_shows_it(tmp_path):
    scenario = validate_scenario(ORCHARD)
    result = run_scenario(scenario, tmp_path / "run", progress=False)
    manifest = read_manifest(result.folder.root)
    assert manifest["seed"] == 3
    assert manifest["scenario"] == scenario.to_mapping()
    assert manifest["language_models"] == []
    report = write_report(result.folder.root).read_text()
    assert "## Manifest" in report
    assert f"valuegym {valuegym.__version__}" in report


def test_differences_name_what_differs_and_which_runs():
    same = {"c0": {"language_models": [lm_entry()]}, "c1": {"language_models": [lm_entry()]}}
    assert lm_manifest_differences(same) == []
    mixed = {
        "c0": {"language_models": [lm_entry()]},
        "c1": {"language_models": [lm_entry(sha="b" * 64, system_info="AMX_INT8 = 1")]},
        "c2": None,
    }
    lines = lm_manifest_differences(mixed)
    assert any("llamacpp:smollm2-135m model_sha256" in line and "(c1)" in line for line in lines)
    assert any("build.system_info" in line and "AMX_INT8" in line for line in lines)
    assert any(line.startswith("manifest:") and "(no manifest) (c2)" in line for line in lines)


@pytest.fixture(scope="module")
def mixed_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    sweep = {**ORCHARD, "sweep": {"grid": {"agents.0.affect.stress_baseline": [0.0, 0.9]}}}
    assert run_sweep(validate_scenario(sweep), folder, workers=1, progress=False).complete
    cells = sorted((folder / "cells").iterdir())
    for cell, sha in zip(cells, ("a" * 64, "b" * 64), strict=True):
        manifest = read_manifest(cell)
        manifest["language_models"] = [lm_entry(sha=sha)]
        (cell / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_pooling_cells_with_different_language_models_is_refused(mixed_sweep, capsys):
    with pytest.raises(MixedLanguageModelsError, match="model_sha256") as error:
        write_sweep_report(mixed_sweep)
    assert "--allow-mixed-lm" in str(error.value)
    assert main(["report", str(mixed_sweep)]) == 1
    err = capsys.readouterr().err
    assert "refusing to pool" in err
    assert "llamacpp:smollm2-135m model_sha256" in err


def test_pooling_is_allowed_with_the_flag_and_a_warning_in_the_report(mixed_sweep):
    assert main(["report", str(mixed_sweep), "--allow-mixed-lm"]) == 0
    text = (mixed_sweep / "report" / "report.md").read_text()
    assert text.startswith("# Sweep report")
    assert "Warning: pooled across different language models" in text
    assert "model_sha256" in text


def interrupted_run(tmp_path, monkeypatch, episodes=3):
    """An Orchard run stopped after its first episode (its folder, scenario and the runner)."""
    import valuegym.runs.runner as runner_module

    scenario = validate_scenario({**ORCHARD, "episodes": episodes})
    original = runner_module.EpisodeRun.run

    def stop_in_episode_one(self):
        if self.episode == 1:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(runner_module.EpisodeRun, "run", stop_in_episode_one)
    with pytest.raises(KeyboardInterrupt):
        run_scenario(scenario, tmp_path / "run", progress=False)
    monkeypatch.setattr(runner_module.EpisodeRun, "run", original)
    return tmp_path / "run", scenario


def test_a_stopped_run_already_says_what_made_its_records(tmp_path, monkeypatch):
    folder, _ = interrupted_run(tmp_path, monkeypatch)
    manifest = read_manifest(folder)
    assert manifest is not None
    assert manifest["seed"] == 3
    assert "resumed" not in manifest


def test_a_resumed_run_keeps_its_first_manifest_and_lists_the_resumption(tmp_path, monkeypatch):
    folder, scenario = interrupted_run(tmp_path, monkeypatch)
    first = read_manifest(folder)
    result = run_scenario(scenario, folder, progress=False)
    assert (result.episodes_run, result.episodes_resumed) == (2, 1)
    manifest = read_manifest(folder)
    assert {key: manifest[key] for key in first} == first
    [resumption] = manifest["resumed"]
    assert resumption["episodes"] == [1, 2]
    assert resumption["valuegym"] == first["valuegym"]
    assert "scenario" not in resumption
    assert "resumed: episodes 1-2 ran under valuegym" in manifest_markdown(manifest)
    run_scenario(scenario, folder, progress=False)  # nothing left to run: nothing recorded
    assert read_manifest(folder) == manifest


def test_a_resumption_with_other_language_models_is_refused(tmp_path, monkeypatch):
    folder, scenario = interrupted_run(tmp_path, monkeypatch)
    manifest = read_manifest(folder)
    manifest["language_models"] = [lm_entry(sha="c" * 64)]  # as if made with another model
    (folder / "manifest.json").write_text(json.dumps(manifest))
    records = sorted(path.name for path in (folder / "records").rglob("*"))
    with pytest.raises(RunError, match="made by other language models") as error:
        run_scenario(scenario, folder, progress=False)
    assert "model_sha256" in str(error.value)
    assert "(finished episodes)" in str(error.value)
    assert sorted(path.name for path in (folder / "records").rglob("*")) == records
    assert read_manifest(folder) == manifest


def test_a_run_resumed_from_before_manifests_says_which_episodes_are_unrecorded(
    tmp_path, monkeypatch
):
    folder, scenario = interrupted_run(tmp_path, monkeypatch)
    (folder / "manifest.json").unlink()
    run_scenario(scenario, folder, progress=False)
    manifest = read_manifest(folder)
    assert manifest["episodes_without_manifest"] == [0]
    assert manifest["resumed"][0]["episodes"] == [1, 2]
    assert "episodes 0 were written by a valuegym without manifests" in manifest_markdown(manifest)
