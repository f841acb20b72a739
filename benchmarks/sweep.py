"""Sweep throughput: 16 cells on 2 workers against the machine's real parallel capacity.

The light scenario is heuristic (softmax) agents in Orchard. The baseline is the same 16 cells
run as two independent processes side by side (8 cells each, one after the other, with the same
runner), modules imported before the clock starts: what two cores give two processes that share
nothing, measured in the same run. The local executor (a process pool, its worker start-up on
the clock) and the Ray executor (a local Ray instance started before the clock, as a cluster
would be) each run the same cells on 2 workers. The three take turns ``repeats`` times; each
executor's rate is divided by the baseline of the same turn (the machine may be shared and its
load drifts); the median of those ratios is printed against the goal (at least 0.9x).

The Ray instance is :func:`~valuegym.runs.sweeps.start_local_ray`'s, as ``run_sweep`` starts
it: workers at niceness 0 that have imported the runner. A fourth row starts its workers at
Ray's default niceness 15, where cells yield to every other process on a shared machine.

Run: ``python benchmarks/sweep.py``
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from valuegym.runs.sweeps import plan_sweep, run_sweep, start_local_ray
from valuegym.scenarios.validation import validate_scenario

#: One side-by-side process: imports, says "ready", waits for a line, runs its cells.
SIDE_PROCESS = """
import json, sys
from valuegym.runs.runner import run_scenario
from valuegym.scenarios.validation import validate_scenario
cells = json.loads(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
for name, data in cells:
    run_scenario(validate_scenario(data), sys.argv[2] + "/" + name, progress=False)
"""


#: The measured executors and how the table names them.
EXECUTORS = {
    "local": "local executor",
    "ray": "ray executor",
    "ray-nice15": "ray, workers at Ray's default niceness 15",
}


@dataclass(frozen=True)
class Options:
    """Benchmark options."""

    workers: int = 2
    """Workers of each executor (and processes side by side)."""
    steps: int = 2000
    """Steps per episode of each cell (sets how long a cell takes)."""
    episodes: int = 2
    """Episodes per cell."""
    repeats: int = 5
    """Turns of the three measurements; the median of each executor's ratios is kept."""
    settle: float = 5.0
    """Seconds a fresh Ray instance is given to start its workers before the clock."""
    goal: float = 0.9
    """Target ratio of executor throughput to that of independent processes side by side."""


def scenario_data(options: Options) -> dict:
    return {
        "name": "sweep-benchmark",
        "seed": 0,
        "env": {"id": "valuegym/Orchard-v0", "args": {"episode_length": options.steps}},
        "agents": [{"id": "eater", "kind": "softmax"}],
        "episodes": options.episodes,
        "max_steps": options.steps,
        "sweep": {
            "grid": {"agents.0.affect.stress_baseline": [0.0, 0.25, 0.5, 0.75]},
            "seeds": 4,
        },
    }


def side_by_side(options: Options, folder: Path) -> float:
    """Cells/s of independent processes, each running its share of the cells in turn."""
    plan = plan_sweep(validate_scenario(scenario_data(options)))
    cells = [(cell.cell_id, scenario.to_mapping()) for cell, scenario in plan]
    shares = [cells[index :: options.workers] for index in range(options.workers)]
    # The thread limits a sweep gives its local workers (one core's share each).
    threads = str(max(1, (os.cpu_count() or 1) // options.workers))
    limits = {
        name: threads for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SIDE_PROCESS, json.dumps(share), str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **limits},
        )
        for share in shares
    ]
    for process in processes:
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("a side-by-side process failed to start")
    start = time.perf_counter()
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in processes:
        if process.wait() != 0:
            raise RuntimeError("a side-by-side process failed")
    return len(cells) / (time.perf_counter() - start)


def with_executor(options: Options, folder: Path, executor: str) -> float:
    scenario = validate_scenario(scenario_data(options))
    if executor.startswith("ray"):
        import ray

        # Started before the clock, as a cluster is before a sweep joins it; its workers start
        # and import the runner off the clock too, as the side-by-side processes do. (A
        # runtime_env with a worker set-up hook that imports valuegym was tried: Ray then
        # starts dedicated workers on the clock, 0.76x.)
        start_local_ray(options.workers, worker_niceness=15 if executor == "ray-nice15" else 0)
        time.sleep(options.settle)
    try:
        start = time.perf_counter()
        outcome = run_sweep(
            scenario,
            folder,
            executor="ray" if executor.startswith("ray") else "local",
            workers=options.workers,
            progress=False,
        )
        elapsed = time.perf_counter() - start
    finally:
        if executor.startswith("ray"):
            ray.shutdown()
    if not outcome.complete:
        raise RuntimeError(f"{executor} sweep failed: {outcome.failures}")
    return len(outcome.cells) / elapsed


def main(options: Options = Options()) -> None:
    rates: dict[str, list[float]] = {name: [] for name in ("side by side", *EXECUTORS)}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(options.repeats):
            root = Path(scratch) / str(repeat)
            rates["side by side"].append(side_by_side(options, root / "side"))
            for executor in EXECUTORS:
                rates[executor].append(with_executor(options, root / executor, executor))
    baseline = statistics.median(rates["side by side"])
    print(
        f"{options.workers} independent processes side by side: {baseline:6.2f} cells/s "
        f"(median of {options.repeats}: {', '.join(f'{r:.2f}' for r in rates['side by side'])})"
    )
    for executor in EXECUTORS:
        # Each turn's ratio to the baseline measured just before it: the machine's load drifts
        # between turns, and a ratio within one turn cancels most of that drift.
        ratios = [r / b for r, b in zip(rates[executor], rates["side by side"], strict=True)]
        ratio = statistics.median(ratios)
        verdict = "met" if ratio >= options.goal else "MISSED"
        print(
            f"{EXECUTORS[executor]}, {options.workers} workers: "
            f"{statistics.median(rates[executor]):6.2f} cells/s; median ratio to the same turn's "
            f"side by side {ratio:4.2f}x (goal >= {options.goal}x: {verdict}; turns: "
            f"{', '.join(f'{r:.2f}x' for r in ratios)})"
        )


if __name__ == "__main__":
    main()
