"""Every script in examples/ runs a short version of itself (tiny budgets) to the end."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *arguments: str) -> str:
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(EXAMPLES.parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "truncated mini-batch" not in completed.stderr  # SB3's warning on ragged batches
    return completed.stdout


SMOKE_TESTED = {
    "value_store_demo.py",
    "ppo_orchard_vector.py",
    "sb3_commons_parameter_sharing.py",
    "rllib_commons.py",
    "torchrl_commons.py",
    "cleanrl_ppo_orchard.py",  # smoke-tested in tests/test_examples_rl.py
}


def test_every_example_is_smoke_tested():
    assert {path.name for path in EXAMPLES.glob("*.py")} == SMOKE_TESTED


def test_value_store_demo():
    assert "stress" in run_example("value_store_demo.py")


@pytest.mark.slow
def test_ppo_on_the_native_vector_orchard():
    out = run_example(
        "ppo_orchard_vector.py",
        *("--num-envs", "8", "--total-timesteps", "512", "--n-steps", "16"),
        *("--episode-length", "20", "--eval-episodes", "4"),
    )
    assert "frames/s" in out
    assert "mean episode return: PPO" in out
    assert ", greedy on wanting " in out


@pytest.mark.slow
def test_sb3_parameter_sharing_on_commons():
    out = run_example(
        "sb3_commons_parameter_sharing.py",
        *("--n-agents", "3", "--n-envs", "1", "--max-cycles", "10"),
        *("--total-timesteps", "384", "--eval-episodes", "1"),
    )
    assert "shared PPO" in out
    assert ", greedy on wanting " in out


@pytest.mark.slow
def test_rllib_ppo_on_commons():
    pytest.importorskip("ray.rllib", reason="RLlib is in the rllib extra")
    pytest.importorskip("tree", reason="RLlib needs dm-tree (the rllib extra)")
    out = run_example(
        "rllib_commons.py",
        *("--n-agents", "3", "--max-cycles", "10", "--iterations", "1", "--batch-size", "60"),
    )
    assert "iteration 1: mean episode return" in out


@pytest.mark.slow
def test_torchrl_ppo_on_commons():
    pytest.importorskip("torchrl", reason="TorchRL is in the test extra")
    out = run_example(
        "torchrl_commons.py",
        *("--n-agents", "3", "--max-cycles", "10", "--iterations", "2"),
        *("--frames-per-batch", "40", "--minibatch-size", "15", "--epochs", "2"),
        *("--eval-episodes", "2"),
    )
    assert "iteration 2: mean episode return per agent" in out
    pattern = r"over 2 episodes, .*: trained \d+\.\d \(most likely action \d+\.\d\), random \d+"
    assert re.search(pattern, out), out
