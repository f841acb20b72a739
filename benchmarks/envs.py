"""Speed of valuegym's environments against Gymnasium peers measured in the same run.

Every comparison is one function returning its measurements; ``main`` prints them as ratios
with the goal beside each. Each ratio is the median over ``repeats`` timings of ours and the
peer's, interleaved so that load from other processes hits both alike. Run
``python benchmarks/envs.py`` (``--help`` for the options; ``--ppo-timesteps 0`` skips PPO).

Goals (issue 15, raising issue 3's):
- Orchard through ``gymnasium.make``: >= 0.7x the steps/s of CartPole-v1 through ``gymnasium.make``.
- Native vector Orchard at 1024 copies: >= 100x the env-steps/s of SyncVectorEnv over 1024
  Orchards (Gymnasium's own CartPole native vector env is printed beside it).

Goals (issue 3):
- SB3 PPO training frames/s on Orchard: >= 0.8x on CartPole-v1 with the same settings.

Goal (issue 17):
- SB3 PPO training frames/s on the native vector Orchard (through
  ``valuegym.agents.GymnasiumVecEnv``): >= 3x on ``make_vec_env`` with the same number of envs.

Goals (issue 4, multi-agent, random actions through PettingZoo's Parallel API):
- Commons with 10 agents: >= 5x the agent-steps/s of mpe2's simple_spread_v3 with 10 agents
  (``pip install mpe2``); issue 15: no regression from the 14x measured before it.
- Commons with 1000 agents: >= 1x the agent-steps/s of Commons with 10 agents.

Goal (issue 23): Conversation-v1 in numeric mode (the listener appraisal's env, repetition
counted in a window) keeps Conversation-v0's speed: >= 0.9x its agent-steps/s, 4 agents.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, fields

import gymnasium
import numpy as np

import valuegym  # noqa: F401 - registers the ids

ORCHARD = "valuegym/Orchard-v0"
CARTPOLE = "CartPole-v1"
COMMONS = "valuegym/Commons-v0"


@dataclass(frozen=True)
class Args:
    """Benchmark options."""

    single_steps: int = 100_000
    """steps per env in the single-env comparison"""
    num_envs: int = 1024
    """copies in the vector comparison"""
    native_steps: int = 500
    """vector steps of the native vector env (5 Orchard episodes)"""
    sync_steps: int = 100
    """vector steps of SyncVectorEnv (slow, so fewer; one Orchard episode, so that both sides
    pay one autoreset per 100 steps)"""
    ppo_timesteps: int = 8192
    """training frames per PPO run"""
    ppo_num_envs: int = 256
    """copies in the vector PPO comparison"""
    ppo_vector_timesteps: int = 65_536
    """training frames per vector PPO run"""
    parallel_steps: int = 3_000
    """Parallel-API steps of the 10-agent multi-agent envs"""
    large_population: int = 1000
    """agents in the large Commons"""
    large_steps: int = 100
    """Parallel-API steps of the large Commons"""
    repeats: int = 5
    """interleaved timings of each, of which the median is kept (others may share the machine)"""
    seed: int = 0
    """seed of envs and actions"""


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in fields(Args):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=int, default=field.default)
    return Args(**vars(parser.parse_args()))


def single_env_rate(env_id: str, steps: int, seed: int) -> float:
    """Steps/s of one env made with ``gymnasium.make``, random actions, resets included."""
    env = gymnasium.make(env_id)
    env.reset(seed=seed)
    actions = np.random.default_rng(seed).integers(env.action_space.n, size=steps)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def vector_env_rate(env_id: str, mode: str, num_envs: int, steps: int, seed: int) -> float:
    """Env-steps/s of ``gymnasium.make_vec`` in ``mode`` (autoresets included)."""
    envs = gymnasium.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)
    envs.reset(seed=seed)
    actions = np.random.default_rng(seed).integers(
        envs.single_action_space.n, size=(steps + 1, num_envs)
    )
    envs.step(actions[0])  # warm-up: first-call compilation and checks
    start = time.perf_counter()
    for action in actions[1:]:
        envs.step(action)
    rate = steps * num_envs / (time.perf_counter() - start)
    envs.close()
    return rate


def ppo_training_rate(env_id: str, timesteps: int, seed: int) -> float:
    """Frames/s of SB3 PPO's ``learn`` (default settings, one env, CPU, one torch thread)."""
    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    model = PPO("MlpPolicy", gymnasium.make(env_id), n_steps=2048, seed=seed, device="cpu")
    start = time.perf_counter()
    model.learn(total_timesteps=timesteps)
    return timesteps / (time.perf_counter() - start)


