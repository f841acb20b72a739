"""Train a stable-baselines3 policy on a scenario's env (``valuegym train``).

Single-agent envs train with :func:`valuegym.agents.training.train`-style machinery; multi-agent
envs train one policy shared by every agent (:mod:`valuegym.agents.parameter_sharing`). The env
is built exactly as a run builds it (:func:`~valuegym.runs.population.env_arguments`:
arguments, value profiles, episode length), so a checkpoint trained here acts in the scenario's
own conditions. The training folder holds::

    scenario.yaml                 the resolved scenario
    checkpoints/model.zip         the trained model (+ model.json naming its algorithm)
    learning_curve.png            each training episode's return, and their running mean
    evaluation.json               the trained policy, random and greedy-on-wanting on the
                                  same evaluation seeds: returns, means, 95% intervals
    tensorboard/                  TensorBoard logs (``tensorboard --logdir <folder>/tensorboard``;
                                  written when ``tensorboard`` is installed: valuegym[tensorboard])

Training uses the env's tuned settings (:mod:`valuegym.agents.tuned`: budget, env copies,
reward normalisation, hyperparameters); the caller's budget and hyperparameters win over them.
Training shows a progress bar with the running mean episode return (of the last 100 episodes;
per agent in multi-agent envs) and ends with the evaluation (:class:`PolicyEvaluation`).

Use the checkpoint as a ``ppo`` agent: ``{kind: ppo, checkpoint: <folder>/checkpoints/model.zip}``.
"""

from __future__ import annotations

import importlib.util
import io
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from valuegym.records import RunFolder, write_bytes_atomic
from valuegym.runs.errors import RunError
from valuegym.runs.population import PopulationError, env_arguments
from valuegym.scenarios.schema import Scenario

if TYPE_CHECKING:
    from collections.abc import Callable

    from valuegym.agents.heuristic import Agent
    from valuegym.agents.tuned import TunedSettings

__all__ = [
    "TENSORBOARD_EXTRA",
    "UNTUNED_TIMESTEPS",
    "PolicyEvaluation",
    "TrainingResult",
    "train_scenario",
    "training_settings",
]

#: The extra that installs TensorBoard, which SB3 needs to write its logs.
TENSORBOARD_EXTRA = "valuegym[tensorboard]"
#: The budget of envs without tuned settings.
UNTUNED_TIMESTEPS = 20_000

#: Episodes whose returns make the running mean of the progress bar and the curve.
_RUNNING_WINDOW = 100
#: Evaluation episodes are seeded ``scenario.seed + _EVALUATION_SEED_OFFSET + i``, away from
#: the seeds training used.
_EVALUATION_SEED_OFFSET = 100_000
_BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class PolicyEvaluation:
    """One policy's episode returns on the evaluation seeds.

    Args:
        policy: ``"trained"``, ``"random"`` or ``"greedy"`` (greedy on wanting).
        returns: Each episode's return (mean over agents in multi-agent envs).
        low: Lower end of the 95% percentile-bootstrap interval of the mean over episodes.
        high: Upper end of that interval.
    """

    policy: str
    returns: tuple[float, ...]
    low: float
    high: float

    @property
    def mean(self) -> float:
        """Mean episode return."""
        return float(np.mean(self.returns))

    @classmethod
    def from_returns(cls, policy: str, returns: list[float], seed: int) -> PolicyEvaluation:
        """The evaluation with its bootstrap interval (episodes are the unit of replication)."""
        values = np.asarray(returns, dtype=np.float64)
        rng = np.random.default_rng(seed)
        means = values[rng.integers(0, len(values), (_BOOTSTRAP_RESAMPLES, len(values)))].mean(1)
        low, high = np.percentile(means, [2.5, 97.5])
        return cls(policy, tuple(values.tolist()), float(low), float(high))


@dataclass(frozen=True)
class TrainingResult:
    """What ``valuegym train`` produced.

    Args:
        model_path: The saved model (``checkpoints/model.zip``).
        evaluations: The trained policy, random and greedy on the same seeds, in that order.
        learning_curve: The learning-curve PNG.
        tensorboard: The TensorBoard log folder; ``None`` without tensorboard installed.
        settings: The settings trained with (tuned, overrides applied).
    """

    model_path: Path
    evaluations: tuple[PolicyEvaluation, ...]
    learning_curve: Path
    tensorboard: Path | None
    settings: TunedSettings

    def unbeaten(self) -> tuple[str, ...]:
        """The baselines whose 95% interval the trained policy's interval does not lie above."""
        trained, *baselines = self.evaluations
        return tuple(b.policy for b in baselines if not trained.low > b.high)


