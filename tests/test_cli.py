from pathlib import Path

import pytest

import valuegym
from valuegym.cli import main

GOOD = """\
name: tiny
seed: 1
env: {id: valuegym/Orchard-v0}
agents: [{kind: greedy}]
episodes: 2
max_steps: 5
"""

BILLION_LAUGHS = "\n".join(
    ["name: &a [x, x, x, x, x, x, x, x, x]"]
    + [
        f"k{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
        for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
    ]
)

BAD_INPUTS = {
    "malformed": ("name: tiny\nagents: [1, 2\nseed: 3\n", "line 3, column 5: expected ',' or ']'"),
    "unknown_key": (GOOD + "colour: blue\n", "colour: unknown key (expected one of: name,"),
    "wrong_type": (GOOD.replace("seed: 1", "seed: one"), "seed: must be an integer (got 'one')"),
    "out_of_range": (
        GOOD.replace("{kind: greedy}", "{kind: greedy, values: {rest: {weight: -1.0}}}"),
        "agents.0.values.rest.weight: must be > 0 (got -1.0)",
    ),
    "unknown_env": (GOOD.replace("Orchard-v0", "Orchard-v9"), "env.id: unknown env id"),
    "unknown_kind": (GOOD.replace("greedy", "genius"), "agents.0.kind: unknown value 'genius'"),
    "alias_bomb": (BILLION_LAUGHS, "alias bomb"),
    "deep_nesting": ("name: " + "[" * 5000 + "]" * 5000, "nesting"),
    "python_tag": (
        GOOD + "hook: !!python/object/apply:os.system ['touch pwned']\n",
        "tag !!python/object/apply:os.system is not allowed",
    ),
    "empty": ("", "the scenario is empty"),
    "not_a_mapping": ("- 1\n- 2\n", "must be a mapping of keys"),
    "absolute_output": (GOOD + "output: /tmp/elsewhere\n", "output: must be a relative folder"),
    "escaping_output": (GOOD + "output: ../../up\n", "output: must stay under runs/"),
    "duplicate_key": (GOOD + "seed: 2\n", "duplicate key 'seed'"),
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("command", ["validate", "run", "train"])
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_clear_message_exit_1_and_nothing_written(workdir, capsys, case, command):
    text, expected = BAD_INPUTS[case]
    (workdir / "s.yaml").write_text(text)
    assert main([command, "s.yaml"]) == 1
    captured = capsys.readouterr()
    assert expected in captured.err
    assert captured.err.startswith("s.yaml: ")
    assert "Traceback" not in captured.err + captured.out
    assert sorted(path.name for path in workdir.iterdir()) == ["s.yaml"]
    assert not (workdir / "pwned").exists()


def test_validate_lists_every_problem(workdir, capsys):
    (workdir / "s.yaml").write_text(
        "name: x\nseed: -1\nenv: {id: valuegym/Commons-v0}\nagents:\n  - {kind: greedy}\n"
        "  - {kind: greedy, values: {food: {weight: -1}}, affect: {stress_baseline: 3}}\n"
        "episodes: 0\n"
    )
    assert main(["validate", "s.yaml"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "s.yaml: seed: must be >= 0 (got -1)",
        "s.yaml: episodes: must be >= 1 (got 0)",
        "s.yaml: agents.1.values.food.weight: must be > 0 (got -1.0)",
        "s.yaml: agents.1.affect.stress_baseline: must be in [0, 1] (got 3.0)",
    ]


def test_validate_ok_and_mixed(workdir, capsys):
    (workdir / "good.yaml").write_text(GOOD)
    (workdir / "bad.yaml").write_text("name: [\n")
    assert main(["validate", "good.yaml"]) == 0
    assert capsys.readouterr().out == (
        "good.yaml: ok (tiny: valuegym/Orchard-v0, 1 agent(s), 2 episode(s) x 5 steps)\n"
    )
    assert main(["validate", "good.yaml", "bad.yaml"]) == 1


def test_run_writes_records_summary_and_report_under_runs(workdir, capsys):
    (workdir / "s.yaml").write_text(GOOD)
    assert main(["run", "s.yaml", "-q"]) == 0
    out = capsys.readouterr().out
    run_dir = workdir / "runs" / "tiny"
    assert "report:  runs/tiny/report/report.md" in out
    assert sorted(p.name for p in (run_dir / "records").iterdir()) == [
        "steps-e00000.parquet",
        "steps-e00001.parquet",
    ]
    assert (run_dir / "summary.json").is_file()
    assert (run_dir / "report" / "value_trajectories.png").is_file()


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under a folder: its bytes and modification time."""
    return {
        str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_finished_run_is_not_rerun_or_rewritten(workdir, capsys):
    (workdir / "s.yaml").write_text(GOOD)
    assert main(["run", "s.yaml", "-q"]) == 0
    run_dir = workdir / "runs" / "tiny"
    before = snapshot(run_dir)
    capsys.readouterr()
    assert main(["run", "s.yaml", "-q"]) == 0
    assert capsys.readouterr().out == (
        "runs/tiny: this scenario's run is already complete, nothing was rerun; "
        "`valuegym report runs/tiny` rebuilds its report, --overwrite reruns it\n"
    )
    assert snapshot(run_dir) == before
    # --overwrite reruns it: the same records again, a new summary.
    assert main(["run", "s.yaml", "-q", "--no-report", "--overwrite"]) == 0
    after = snapshot(run_dir)
    assert after["records/steps-e00001.parquet"][0] == before["records/steps-e00001.parquet"][0]
    assert after["summary.json"][1] != before["summary.json"][1]


def test_run_overrides_and_output(workdir, capsys):
    (workdir / "s.yaml").write_text(GOOD)
    assert (
        main(
            [
                "run",
                "s.yaml",
                "-q",
                "--no-report",
                "--output",
                "elsewhere",
                "--episodes",
                "1",
                "--set",
                "agents.0.affect.stress_baseline=0.7",
            ]
        )
        == 0
    )
    resolved = (workdir / "elsewhere" / "scenario.yaml").read_text()
    assert "episodes: 1\n" in resolved
    assert "stress_baseline: 0.7" in resolved
    assert main(["run", "s.yaml", "--set", "agents.0.affect.stress_baseline=7"]) == 1
    assert "agents.0.affect.stress_baseline: must be in [0, 1] (got 7.0)" in capsys.readouterr().err
    assert main(["run", "s.yaml", "--set", "nonsense"]) == 1
    assert "expected PATH=VALUE" in capsys.readouterr().err


def test_run_refuses_to_mix_scenarios_in_one_folder(workdir, capsys):
    (workdir / "s.yaml").write_text(GOOD)
    assert main(["run", "s.yaml", "-q", "--no-report"]) == 0
    assert main(["run", "s.yaml", "-q", "--max-steps", "3"]) == 1
    assert "holds the records of a different scenario" in capsys.readouterr().err
    assert main(["run", "s.yaml", "-q", "--max-steps", "3", "--overwrite"]) == 0


def test_report_command(workdir, capsys):
    (workdir / "s.yaml").write_text(GOOD)
    main(["run", "s.yaml", "-q", "--no-report"])
    capsys.readouterr()
    assert main(["report", "runs/tiny"]) == 0
    assert capsys.readouterr().out == "report: runs/tiny/report/report.md\n"
    assert main(["report", "missing"]) == 1
    assert "missing: no such run folder" in capsys.readouterr().err
    (workdir / "empty").mkdir()
    assert main(["report", "empty"]) == 1
    assert "no finished episode records" in capsys.readouterr().err


def test_list_names_envs_kinds_backends_and_scenarios(workdir, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for expected in (
        "valuegym/Orchard-v0",
        "valuegym/Commons-v0",
        "softmax",
        "llamacpp",
        "quickstart.yaml",
    ):
        assert expected in out
    assert main(["list", "agents"]) == 0
    assert capsys.readouterr().out == "lm\nppo\ngreedy\nsoftmax\nrandom\nscripted\nplanner\n"


def test_list_names_the_backend_a_scenario_gets_by_default(capsys, monkeypatch):
    from valuegym import lm

    for backend in ("llamacpp", "transformers"):
        install = lm.BACKENDS[backend][1]
        monkeypatch.setitem(lm.BACKENDS, backend, (("valuegym_no_such_module",), install))
    assert main(["list", "backends"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "llamacpp  (the default, not installed: pip install 'valuegym[demo]')",
        "transformers  (not installed: pip install 'valuegym[lm]')",
        "openai  (installed)",
    ]
    monkeypatch.setitem(lm.BACKENDS, "transformers", (("importlib",), "pip install y"))
    assert main(["list", "backends"]) == 0
    assert "transformers  (the default, installed)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["run"],
        ["validate"],
        ["list"],
        ["train"],
        ["evaluate"],
        ["report"],
        ["doctor"],
        ["replay"],
        ["calibrate-clusterer"],
        ["calibrate-valence"],
        ["steer"],
        ["steer", "build"],
    ],
)
def test_every_command_has_help(capsys, command):
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert "usage: valuegym" in capsys.readouterr().out


def test_version(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out == f"valuegym {valuegym.__version__}\n"


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in ("run", "validate", "list", "train", "report", "doctor"):
        assert f"\n    {command} " in out


def test_run_dispatches_a_sweep_to_its_cells(workdir, capsys):
    (workdir / "s.yaml").write_text(
        GOOD + "sweep: {grid: {agents.0.kind: [greedy, random]}, seeds: 2}\n"
    )
    assert main(["run", "s.yaml", "-q", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "4 cell(s) run, 0 already finished, 0 failed" in out
    assert "report:  runs/tiny/report/report.md" in out
    cells = sorted(path for path in (workdir / "runs" / "tiny" / "cells").iterdir())
    assert len(cells) == 4
    assert all((cell / "summary.json").is_file() for cell in cells)
    assert (workdir / "runs" / "tiny" / "report" / "report.md").is_file()
    assert main(["report", "runs/tiny"]) == 0
    assert "report: runs/tiny/report/report.md" in capsys.readouterr().out
    before = snapshot(workdir / "runs" / "tiny")
    assert main(["run", "s.yaml", "-q", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "0 cell(s) run, 4 already finished" in out
    assert "runs/tiny: this sweep is already complete, nothing was rerun" in out
    assert snapshot(workdir / "runs" / "tiny") == before


def test_calibrate_clusterer_prints_rates_per_category_of_a_users_pairs(tmp_path, capsys):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "a,b,same,category\nYes!,yes,1,dup\nHappy to help.,Glad to help.,1,para\nYes.,No.,0,flip\n"
    )
    assert main(["calibrate-clusterer", "--clusterer", "text", "--pairs", str(pairs)]) == 0
    out = capsys.readouterr().out
    assert "text: {'clusterer': 'text'}, 3 pairs" in out
    assert "| dup | 1 | 100% | – | 0% |" in out
    assert "| para | 1 | 0% | – | 100% |" in out
    assert "| flip | 1 | 100% | 0% | – |" in out
    assert "| all | 3 | 67% | 0% | 50% |" in out


def test_calibrate_clusterer_bad_input_is_one_message_and_exit_1(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,same,category\nYes,No,maybe,x\n")
    assert main(["calibrate-clusterer", "--clusterer", "text", "--pairs", str(bad)]) == 1
    assert "bad.csv:2: same must be 1 or 0" in capsys.readouterr().err
    assert main(["calibrate-clusterer", "--clusterer", "entailment-nli"]) == 1
    assert "needs --nli-model" in capsys.readouterr().err


def test_calibrate_valence_prints_a_judges_figures_on_a_users_messages(
    tmp_path, capsys, monkeypatch
):
    import math

    import numpy as np

    import valuegym.lm
    from valuegym.lm.base import LanguageModel

    class ToneTable(LanguageModel):
        """Scores Friendly, Neutral, Hostile from a table keyed by the quoted message."""

        name = "tone-table"

        def __init__(self):
            self.scores = {
                "Thanks a lot!": [0.0, -math.inf, -math.inf],
                "The file is attached.": [-math.inf, 0.0, -math.inf],
                "Send it.": [math.log(0.6), math.log(0.2), math.log(0.2)],
                "Read it yourself.": [-math.inf, -math.inf, 0.0],
            }

        def _generate(self, prompts, **kwargs):
            raise AssertionError("the judge scores, never generates")

        def _score(self, prompt, continuations):
            return np.array(self.scores[prompt[0]["content"].split('"')[1]])

    loaded = []
    monkeypatch.setattr(
        valuegym.lm,
        "load_language_model",
        lambda backend, model: loaded.append((backend, model)) or ToneTable(),
    )
    items = tmp_path / "items.csv"
    items.write_text(
        "text,label\nThanks a lot!,positive\nThe file is attached.,neutral\n"
        "Send it.,neutral\nRead it yourself.,negative\n"
    )
    command = ["calibrate-valence", "--judge", "lm", "--items", str(items)]
    assert main([*command, "--lm-backend", "openai", "--lm-model", "m"]) == 0
    assert loaded == [("openai", "m")]
    out = capsys.readouterr().out
    assert "lm: {'valence_judge': 'language-model', 'model': 'tone-table'" in out
    assert "4 messages in" in out
    assert "| positive | 1 | 100% | +1.00 |" in out
    # "Send it." reads 0.6 - 0.2 = 0.4, above the neutral band of 0.2: a miss.
    assert "| neutral | 2 | 50% | +0.20 |" in out
    assert "| negative | 1 | 100% | -1.00 |" in out
    assert "| all | 4 | 75% | +0.10 |" in out
    assert main([*command, "--band", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "| all | 4 | 100% | +0.10 |" in out
    assert "neutral band ±0.5." in out


def test_calibrate_valence_bad_input_is_one_message_and_exit_1(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nHi,cheerful\n")
    assert main(["calibrate-valence", "--items", str(bad)]) == 1
    assert "bad.csv:2: label must be positive, neutral or negative" in capsys.readouterr().err
    assert main(["calibrate-valence", "--band", "1.5"]) == 1
    assert "--band: must be in [0, 1)" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["run", "train"])
def test_an_output_path_that_is_a_file_is_one_sentence(workdir, capsys, command):
    (workdir / "s.yaml").write_text(GOOD)
    (workdir / "taken").write_text("mine")
    for output in ("taken", "taken/sub"):
        assert main([command, "s.yaml", "--output", output]) == 1
        captured = capsys.readouterr()
        assert captured.err.startswith("taken: ")
        assert "not a folder" in captured.err or "where a folder is needed" in captured.err
        assert "--output" in captured.err
        assert len(captured.err.strip().splitlines()) == 1
        assert "Errno" not in captured.err
        assert "Traceback" not in captured.err
    assert (workdir / "taken").read_text() == "mine"


def test_an_unwritable_output_folder_is_one_sentence_and_leaves_nothing(
    workdir, capsys, monkeypatch
):
    import errno

    import valuegym.runs.runner as runner

    def read_only(data: bytes, path: Path) -> None:
        # What writing into a read-only mount raises; chmod does not stop root, who runs tests.
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    (workdir / "s.yaml").write_text(GOOD)
    monkeypatch.setattr(runner, "write_bytes_atomic", read_only)
    assert main(["run", "s.yaml", "-q", "--output", "out"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "out/scenario.yaml: is on a read-only file system; choose a path on a writable disk "
        "(--output)\n"
    )
    assert not (workdir / "out").exists()


def test_a_report_folder_that_cannot_be_written_is_one_sentence(workdir, capsys):
    (workdir / "s.yaml").write_text(GOOD)
    assert main(["run", "s.yaml", "-q", "--no-report"]) == 0
    (workdir / "runs" / "tiny" / "report").write_text("in the way")
    capsys.readouterr()
    assert main(["report", "runs/tiny"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("runs/tiny/report: is a file where a folder is needed; move it away")
    assert len(err.splitlines()) == 1


COMMONS_EVALUATION = """\
name: commons-eval
env: {id: valuegym/Commons-v0}
agents: [{id: calm, kind: greedy, count: 2}, {id: other, kind: greedy, count: 2}]
max_steps: 30
evaluation: {focal_agents: [calm]}
"""


def test_evaluate_prints_the_table_and_writes_its_folder(workdir, capsys):
    (workdir / "s.yaml").write_text(COMMONS_EVALUATION)
    argv = ["evaluate", "s.yaml", "--seeds", "3", "--background", "greedy=greedy"]
    assert main([*argv, "--background", "mixed=greedy,random", "--focal", "softmax"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("focal softmax on calm_0, calm_1 vs held-out backgrounds; mean over")
    assert out[1].split() == [
        "background",
        "focal",
        "return",
        "background",
        "return",
        "efficiency",
        "equality",
        "sustainability",
        "peace",
    ]
    assert out[2].startswith("greedy (greedy)")
    assert out[3].startswith("mixed (greedy, random)")
    folder = workdir / "runs" / "commons-eval-evaluate"
    assert out[4:] == [
        f"results: {Path('runs/commons-eval-evaluate/evaluation.json')}",
        f"chart: {Path('runs/commons-eval-evaluate/social_outcomes.png')}",
        f"provenance: {Path('runs/commons-eval-evaluate/manifest.json')}",
    ]
    assert sorted(path.name for path in folder.iterdir()) == [
        "evaluation.json",
        "manifest.json",
        "scenario.yaml",
        "social_outcomes.png",
    ]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["s.yaml", "--focal", "genius"], "--focal 'genius': expected greedy, softmax, random, "),
        (["s.yaml", "--background", "oops"], "--background 'oops': expected NAME=POLICY"),
        (["s.yaml", "--seeds", "1"], "evaluation.seeds: must be >= 2 (got 1)"),
        (["s.yaml", "--focal", "missing/model.zip"], "evaluation.focal.checkpoint: file not found"),
        (["orchard.yaml"], "valuegym/Orchard-v0 is a single-agent env; evaluate scores a focal"),
        (["s.yaml", "--output", "taken"], "taken: is a file where a folder is needed"),
    ],
)
def test_evaluate_bad_input_is_one_line_and_runs_nothing(workdir, capsys, argv, expected):
    (workdir / "s.yaml").write_text(COMMONS_EVALUATION)
    (workdir / "orchard.yaml").write_text(GOOD)
    (workdir / "taken").write_text("mine")
    assert main(["evaluate", *argv]) == 1
    err = capsys.readouterr().err
    assert expected in err
    assert len(err.strip().splitlines()) == 1
    assert not (workdir / "runs").exists()
    assert (workdir / "taken").read_text() == "mine"
