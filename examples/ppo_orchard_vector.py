"""PPO on the native vector Orchard: thousands of copies in one array step, trained by SB3.

``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")`` builds the native vector
Orchard; :class:`valuegym.agents.GymnasiumVecEnv` hands it to Stable-Baselines3 as one ``VecEnv``
(SB3 refuses Gymnasium's vector envs, and ``make_vec_env`` would step one Python env per copy).
The script trains, prints frames/s, and compares the policy's mean episode return with random
actions on the same seeds.

Run: ``python examples/ppo_orchard_vector.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, fields

import gymnasium
import numpy as np
from stable_baselines3 import PPO

import valuegym  # noqa: F401 - registers the ids
from valuegym.agents import GymnasiumVecEnv


@dataclass(frozen=True)
class Args:
    """Options of the run."""

    num_envs: int = 256
    """Orchard copies stepped together"""
    total_timesteps: int = 200_000
    """training frames (env-steps over all copies)"""
    n_steps: int = 64
    """rollout length per copy between updates"""
    episode_length: int = 100
    """steps per Orchard episode"""
    eval_episodes: int = 32
    """episodes of the trained policy and of random actions, on the same seeds"""
    seed: int = 0
    """seed of the envs, the policy and the evaluation"""


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in fields(Args):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=int, default=field.default)
    return Args(**vars(parser.parse_args()))


def mean_return(policy, args: Args) -> float:
    """Mean episode return over ``eval_episodes`` copies run once, on seeds ``seed + i``."""
    envs = gymnasium.make_vec(
        "valuegym/Orchard-v0",
        args.eval_episodes,
        vectorization_mode="vector_entry_point",
        episode_length=args.episode_length,
    )
    observations, _ = envs.reset(seed=args.seed + 10_000)
    returns = np.zeros(args.eval_episodes)
    for _ in range(args.episode_length):
        observations, rewards, _, _, _ = envs.step(policy(observations))
        returns += rewards
    return float(returns.mean())


def main() -> None:
    args = parse_args()
    envs = gymnasium.make_vec(
        "valuegym/Orchard-v0",
        args.num_envs,
        vectorization_mode="vector_entry_point",
        episode_length=args.episode_length,
    )
    vec_env = GymnasiumVecEnv(envs)
    vec_env.seed(args.seed)
    model = PPO(
        "MlpPolicy",
        vec_env,
        n_steps=args.n_steps,
        batch_size=min(args.num_envs * args.n_steps, 4096),
        n_epochs=4,
        seed=args.seed,
        device="cpu",
    )
    start = time.perf_counter()
    model.learn(total_timesteps=args.total_timesteps)
    elapsed = time.perf_counter() - start
    rate = model.num_timesteps / elapsed
    print(f"trained {model.num_timesteps} frames in {elapsed:.1f} s: {rate:,.0f} frames/s")

    rng = np.random.default_rng(args.seed)
    n_actions = envs.single_action_space.n
    trained = mean_return(lambda obs: model.predict(obs, deterministic=True)[0], args)
    random = mean_return(lambda obs: rng.integers(0, n_actions, len(obs)), args)
    print(f"mean episode return: PPO {trained:.2f}, random {random:.2f}")


if __name__ == "__main__":
    main()
