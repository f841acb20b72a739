"""``valuegym train``: train an SB3 policy on a scenario's env and compare it with baselines."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import yaml

from valuegym.cli.common import UsageError, add_override_arguments, load_scenario_with_overrides

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]

HELP = "train an SB3 policy on a scenario's env"
DESCRIPTION = (
    "Train a stable-baselines3 policy on the scenario's env (parameter sharing through "
    "SuperSuit for multi-agent envs) with the env's tuned settings (valuegym/agents/data/tuned/: "
    "budget, env copies, hyperparameters; --timesteps and --hyperparameter override them). "
    "Checkpoints and TensorBoard logs go into the run folder; use the saved model as a 'ppo' "
    "agent's checkpoint."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``valuegym train``.

    Args:
        parser: The command's parser.
    """
    parser.add_argument("scenario", type=Path, help="the scenario YAML file")
    parser.add_argument(
        "--algorithm",
        choices=("ppo", "dqn"),
        default="ppo",
        help="SB3 algorithm (default: ppo; dqn for single-agent envs only)",
    )
    parser.add_argument(
        "--timesteps",
        type=int,
        help="environment steps to train for, agent-steps in multi-agent envs "
        "(default: the env's tuned budget)",
    )
    parser.add_argument(
        "--hyperparameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        type=_hyperparameter,
        help="an SB3 argument over the tuned one, the value read as YAML "
        "(e.g. learning_rate=1e-3, 'policy_kwargs={net_arch: [32, 32]}'); repeatable",
    )
    parser.add_argument(
        "--output", "-o", type=Path, help="run folder (default: runs/<scenario name>-train)"
    )
    parser.add_argument(
        "--eval-episodes",
        type=int,
        default=10,
        help="evaluation episodes of the trained policy, random and greedy (default: 10)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch CPU threads while training (default: 1; on a 2-core machine two threads "
        "trained SB3's small networks no faster when idle, 3 to 4.5 times slower when busy)",
    )
    add_override_arguments(parser)


def _hyperparameter(text: str) -> tuple[str, object]:
    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: the value is not YAML ({error})") from None
    if isinstance(parsed, str):
        # YAML 1.1 reads 1e-3 (no dot) as a string; a number is what was meant.
        with contextlib.suppress(ValueError):
            parsed = float(parsed)
    return key.strip(), parsed


def run(args: argparse.Namespace) -> int:
    """Train, then print the evaluation and where the learning curve and model went.

    Args:
        args: The parsed arguments.

    Returns:
        The exit status, 0.
    """
    scenario = load_scenario_with_overrides(args)
    from valuegym.runs.runner import RunError, default_run_dir
    from valuegym.runs.train import TENSORBOARD_EXTRA, train_scenario

    run_dir = args.output if args.output is not None else default_run_dir(scenario, "-train")
    try:
        result = train_scenario(
            scenario,
            run_dir,
            algorithm=args.algorithm,
            timesteps=args.timesteps,
            hyperparameters=dict(args.hyperparameter),
            evaluation_episodes=args.eval_episodes,
            progress=True,
            torch_threads=args.torch_threads,
        )
    except RunError as error:
        raise UsageError(str(error)) from None
    episodes = len(result.evaluations[0].returns)
    settings = result.settings
    print(
        f"trained {args.algorithm} for {settings.total_timesteps} steps with {settings.n_envs} env "
        "copies"
    )
    print(
        f"evaluation: mean episode return over {episodes} episodes on the same seeds "
        "[95% interval over episodes]"
    )
    for evaluation in result.evaluations:
        name = {"trained": f"trained {args.algorithm}", "greedy": "greedy on wanting"}
        print(
            f"  {name.get(evaluation.policy, evaluation.policy):<20} {evaluation.mean:9.2f}  "
            f"[{evaluation.low:.2f}, {evaluation.high:.2f}]"
        )
    unbeaten = result.unbeaten()
    if unbeaten:
        print(
            f"warning: the trained policy's interval does not lie above {' and '.join(unbeaten)}'s;"
            " train longer (--timesteps) or tune (--hyperparameter)",
            file=sys.stderr,
        )
    print(f"learning curve: {result.learning_curve}")
    if result.tensorboard is None:
        print(f"tensorboard: not installed, no logs written (pip install '{TENSORBOARD_EXTRA}')")
    else:
        print(f"tensorboard: tensorboard --logdir {result.tensorboard}")
    print(f"model: {result.model_path}")
    return 0
