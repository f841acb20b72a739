"""The planning baseline against greedy on wanting, per env, with 95% intervals over seeds.

Issue 25 item 5's goal: on Orchard (the ``orchard_variety`` scenario's env and profile, 100
steps) the planner's interval lies above greedy-on-wanting's. Inbox (``inbox_hammered``'s env
and profile) and Commons (``commons_calm_vs_stressed``'s env and six profiles, every agent
greedy but agent 0, or every agent a planner) are measured once, for the note. Each episode's
return is one unit (one seed); the cost is wall time per env step (every agent's action).
Run ``python benchmarks/planner.py`` (``--help`` for the options).

Measured (2 cores shared with other jobs, so the times are rough; returns are exact):
Orchard greedy 34.54 [34.49, 34.60], planner (h=10, d=0.8) 35.85 [35.80, 35.91] at about
0.3 ms per step batched (2.6 ms stepping the scalar env), depth 3 with d=0.9 36.21 [36.17,
36.24], 20 seeds; Inbox greedy 11.26 [10.89, 11.64], planner 13.73 [13.25, 14.20], 5 seeds;
Commons, agent 0's return: 3.31 all greedy, 3.38 when it plans (the greedy harvesters
collapse the resource at step 6 either way), 6.61 [5.11, 8.11] all softmax, 6.14 [4.89, 7.39]
when it plans among softmax co-players.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium
import pettingzoo

import valuegym  # noqa: F401 - registers the ids
from valuegym.agents.heuristic import GreedyAgent, RandomAgent, SoftmaxAgent
from valuegym.agents.planner import PlannerAgent
from valuegym.analysis.statistics import mean_interval
from valuegym.runs.population import env_arguments
from valuegym.scenarios import load_scenario

SCENARIOS = Path(__file__).parents[1] / "scenarios"


def single_env(scenario: str) -> Any:
    """The scenario's single-agent env, built with its arguments and its agent's profile."""
    loaded = load_scenario(SCENARIOS / scenario)
    return gymnasium.make(loaded.env.id, **env_arguments(loaded))


def single_episode(env: Any, agent: Any, seed: int) -> tuple[float, int]:
    """One episode's return and its number of actions."""
    observation, info = env.reset(seed=seed)
    agent.reset(seed)
    total, steps = 0.0, 0
    while True:
        observation, reward, terminated, truncated, info = env.step(agent.act(observation, info))
        total, steps = total + float(reward), steps + 1
        if terminated or truncated:
            return total, steps


def commons_episode(
    env: Any, background: str, planners: int, options: dict[str, Any], seed: int
) -> tuple[float, int]:
    """Agent 0's return in Commons and the steps: the first ``planners`` agents plan.

    The others are ``background`` agents (greedy or softmax on wanting); planners simulate
    their co-players as fresh background agents (planners as background agents too).
    """
    agents = list(env.possible_agents)

    def heuristic(i: int) -> Any:
        return GreedyAgent() if background == "greedy" else SoftmaxAgent(seed=seed * 100 + i)

    policies = {
        agent: PlannerAgent(
            env,
            agent=agent,
            co_players={a: heuristic(100 + j) for j, a in enumerate(agents) if a != agent},
            seed=seed + i,
            **options,
        )
        if i < planners
        else heuristic(i)
        for i, agent in enumerate(agents)
    }
    observations, infos = env.reset(seed=seed)
    total, steps = 0.0, 0
    while env.agents:
        actions = {a: policies[a].act(observations[a], infos[a]) for a in env.agents}
        observations, rewards, _, _, infos = env.step(actions)
        total, steps = total + rewards[agents[0]], steps + 1
    return total, steps


def measure(name: str, episode: Callable[[int], tuple[float, int]], seeds: int) -> None:
    """Print the mean return over ``seeds`` episodes with its 95% interval, and time per step."""
    returns, steps, start = [], 0, time.perf_counter()
    for seed in range(seeds):
        total, taken = episode(seed)
        returns.append(total)
        steps += taken
    seconds = time.perf_counter() - start
    estimate = mean_interval(returns, label=name, unit="seeds")
    print(
        f"  {name:<46} {estimate.value:6.2f} [{estimate.low:6.2f}, {estimate.high:6.2f}]"
        f"  {1000 * seconds / steps:8.3f} ms/step  {steps / seeds:5.1f} steps  ({seeds} seeds)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="Episodes (seeds) per row.")
    parser.add_argument("--horizon", type=int, default=10, help="Planner horizon.")
    parser.add_argument("--rollouts", type=int, default=4, help="Planner rollouts per action.")
    parser.add_argument("--discount", type=float, default=0.8, help="Planner discount.")
    parser.add_argument(
        "--other-seeds", type=int, default=5, help="Seeds for Inbox and Commons rows."
    )
    args = parser.parse_args()
    options = {"horizon": args.horizon, "rollouts": args.rollouts, "discount": args.discount}
    label = f"planner h={args.horizon} r={args.rollouts} d={args.discount:g}"

    print("Orchard (orchard_variety: 100 steps), return per episode:")
    orchard = single_env("orchard_variety.yaml")
    single_episode(orchard, GreedyAgent(), 0)  # untimed: loads the compiled code
    measure("random", lambda s: single_episode(orchard, RandomAgent(5, seed=s), s), args.seeds)
    measure("greedy on wanting", lambda s: single_episode(orchard, GreedyAgent(), s), args.seeds)
    for name, settings in (
        (f"{label}, batched (vector transition)", options),
        (f"{label}, scalar env get/set_state, r=1", {**options, "batched": False, "rollouts": 1}),
        ("planner, undiscounted (d=1), batched", {**options, "discount": 1.0}),
        ("planner, horizon 20, batched", {**options, "horizon": 20}),
        ("planner depth 3 d=0.9, batched", {**options, "depth": 3, "discount": 0.9}),
    ):
        measure(
            name,
            lambda s, o=settings: single_episode(orchard, PlannerAgent(orchard, seed=s, **o), s),
            args.seeds,
        )

    print("Inbox (inbox_hammered: 30 steps), return per episode:")
    inbox = single_env("inbox_hammered.yaml")
    single_episode(inbox, GreedyAgent(), 0)
    seeds = args.other_seeds
    measure("greedy on wanting", lambda s: single_episode(inbox, GreedyAgent(), s), seeds)
    measure(
        label, lambda s: single_episode(inbox, PlannerAgent(inbox, seed=s, **options), s), seeds
    )

    print("Commons (commons_calm_vs_stressed: 6 agents, <= 150 steps), agent 0 return:")
    loaded = load_scenario(SCENARIOS / "commons_calm_vs_stressed.yaml")
    commons = pettingzoo.make("parallel", loaded.env.id, **env_arguments(loaded))
    commons_episode(commons, "greedy", 0, options, 0)
    for name, background, planners in (
        ("all greedy", "greedy", 0),
        ("agent 0 plans, others greedy", "greedy", 1),
        ("all plan (co-players simulated greedy)", "greedy", 6),
        ("all softmax", "softmax", 0),
        ("agent 0 plans, others softmax", "softmax", 1),
    ):
        measure(
            name,
            lambda s, b=background, p=planners: commons_episode(commons, b, p, options, s),
            seeds,
        )


if __name__ == "__main__":
    main()
