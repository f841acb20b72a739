"""``valuegym evaluate``: score a focal population against held-out background populations."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from valuegym.cli.common import UsageError, add_override_arguments, load_scenario_with_overrides

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]

HELP = "score a focal population against held-out co-players (Melting Pot's protocol)"
DESCRIPTION = (
    "Play the scenario's focal population (a trained checkpoint or any agent kind) against "
    "each background population it did not train with, one episode per seed, and report "
    "Perolat et al. (2017)'s social outcomes with 95% intervals over episodes: the focal "
    "return, the background return, efficiency (mean return per agent), equality (1 - Gini "
    "of returns), sustainability (mean step of reward) and peace (share of agent-steps not "
    "sanctioned, where the env defines harm). The scenario's evaluation block declares the "
    "populations (without one: a greedy focal on half the seats against greedy, random and "
    "softmax backgrounds); the options below override it. Multi-agent envs only. Writes "
    "scenario.yaml, manifest.json (versions, seeds, checkpoints with SHA-256), "
    "evaluation.json and social_outcomes.png to the output folder."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``valuegym evaluate``.

    Args:
        parser: The command's parser.
    """
    parser.add_argument(
        "scenario", type=Path, help="the scenario YAML file, or a shipped scenario's name"
    )
    parser.add_argument(
        "--focal",
        metavar="POLICY",
        help="the focal population's policy: greedy, softmax, random, planner (default "
        "settings), or a trained checkpoint (a path to model.zip from `valuegym train`, or "
        "ppo:PATH); overrides evaluation.focal",
    )
    parser.add_argument(
        "--background",
        metavar="NAME=POLICY[,POLICY...]",
        action="append",
        default=[],
        help="a background population: its name and the policies cycled over the background "
        "seats (e.g. greedy=greedy, other-seed=runs/s1/checkpoints/model.zip, "
        "mixed=greedy,random); may repeat; replaces the scenario's backgrounds",
    )
    parser.add_argument(
        "--focal-share",
        type=float,
        metavar="SHARE",
        help="share of the seats the focal population takes, the first ones in population "
        "order, in (0, 1); overrides evaluation.focal_share (default 0.5)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        metavar="N",
        help="episodes per background population, each with its own seed (the unit of the "
        "intervals), >= 2; overrides evaluation.seeds (default: the scenario's episodes)",
    )
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="DIR",
        help="output folder (default: runs/<scenario name>-evaluate)",
    )
    add_override_arguments(parser, episodes=False)


def _policy(text: str, where: str) -> dict[str, Any]:
    """A policy mapping from the command line: a kind, ``ppo:PATH`` or a checkpoint path."""
    from valuegym.scenarios.evaluation_spec import POLICY_KINDS

    text = text.strip()
    if text in POLICY_KINDS and text != "ppo":
        return {"kind": text}
    path = text.removeprefix("ppo:")
    if text.startswith("ppo:") or path.endswith(".zip") or "/" in path:
        return {"kind": "ppo", "checkpoint": str(Path(path).expanduser().resolve())}
    kinds = ", ".join(kind for kind in POLICY_KINDS if kind != "ppo")
    raise UsageError(f"{where} {text!r}: expected {kinds}, a model .zip path, or ppo:PATH")


def evaluation_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The scenario's ``evaluation.*`` keys the options set.

    Args:
        args: The parsed arguments.

    Returns:
        Dotted path -> value.

    Raises:
        UsageError: When a ``--focal`` or ``--background`` cannot be read.
    """
    overrides: dict[str, Any] = {}
    if args.focal is not None:
        overrides["evaluation.focal"] = _policy(args.focal, "--focal")
    if args.background:
        backgrounds: dict[str, list[dict[str, Any]]] = {}
        for item in args.background:
            name, separator, policies = item.partition("=")
            if not separator or not name.strip() or not policies.strip():
                raise UsageError(f"--background {item!r}: expected NAME=POLICY[,POLICY...]")
            backgrounds[name.strip()] = [
                _policy(policy, f"--background {name.strip()}") for policy in policies.split(",")
            ]
        overrides["evaluation.background"] = backgrounds
    if args.focal_share is not None:
        overrides["evaluation.focal_share"] = args.focal_share
        overrides["evaluation.focal_agents"] = None
    if args.seeds is not None:
        overrides["evaluation.seeds"] = args.seeds
    return overrides


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table and where the results went.

    Args:
        args: The parsed arguments.

    Returns:
        The exit status, 0.
    """
    from valuegym.scenarios.validation import scenario_with_overrides

    scenario = load_scenario_with_overrides(args)
    overrides = evaluation_overrides(args)
    if not scenario.env.is_multi_agent:
        raise UsageError(
            f"{args.scenario}: {scenario.env.id} is a single-agent env; evaluate scores a focal "
            "population against co-players, so it needs a multi-agent env (e.g. Commons)"
        )
    if overrides:
        scenario = scenario_with_overrides(scenario, overrides)
    from valuegym.analysis.evaluation_report import format_table, summarize, write_evaluation
    from valuegym.runs.evaluate import run_evaluation
    from valuegym.runs.runner import RunError, default_run_dir

    output = args.output if args.output is not None else default_run_dir(scenario, "-evaluate")
    if output.exists() and not output.is_dir():
        raise UsageError(f"{output}: is a file where a folder is needed; choose another --output")
    try:
        result = run_evaluation(scenario, output, progress=True)
    except RunError as error:
        raise UsageError(str(error)) from None
    summary = summarize(result)
    results, plot = write_evaluation(summary, result.output)
    print(format_table(summary))
    print(f"results: {results}")
    print(f"chart: {plot}")
    print(f"provenance: {result.output / 'manifest.json'}")
    return 0
