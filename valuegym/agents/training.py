"""Stable-Baselines3 on valuegym envs: train, save, load, evaluate.

The pieces are separate so other trainers reuse them: :func:`build_model` makes an algorithm
for any SB3 ``VecEnv`` (parameter sharing over a PettingZoo env passes a SuperSuit one),
:func:`save` / :func:`load` keep a checkpoint with a JSON sidecar naming its algorithm,
:class:`PolicyAgent` turns a model into an agent, and :func:`evaluate` scores any agent.

Example:
    >>> from valuegym.agents.training import TrainingConfig, train, evaluate, PolicyAgent
    >>> config = TrainingConfig(total_timesteps=256, hyperparameters={"n_steps": 128})
    >>> model = train("valuegym/Orchard-v0", config)
    >>> result = evaluate("valuegym/Orchard-v0", PolicyAgent(model), seeds=[0, 1])
    >>> len(result.returns)
    2
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import gymnasium
import numpy as np
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from valuegym.agents.heuristic import Agent

__all__ = [
    "ALGORITHMS",
    "Evaluation",
    "PolicyAgent",
    "TrainingConfig",
    "build_model",
    "checkpoint_metadata",
    "evaluate",
    "load",
    "make_training_env",
    "normalized",
    "save",
    "torch_threads",
    "train",
]

#: Algorithms by the name a config or checkpoint uses.
ALGORITHMS: Final[Mapping[str, type[BaseAlgorithm]]] = {"ppo": PPO, "dqn": DQN}


@dataclass(frozen=True)
class TrainingConfig:
    """How to train.

    Args:
        algorithm: A key of :data:`ALGORITHMS`.
        total_timesteps: Environment steps to train for (summed over copies), >= 1.
        n_envs: Env copies stepped together, >= 1.
        seed: Seed of the algorithm and of the env copies.
        policy: SB3 policy name.
        hyperparameters: Keyword arguments of the algorithm (``n_steps``, ``learning_rate``...).
        env_kwargs: Keyword arguments of the env.
        device: Torch device.
        normalize: ``VecNormalize`` arguments for the training env (``{}`` = none); only
            reward normalisation, so a checkpoint acts on raw observations.
    """

    algorithm: str = "ppo"
    total_timesteps: int = 50_000
    n_envs: int = 1
    seed: int = 0
    policy: str = "MlpPolicy"
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    normalize: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(
                f"algorithm: unknown {self.algorithm!r} (expected one of {sorted(ALGORITHMS)})"
            )
        for name in ("total_timesteps", "n_envs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be an int >= 1 (got {value!r})")


@dataclass(frozen=True)
class Evaluation:
    """Returns of evaluation episodes, one per seed.

    Args:
        seeds: The reset seed of each episode.
        returns: The undiscounted return of each episode.
    """

    seeds: tuple[int, ...]
    returns: tuple[float, ...]

    @property
    def mean(self) -> float:
        """Mean return."""
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        """Standard deviation of the returns (population)."""
        return float(np.std(self.returns))


class PolicyAgent:
    """A trained SB3 model as an :class:`~valuegym.agents.heuristic.Agent`.

    Args:
        model: The trained algorithm.
        deterministic: Act on the policy's mode instead of sampling.
    """

    def __init__(self, model: BaseAlgorithm, deterministic: bool = True):
        self.model = model
        self.deterministic = deterministic

    def reset(self, seed: int | None = None) -> None:
        """Seed the policy's sampling when it samples (SB3 seeds torch's global generator)."""
        if seed is not None and not self.deterministic:
            self.model.set_random_seed(seed)

    def act(self, observation: Any, info: dict[str, Any]) -> int:
        """The policy's action for ``observation``."""
        action, _ = self.model.predict(observation, deterministic=self.deterministic)
        return int(action)


def make_training_env(env_id: str, config: TrainingConfig) -> VecEnv:
    """``config.n_envs`` copies of ``env_id`` in a ``DummyVecEnv``, seeded from ``config.seed``.

    Raises:
        ValueError: When ``env_id`` is not a registered Gymnasium id.
    """
    if env_id not in gymnasium.registry:
        raise ValueError(f"env_id: {env_id!r} is not a registered Gymnasium environment")
    return normalized(
        make_vec_env(
            env_id, n_envs=config.n_envs, seed=config.seed, env_kwargs=dict(config.env_kwargs)
        ),
        config,
    )


def normalized(env: VecEnv, config: TrainingConfig) -> VecEnv:
    """``env`` in ``VecNormalize(norm_obs=False, **config.normalize)``, or as is when empty.

    Observations are never normalised: valuegym's are squashed into [-1, 1] already, and
    running statistics would have to travel with every checkpoint.
    """
    if not config.normalize:
        return env
    return VecNormalize(env, norm_obs=False, **dict(config.normalize))