def vector_ppo_training_rate(native: bool, num_envs: int, timesteps: int, seed: int) -> float:
    """Frames/s of SB3 PPO on ``num_envs`` Orchards: the native vector env or make_vec_env.

    Both runs use the same PPO settings (``n_steps=128``, ``batch_size=num_envs * 32``, 4
    epochs: a rollout of ``128 * num_envs`` frames per update).
    """
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from valuegym.agents.vector import GymnasiumVecEnv

    torch.set_num_threads(1)
    if native:
        envs = GymnasiumVecEnv(
            gymnasium.make_vec(ORCHARD, num_envs, vectorization_mode="vector_entry_point")
        )
    else:
        envs = make_vec_env(ORCHARD, n_envs=num_envs, seed=seed)
    model = PPO(
        "MlpPolicy",
        envs,
        n_steps=128,
        batch_size=num_envs * 32,
        n_epochs=4,
        seed=seed,
        device="cpu",
    )
    start = time.perf_counter()
    model.learn(total_timesteps=timesteps)
    return timesteps / (time.perf_counter() - start)


def step_share(args: Args) -> tuple[float, float]:
    """Microseconds per Orchard step in its one compiled call, and in the whole unwrapped step."""
    from valuegym.envs.orchard import OrchardEnv

    env = OrchardEnv()
    env.reset(seed=args.seed)
    state, rules = env._state, env.rules
    actions, active = np.zeros(1, dtype=np.int64), np.ones(1, dtype=bool)
    observations = np.empty((1, *env.observation_space.shape), dtype=np.float32)
    rewards, action_wanting = np.empty(1), np.empty((1, rules.n_actions))

    def compiled_step() -> None:
        rules.step(state, actions, active, observations, rewards, action_wanting)
        if state.truncated.item(0):
            env.reset()

    def env_step() -> None:
        env.step(0)
        if state.truncated.item(0):
            env.reset()

    def micros(call) -> float:
        start = time.perf_counter()
        for _ in range(args.single_steps // 4):
            call()
        return (time.perf_counter() - start) / (args.single_steps // 4) * 1e6

    return (
        min(micros(compiled_step) for _ in range(args.repeats)),
        min(micros(env_step) for _ in range(args.repeats)),
    )


def median_interleaved(repeats: int, measure_ours, measure_peer) -> tuple[float, float]:
    """Median of ``repeats`` timings of each, alternating so that load drift hits both alike."""
    ours, peer = [], []
    for _ in range(repeats):
        ours.append(measure_ours())
        peer.append(measure_peer())
    return statistics.median(ours), statistics.median(peer)


def compare_single(args: Args) -> tuple[float, float]:
    return median_interleaved(
        args.repeats,
        lambda: single_env_rate(ORCHARD, args.single_steps, args.seed),
        lambda: single_env_rate(CARTPOLE, args.single_steps, args.seed),
    )


def compare_vector(args: Args) -> tuple[float, float, float, float]:
    native, sync = median_interleaved(
        args.repeats,
        lambda: vector_env_rate(
            ORCHARD, "vector_entry_point", args.num_envs, args.native_steps, args.seed
        ),
        lambda: vector_env_rate(ORCHARD, "sync", args.num_envs, args.sync_steps, args.seed),
    )
    cartpole_native, cartpole_sync = median_interleaved(
        args.repeats,
        lambda: vector_env_rate(
            CARTPOLE, "vector_entry_point", args.num_envs, args.native_steps, args.seed
        ),
        lambda: vector_env_rate(CARTPOLE, "sync", args.num_envs, args.sync_steps, args.seed),
    )
    return native, sync, cartpole_native, cartpole_sync


def compare_training(args: Args) -> tuple[float, float]:
    return median_interleaved(
        args.repeats,
        lambda: ppo_training_rate(ORCHARD, args.ppo_timesteps, args.seed),
        lambda: ppo_training_rate(CARTPOLE, args.ppo_timesteps, args.seed),
    )


def compare_vector_training(args: Args) -> tuple[float, float]:
    return median_interleaved(
        args.repeats,
        lambda: vector_ppo_training_rate(
            True, args.ppo_num_envs, args.ppo_vector_timesteps, args.seed
        ),
        lambda: vector_ppo_training_rate(
            False, args.ppo_num_envs, args.ppo_vector_timesteps, args.seed
        ),
    )


def parallel_agent_step_rate(make_env, steps: int, seed: int) -> float:
    """Agent-steps/s of a PettingZoo Parallel env, random actions, resets included."""
    env = make_env()
    env.reset(seed=seed)
    for index, agent in enumerate(env.possible_agents):
        env.action_space(agent).seed(seed + index)
    agent_steps = 0
    start = time.perf_counter()
    for _ in range(steps):
        if not env.agents:
            env.reset()
        actions = {agent: env.action_space(agent).sample() for agent in env.agents}
        env.step(actions)
        agent_steps += len(actions)
    rate = agent_steps / (time.perf_counter() - start)
    env.close()
    return rate


def compare_commons_to_spread(args: Args) -> tuple[float, float]:
    """Agent-steps/s of Commons and of mpe2's simple_spread_v3, both with 10 agents."""
    import pettingzoo

    try:
        from mpe2 import simple_spread_v3
    except ImportError as error:
        raise SystemExit("the multi-agent comparison needs mpe2: pip install mpe2") from error

    return median_interleaved(
        args.repeats,
        lambda: parallel_agent_step_rate(
            lambda: pettingzoo.make("parallel", COMMONS, n_agents=10),
            args.parallel_steps,
            args.seed,
        ),
        lambda: parallel_agent_step_rate(
            lambda: simple_spread_v3.parallel_env(N=10), args.parallel_steps, args.seed
        ),
    )


def compare_commons_populations(args: Args) -> tuple[float, float]:
    """Agent-steps/s of Commons with ``large_population`` agents and with 10 agents."""
    import pettingzoo

    return median_interleaved(
        args.repeats,
        lambda: parallel_agent_step_rate(
            lambda: pettingzoo.make("parallel", COMMONS, n_agents=args.large_population),
            args.large_steps,
            args.seed,
        ),
        lambda: parallel_agent_step_rate(
            lambda: pettingzoo.make("parallel", COMMONS, n_agents=10),
            args.parallel_steps,
            args.seed,
        ),
    )


def compare_conversation_versions(args: Args) -> tuple[float, float]:
    """Agent-steps/s of Conversation-v1 and v0, numeric mode, 4 agents (medians)."""
    import pettingzoo

    def rate(env_id: str) -> float:
        return parallel_agent_step_rate(
            lambda: pettingzoo.make("parallel", env_id, n_agents=4), args.parallel_steps, args.seed
        )

    return median_interleaved(
        args.repeats,
        lambda: rate("valuegym/Conversation-v1"),
        lambda: rate("valuegym/Conversation-v0"),
    )


def report(name: str, ratio: float, goal: float, detail: str) -> None:
    verdict = "meets" if ratio >= goal else "MISSES"
    print(f"{name:<46} {ratio:8.2f}x  (goal >= {goal}x, {verdict})  {detail}")


def main() -> None:
    args = parse_args()
    orchard, cartpole = compare_single(args)
    report(
        "Orchard / CartPole-v1, gymnasium.make",
        orchard / cartpole,
        0.7,
        f"{orchard:,.0f} vs {cartpole:,.0f} steps/s",
    )
    compiled_us, step_us = step_share(args)
    print(
        f"{'':<46} Orchard step {step_us:.1f} us unwrapped, of which its compiled call "
        f"(transition, value store, observation) {compiled_us:.1f} us; CartPole-v1 step via "
        f"make {1e6 / cartpole:.1f} us"
    )
    native, sync, cartpole_native, cartpole_sync = compare_vector(args)
    report(
        f"native vector / SyncVectorEnv, {args.num_envs} Orchards",
        native / sync,
        100,
        f"{native:,.0f} vs {sync:,.0f} env-steps/s (CartPole-v1 for reference: "
        f"{cartpole_native / cartpole_sync:.0f}x)",
    )
    if args.ppo_timesteps:
        ppo_orchard, ppo_cartpole = compare_training(args)
        report(
            "SB3 PPO training frames/s, Orchard / CartPole-v1",
            ppo_orchard / ppo_cartpole,
            0.8,
            f"{ppo_orchard:,.0f} vs {ppo_cartpole:,.0f} frames/s",
        )
    if args.ppo_timesteps:
        ppo_native, ppo_dummy = compare_vector_training(args)
        report(
            f"SB3 PPO frames/s, native vector / make_vec_env, {args.ppo_num_envs} Orchards",
            ppo_native / ppo_dummy,
            3,
            f"{ppo_native:,.0f} vs {ppo_dummy:,.0f} frames/s",
        )
    commons, spread = compare_commons_to_spread(args)
    report(
        "Commons / mpe2 simple_spread_v3, 10 agents",
        commons / spread,
        5,
        f"{commons:,.0f} vs {spread:,.0f} agent-steps/s (issue 15: no regression from 14x)",
    )
    v1, v0 = compare_conversation_versions(args)
    report(
        "Conversation-v1 / v0, numeric, 4 agents",
        v1 / v0,
        0.9,
        f"{v1:,.0f} vs {v0:,.0f} agent-steps/s",
    )
    large, small = compare_commons_populations(args)
    report(
        f"Commons {args.large_population} agents / 10 agents",
        large / small,
        1,
        f"{large:,.0f} vs {small:,.0f} agent-steps/s",
    )


if __name__ == "__main__":
    main()
