"""Sweep throughput: a 16-cell sweep on 2 workers against running the cells one after another.

The light scenario is heuristic (softmax) agents in Orchard. The baseline runs every cell in
this process, one after the other, with the same runner; the local executor (a process pool)
and the Ray executor (a local Ray instance, started before the clock as a cluster would be)
each run the same 16 cells on 2 workers. Prints cells per second and each executor's ratio to
the baseline (goal: at least 1.7x).

Run: ``python benchmarks/sweep.py``
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from valuegym.scenarios.runner import run_scenario
from valuegym.scenarios.sweeps import plan_sweep, run_sweep
from valuegym.scenarios.validation import validate_scenario


@dataclass(frozen=True)
class Options:
    """Benchmark options."""

    workers: int = 2
    """Workers of each executor."""
    steps: int = 2000
    """Steps per episode of each cell (sets how long a cell takes)."""
    episodes: int = 2
    """Episodes per cell."""
    goal: float = 1.7
    """Target ratio of executor throughput to one-after-another throughput."""


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


def one_after_another(options: Options, folder: Path) -> float:
    plan = plan_sweep(validate_scenario(scenario_data(options)))
    start = time.perf_counter()
    for cell, scenario in plan:
        run_scenario(scenario, folder / cell.cell_id, progress=False)
    return len(plan) / (time.perf_counter() - start)


def with_executor(options: Options, folder: Path, executor: str) -> float:
    scenario = validate_scenario(scenario_data(options))
    if executor == "ray":
        import ray

        # Started before the clock, as a cluster is before a sweep joins it.
        ray.init(num_cpus=options.workers, include_dashboard=False, log_to_driver=False)
    try:
        start = time.perf_counter()
        outcome = run_sweep(
            scenario, folder, executor=executor, workers=options.workers, progress=False
        )
        elapsed = time.perf_counter() - start
    finally:
        if executor == "ray":
            ray.shutdown()
    if not outcome.complete:
        raise RuntimeError(f"{executor} sweep failed: {outcome.failures}")
    return len(outcome.cells) / elapsed


def main(options: Options = Options()) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        baseline = one_after_another(options, root / "sequential")
        print(f"one after another: {baseline:6.2f} cells/s")
        for executor in ("local", "ray"):
            rate = with_executor(options, root / executor, executor)
            ratio = rate / baseline
            verdict = "met" if ratio >= options.goal else "MISSED"
            print(
                f"{executor:>5} executor, {options.workers} workers: {rate:6.2f} cells/s "
                f"= {ratio:4.2f}x one after another (goal >= {options.goal}x: {verdict})"
            )


if __name__ == "__main__":
    main()
