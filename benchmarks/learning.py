"""Baseline table: trained PPO (and DQN) against random and wanting-driven heuristics.

For every trainable env, trains each algorithm with its tuned settings
(:mod:`valuegym.agents.tuned`) from several seeds, evaluates every policy on the same held-out
episodes, and prints mean episode returns with 95% t-intervals over training seeds (the
independent unit; each seed's number is its mean over ``--eval-episodes`` episodes, baselines
on the same episodes). Multi-agent envs train one policy shared by every agent (parameter
sharing); their return is the mean over agents, and ``alive`` the share of evaluation
episodes in which the resource lasted to the last step. Learning curves (each training
episode's return, binned, one line per seed) go to ``--output`` as PNG.

Goals (issue 25), 2 shared cores: PPO's interval above greedy-on-wanting's on Orchard within
50k steps and on Inbox within 200k; on Commons (>= 3 seeds) the trained population keeps the
resource alive for the whole episode and beats the greedy population's return within 1M
agent-steps.

Run ``python benchmarks/learning.py --output /tmp/curves`` (``--help`` for the options;
``--quick`` is a seconds-long smoke run).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pettingzoo
import torch
from scipy import stats
from stable_baselines3.common.callbacks import BaseCallback

import valuegym  # noqa: F401 - registers the ids
from valuegym.agents.heuristic import Agent, GreedyAgent, RandomAgent, SoftmaxAgent
from valuegym.agents.parameter_sharing import make_shared_env
from valuegym.agents.planner import PlannerAgent
from valuegym.agents.training import (
    PolicyAgent,
    TrainingConfig,
    build_model,
    make_training_env,
)
from valuegym.agents.tuned import fit_rollout, tuned_settings

ENVS = (
    "valuegym/Orchard-v0",
    "valuegym/Inbox-v0",
    "valuegym/Commons-v0",
    "valuegym/Conversation-v0",
    "valuegym/Conversation-v1",
)
MULTI_AGENT = ("valuegym/Commons-v0", "valuegym/Conversation-v0", "valuegym/Conversation-v1")
#: Algorithms per env: DQN where a single agent has a discrete action space.
ALGORITHMS = {
    "valuegym/Orchard-v0": ("ppo", "dqn"),
    "valuegym/Inbox-v0": ("ppo", "dqn"),
    "valuegym/Commons-v0": ("ppo",),
    "valuegym/Conversation-v0": ("ppo",),
    "valuegym/Conversation-v1": ("ppo",),
}


def _n_actions(env: Any) -> int:
    if isinstance(env, pettingzoo.ParallelEnv):
        return int(env.action_space(env.possible_agents[0]).n)
    return int(env.action_space.n)


#: Baseline agents by name; each factory gets the built env (a Gymnasium env, or a PettingZoo
#: Parallel env for multi-agent ids) so that agents needing it (a planner) plug in here.
BASELINES: dict[str, Callable[[Any], Agent]] = {
    "random": lambda env: RandomAgent(_n_actions(env)),
    "greedy-on-wanting": lambda env: GreedyAgent(),
    "softmax-on-wanting": lambda env: SoftmaxAgent(),
    # Model-predictive control on copies of the env's own state: a reference for how far
    # trained policies are from planning, not a fair competitor (it sees the whole state).
    # Single-agent envs only here; benchmarks/planner.py seats one planner per Commons agent.
    "planner": lambda env: PlannerAgent(env, seed=0),
}


@dataclass(frozen=True)
class Args:
    """Benchmark options."""

    envs: Sequence[str] = ENVS
    """env ids to benchmark"""
    seeds: int = 5
    """training seeds per single-agent env (the unit of the intervals)"""
    multi_agent_seeds: int = 3
    """training seeds per multi-agent env"""
    timesteps: int = 0
    """training steps per run (agent-steps in multi-agent envs); 0: each env's tuned budget"""
    eval_episodes: int = 10
    """evaluation episodes per seed, the same for every policy"""
    output: Path | None = None
    """folder for the learning-curve PNGs (none written when not given)"""
    quick: bool = False
    """seconds-long smoke run: 2 seeds, tiny budgets, short episodes, 2 evaluation episodes"""
    algorithms: Sequence[str] = field(default_factory=lambda: ("ppo", "dqn"))
    """algorithms to train where the env suits them"""


