"""TorchRL PPO on Commons: a shared actor and a centralised critic (MAPPO-style).

``PettingZooWrapper`` turns Commons into a TorchRL env whose agents form one group (the
value state in ``info`` comes along as tensors under ``("agent", "info")``). The actor is one
MLP shared by every agent; the critic is centralised: it reads every agent's observation, which
is Commons's global state (``state()``). Needs TorchRL: ``pip install torchrl`` (it is in
valuegym's ``test`` extra).

Run: ``python examples/torchrl_commons.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

import pettingzoo
import torch
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.collectors import Collector
from torchrl.envs import RewardSum, TransformedEnv
from torchrl.envs.libs.pettingzoo import PettingZooWrapper
from torchrl.modules import MultiAgentMLP, ProbabilisticActor
from torchrl.objectives import ClipPPOLoss, ValueEstimators

import valuegym  # noqa: F401 - registers the ids


@dataclass(frozen=True)
class Args:
    """Options of the run."""

    n_agents: int = 5
    """agents in the Commons"""
    max_cycles: int = 100
    """steps per episode"""
    frames_per_batch: int = 1000
    """env steps collected per iteration"""
    iterations: int = 10
    """training iterations"""
    epochs: int = 4
    """passes over each batch"""
    seed: int = 0
    """seed of the env and torch"""


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in fields(Args):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=int, default=field.default)
    return Args(**vars(parser.parse_args()))


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    parallel = pettingzoo.make(
        "parallel", "valuegym/Commons-v0", n_agents=args.n_agents, max_cycles=args.max_cycles
    )
    env = PettingZooWrapper(parallel, categorical_actions=True, seed=args.seed)
    env = TransformedEnv(
        env, RewardSum(in_keys=[("agent", "reward")], out_keys=[("agent", "episode_reward")])
    )
    n_observations = parallel.observation_space("agent_0").shape[0]
    n_actions = parallel.action_space("agent_0").n

    actor = ProbabilisticActor(
        TensorDictModule(
            MultiAgentMLP(
                n_observations, n_actions, args.n_agents, centralised=False, share_params=True
            ),
            in_keys=[("agent", "observation")],
            out_keys=[("agent", "logits")],
        ),
        in_keys={"logits": ("agent", "logits")},
        out_keys=[("agent", "action")],
        distribution_class=torch.distributions.Categorical,
        return_log_prob=True,
        log_prob_key=("agent", "action_log_prob"),
    )
    # Centralised critic: each agent's value from everyone's observations (the global state).
    critic = TensorDictModule(
        MultiAgentMLP(n_observations, 1, args.n_agents, centralised=True, share_params=True),
        in_keys=[("agent", "observation")],
        out_keys=[("agent", "state_value")],
    )
    collector = Collector(
        env,
        actor,
        frames_per_batch=args.frames_per_batch,
        total_frames=args.frames_per_batch * args.iterations,
        auto_register_policy_transforms=False,  # the policy is not recurrent
    )
    loss = ClipPPOLoss(actor, critic, entropy_coeff=0.01, normalize_advantage=False)
    loss.set_keys(
        reward=("agent", "reward"),
        action=("agent", "action"),
        sample_log_prob=("agent", "action_log_prob"),
        value=("agent", "state_value"),
        done=("agent", "done"),
        terminated=("agent", "terminated"),
    )
    loss.make_value_estimator(ValueEstimators.GAE, gamma=0.99, lmbda=0.95)
    optimizer = torch.optim.Adam(loss.parameters(), lr=3e-4)

    for iteration, batch in enumerate(collector):
        with torch.no_grad():
            loss.value_estimator(
                batch,
                params=loss.critic_network_params,
                target_params=loss.target_critic_network_params,
            )
        flat = batch.reshape(-1)
        for _ in range(args.epochs):
            losses = loss(flat)
            total = losses["loss_objective"] + losses["loss_critic"] + losses["loss_entropy"]
            optimizer.zero_grad()
            total.backward()
            nn.utils.clip_grad_norm_(loss.parameters(), 1.0)
            optimizer.step()
        finished = batch["next", "agent", "done"].squeeze(-1).all(-1)
        returns = batch["next", "agent", "episode_reward"][finished].mean()
        print(f"iteration {iteration + 1}: mean episode return per agent {returns.item():.1f}")
    collector.shutdown()


if __name__ == "__main__":
    main()
