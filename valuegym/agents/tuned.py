"""Tuned hyperparameters per env, shipped as data (in the spirit of rl-baselines3-zoo).

Each trainable env has one YAML file in ``valuegym/agents/data/tuned/`` named after its id
(``valuegym/Orchard-v0`` -> ``Orchard-v0.yaml``), with one block per algorithm::

    ppo:
      total_timesteps: 50000      # the budget of the baseline table; `valuegym train`'s default
      n_envs: 8                   # env copies (multi-agent: copies of the parallel env)
      normalize: {}               # VecNormalize arguments ({} = none)
      hyperparameters:            # SB3 keyword arguments, policy_kwargs included
        n_steps: 128
        policy_kwargs: {net_arch: [64, 64]}

The numbers and how they were found are in ``benchmarks/learning.py`` and the design notes.

Example:
    >>> from valuegym.agents.tuned import tuned_settings
    >>> settings = tuned_settings("valuegym/Orchard-v0")
    >>> settings.algorithm, settings.total_timesteps > 0
    ('ppo', True)
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any, Final

import yaml

__all__ = [
    "TunedSettings",
    "fit_rollout",
    "tuned_env_ids",
    "tuned_settings",
    "with_overrides",
]

_DATA: Final = "data/tuned"
_FIELDS: Final = frozenset({"total_timesteps", "n_envs", "normalize", "hyperparameters"})
#: VecNormalize arguments a tuned file may set. Observation normalisation is left out: its
#: running statistics would have to travel with every checkpoint, and valuegym's observations
#: are already squashed into [-1, 1].
_NORMALIZE: Final = frozenset({"norm_reward", "clip_reward", "gamma", "epsilon"})


@dataclass(frozen=True)
class TunedSettings:
    """How to train one algorithm on one env, as shipped.

    Args:
        algorithm: ``"ppo"`` or ``"dqn"``.
        hyperparameters: SB3 keyword arguments (``policy_kwargs`` included).
        n_envs: Env copies (parameter sharing: copies of the parallel env).
        total_timesteps: The budget the baseline table uses and ``valuegym train`` defaults to
            (agent-steps in multi-agent envs).
        normalize: ``VecNormalize`` arguments (``{}`` = none).
    """

    algorithm: str
    hyperparameters: Mapping[str, Any]
    n_envs: int
    total_timesteps: int
    normalize: Mapping[str, Any]


def _file_name(env_id: str) -> str:
    return env_id.rsplit("/", 1)[-1] + ".yaml"


def tuned_env_ids() -> tuple[str, ...]:
    """The ids with shipped tuned settings, sorted."""
    from valuegym.envs.registration import MULTI_AGENT_ENV_IDS, SINGLE_AGENT_ENV_IDS

    folder = resources.files("valuegym.agents").joinpath(_DATA)
    return tuple(
        sorted(
            env_id
            for env_id in (*SINGLE_AGENT_ENV_IDS, *MULTI_AGENT_ENV_IDS)
            if folder.joinpath(_file_name(env_id)).is_file()
        )
    )


def _accepted(algorithm: str) -> frozenset[str]:
    from valuegym.agents.training import ALGORITHMS

    parameters = inspect.signature(ALGORITHMS[algorithm].__init__).parameters
    return frozenset(parameters) - {"self", "policy", "env", "seed", "device", "verbose"}


def _validated(where: str, algorithm: str, block: Any) -> TunedSettings:
    if not isinstance(block, Mapping):
        raise ValueError(f"{where}: must be a mapping (got {type(block).__name__})")
    unknown = set(block) - _FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)} (expected {sorted(_FIELDS)})")
    for name in ("total_timesteps", "n_envs"):
        value = block.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{where}.{name}: must be an int >= 1 (got {value!r})")
    normalize = block.get("normalize") or {}
    if not isinstance(normalize, Mapping) or set(normalize) - _NORMALIZE:
        raise ValueError(f"{where}.normalize: keys must be among {sorted(_NORMALIZE)}")
    hyperparameters = block.get("hyperparameters") or {}
    if not isinstance(hyperparameters, Mapping):
        raise ValueError(f"{where}.hyperparameters: must be a mapping")
    rejected = set(hyperparameters) - _accepted(algorithm)
    if rejected:
        raise ValueError(
            f"{where}.hyperparameters: {sorted(rejected)} are not {algorithm} arguments"
        )
    return TunedSettings(
        algorithm=algorithm,
        hyperparameters=dict(hyperparameters),
        n_envs=block["n_envs"],
        total_timesteps=block["total_timesteps"],
        normalize=dict(normalize),
    )


def tuned_settings(env_id: str, algorithm: str = "ppo") -> TunedSettings:
    """The shipped settings of ``algorithm`` on ``env_id``.

    Args:
        env_id: A valuegym id, e.g. ``"valuegym/Orchard-v0"``.
        algorithm: ``"ppo"`` or ``"dqn"``.

    Returns:
        The validated settings.

    Raises:
        KeyError: When no settings are shipped for this env and algorithm.
        ValueError: When the shipped file is malformed.
    """
    resource = resources.files("valuegym.agents").joinpath(_DATA, _file_name(env_id))
    if not resource.is_file():
        raise KeyError(f"{env_id}: no tuned settings (tuned: {', '.join(tuned_env_ids())})")
    data = yaml.safe_load(resource.read_text(encoding="utf-8")) or {}
    if algorithm not in data:
        raise KeyError(f"{env_id}: no tuned {algorithm} settings (has {sorted(data)})")
    return _validated(f"{_file_name(env_id)}: {algorithm}", algorithm, data[algorithm])


def with_overrides(settings: TunedSettings, overrides: Mapping[str, Any]) -> TunedSettings:
    """``settings`` with some hyperparameters replaced, validated like the shipped ones.

    Args:
        settings: The tuned settings.
        overrides: SB3 keyword arguments that win over the tuned ones.

    Raises:
        ValueError: When an override is not an argument of the algorithm.
    """
    rejected = set(overrides) - _accepted(settings.algorithm)
    if rejected:
        raise ValueError(
            f"hyperparameter: {sorted(rejected)} are not {settings.algorithm} arguments"
        )
    return replace(settings, hyperparameters={**settings.hyperparameters, **overrides})


def fit_rollout(
    hyperparameters: Mapping[str, Any], copies: int, total_timesteps: int
) -> dict[str, Any]:
    """PPO's rollout shrunk so that a short budget still updates, without ragged mini-batches.

    PPO collects ``n_steps`` per copy before its first update; when the budget is shorter,
    ``n_steps`` shrinks to fit it (at least 8). ``batch_size`` is then made a divisor of the
    rollout (``n_steps * copies``) so SB3 never truncates a mini-batch.

    Args:
        hyperparameters: PPO keyword arguments (SB3's defaults for missing ones).
        copies: Entries of the vector env (env copies, times agents when shared).
        total_timesteps: The training budget.

    Returns:
        The hyperparameters with ``n_steps`` and ``batch_size`` set.
    """
    settings = dict(hyperparameters)
    n_steps = int(settings.get("n_steps", 2048))
    n_steps = max(8, min(n_steps, total_timesteps // copies))
    rollout = n_steps * copies
    batch_size = min(int(settings.get("batch_size", 64)), rollout)
    while rollout % batch_size:
        batch_size -= 1
    settings.update(n_steps=n_steps, batch_size=batch_size)
    return settings
