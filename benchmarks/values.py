"""Time one full value-store step (decay + consume + modulation + mood/stress + learning).

Prints microseconds per step and nanoseconds per agent for populations of 1, 10, 1 000 and
100 000 agents x 6 values, with the issues' goals beside them. Every step has each agent
consume one random value, and load, rest and valence on a share of the agents.

Then the serial kernel against the parallel one at 1 000 agents (issue 15: serial <= 150 ns per
agent), each forced through ``kernels.PARALLEL_THRESHOLD``, interleaved so that load from other
processes hits both alike, and the same at a few populations around the threshold. Every number
is a median over repetitions.

Run: ``python benchmarks/values.py``
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numba
import numpy as np

from valuegym.values import ValueProfile, ValueStore, kernels


@dataclass(frozen=True)
class Options:
    """Benchmark options."""

    populations: tuple[int, ...] = (1, 10, 1_000, 100_000)
    """Numbers of agents to time."""
    n_values: int = 6
    """Values per agent."""
    min_seconds: float = 1.0
    """Time spent per population, at least."""
    seed: int = 0
    """Seed of the random inputs."""
    kernel_populations: tuple[int, ...] = (1_000, 500, 2_000, 5_000, 20_000)
    """Populations of the serial-against-parallel comparison (the first carries the goal)."""
    kernel_seconds: float = 0.05
    """Time per kernel per repetition, at least."""
    kernel_repeats: int = 15
    """Interleaved repetitions of the kernel comparison."""


GOALS_US_PER_STEP = {1: 10.0, 10: 30.0}
GOAL_NS_PER_AGENT_AT_100K = 150.0
GOAL_SERIAL_NS_PER_AGENT_AT_1K = 150.0


def make_store(n_agents: int, n_values: int) -> ValueStore:
    curves = ["log", "isoelastic", "saturating"]
    values = {
        f"value{k}": {
            "curve": curves[k % 3],
            "stress_weight": 0.5 * (k % 2),
            **({"eta": 1.5} if curves[k % 3] == "isoelastic" else {}),
        }
        for k in range(n_values)
    }
    return ValueStore.from_profile(ValueProfile.from_mapping({"values": values}), n_agents)


def make_inputs(n_agents: int, options: Options, n_inputs: int = 64) -> tuple[np.ndarray, ...]:
    """``n_inputs`` random steps' consumption, load, rest and valence."""
    rng = np.random.default_rng(options.seed)
    consumptions = np.zeros((n_inputs, n_agents, options.n_values))
    for c in consumptions:
        c[np.arange(n_agents), rng.integers(0, options.n_values, n_agents)] = 1.0
    loads = rng.exponential(0.5, (n_inputs, n_agents)) * (rng.random((n_inputs, n_agents)) < 0.3)
    rests = rng.exponential(0.5, (n_inputs, n_agents)) * (rng.random((n_inputs, n_agents)) < 0.2)
    valences = rng.normal(0, 1, (n_inputs, n_agents)) * (rng.random((n_inputs, n_agents)) < 0.1)
    return consumptions, loads, rests, valences


def time_steps(store: ValueStore, inputs: tuple[np.ndarray, ...], min_seconds: float) -> float:
    """Seconds per store step, over at least ``min_seconds`` (and one round of the inputs)."""
    consumptions, loads, rests, valences = inputs
    steps = 0
    start = time.perf_counter()
    while True:
        for j in range(len(consumptions)):
            store.step(consumptions[j], load=loads[j], rest=rests[j], valence=valences[j])
        steps += len(consumptions)
        if (elapsed := time.perf_counter() - start) >= min_seconds:
            return elapsed / steps


def time_population(n_agents: int, options: Options) -> float:
    """Seconds per store step for ``n_agents`` agents."""
    store = make_store(n_agents, options.n_values)
    inputs = make_inputs(n_agents, options)
    time_steps(store, inputs, 0.0)  # compile and warm up
    return time_steps(store, inputs, options.min_seconds)


def compare_kernels(n_agents: int, options: Options) -> tuple[float, float]:
    """Median seconds per store step with the serial and with the parallel kernel, interleaved."""
    store = make_store(n_agents, options.n_values)
    inputs = make_inputs(n_agents, options, n_inputs=8)
    default = kernels.PARALLEL_THRESHOLD
    serial: list[float] = []
    parallel: list[float] = []
    try:
        for repeat in range(options.kernel_repeats + 1):
            for threshold, times in ((n_agents + 1, serial), (0, parallel)):
                kernels.PARALLEL_THRESHOLD = threshold
                seconds = time_steps(store, inputs, options.kernel_seconds)
                if repeat:  # the first round compiles and warms up
                    times.append(seconds)
    finally:
        kernels.PARALLEL_THRESHOLD = default
    return statistics.median(serial), statistics.median(parallel)


def main(options: Options = Options()) -> None:
    print(f"value store step, {options.n_values} values per agent")
    print(f"{'agents':>8} {'us/step':>10} {'ns/agent':>10}  goal")
    for n_agents in options.populations:
        seconds = time_population(n_agents, options)
        us_per_step = seconds * 1e6
        ns_per_agent = seconds * 1e9 / n_agents
        if n_agents in GOALS_US_PER_STEP:
            goal = GOALS_US_PER_STEP[n_agents]
            verdict = f"<= {goal:g} us/step: {'met' if us_per_step <= goal else 'MISSED'}"
        elif n_agents == 100_000:
            goal = GOAL_NS_PER_AGENT_AT_100K
            verdict = f"<= {goal:g} ns/agent: {'met' if ns_per_agent <= goal else 'MISSED'}"
        else:
            verdict = ""
        print(f"{n_agents:>8} {us_per_step:>10.2f} {ns_per_agent:>10.1f}  {verdict}")
    print(
        f"\nserial against parallel kernel ({numba.get_num_threads()} threads), medians "
        f"of {options.kernel_repeats} interleaved repetitions; PARALLEL_THRESHOLD = "
        f"{kernels.PARALLEL_THRESHOLD}"
    )
    print(
        f"{'agents':>8} {'serial ns/agent':>16} {'parallel ns/agent':>18} {'serial/parallel':>16}"
    )
    for index, n_agents in enumerate(options.kernel_populations):
        serial, parallel = compare_kernels(n_agents, options)
        serial_ns, parallel_ns = serial * 1e9 / n_agents, parallel * 1e9 / n_agents
        verdict = ""
        if index == 0:
            goal = GOAL_SERIAL_NS_PER_AGENT_AT_1K
            met = "met" if serial_ns <= goal else "MISSED"
            verdict = f"  serial <= {goal:g} ns/agent: {met}"
        print(
            f"{n_agents:>8} {serial_ns:>16.1f} {parallel_ns:>18.1f} "
            f"{serial / parallel:>15.2f}x{verdict}"
        )


if __name__ == "__main__":
    main()