def training_settings(
    scenario: Scenario,
    algorithm: str = "ppo",
    timesteps: int | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
) -> TunedSettings:
    """The settings ``valuegym train`` uses: the env's tuned ones, with the overrides applied.

    Envs without shipped settings (:func:`~valuegym.agents.tuned.tuned_settings`) train with
    SB3's defaults, one env copy, for :data:`UNTUNED_TIMESTEPS`.

    Args:
        scenario: The validated scenario.
        algorithm: ``"ppo"`` or ``"dqn"``.
        timesteps: The budget; the tuned one when ``None``.
        hyperparameters: SB3 keyword arguments that win over the tuned ones.

    Raises:
        RunError: When an override is not an argument of the algorithm or the budget is < 1.
    """
    from valuegym.agents.tuned import TunedSettings, tuned_settings, with_overrides

    try:
        settings = tuned_settings(scenario.env.id, algorithm)
    except KeyError:
        settings = TunedSettings(algorithm, {}, 1, UNTUNED_TIMESTEPS, {})
    if timesteps is not None:
        if timesteps < 1:
            raise RunError(f"timesteps: must be >= 1 (got {timesteps})")
        settings = replace(settings, total_timesteps=timesteps)
    try:
        return with_overrides(settings, dict(hyperparameters or {}))
    except ValueError as error:
        raise RunError(str(error)) from None


def train_scenario(
    scenario: Scenario,
    run_dir: str | Path,
    *,
    algorithm: str = "ppo",
    timesteps: int | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    evaluation_episodes: int = 10,
    progress: bool = False,
    torch_threads: int = 1,
) -> TrainingResult:
    """Train a policy on the scenario's env, save it, plot its learning curve and evaluate it.

    Args:
        scenario: The validated scenario (its env, profiles, ``max_steps`` and seed are used).
        run_dir: The training folder; created if missing.
        algorithm: ``"ppo"`` or ``"dqn"`` (single-agent envs only for DQN).
        timesteps: Environment steps to train for (agent-steps in multi-agent envs), >= 1;
            the env's tuned budget when ``None``.
        hyperparameters: SB3 keyword arguments that win over the env's tuned ones.
        evaluation_episodes: Episodes of each policy in the evaluation, >= 2.
        progress: Show a progress bar (on stderr) with the running mean episode return.
        torch_threads: torch's CPU threads while training and evaluating, >= 1 (restored
            afterwards); one suits SB3's small networks
            (:func:`~valuegym.agents.training.torch_threads`).

    Returns:
        The model's path, the evaluation, the learning curve's path and the settings used.

    Raises:
        RunError: When the env cannot be built or the settings do not fit it.
    """
    from valuegym.agents.training import torch_threads as threads_for_torch

    if evaluation_episodes < 2:
        raise RunError(f"evaluation_episodes: must be >= 2 (got {evaluation_episodes})")
    if torch_threads < 1:
        raise RunError(f"torch_threads: must be >= 1 (got {torch_threads})")
    with threads_for_torch(torch_threads):
        return _train(
            scenario,
            Path(run_dir),
            algorithm,
            timesteps,
            hyperparameters,
            evaluation_episodes,
            progress,
        )


def _train(
    scenario: Scenario,
    run_dir: Path,
    algorithm: str,
    timesteps: int | None,
    hyperparameters: Mapping[str, Any] | None,
    evaluation_episodes: int,
    progress: bool,
) -> TrainingResult:
    """:func:`train_scenario`'s work, with its arguments checked."""
    from valuegym.agents.training import TrainingConfig, build_model, make_training_env, save
    from valuegym.agents.tuned import fit_rollout

    if scenario.env.is_multi_agent and algorithm != "ppo":
        raise RunError(
            f"algorithm: {algorithm!r} cannot share parameters over a multi-agent env "
            "in this version; use ppo"
        )
    settings = training_settings(scenario, algorithm, timesteps, hyperparameters)
    timesteps = settings.total_timesteps
    try:
        arguments = env_arguments(scenario)
    except PopulationError as error:
        raise RunError(str(error)) from None
    if arguments.get("mode") == "text":
        raise RunError("env.args.mode: SB3 trains on numeric actions; use mode: numeric")
    hyperparameters = dict(settings.hyperparameters)
    if algorithm == "ppo":
        copies = settings.n_envs * (scenario.n_agents if scenario.env.is_multi_agent else 1)
        hyperparameters = fit_rollout(hyperparameters, copies, timesteps)
    config = TrainingConfig(
        algorithm=algorithm,
        total_timesteps=timesteps,
        n_envs=settings.n_envs,
        seed=scenario.seed,
        env_kwargs=arguments,
        hyperparameters=hyperparameters,
        normalize=settings.normalize,
    )
    folder = RunFolder(Path(run_dir))
    folder.root.mkdir(parents=True, exist_ok=True)
    resolved = yaml.safe_dump(scenario.to_mapping(), sort_keys=False, allow_unicode=True)
    write_bytes_atomic(resolved.encode("utf-8"), folder.scenario_file)
    # SB3 writes TensorBoard logs only with tensorboard installed (TENSORBOARD_EXTRA).
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
    recorder = _EpisodeReturns(timesteps, progress)
    try:
        model.learn(total_timesteps=timesteps, tb_log_name=run_name, callback=recorder.callback)
    finally:
        recorder.close()
    metadata = {
        "env_id": scenario.env.id,
        "scenario": scenario.name,
        "timesteps": timesteps,
        "seed": scenario.seed,
        "shared": scenario.env.is_multi_agent,
        "n_envs": settings.n_envs,
        "normalize": dict(settings.normalize),
        "hyperparameters": hyperparameters,
    }
    model_path = save(model, folder.root / "checkpoints" / "model.zip", metadata=metadata)
    curve = folder.root / "learning_curve.png"
    write_bytes_atomic(recorder.plot(scenario.name), curve)
    evaluations = _evaluate(scenario, model, arguments, evaluation_episodes)
    summary = {
        "seeds": [scenario.seed + _EVALUATION_SEED_OFFSET + i for i in range(evaluation_episodes)],
        "interval": "95% percentile bootstrap of the mean over episodes",
        "policies": {
            e.policy: {"mean": e.mean, "low": e.low, "high": e.high, "returns": list(e.returns)}
            for e in evaluations
        },
    }
    write_bytes_atomic(
        (json.dumps(summary, indent=2) + "\n").encode("utf-8"), folder.root / "evaluation.json"
    )
    return TrainingResult(model_path, evaluations, curve, log_dir, settings)


