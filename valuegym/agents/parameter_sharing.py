"""One policy for every agent of a PettingZoo env (parameter sharing), and mixed populations.

:func:`train_shared` trains one Stable-Baselines3 policy on all agents of a multi-agent env at
once: SuperSuit's ``pettingzoo_env_to_vec_env_v1`` turns each agent of a Parallel env into one
copy of a vector env, ``concat_vec_envs_v1`` stacks ``n_envs`` such envs. Every agent's
experience trains the same weights, so the env's observation and action spaces must be the
same for every agent (they are in valuegym's multi-agent envs). Checkpoints are written and
read with :func:`valuegym.agents.training.save` / :func:`~valuegym.agents.training.load`; a
trained model acts as an agent through :class:`~valuegym.agents.training.PolicyAgent`.

:func:`mixed_population` seats agents of different kinds (a shared trained policy, heuristics,
language-model agents) at one env, and :func:`evaluate_population` runs them together.

Example:
    >>> from valuegym.agents.heuristic import GreedyAgent
    >>> from valuegym.agents.parameter_sharing import evaluate_population, mixed_population
    >>> from valuegym.agents.training import PolicyAgent, TrainingConfig
    >>> from valuegym.agents.parameter_sharing import train_shared
    >>> config = TrainingConfig(total_timesteps=256, hyperparameters={"n_steps": 64},
    ...                         env_kwargs={"n_agents": 4, "max_cycles": 20})
    >>> model = train_shared("valuegym/Commons-v0", config)
    >>> agents = mixed_population(
    ...     [f"agent_{i}" for i in range(4)], PolicyAgent(model), lambda name: GreedyAgent(), 2
    ... )
    >>> result = evaluate_population(
    ...     "valuegym/Commons-v0", agents, seeds=[0, 1], env_kwargs=config.env_kwargs
    ... )
    >>> sorted(result.mean_by_agent)
    ['agent_0', 'agent_1', 'agent_2', 'agent_3']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pettingzoo
from pettingzoo import ParallelEnv
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

# From-imports: supersuit's module __getattr__ raises ImportError for unknown names, which
# breaks doctest collection of any module holding the supersuit module itself.
from supersuit import concat_vec_envs_v1, pettingzoo_env_to_vec_env_v1
from supersuit.vector.sb3_vector_wrapper import SB3VecEnvWrapper

from valuegym.agents.heuristic import Agent
from valuegym.agents.training import TrainingConfig, build_model, normalized

__all__ = [
    "PopulationEvaluation",
    "SharedVecEnv",
    "evaluate_population",
    "make_shared_env",
    "mixed_population",
    "train_shared",
]


def _make_parallel_env(
    env: str | Callable[[], ParallelEnv], env_kwargs: Mapping[str, Any] | None
) -> ParallelEnv:
    if not isinstance(env, str):
        return env()
    if env not in pettingzoo.parallel_registry:
        raise ValueError(f"env: {env!r} is not a registered PettingZoo parallel environment")
    return pettingzoo.make("parallel", env, **dict(env_kwargs or {}))


class SharedVecEnv(SB3VecEnvWrapper):
    """SuperSuit's SB3 vector env, fixed so that SB3 algorithms can be given a seed.

    SuperSuit's tutorial recipe (``concat_vec_envs_v1(..., base_class="stable_baselines3")``)
    crashes as soon as an algorithm gets a seed: SB3 calls the vector env's ``seed``, and
    SuperSuit's ``ConcatVecEnv`` has none (``AttributeError: 'ConcatVecEnv' object has no
    attribute 'seed'``); it also cannot answer SB3's per-copy ``get_attr("render_mode")``.
    This wrapper takes SuperSuit's own (not SB3-based) concatenated env instead: ``seed``
    applies at the next ``reset``, as SB3's vector envs do, and ``render_mode`` is answered.

    Args:
        venv: ``concat_vec_envs_v1(pettingzoo_env_to_vec_env_v1(parallel_env), n, num_cpus=0)``
            (the default ``base_class="gymnasium"``).

    Example:
        >>> import pettingzoo
        >>> from stable_baselines3 import PPO
        >>> from supersuit import concat_vec_envs_v1, pettingzoo_env_to_vec_env_v1
        >>> import valuegym
        >>> parallel = pettingzoo.make("parallel", "valuegym/Commons-v0", n_agents=3)
        >>> venv = SharedVecEnv(
        ...     concat_vec_envs_v1(pettingzoo_env_to_vec_env_v1(parallel), 2, num_cpus=0)
        ... )
        >>> model = PPO("MlpPolicy", venv, n_steps=16, batch_size=48, seed=0).learn(96)
    """

    def __init__(self, venv: Any):
        super().__init__(venv)
        self._next_seed: int | None = None

    def seed(self, seed: int | None = None) -> list[int | None]:
        """Seed the next :meth:`reset` (copy ``c`` gets ``seed + c``)."""
        self._next_seed = seed
        return [seed] * self.num_envs

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """SuperSuit's ``get_attr``, and the render mode for every copy."""
        if attr_name == "render_mode":
            return [self.render_mode] * self.num_envs
        return super().get_attr(attr_name, indices)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        """Reset every copy, with the seed given to :meth:`seed` if any."""
        seed, self._next_seed = (self._next_seed if seed is None else seed), None
        observations, self.reset_infos = self.venv.reset(seed=seed, options=options)
        return observations


