"""The baseline-table benchmark (benchmarks/learning.py) runs its seconds-long --quick version."""

import importlib.util
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "learning.py"


@pytest.fixture(scope="module")
def learning():
    spec = importlib.util.spec_from_file_location("learning_benchmark", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_interval_is_the_t_interval_over_seeds(learning):
    mean, low, high = learning.interval([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert high - mean == pytest.approx(4.302653 / 3**0.5, rel=1e-5)
    assert mean - low == pytest.approx(high - mean)


def test_baselines_take_the_built_env(learning):
    import gymnasium
    import pettingzoo

    orchard = gymnasium.make("valuegym/Orchard-v0")
    commons = pettingzoo.make("parallel", "valuegym/Commons-v0")
    assert set(learning.BASELINES) == {
        "random",
        "greedy-on-wanting",
        "softmax-on-wanting",
        "planner",
    }
    assert learning.BASELINES["random"](orchard).n_actions == 5
    assert learning.BASELINES["random"](commons).n_actions == 7
    planner = learning.BASELINES["planner"](orchard)  # plans on the env it is given
    _, info = orchard.reset(seed=0)
    assert planner.act(None, info) in range(5)


@pytest.mark.slow
def test_quick_run_prints_every_policy_with_an_interval_and_writes_curves(
    learning, tmp_path, capsys
):
    envs = ["valuegym/Orchard-v0", "valuegym/Commons-v0"]
    learning.main(["--quick", "--envs", *envs, "--algorithms", "ppo", "--output", str(tmp_path)])
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines()[2:-1]]
    heuristics = ["random", "greedy-on-wanting", "softmax-on-wanting"]
    policies = {  # the planner plans for one agent: single-agent envs only
        "valuegym/Orchard-v0": [*heuristics, "planner", "ppo"],
        "valuegym/Commons-v0": [*heuristics, "ppo"],
    }
    assert [(row[0].strip("| "), row[1]) for row in rows] == [
        (env, policy) for env in envs for policy in policies[env]
    ]
    for row in rows:
        mean, interval = row[2].split(" ", 1)
        low, high = (float(x) for x in interval.strip("[]").split(", "))
        assert low <= float(mean) <= high
        assert row[4] == "2"  # seeds
    greedy_commons = rows[6]
    assert greedy_commons[3] == "0.00"  # greedy empties the resource: no episode lasts
    for env in ("Orchard-v0", "Commons-v0"):
        assert (tmp_path / f"{env}.png").read_bytes()[:4] == b"\x89PNG"
