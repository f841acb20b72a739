"""Time one full value-store step (decay + consume + modulation + mood/stress + learning).

Prints microseconds per step and nanoseconds per agent for populations of 1, 10, 1 000 and
100 000 agents x 6 values, with the issue's goals beside them. Every step has each agent
consume one random value, and load, rest and valence on a share of the agents.

Run: ``python benchmarks/values.py``
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from valuegym.values import ValueProfile, ValueStore


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


GOALS_US_PER_STEP = {1: 10.0, 10: 30.0}
GOAL_NS_PER_AGENT_AT_100K = 150.0


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


def time_population(n_agents: int, options: Options) -> float:
    """Seconds per store step for ``n_agents`` agents."""
    rng = np.random.default_rng(options.seed)
    store = make_store(n_agents, options.n_values)
    n_inputs = 64
    consumptions = np.zeros((n_inputs, n_agents, options.n_values))
    for c in consumptions:
        c[np.arange(n_agents), rng.integers(0, options.n_values, n_agents)] = 1.0
    loads = rng.exponential(0.5, (n_inputs, n_agents)) * (rng.random((n_inputs, n_agents)) < 0.3)
    rests = rng.exponential(0.5, (n_inputs, n_agents)) * (rng.random((n_inputs, n_agents)) < 0.2)
    valences = rng.normal(0, 1, (n_inputs, n_agents)) * (rng.random((n_inputs, n_agents)) < 0.1)
    for j in range(3):  # compile and warm up
        store.step(consumptions[j], load=loads[j], rest=rests[j], valence=valences[j])
    steps = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < options.min_seconds:
        for j in range(n_inputs):
            store.step(consumptions[j], load=loads[j], rest=rests[j], valence=valences[j])
        steps += n_inputs
    return elapsed / steps


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


if __name__ == "__main__":
    main()