def make_shared_env(env_id: str, config: TrainingConfig) -> VecEnv:
    """Every agent of ``config.n_envs`` copies of a Parallel env as one SB3 vector env.

    The vector env has ``n_agents * n_envs`` entries; at its first reset copy ``c`` is seeded
    ``config.seed + c``.

    Args:
        env_id: A PettingZoo id, e.g. ``"valuegym/Commons-v0"``.
        config: ``n_envs``, ``seed`` and ``env_kwargs`` are used.

    Returns:
        The vector env, monitored so that SB3 logs episode returns (normalised as
        ``config.normalize`` asks, outside the monitor).

    Raises:
        ValueError: When ``env_id`` is not registered, or its agents' spaces differ.
    """
    parallel = _make_parallel_env(env_id, config.env_kwargs)
    agents = parallel.possible_agents
    first = agents[0]
    for agent in agents[1:]:
        if parallel.observation_space(agent) != parallel.observation_space(
            first
        ) or parallel.action_space(agent) != parallel.action_space(first):
            raise ValueError(
                f"env: {env_id!r} gives {agent!r} other spaces than {first!r}; parameter "
                "sharing needs the same observation and action space for every agent"
            )
    vector = pettingzoo_env_to_vec_env_v1(parallel)
    vector = SharedVecEnv(concat_vec_envs_v1(vector, config.n_envs, num_cpus=0))
    vector.seed(config.seed)
    return normalized(VecMonitor(vector), config)


def train_shared(
    env_id: str, config: TrainingConfig | None = None, *, log_dir: str | Path | None = None
) -> BaseAlgorithm:
    """Train one policy shared by every agent of a registered multi-agent env.

    Args:
        env_id: A PettingZoo id, e.g. ``"valuegym/Commons-v0"``.
        config: How to train (``total_timesteps`` counts agent-steps); defaults when ``None``.
        log_dir: TensorBoard log folder; the run is named after the env id.

    Returns:
        The trained algorithm; save it with :func:`valuegym.agents.training.save`.
    """
    config = TrainingConfig() if config is None else config
    model = build_model(config, make_shared_env(env_id, config), log_dir)
    run_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", env_id) + "_shared"
    return model.learn(total_timesteps=config.total_timesteps, tb_log_name=run_name)


def mixed_population(
    agent_names: Sequence[str],
    shared: Agent,
    other: Callable[[str], Agent],
    n_shared: int,
) -> dict[str, Agent]:
    """Seat a shared policy at the first ``n_shared`` agents and other agents at the rest.

    Args:
        agent_names: The env's ``possible_agents``.
        shared: One agent object (e.g. a ``PolicyAgent``) driving all of the first agents.
        other: Makes the agent for each remaining name (e.g. ``lambda name: GreedyAgent()``).
        n_shared: How many agents the shared policy drives, ``0 .. len(agent_names)``.

    Returns:
        The agent of each name.
    """
    if not 0 <= n_shared <= len(agent_names):
        raise ValueError(f"n_shared: must be in [0, {len(agent_names)}] (got {n_shared})")
    return {
        name: shared if index < n_shared else other(name) for index, name in enumerate(agent_names)
    }


@dataclass(frozen=True)
class PopulationEvaluation:
    """Per-agent returns of evaluation episodes, one mapping per seed.

    Args:
        seeds: The reset seed of each episode.
        returns: For each episode, the undiscounted return of each agent.
    """

    seeds: tuple[int, ...]
    returns: tuple[Mapping[str, float], ...]

    @property
    def mean_by_agent(self) -> dict[str, float]:
        """Each agent's mean return over the episodes."""
        names = self.returns[0].keys()
        return {name: float(np.mean([r[name] for r in self.returns])) for name in names}

    def mean(self, agents: Iterable[str] | None = None) -> float:
        """Mean return over episodes and the given agents (all when ``None``)."""
        names = list(self.returns[0] if agents is None else agents)
        return float(np.mean([[r[name] for name in names] for r in self.returns]))


def evaluate_population(
    env: str | Callable[[], ParallelEnv],
    agents: Mapping[str, Agent],
    seeds: Iterable[int],
    *,
    env_kwargs: Mapping[str, Any] | None = None,
) -> PopulationEvaluation:
    """Run one episode per seed of a Parallel env with the given agents.

    Each distinct agent object is reset once per episode, with a seed derived from the
    episode's seed and its first seat, so agents of one kind do not draw the same numbers.

    Args:
        env: A PettingZoo id, or a function making a Parallel env.
        agents: The agent of every possible agent of the env.
        seeds: Reset seed of each episode.
        env_kwargs: Keyword arguments of the env when ``env`` is an id.

    Returns:
        The returns by seed and agent.

    Raises:
        ValueError: When ``agents`` does not seat exactly the env's possible agents.
    """
    environment = _make_parallel_env(env, env_kwargs)
    if set(agents) != set(environment.possible_agents):
        raise ValueError(
            f"agents: must seat exactly {environment.possible_agents} (got {sorted(agents)})"
        )
    first_seat: dict[int, int] = {}
    for seat, name in enumerate(environment.possible_agents):
        first_seat.setdefault(id(agents[name]), seat)
    distinct = {id(agent): agent for agent in agents.values()}
    seeds = tuple(int(seed) for seed in seeds)
    episodes = []
    try:
        for seed in seeds:
            observations, infos = environment.reset(seed=seed)
            for key, agent in distinct.items():
                agent.reset(seed * len(environment.possible_agents) + first_seat[key])
            totals = dict.fromkeys(environment.possible_agents, 0.0)
            while environment.agents:
                actions = {
                    name: agents[name].act(observations[name], infos[name])
                    for name in environment.agents
                }
                observations, rewards, _, _, infos = environment.step(actions)
                for name, reward in rewards.items():
                    totals[name] += float(reward)
            episodes.append(totals)
    finally:
        environment.close()
    return PopulationEvaluation(seeds=seeds, returns=tuple(episodes))
