"""``valuegym train``: train an SB3 policy on a scenario's env and compare it with baselines."""

from __future__ import annotations

import argparse
from pathlib import Path

from valuegym.cli.common import UsageError, add_override_arguments, load_scenario_with_overrides

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]

HELP = "train an SB3 policy on a scenario's env"
DESCRIPTION = (
    "Train a stable-baselines3 policy on the scenario's env (parameter sharing through "
    "SuperSuit for multi-agent envs). Checkpoints and TensorBoard logs go into the "
    "run folder; use the saved model as a 'ppo' agent's checkpoint."
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
        default=20_000,
        help="environment steps to train for (default: 20000)",
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
    add_override_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Train, then print the evaluation and where the learning curve and model went.

    Args:
        args: The parsed arguments.

    Returns:
        The exit status, 0.
    """
    scenario = load_scenario_with_overrides(args)
    from valuegym.runs.runner import RunError, default_run_dir
    from valuegym.runs.train import train_scenario

    run_dir = args.output if args.output is not None else default_run_dir(scenario, "-train")
    try:
        result = train_scenario(
            scenario,
            run_dir,
            algorithm=args.algorithm,
            timesteps=args.timesteps,
            evaluation_episodes=args.eval_episodes,
            progress=True,
        )
    except RunError as error:
        raise UsageError(str(error)) from None
    episodes = len(result.evaluations[0].returns)
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
    print(f"learning curve: {result.learning_curve}")
    print(f"model: {result.model_path}")
    return 0
