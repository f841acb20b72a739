"""RLlib PPO on Commons: one policy shared by every agent, through ``ParallelPettingZooEnv``.

Needs RLlib: ``pip install "valuegym[rllib]"`` (RLlib's dependencies without the gymnasium pin
of ``ray[rllib]``, which would downgrade gymnasium).

Result at the defaults (5 Commons agents, 100-step episodes, 5 iterations of 4,000
agent-steps, seed 0): RLlib's mean episode return (summed over the agents, training episodes)
goes 77.3, 101.5, 101.1, 82.4, 100.6, against 63.3 [52.9, 73.7] for uniformly random actions
and 15.2 for greedy-on-wanting, which collapses the resource in 5 steps (20 episodes each,
seeds 5000-5019, 95% t interval). 148 s on 2 cores shared with four other jobs.

Run: ``python examples/rllib_commons.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import sys

import pettingzoo
import torch

import valuegym  # noqa: F401 - registers the ids


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    flag = parser.add_argument
    flag("--n-agents", type=int, default=5, help="agents in the Commons")
    flag("--max-cycles", type=int, default=100, help="steps per episode")
    flag("--iterations", type=int, default=5, help="training iterations")
    flag("--batch-size", type=int, default=4000, help="agent-steps collected per iteration")
    flag("--seed", type=int, default=0, help="seed of the run (RLlib's debugging seed)")
    flag("--threads", type=int, default=1, help="torch CPU threads (torch.set_num_threads)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        import ray
        from ray.rllib.algorithms.ppo import PPOConfig
        from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
        from ray.tune.registry import register_env
    except ImportError as error:
        sys.exit(f'RLlib is not installed ({error}): pip install "valuegym[rllib]"')
    torch.set_num_threads(args.threads)
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