def build_model(
    config: TrainingConfig, env: VecEnv, log_dir: str | Path | None = None
) -> BaseAlgorithm:
    """A fresh, untrained algorithm for ``env``.

    Args:
        config: The algorithm, policy, hyperparameters, seed and device.
        env: Any SB3 vector env (a SuperSuit one for parameter sharing too).
        log_dir: TensorBoard log folder; no TensorBoard logging when ``None``.

    Returns:
        The algorithm.

    Raises:
        ValueError: When a hyperparameter is not an argument of the algorithm.
    """
    algorithm = ALGORITHMS[config.algorithm]
    try:
        return algorithm(
            config.policy,
            env,
            seed=config.seed,
            device=config.device,
            verbose=0,
            tensorboard_log=None if log_dir is None else str(log_dir),
            **dict(config.hyperparameters),
        )
    except TypeError as error:
        raise ValueError(f"hyperparameters: not accepted by {config.algorithm}: {error}") from error


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run torch's CPU ops on ``threads`` threads inside the block, then restore the count.

    SB3's default networks are small MLPs. On two idle cores, torch's default of a thread per
    core trained no faster than one thread (Conversation, 60k steps: 33 s and 30 s against
    29 s and 28 s) for twice the CPU time; with the other core busy it made ``valuegym train``
    3 to 4.5 times slower (84 s and 113 s against 29 s and 25 s), as the threads wait on each
    other and on anything else running.

    Args:
        threads: Threads for the block, >= 1.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train(
    env_id: str, config: TrainingConfig | None = None, *, log_dir: str | Path | None = None
) -> BaseAlgorithm:
    """Train an algorithm on a registered single-agent env.

    Args:
        env_id: A Gymnasium id, e.g. ``"valuegym/Orchard-v0"``.
        config: How to train; the defaults when ``None``.
        log_dir: TensorBoard log folder; the run is named after the env id.

    Returns:
        The trained algorithm.
    """
    config = TrainingConfig() if config is None else config
    model = build_model(config, make_training_env(env_id, config), log_dir)
    run_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", env_id)
    return model.learn(total_timesteps=config.total_timesteps, tb_log_name=run_name)


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def save(
    model: BaseAlgorithm, path: str | Path, *, metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write a checkpoint: SB3's zip and a JSON sidecar naming the algorithm.

    Args:
        model: The algorithm.
        path: Where to write; ``.zip`` is added when missing.
        metadata: Extra JSON-able data for the sidecar (env id, config...).

    Returns:
        The path of the zip file.
    """
    path = Path(path)
    if path.suffix != ".zip":
        path = path.with_name(path.name + ".zip")
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [name for name, cls in ALGORITHMS.items() if type(model) is cls]
    if not names:
        raise ValueError(f"model: {type(model).__name__} is not one of {sorted(ALGORITHMS)}")
    model.save(path)
    sidecar = {"algorithm": names[0], **dict(metadata or {})}
    _sidecar(path).write_text(json.dumps(sidecar, indent=2, sort_keys=True, default=str) + "\n")
    return path


def load(path: str | Path, *, device: str = "cpu") -> BaseAlgorithm:
    """Read a checkpoint written by :func:`save`.

    Raises:
        FileNotFoundError: When the zip or its sidecar is missing.
        ValueError: When the sidecar names an unknown algorithm.
    """
    path = Path(path)
    if path.suffix != ".zip":
        path = path.with_name(path.name + ".zip")
    if not path.is_file() or not _sidecar(path).is_file():
        raise FileNotFoundError(f"{path}: no checkpoint (need {path.name} and its .json sidecar)")
    name = json.loads(_sidecar(path).read_text()).get("algorithm")
    if name not in ALGORITHMS:
        raise ValueError(f"{_sidecar(path)}: algorithm {name!r} is not one of {sorted(ALGORITHMS)}")
    return ALGORITHMS[name].load(path, device=device)


def checkpoint_metadata(env_id: str, config: TrainingConfig) -> dict[str, Any]:
    """The sidecar metadata of a model trained by :func:`train`: env id and config."""
    return {"env_id": env_id, "config": asdict(config)}


def evaluate(
    env: str | Callable[[], gymnasium.Env],
    agent: Agent,
    seeds: Iterable[int],
    *,
    env_kwargs: Mapping[str, Any] | None = None,
    max_steps: int = 100_000,
) -> Evaluation:
    """Run one episode per seed and collect the returns.

    Args:
        env: A Gymnasium id, or a function making the env.
        agent: Anything with ``reset(seed)`` and ``act(observation, info)``.
        seeds: Reset seed of each episode (the agent is reset with the same seed).
        env_kwargs: Keyword arguments of the env when ``env`` is an id.
        max_steps: Safety bound on an episode's length.

    Returns:
        The returns by seed.
    """
    environment = gymnasium.make(env, **dict(env_kwargs or {})) if isinstance(env, str) else env()
    seeds = tuple(int(seed) for seed in seeds)
    returns = []
    try:
        for seed in seeds:
            observation, info = environment.reset(seed=seed)
            agent.reset(seed)
            total = 0.0
            for _ in range(max_steps):
                observation, reward, terminated, truncated, info = environment.step(
                    agent.act(observation, info)
                )
                total += float(reward)
                if terminated or truncated:
                    break
            returns.append(total)
    finally:
        environment.close()
    return Evaluation(seeds=seeds, returns=tuple(returns))
