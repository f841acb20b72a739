"""RLlib PPO on Commons: one policy shared by every agent, through ``ParallelPettingZooEnv``.

Needs RLlib: ``pip install "valuegym[rllib]"`` (RLlib's dependencies without the gymnasium pin
of ``ray[rllib]``, which would downgrade gymnasium).

Run: ``python examples/rllib_commons.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

import pettingzoo
import ray
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
from ray.tune.registry import register_env

import valuegym  # noqa: F401 - registers the ids


@dataclass(frozen=True)
class Args:
    """Options of the run."""

    n_agents: int = 5
    """agents in the Commons"""
    max_cycles: int = 100
    """steps per episode"""
    iterations: int = 5
    """training iterations"""
    batch_size: int = 4000
    """agent-steps per iteration"""
    seed: int = 0
    """seed of the run"""


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in fields(Args):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=int, default=field.default)
    return Args(**vars(parser.parse_args()))


def main() -> None:
    args = parse_args()
    register_env(
        "commons",
        lambda config: ParallelPettingZooEnv(
            pettingzoo.make("parallel", "valuegym/Commons-v0", **config)
        ),
    )
    config = (
        PPOConfig()
        .environment(
            "commons", env_config={"n_agents": args.n_agents, "max_cycles": args.max_cycles}
        )
        .env_runners(num_env_runners=0)
        .training(
            train_batch_size_per_learner=args.batch_size,
            minibatch_size=min(args.batch_size, 256),
            num_epochs=2,
        )
        .multi_agent(policies={"shared"}, policy_mapping_fn=lambda agent_id, *_, **__: "shared")
        .debugging(seed=args.seed)
    )
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        algorithm = config.build_algo()
        for iteration in range(args.iterations):
            result = algorithm.train()
            episode_return = result["env_runners"].get("episode_return_mean", float("nan"))
            print(f"iteration {iteration + 1}: mean episode return {episode_return:.1f}")
        algorithm.stop()
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
