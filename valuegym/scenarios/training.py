"""Train a stable-baselines3 policy on a scenario's env (``valuegym train``).

Single-agent envs train with :func:`valuegym.agents.training.train`-style machinery; multi-agent
envs train one policy shared by every agent (:mod:`valuegym.agents.parameter_sharing`). The env
is built exactly as a run builds it (:func:`~valuegym.scenarios.population.env_arguments`:
arguments, value profiles, episode length), so a checkpoint trained here acts in the scenario's
own conditions. The training folder holds::

    scenario.yaml                 the resolved scenario
    checkpoints/model.zip         the trained model (+ model.json naming its algorithm)
    tensorboard/                  TensorBoard logs (``tensorboard --logdir <folder>/tensorboard``;
                                  written when ``tensorboard`` is installed: valuegym[tensorboard])

Use the checkpoint as a ``ppo`` agent: ``{kind: ppo, checkpoint: <folder>/checkpoints/model.zip}``.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import yaml

from valuegym.records import RunFolder, write_bytes_atomic
from valuegym.scenarios.errors import RunError
from valuegym.scenarios.population import PopulationError, env_arguments
from valuegym.scenarios.schema import Scenario

__all__ = ["train_scenario"]


def train_scenario(
    scenario: Scenario,
    run_dir: str | Path,
    *,
    algorithm: str = "ppo",
    timesteps: int = 20_000,
    hyperparameters: dict[str, object] | None = None,
) -> Path:
    """Train a policy on the scenario's env and save it with TensorBoard logs.

    Args:
        scenario: The validated scenario (its env, profiles, ``max_steps`` and seed are used).
        run_dir: The training folder; created if missing.
        algorithm: ``"ppo"`` or ``"dqn"`` (single-agent envs only for DQN).
        timesteps: Environment steps to train for (agent-steps in multi-agent envs), >= 1.
        hyperparameters: Keyword arguments of the SB3 algorithm.

    Returns:
        The path of the saved model (``checkpoints/model.zip``).

    Raises:
        RunError: When the env cannot be built or the settings do not fit it.
    """
    from valuegym.agents.training import TrainingConfig, build_model, make_training_env, save

    if timesteps < 1:
        raise RunError(f"timesteps: must be >= 1 (got {timesteps})")
    if scenario.env.is_multi_agent and algorithm != "ppo":
        raise RunError(
            f"algorithm: {algorithm!r} cannot share parameters over a multi-agent env "
            "in this version; use ppo"
        )
    try:
        arguments = env_arguments(scenario)
    except PopulationError as error:
        raise RunError(str(error)) from None
    if arguments.get("mode") == "text":
        raise RunError("env.args.mode: SB3 trains on numeric actions; use mode: numeric")
    settings = dict(hyperparameters or {})
    if algorithm == "ppo" and "n_steps" not in settings:
        # PPO collects n_steps per env copy before its first update (2048 by default); a
        # short budget should still train, so the rollout shrinks to fit it.
        copies = scenario.n_agents if scenario.env.is_multi_agent else 1
        n_steps = max(8, min(2048, timesteps // copies))
        settings["n_steps"] = n_steps
        settings.setdefault("batch_size", min(64, n_steps * copies))
    config = TrainingConfig(
        algorithm=algorithm,
        total_timesteps=timesteps,
        seed=scenario.seed,
        env_kwargs=arguments,
        hyperparameters=settings,
    )
    folder = RunFolder(Path(run_dir))
    folder.root.mkdir(parents=True, exist_ok=True)
    resolved = yaml.safe_dump(scenario.to_mapping(), sort_keys=False, allow_unicode=True)
    write_bytes_atomic(resolved.encode("utf-8"), folder.scenario_file)
    # SB3 writes TensorBoard logs only with tensorboard installed (valuegym[tensorboard]).
    has_tensorboard = importlib.util.find_spec("tensorboard") is not None
    log_dir = folder.root / "tensorboard" if has_tensorboard else None
    run_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", scenario.name)
    try:
        if scenario.env.is_multi_agent:
            from valuegym.agents.parameter_sharing import make_shared_env

            env = make_shared_env(scenario.env.id, config)
        else:
            env = make_training_env(scenario.env.id, config)
        model = build_model(config, env, log_dir)
    except ValueError as error:
        raise RunError(str(error)) from None
    model.learn(total_timesteps=timesteps, tb_log_name=run_name)
    metadata = {
        "env_id": scenario.env.id,
        "scenario": scenario.name,
        "timesteps": timesteps,
        "seed": scenario.seed,
        "shared": scenario.env.is_multi_agent,
    }
    return save(model, folder.root / "checkpoints" / "model.zip", metadata=metadata)
