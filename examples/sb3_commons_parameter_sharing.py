"""One SB3 PPO policy for every agent of Commons (parameter sharing through SuperSuit).

SuperSuit turns each agent of a PettingZoo Parallel env into one copy of a vector env. Its own
tutorial recipe crashes once PPO gets a seed (``'ConcatVecEnv' object has no attribute
'seed'``); :class:`valuegym.agents.SharedVecEnv` is the fix: wrap SuperSuit's concatenated
env in it instead of asking SuperSuit for an SB3 base class.

Run: ``python examples/sb3_commons_parameter_sharing.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

import numpy as np
import pettingzoo
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecMonitor
from supersuit import concat_vec_envs_v1, pettingzoo_env_to_vec_env_v1

import valuegym  # noqa: F401 - registers the ids
from valuegym.agents import SharedVecEnv


@dataclass(frozen=True)
class Args:
    """Options of the run."""

    n_agents: int = 5
    """agents in each Commons"""
    n_envs: int = 4
    """Commons copies (each adds n_agents entries to the vector env)"""
    max_cycles: int = 100
    """steps per episode"""
    total_timesteps: int = 100_000
    """training agent-steps"""
    eval_episodes: int = 5
    """evaluation episodes, on seeds seed + 1000 + i"""
    seed: int = 0
    """seed of the envs and the policy"""


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in fields(Args):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=int, default=field.default)
    return Args(**vars(parser.parse_args()))


def make_env(args: Args) -> pettingzoo.ParallelEnv:
    return pettingzoo.make(
        "parallel", "valuegym/Commons-v0", n_agents=args.n_agents, max_cycles=args.max_cycles
    )


def mean_return(act, args: Args) -> float:
    """Mean (over agents and episodes) episode return of ``act(observation) -> action``."""
    env, totals = make_env(args), []
    for episode in range(args.eval_episodes):
        observations, _ = env.reset(seed=args.seed + 1000 + episode)
        total = 0.0
        while env.agents:
            actions = {agent: act(observations[agent]) for agent in env.agents}
            observations, rewards, *_ = env.step(actions)
            total += sum(rewards.values())
        totals.append(total / args.n_agents)
    return float(np.mean(totals))


def main() -> None:
    args = parse_args()
    vector = pettingzoo_env_to_vec_env_v1(make_env(args))
    vec_env = VecMonitor(SharedVecEnv(concat_vec_envs_v1(vector, args.n_envs, num_cpus=0)))
    model = PPO(
        "MlpPolicy",
        vec_env,
        n_steps=128,
        batch_size=min(128 * args.n_envs * args.n_agents, 1024),
        seed=args.seed,  # the seed SuperSuit's recipe cannot take
        device="cpu",
    )
    model.learn(total_timesteps=args.total_timesteps)
    rng = np.random.default_rng(args.seed)
    trained = mean_return(lambda obs: int(model.predict(obs, deterministic=True)[0]), args)
    random = mean_return(lambda obs: int(rng.integers(7)), args)
    print(f"mean episode return per agent: shared PPO {trained:.2f}, random {random:.2f}")


if __name__ == "__main__":
    main()
