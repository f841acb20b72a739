"""CleanRL-style PPO on the native vector Orchard, the whole algorithm in this one file.

The script reads top to bottom like CleanRL's ``ppo.py``: the options, an actor-critic
network, rollouts of ``--num-envs`` Orchards stepped together in one numpy call
(``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``), generalised advantage
estimation, and minibatch epochs of the clipped surrogate objective with a value loss, an
entropy bonus, advantage normalisation and learning-rate annealing. It logs to TensorBoard
(``runs/<exp-name>__<seed>__<time>``; ``tensorboard --logdir runs``) and, with ``--track``, to
Weights & Biases. At the end it scores the deterministic policy (the most probable action),
greedy-on-wanting (the action serving the highest wanting, ``info["action_wanting"]``) and
uniformly random actions on the same held-out evaluation seeds, one episode per seed, and
prints each mean return with its 95% interval over the evaluation episodes.

The env is the ``orchard_variety`` scenario's (``scenarios/orchard_variety.yaml``: its value
profile, out-of-stock probability 0.2 and 100-step episodes); ``--scenario`` takes another
single-agent Orchard scenario.

Result at the defaults (48 updates of 32 copies x 128 steps: 196,608 frames), measured on 2 CPU
cores shared with four other jobs, evaluated on 256 held-out seeds: the deterministic policy's
mean episode return is 35.51, 35.28, 35.67, 35.07 and 35.31 for seeds 1 to 5, i.e. 35.37
[35.08, 35.66] (mean and 95% t interval over the 5 seeds; every seed above greedy), against
greedy-on-wanting's 34.58 [34.56, 34.59] and random's 27.18 [27.01, 27.35] (intervals over the
256 episodes). Training takes 16-26 s (8,000-12,000 frames/s), a whole run 25-40 s. Same
``--seed``, same returns.

Needs torch (``pip install "valuegym[lm]"`` or any torch build) and, for the logs,
tensorboard (``pip install "valuegym[tensorboard]"``; without it the script says so in one
line and trains without logs); ``--track`` needs ``wandb``.

Run: ``python examples/cleanrl_ppo_orchard.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from typing import Any

import gymnasium
import numpy as np
import torch
from scipy import special
from torch import nn, optim
from torch.distributions.categorical import Categorical

import valuegym  # noqa: F401 - registers the ids
from valuegym.runs.population import env_arguments
from valuegym.scenarios import load_scenario
from valuegym.scenarios.catalog import resolve_scenario_path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    # fmt: off
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    flag = parser.add_argument
    flag("--exp-name", type=str, default=os.path.basename(__file__).removesuffix(".py"),
         help="the name of this experiment (first part of the run folder's name)")
    flag("--seed", type=int, default=1,
         help="seed of the training envs, the network and the sampling of actions")
    flag("--torch-deterministic", action=argparse.BooleanOptionalAction, default=True,
         help="make torch deterministic (torch.backends.cudnn.deterministic)")
    flag("--device", type=str, default="cpu",
         help="torch device, e.g. cpu, cuda, cuda:1, or auto (cuda if available); the small "
              "network runs fastest on cpu")
    flag("--threads", type=int, default=1,
         help="torch CPU threads (torch.set_num_threads)")
    flag("--track", action=argparse.BooleanOptionalAction, default=False,
         help="track the run with Weights & Biases (needs wandb)")
    flag("--wandb-project-name", type=str, default="valuegym",
         help="the Weights & Biases project")
    flag("--wandb-entity", type=str, default=None,
         help="the Weights & Biases entity (team); default: your own")
    flag("--log-dir", type=str, default="runs",
         help="folder of the TensorBoard run folders")

    flag("--scenario", type=str, default="orchard_variety",
         help="Orchard scenario (shipped name or YAML path) whose env is trained on")
    flag("--total-timesteps", type=int, default=200_000,
         help="total training frames (env steps summed over the copies)")
    flag("--learning-rate", type=float, default=1e-3,
         help="the learning rate of the Adam optimizer")
    flag("--num-envs", type=int, default=32,
         help="Orchard copies stepped together in one vector env")
    flag("--num-steps", type=int, default=128,
         help="steps per copy in each rollout")
    flag("--anneal-lr", action=argparse.BooleanOptionalAction, default=True,
         help="anneal the learning rate linearly to 0 over the run")
    flag("--gamma", type=float, default=0.95,
         help="the discount factor")
    flag("--gae-lambda", type=float, default=0.95,
         help="the lambda of generalised advantage estimation")
    flag("--num-minibatches", type=int, default=4,
         help="minibatches per epoch")
    flag("--update-epochs", type=int, default=4,
         help="epochs over each rollout")
    flag("--norm-adv", action=argparse.BooleanOptionalAction, default=True,
         help="normalise advantages within each minibatch")
    flag("--clip-coef", type=float, default=0.2,
         help="the surrogate clipping coefficient")
    flag("--clip-vloss", action=argparse.BooleanOptionalAction, default=True,
         help="clip the value loss as PPO's paper does")
    flag("--ent-coef", type=float, default=0.01,
         help="coefficient of the entropy bonus")
    flag("--vf-coef", type=float, default=0.5,
         help="coefficient of the value loss")
    flag("--max-grad-norm", type=float, default=0.5,
         help="the maximum norm of the gradient (clipped above it)")
    flag("--target-kl", type=float, default=None,
         help="stop an update's epochs early above this approximate KL (default: never)")
    flag("--hidden-size", type=int, default=64,
         help="units in each of the two hidden layers of the actor and of the critic")

    flag("--eval-episodes", type=int, default=256,
         help="evaluation episodes per policy (one per held-out seed), >= 2")
    flag("--eval-seed", type=int, default=1_000_000,
         help="first held-out evaluation seed (episode i uses eval-seed + i)")
    # fmt: on
    args = parser.parse_args(argv)
    for name in ("total_timesteps", "num_envs", "num_steps", "num_minibatches", "eval_episodes"):
        if getattr(args, name) < (2 if name == "eval_episodes" else 1):
            parser.error(f"--{name.replace('_', '-')}: too small ({getattr(args, name)})")
    args.batch_size = args.num_envs * args.num_steps
    args.minibatch_size = max(1, args.batch_size // args.num_minibatches)
    args.num_iterations = max(1, args.total_timesteps // args.batch_size)
    return args


def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """Separate actor and critic MLPs with tanh activations, as CleanRL's PPO."""

    def __init__(self, n_observations: int, n_actions: int, hidden: int):
        super().__init__()
        self.critic = nn.Sequential(
            layer_init(nn.Linear(n_observations, hidden)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden, hidden)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden, 1), std=1.0),
        )
        self.actor = nn.Sequential(
            layer_init(nn.Linear(n_observations, hidden)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden, hidden)),
            nn.Tanh(),
            layer_init(nn.Linear(hidden, n_actions), std=0.01),
        )

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        """The critic's value of each observation, shape ``(batch, 1)``."""
        return self.critic(x)

    def get_action_and_value(
        self, x: torch.Tensor, action: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """An action (sampled unless given), its log-probability, the entropy and the value."""
        probs = Categorical(logits=self.actor(x))
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(x)


class NoWriter:
    """Stands in for SummaryWriter when tensorboard is not installed."""

    def add_text(self, *_: Any) -> None:
        """Nothing: no logs."""

    def add_scalar(self, *_: Any) -> None:
        """Nothing: no logs."""

    def close(self) -> None:
        """Nothing to close."""


def mean_interval(values: np.ndarray) -> tuple[float, float, float]:
    """The mean and its 95% Student-t interval."""
    mean = float(values.mean())
    half = special.stdtrit(len(values) - 1, 0.975) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, mean - half, mean + half


def make_writer(log_dir: str) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print(
            "tensorboard is not installed: training without TensorBoard logs "
            '(pip install "valuegym[tensorboard]")',
            file=sys.stderr,
        )
        return NoWriter()
    return SummaryWriter(log_dir)


def make_envs(args: argparse.Namespace, num_envs: int) -> gymnasium.vector.VectorEnv:
    arguments = env_arguments(load_scenario(resolve_scenario_path(args.scenario)))
    # The native vector env takes its horizon from episode_length; it ends every episode
    # by truncation and observes the fraction of the episode left, so an episode's end is a
    # state the policy sees coming: the rollout treats it as terminal (no bootstrapping).
    arguments.pop("max_episode_steps", None)
    return gymnasium.make_vec(
        "valuegym/Orchard-v0",
        num_envs,
        vectorization_mode="vector_entry_point",
        autoreset_mode="SameStep",
        **arguments,
    )


def evaluate(args: argparse.Namespace, agent: Agent, device: torch.device) -> None:
    """Held-out episodes of the trained, greedy-on-wanting and random policies, same seeds."""
    envs = make_envs(args, args.eval_episodes)
    n_actions = int(envs.single_action_space.n)
    rng = np.random.default_rng(args.eval_seed)

    def trained(observations: np.ndarray, _: dict[str, Any]) -> np.ndarray:
        with torch.no_grad():
            logits = agent.actor(torch.as_tensor(observations, device=device))
        return logits.argmax(dim=1).cpu().numpy()

    policies = {
        "PPO (deterministic)": trained,
        "greedy-on-wanting": lambda _, infos: infos["action_wanting"].argmax(axis=1),
        "random": lambda observations, _: rng.integers(0, n_actions, len(observations)),
    }
    seeds = f"{args.eval_seed}..{args.eval_seed + args.eval_episodes - 1}"
    print(f"evaluation on held-out seeds {seeds}, one episode each (95% interval over episodes):")
    for name, policy in policies.items():
        observations, infos = envs.reset(seed=args.eval_seed)
        returns = np.zeros(args.eval_episodes)
        finished = np.zeros(args.eval_episodes, dtype=bool)
        while not finished.all():
            observations, rewards, terminations, truncations, infos = envs.step(
                policy(observations, infos)
            )
            returns += np.where(finished, 0.0, rewards)
            finished |= terminations | truncations
        mean, low, high = mean_interval(returns)
        print(f"  {name:<20} {mean:8.3f} [{low:.3f}, {high:.3f}]")
    envs.close()


if __name__ == "__main__":
    args = parse_args()
    run_name = f"{args.exp_name}__{args.seed}__{int(time.time())}"
    if args.track:
        try:
            import wandb
        except ImportError:
            sys.exit(
                "--track logs to Weights & Biases, but wandb is not installed: pip install wandb"
            )
        wandb.init(
            project=args.wandb_project_name,
            entity=args.wandb_entity,
            sync_tensorboard=True,
            config=vars(args),
            name=run_name,
            save_code=True,
        )
    writer = make_writer(os.path.join(args.log_dir, run_name))
    writer.add_text(
        "hyperparameters",
        "|param|value|\n|-|-|\n"
        + "\n".join(f"|{key}|{value}|" for key, value in vars(args).items()),
    )

    # Seeding
    random.seed(args.seed)
    rng = np.random.default_rng(args.seed)  # shuffles the minibatches
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    torch.set_num_threads(args.threads)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)

    # Env setup
    envs = make_envs(args, args.num_envs)
    assert isinstance(envs.single_action_space, gymnasium.spaces.Discrete)
    n_observations = int(np.prod(envs.single_observation_space.shape))
    agent = Agent(n_observations, int(envs.single_action_space.n), args.hidden_size).to(device)
    optimizer = optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    # Storage
    obs = torch.zeros((args.num_steps, args.num_envs, n_observations)).to(device)
    actions = torch.zeros((args.num_steps, args.num_envs), dtype=torch.long).to(device)
    logprobs = torch.zeros((args.num_steps, args.num_envs)).to(device)
    rewards = torch.zeros((args.num_steps, args.num_envs)).to(device)
    dones = torch.zeros((args.num_steps, args.num_envs)).to(device)
    values = torch.zeros((args.num_steps, args.num_envs)).to(device)

    # Start the game
    global_step = 0
    start_time = time.time()
    next_obs_np, _ = envs.reset(seed=args.seed)
    next_obs = torch.as_tensor(next_obs_np, device=device)
    next_done = torch.zeros(args.num_envs).to(device)
    episode_returns = np.zeros(args.num_envs)
    recent_returns: list[float] = []

    for iteration in range(1, args.num_iterations + 1):
        if args.anneal_lr:
            frac = 1.0 - (iteration - 1.0) / args.num_iterations
            optimizer.param_groups[0]["lr"] = frac * args.learning_rate

        for step in range(args.num_steps):
            global_step += args.num_envs
            obs[step] = next_obs
            dones[step] = next_done

            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
                values[step] = value.flatten()
            actions[step] = action
            logprobs[step] = logprob

            next_obs_np, reward, terminations, truncations, _ = envs.step(action.cpu().numpy())
            next_done_np = np.logical_or(terminations, truncations)
            rewards[step] = torch.as_tensor(reward, dtype=torch.float32, device=device)
            next_obs = torch.as_tensor(next_obs_np, device=device)
            next_done = torch.as_tensor(next_done_np, dtype=torch.float32, device=device)

            episode_returns += reward
            for episodic_return in episode_returns[next_done_np]:
                recent_returns.append(float(episodic_return))
                writer.add_scalar("charts/episodic_return", episodic_return, global_step)
            episode_returns[next_done_np] = 0.0

        # Bootstrap value if not done; generalised advantage estimation
        with torch.no_grad():
            next_value = agent.get_value(next_obs).reshape(1, -1)
            advantages = torch.zeros_like(rewards).to(device)
            lastgaelam = torch.zeros(args.num_envs, device=device)
            for t in reversed(range(args.num_steps)):
                if t == args.num_steps - 1:
                    nextnonterminal = 1.0 - next_done
                    nextvalues = next_value
                else:
                    nextnonterminal = 1.0 - dones[t + 1]
                    nextvalues = values[t + 1]
                delta = rewards[t] + args.gamma * nextvalues * nextnonterminal - values[t]
                lastgaelam = delta + args.gamma * args.gae_lambda * nextnonterminal * lastgaelam
                advantages[t] = lastgaelam
            returns = advantages + values

        # Flatten the batch
        b_obs = obs.reshape((-1, n_observations))
        b_logprobs = logprobs.reshape(-1)
        b_actions = actions.reshape(-1)
        b_advantages = advantages.reshape(-1)
        b_returns = returns.reshape(-1)
        b_values = values.reshape(-1)

        # Optimising the policy and value network
        b_inds = np.arange(args.batch_size)
        clipfracs = []
        for _epoch in range(args.update_epochs):
            rng.shuffle(b_inds)
            for start in range(0, args.batch_size, args.minibatch_size):
                mb_inds = b_inds[start : start + args.minibatch_size]

                _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                    b_obs[mb_inds], b_actions[mb_inds]
                )
                logratio = newlogprob - b_logprobs[mb_inds]
                ratio = logratio.exp()

                with torch.no_grad():
                    # http://joschu.net/blog/kl-approx.html
                    old_approx_kl = (-logratio).mean()
                    approx_kl = ((ratio - 1) - logratio).mean()
                    clipfracs += [((ratio - 1.0).abs() > args.clip_coef).float().mean().item()]

                mb_advantages = b_advantages[mb_inds]
                if args.norm_adv and len(mb_inds) > 1:
                    mb_advantages = (mb_advantages - mb_advantages.mean()) / (
                        mb_advantages.std() + 1e-8
                    )

                # Policy loss: the clipped surrogate
                pg_loss1 = -mb_advantages * ratio
                pg_loss2 = -mb_advantages * torch.clamp(
                    ratio, 1 - args.clip_coef, 1 + args.clip_coef
                )
                pg_loss = torch.max(pg_loss1, pg_loss2).mean()

                # Value loss
                newvalue = newvalue.view(-1)
                if args.clip_vloss:
                    v_loss_unclipped = (newvalue - b_returns[mb_inds]) ** 2
                    v_clipped = b_values[mb_inds] + torch.clamp(
                        newvalue - b_values[mb_inds], -args.clip_coef, args.clip_coef
                    )
                    v_loss_clipped = (v_clipped - b_returns[mb_inds]) ** 2
                    v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
                else:
                    v_loss = 0.5 * ((newvalue - b_returns[mb_inds]) ** 2).mean()

                entropy_loss = entropy.mean()
                loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef

                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

            if args.target_kl is not None and approx_kl > args.target_kl:
                break

        y_pred, y_true = b_values.cpu().numpy(), b_returns.cpu().numpy()
        var_y = np.var(y_true)
        explained_var = np.nan if var_y == 0 else 1 - np.var(y_true - y_pred) / var_y

        sps = int(global_step / (time.time() - start_time))
        writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
        writer.add_scalar("losses/value_loss", v_loss.item(), global_step)
        writer.add_scalar("losses/policy_loss", pg_loss.item(), global_step)
        writer.add_scalar("losses/entropy", entropy_loss.item(), global_step)
        writer.add_scalar("losses/old_approx_kl", old_approx_kl.item(), global_step)
        writer.add_scalar("losses/approx_kl", approx_kl.item(), global_step)
        writer.add_scalar("losses/clipfrac", np.mean(clipfracs), global_step)
        writer.add_scalar("losses/explained_variance", explained_var, global_step)
        writer.add_scalar("charts/SPS", sps, global_step)
        if recent_returns:
            mean_recent = np.mean(recent_returns)
            print(f"global_step={global_step}, mean episodic_return={mean_recent:.3f}, SPS={sps}")
            recent_returns.clear()

    elapsed = time.time() - start_time
    print(
        f"trained {global_step} frames in {elapsed:.1f} s ({global_step / elapsed:,.0f} frames/s)"
    )
    envs.close()
    writer.close()
    evaluate(args, agent, device)