def _evaluate(
    scenario: Scenario, model: Any, arguments: dict[str, Any], episodes: int
) -> tuple[PolicyEvaluation, ...]:
    """The trained policy, random and greedy-on-wanting, on the same evaluation seeds."""
    from valuegym.agents.heuristic import GreedyAgent, RandomAgent
    from valuegym.agents.training import PolicyAgent, evaluate

    seeds = [scenario.seed + _EVALUATION_SEED_OFFSET + i for i in range(episodes)]
    n_actions = int(model.action_space.n)
    policies: dict[str, Callable[[], Agent]] = {
        "trained": lambda: PolicyAgent(model),
        "random": lambda: RandomAgent(n_actions),
        "greedy": GreedyAgent,
    }
    results = []
    for name, make in policies.items():
        if scenario.env.is_multi_agent:
            from valuegym.agents.parameter_sharing import evaluate_population

            agent = make()
            names = [f"agent_{i}" for i in range(scenario.n_agents)]
            outcome = evaluate_population(
                scenario.env.id, dict.fromkeys(names, agent), seeds, env_kwargs=arguments
            )
            returns = [float(np.mean(list(episode.values()))) for episode in outcome.returns]
        else:
            returns = list(evaluate(scenario.env.id, make(), seeds, env_kwargs=arguments).returns)
        results.append(PolicyEvaluation.from_returns(name, returns, scenario.seed))
    return tuple(results)


class _EpisodeReturns:
    """An SB3 callback: each finished training episode's return, a progress bar, the curve."""

    def __init__(self, total: int, progress: bool) -> None:
        from stable_baselines3.common.callbacks import BaseCallback
        from tqdm import tqdm

        outer = self

        class Callback(BaseCallback):
            """Hands SB3's per-step locals to the recorder."""

            def _on_step(self) -> bool:
                outer.on_step(self.num_timesteps, self.locals.get("infos", ()))
                return True

        self.callback = Callback()
        self.timesteps: list[int] = []
        self.returns: list[float] = []
        self._done = 0
        self._bar = tqdm(
            total=total, desc="training", unit="step", disable=not progress, file=sys.stderr
        )

    def on_step(self, num_timesteps: int, infos: Any) -> None:
        """Record finished episodes (``info["episode"]`` from SB3's monitors); move the bar."""
        for info in infos:
            episode = info.get("episode")
            if episode is not None:
                self.timesteps.append(num_timesteps)
                self.returns.append(float(episode["r"]))
        # SB3 finishes its last rollout past the budget; the bar stops at the budget.
        done = min(num_timesteps, int(self._bar.total))
        self._bar.update(done - self._done)
        self._done = done
        if self.returns:
            recent = self.returns[-_RUNNING_WINDOW:]
            self._bar.set_postfix_str(f"mean return {np.mean(recent):.2f}", refresh=False)

    def close(self) -> None:
        """Close the progress bar."""
        self._bar.close()

    def plot(self, title: str) -> bytes:
        """The learning curve as PNG bytes."""
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        figure, axes = plt.subplots(figsize=(6, 4))
        if self.returns:
            returns = np.asarray(self.returns)
            sums = np.concatenate([[0.0], np.cumsum(returns)])
            ends = np.arange(1, len(returns) + 1)
            starts = np.maximum(0, ends - _RUNNING_WINDOW)
            running = (sums[ends] - sums[starts]) / (ends - starts)
            axes.plot(self.timesteps, returns, ".", alpha=0.3, label="episode return")
            axes.plot(self.timesteps, running, label=f"mean of the last {_RUNNING_WINDOW}")
            axes.legend()
        else:
            axes.text(0.5, 0.5, "no episode finished", ha="center", transform=axes.transAxes)
        axes.set_xlabel("training steps")
        axes.set_ylabel("episode return")
        axes.set_title(f"{title}: learning curve")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        plt.close(figure)
        return buffer.getvalue()
