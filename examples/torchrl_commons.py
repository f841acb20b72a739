"""TorchRL PPO on Commons: a shared actor and a centralised critic (MAPPO-style).

``PettingZooWrapper`` turns Commons into a TorchRL env whose agents form one group (the
value state in ``info`` comes along as tensors under ``("agent", "info")``). The actor is one
MLP shared by every agent; the critic is centralised: it reads every agent's observation, which
is Commons's global state (``state()``). Needs TorchRL: ``pip install torchrl`` (it is in
valuegym's ``test`` extra).

Result at the defaults (5 agents, 100-step episodes, 10 iterations of 1,000 env steps, seed 0),
stated as it is: it does not learn. The mean episode return per agent stays at 5.2-5.6, below
uniformly random actions (12.7 per agent) and above greedy-on-wanting (3.0): the initial
policy harvests 2 or 4 shares in about 40% of its actions, so the resource collapses after
about 22 steps, and 10,000 env steps do not change that (a learning rate of 3e-3 with
advantage normalisation went 5.6 -> 4.8). The run takes 82 s on 2 cores shared with four other
jobs, 423 s before valuegym chose numba's workqueue thread pool (``valuegym.compiled``) and
torch got one thread; the rest is TorchRL's ``PettingZooWrapper``, a few milliseconds of
Python per env step.

Run: ``python examples/torchrl_commons.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import sys

import pettingzoo
import torch
from torch import nn

import valuegym  # noqa: F401 - registers the ids


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    flag = parser.add_argument
    flag("--n-agents", type=int, default=5, help="agents in the Commons")
    flag("--max-cycles", type=int, default=100, help="steps per episode")
    flag("--frames-per-batch", type=int, default=1000, help="env steps collected per iteration")
    flag("--iterations", type=int, default=10, help="training iterations")
    flag("--epochs", type=int, default=4, help="passes over each batch")
    flag("--learning-rate", type=float, default=3e-4, help="the learning rate of Adam")
    flag("--ent-coef", type=float, default=0.01, help="coefficient of the entropy bonus")
    flag("--seed", type=int, default=0, help="seed of the env and torch")
    flag("--threads", type=int, default=1, help="torch CPU threads (torch.set_num_threads)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        from tensordict.nn import TensorDictModule
        from torchrl.collectors import Collector
        from torchrl.envs import RewardSum, TransformedEnv
        from torchrl.envs.libs.pettingzoo import PettingZooWrapper
        from torchrl.modules import MultiAgentMLP, ProbabilisticActor
        from torchrl.objectives import ClipPPOLoss, ValueEstimators
    except ImportError as error:
        sys.exit(f"TorchRL is not installed ({error}): pip install torchrl")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
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
    loss = ClipPPOLoss(actor, critic, entropy_coeff=args.ent_coef, normalize_advantage=False)
    loss.set_keys(
        reward=("agent", "reward"),
        action=("agent", "action"),
        sample_log_prob=("agent", "action_log_prob"),
        value=("agent", "state_value"),
        done=("agent", "done"),
        terminated=("agent", "terminated"),
    )
    loss.make_value_estimator(ValueEstimators.GAE, gamma=0.99, lmbda=0.95)
    optimizer = torch.optim.Adam(loss.parameters(), lr=args.learning_rate)

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