def parse_args(argv: Sequence[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(ENVS), help="env ids (default: all)")
    parser.add_argument("--seeds", type=int, default=5, help="training seeds per env (>= 2)")
    parser.add_argument(
        "--multi-agent-seeds", type=int, default=3, help="training seeds per multi-agent env"
    )
    parser.add_argument(
        "--timesteps", type=int, default=0, help="training steps per run (0: the tuned budget)"
    )
    parser.add_argument("--eval-episodes", type=int, default=10, help="episodes per seed")
    parser.add_argument("--output", type=Path, help="folder for the learning-curve PNGs")
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run")
    parser.add_argument(
        "--algorithms", nargs="+", default=["ppo", "dqn"], help="algorithms (ppo, dqn)"
    )
    args = Args(**{f.name: getattr(parser.parse_args(argv), f.name) for f in fields(Args)})
    unknown = set(args.envs) - set(ENVS)
    if unknown:
        parser.error(f"--envs: {sorted(unknown)} are not trainable here (choose from {ENVS})")
    if args.quick:
        args = replace(args, seeds=2, multi_agent_seeds=2, timesteps=256, eval_episodes=2)
    if min(args.seeds, args.multi_agent_seeds) < 2:
        parser.error("--seeds: an interval over seeds needs at least 2")
    return args


def env_kwargs(env_id: str, quick: bool) -> dict[str, Any]:
    """Default envs; the quick run shortens episodes so that a few finish."""
    if not quick:
        return {}
    if env_id in MULTI_AGENT:
        return {"n_agents": 3, "max_cycles": 16}
    return {"episode_length": 16, "max_episode_steps": 16}


def make_env(env_id: str, kwargs: dict[str, Any]) -> Any:
    if env_id in MULTI_AGENT:
        return pettingzoo.make("parallel", env_id, **kwargs)
    return gymnasium.make(env_id, **kwargs)


@dataclass(frozen=True)
class Score:
    """One policy's evaluation from one seed: mean return and the share of full episodes."""

    mean_return: float
    alive: float


def score(env: Any, make_agent: Callable[[], Agent], seeds: Sequence[int]) -> Score:
    """Mean episode return (mean over agents) and the share of episodes run to truncation."""
    returns, full = [], []
    for seed in seeds:
        agent = make_agent()
        agent.reset(seed)
        if isinstance(env, pettingzoo.ParallelEnv):
            observations, infos = env.reset(seed=seed)
            total, truncated = 0.0, False
            while env.agents:
                actions = {name: agent.act(observations[name], infos[name]) for name in env.agents}
                observations, rewards, _, truncations, infos = env.step(actions)
                total += float(np.mean(list(rewards.values())))
                truncated = all(truncations.values())
        else:
            observation, info = env.reset(seed=seed)
            total, terminated, truncated = 0.0, False, False
            while not (terminated or truncated):
                observation, reward, terminated, truncated, info = env.step(
                    agent.act(observation, info)
                )
                total += float(reward)
        returns.append(total)
        full.append(bool(truncated))
    return Score(float(np.mean(returns)), float(np.mean(full)))


class Curve(BaseCallback):
    """Each finished training episode's return and the step it ended at."""

    def __init__(self) -> None:
        super().__init__()
        self.points: list[tuple[int, float]] = []

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", ()):
            if "episode" in info:
                self.points.append((self.num_timesteps, float(info["episode"]["r"])))
        return True


def train(env_id: str, algorithm: str, seed: int, args: Args) -> tuple[Agent, Curve, float]:
    settings = tuned_settings(env_id, algorithm)
    budget = args.timesteps or settings.total_timesteps
    kwargs = env_kwargs(env_id, args.quick)
    hyperparameters = dict(settings.hyperparameters)
    n_envs = 1 if args.quick else settings.n_envs
    if algorithm == "ppo":
        agents = len(make_env(env_id, kwargs).possible_agents) if env_id in MULTI_AGENT else 1
        hyperparameters = fit_rollout(hyperparameters, n_envs * agents, budget)
    elif args.quick:
        hyperparameters["learning_starts"] = 0
    config = TrainingConfig(
        algorithm=algorithm,
        total_timesteps=budget,
        n_envs=n_envs,
        seed=seed,
        hyperparameters=hyperparameters,
        env_kwargs=kwargs,
        normalize=settings.normalize,
    )
    make = make_shared_env if env_id in MULTI_AGENT else make_training_env
    curve = Curve()
    start = time.perf_counter()
    model = build_model(config, make(env_id, config)).learn(budget, callback=curve)
    return PolicyAgent(model), curve, time.perf_counter() - start


def interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and 95% t-interval over seeds."""
    array = np.asarray(values, dtype=np.float64)
    half = stats.t.ppf(0.975, len(array) - 1) * array.std(ddof=1) / np.sqrt(len(array))
    return float(array.mean()), float(array.mean() - half), float(array.mean() + half)


def plot(env_id: str, curves: dict[str, list[Curve]], lines: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for (algorithm, runs), colour in zip(curves.items(), ("C0", "C1"), strict=False):
        for index, run in enumerate(runs):
            if not run.points:
                continue
            steps, returns = np.asarray(run.points).T
            bins = np.linspace(0, steps.max(), 21)
            which = np.digitize(steps, bins[1:-1])
            centres = [steps[which == b].mean() for b in range(20) if (which == b).any()]
            means = [returns[which == b].mean() for b in range(20) if (which == b).any()]
            axes.plot(centres, means, colour, alpha=0.6, label=algorithm if index == 0 else None)
    for (name, value), style in zip(lines.items(), (":", "--", "-.", (0, (1, 4))), strict=False):
        axes.axhline(value, color="grey", linestyle=style, label=name)
    axes.set_xlabel("training steps" + (" (agent-steps)" if env_id in MULTI_AGENT else ""))
    axes.set_ylabel("episode return" + (" per agent" if env_id in MULTI_AGENT else ""))
    axes.set_title(f"{env_id}: training episodes' returns, one line per seed")
    axes.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def benchmark(env_id: str, args: Args) -> list[str]:
    """The table rows of one env (and its PNG)."""
    n_seeds = args.multi_agent_seeds if env_id in MULTI_AGENT else args.seeds
    kwargs = env_kwargs(env_id, args.quick)
    env = make_env(env_id, kwargs)
    scores: dict[str, list[Score]] = {}
    curves: dict[str, list[Curve]] = {}
    budgets: dict[str, str] = {}
    for seed in range(n_seeds):
        episodes = [10_000 + 100 * seed + i for i in range(args.eval_episodes)]
        for name, factory in BASELINES.items():
            if name == "planner" and env_id in MULTI_AGENT:
                continue
            scores.setdefault(name, []).append(score(env, lambda f=factory: f(env), episodes))
        for algorithm in ALGORITHMS[env_id]:
            if algorithm not in args.algorithms:
                continue
            agent, curve, seconds = train(env_id, algorithm, seed, args)
            curves.setdefault(algorithm, []).append(curve)
            scores.setdefault(algorithm, []).append(score(env, lambda a=agent: a, episodes))
            budget = args.timesteps or tuned_settings(env_id, algorithm).total_timesteps
            budgets[algorithm] = f"{budget} steps, {seconds:.0f} s per seed"
    env.close()
    rows = []
    for name, results in scores.items():
        mean, low, high = interval([s.mean_return for s in results])
        alive = np.mean([s.alive for s in results])
        rows.append(
            f"| {env_id} | {name} | {mean:.2f} [{low:.2f}, {high:.2f}] | {alive:.2f} | "
            f"{len(results)} | {budgets.get(name, '-')} |"
        )
    if args.output is not None:
        lines = {
            name: float(np.mean([s.mean_return for s in scores[name]]))
            for name in BASELINES
            if name in scores
        }
        plot(env_id, curves, lines, args.output / (env_id.split("/")[-1] + ".png"))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)  # small networks: more threads only contend on shared cores
    print(
        "| env | policy | mean return [95% interval over seeds] | alive | seeds | budget |\n"
        "|---|---|---|---|---|---|",
        flush=True,
    )
    for env_id in args.envs:
        for row in benchmark(env_id, args):
            print(row, flush=True)
    if args.output is not None:
        print(f"learning curves: {args.output}")


if __name__ == "__main__":
    main()
