"""The RL examples' command lines, logs and reproducibility, at tiny budgets."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CLEANRL = "cleanrl_ppo_orchard.py"
# 4 copies x 50 steps x 2 iterations: every copy ends one 100-step episode in training.
TINY = ("--num-envs", "4", "--num-steps", "50", "--total-timesteps", "400", "--eval-episodes", "4")
RESULT = re.compile(
    r"^ {2}(PPO \(deterministic\)|greedy-on-wanting|random) +(\S+) \[", re.MULTILINE
)


def run_example(
    name: str, *arguments: str, shadow: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run an example; ``shadow`` is put first on the path (modules that hide installed ones)."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    environment["PYTHONPATH"] = os.pathsep.join(
        str(path)
        for path in [shadow, EXAMPLES.parent, os.environ.get("PYTHONPATH")]
        if path is not None and str(path)
    )
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        check=False,
    )


def hide_module(folder: Path, name: str) -> Path:
    """A folder whose ``name`` package raises ImportError, as when it is not installed."""
    package = folder / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f"raise ImportError('{name} hidden by the test')\n")
    return folder


def help_entries(help_text: str) -> dict[str, str]:
    """Each ``--option`` of an argparse help text with its help, defaults left out."""
    entries: dict[str, str] = {}
    option = None
    for line in help_text.splitlines():
        match = re.match(r"^ {2}(-\S+(?: \S+)?(?:, -\S+(?: \S+)?)*)(?: {2,}(.*))?$", line)
        if match:
            option = (re.findall(r"--[\w-]+", match.group(1)) or ["-h"])[0]
            entries[option] = match.group(2) or ""
        elif option is not None and line.startswith(" " * 4) and line.strip():
            entries[option] += " " + line.strip()
        elif not line.strip():
            option = None
    return {name: re.sub(r"\(default: [^)]*\)", "", text).strip() for name, text in entries.items()}


def training_lines(stdout: str) -> list[str]:
    """The training progress lines without their frames/s."""
    return [line.split(", SPS=")[0] for line in stdout.splitlines() if "global_step" in line]


def results(stdout: str) -> dict[str, float]:
    return {name: float(value) for name, value in RESULT.findall(stdout)}


@pytest.mark.parametrize(
    ("name", "flags"),
    [
        (
            CLEANRL,
            {
                "--seed", "--total-timesteps", "--num-envs", "--learning-rate", "--num-steps",
                "--gamma", "--gae-lambda", "--ent-coef", "--vf-coef", "--clip-coef",
                "--num-minibatches", "--update-epochs", "--anneal-lr", "--norm-adv",
                "--exp-name", "--track", "--wandb-project-name", "--torch-deterministic",
                "--device", "--log-dir", "--eval-episodes",
            },
        ),
        ("rllib_commons.py", {"--seed", "--iterations", "--batch-size", "--n-agents"}),
        (
            "torchrl_commons.py",
            {
                "--seed", "--iterations", "--frames-per-batch", "--n-agents", "--minibatch-size",
                "--epochs", "--gamma", "--eval-episodes",
            },
        ),
    ],
)  # fmt: skip
def test_help_lists_every_flag_with_its_help(name, flags):
    # RLlib and TorchRL are imported after the options are parsed: --help needs neither.
    completed = run_example(name, "--help")
    assert completed.returncode == 0, completed.stderr[-2000:]
    entries = help_entries(completed.stdout)
    assert flags <= set(entries), sorted(flags - set(entries))
    assert [option for option, text in entries.items() if not text] == []


@pytest.mark.slow
def test_cleanrl_ppo_trains_logs_evaluates_and_reproduces(tmp_path):
    pytest.importorskip("tensorboard", reason="TensorBoard is in the tensorboard extra")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    completed = run_example(CLEANRL, *TINY, "--seed", "3", "--log-dir", str(tmp_path))
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "global_step=400, mean episodic_return=" in completed.stdout
    returns = results(completed.stdout)
    assert set(returns) == {"PPO (deterministic)", "greedy-on-wanting", "random"}
    # The heuristics' returns on the held-out seeds do not depend on training.
    assert returns["greedy-on-wanting"] > returns["random"] > 20

    (run_folder,) = tmp_path.iterdir()
    assert run_folder.name.startswith("cleanrl_ppo_orchard__3__")
    (event_file,) = run_folder.glob("events.out.tfevents.*")
    events = EventAccumulator(str(event_file))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"charts/episodic_return", "charts/SPS", "losses/value_loss"} <= scalars
    assert {"losses/policy_loss", "losses/entropy", "losses/approx_kl"} <= scalars
    assert len(events.Scalars("charts/episodic_return")) == 4  # one episode per copy

    # The same seed gives the same training and evaluation; without tensorboard, no logs.
    again = run_example(
        CLEANRL, *TINY, "--seed", "3", "--log-dir", str(tmp_path / "again"),
        shadow=hide_module(tmp_path / "shadow", "tensorboard"),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert [line for line in again.stderr.splitlines() if "tensorboard" in line] == [
        "tensorboard is not installed: training without TensorBoard logs "
        '(pip install "valuegym[tensorboard]")'
    ]
    assert not (tmp_path / "again").exists()

    assert training_lines(again.stdout) == training_lines(completed.stdout)
    assert results(again.stdout) == returns
    # ... and another seed another training.
    other = run_example(CLEANRL, *TINY, "--seed", "4", "--log-dir", str(tmp_path / "other"))
    assert other.returncode == 0, other.stderr[-3000:]
    assert training_lines(other.stdout) != training_lines(completed.stdout)


def test_cleanrl_track_without_wandb_fails_in_one_line(tmp_path):
    completed = run_example(
        CLEANRL, "--track", "--log-dir", str(tmp_path), shadow=hide_module(tmp_path, "wandb")
    )
    assert completed.returncode != 0
    assert completed.stderr.strip().splitlines() == [
        "--track logs to Weights & Biases, but wandb is not installed: pip install wandb"
    ]
    assert completed.stdout == ""
