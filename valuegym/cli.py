"""The ``valuegym`` command line: ``run | validate | list | train | report | doctor``.

Bad input (an invalid scenario, a missing run folder) prints one line per problem to stderr
and exits with status 1, never a traceback; ``--debug`` shows tracebacks of unexpected errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import valuegym

__all__ = ["build_parser", "main"]

_EPILOG = """\
examples:
  valuegym run scenarios/quickstart.yaml        run a scenario and write its report
  valuegym run quickstart                       the same, a shipped scenario by name
  valuegym validate scenarios/*.yaml            check scenarios without running them
  valuegym report runs/quickstart               (re)build a run folder's report
  valuegym list                                 envs, shipped scenarios, agent kinds, LM backends
  valuegym train scenarios/orchard_variety.yaml train PPO on a scenario's env
  valuegym doctor                               check the installation and what it runs on
  valuegym calibrate-clusterer                  how often clusterers merge or split meanings
"""


class UsageError(Exception):
    """Bad input from the command line; its message is printed without a traceback."""


def _add_override_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a scenario key by its dotted path, the value read as YAML "
        "(e.g. --set agents.0.affect.stress_baseline=0.8); may repeat",
    )
    parser.add_argument("--seed", type=int, help="override the scenario's seed")
    parser.add_argument("--episodes", type=int, help="override the number of episodes")
    parser.add_argument("--max-steps", type=int, help="override the steps per episode")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``valuegym`` command."""
    parser = argparse.ArgumentParser(
        prog="valuegym",
        description=(
            "valuegym: social environments where agents hold values with diminishing returns,\n"
            "satiation, mood and stress, and language-model agents whose utterance entropy is\n"
            "measured against their value state."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {valuegym.__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show a traceback for unexpected errors"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run a scenario, write records and a report",
        description=(
            "Run a YAML scenario: build its env and agents, run the episodes with a progress "
            "bar, write per-step and per-utterance records (Parquet), the resolved scenario "
            "and a summary into the run folder, then its report (Markdown and PNG figures). "
            "Rerunning into a folder with finished episodes of the same scenario resumes it."
        ),
    )
    run.add_argument(
        "scenario", type=Path, help="the scenario YAML file, or a shipped scenario's name"
    )
    run.add_argument(
        "--output",
        "-o",
        type=Path,
        help="run folder (default: runs/<scenario output or name> under the current folder)",
    )
    _add_override_arguments(run)
    run.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="sweeps: run cells in local processes or as Ray tasks (default: local)",
    )
    run.add_argument("--workers", type=int, help="sweeps: parallel cells (default: the cores)")
    run.add_argument("--ray-address", help="sweeps: address of a Ray cluster to join")
    run.add_argument(
        "--cell-gpus",
        type=float,
        default=0.0,
        help="sweeps: GPUs each Ray task declares (e.g. 1 for LM cells on a GPU cluster)",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the records of a different scenario in the run folder",
    )
    run.add_argument("--no-report", action="store_true", help="skip the report at the end")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    validate = commands.add_parser(
        "validate",
        help="check scenarios without running them",
        description=(
            "Validate scenario files: every problem is listed with the dotted path of its key "
            "(e.g. agents.1.values.rest.weight: must be > 0). Exit status 1 if any is invalid."
        ),
    )
    validate.add_argument("scenarios", type=Path, nargs="+", help="scenario YAML files")

    listing = commands.add_parser(
        "list",
        help="list envs, shipped scenarios, agent kinds and LM backends",
        description="List what a scenario can name: env ids, agent kinds, LM backends, and "
        "the shipped scenarios.",
    )
    listing.add_argument(
        "what",
        nargs="?",
        choices=("envs", "scenarios", "agents", "backends"),
        help="list only this (default: everything)",
    )

    train = commands.add_parser(
        "train",
        help="train an SB3 policy on a scenario's env",
        description=(
            "Train a stable-baselines3 policy on the scenario's env (parameter sharing through "
            "SuperSuit for multi-agent envs). Checkpoints and TensorBoard logs go into the "
            "run folder; use the saved model as a 'ppo' agent's checkpoint."
        ),
    )
    train.add_argument("scenario", type=Path, help="the scenario YAML file")
    train.add_argument(
        "--algorithm",
        choices=("ppo", "dqn"),
        default="ppo",
        help="SB3 algorithm (default: ppo; dqn for single-agent envs only)",
    )
    train.add_argument(
        "--timesteps",
        type=int,
        default=20_000,
        help="environment steps to train for (default: 20000)",
    )
    train.add_argument(
        "--output", "-o", type=Path, help="run folder (default: runs/<scenario name>-train)"
    )
    train.add_argument(
        "--eval-episodes",
        type=int,
        default=10,
        help="evaluation episodes of the trained policy, random and greedy (default: 10)",
    )
    _add_override_arguments(train)

    report = commands.add_parser(
        "report",
        help="write a run folder's statistics and figures",
        description=(
            "Turn a run folder into statistics (e.g. the slope of utterance entropy on stress "
            "and mood with bootstrap 95%% intervals, returns per agent kind, Gini and "
            "cooperation) as report/report.md and PNG figures."
        ),
    )
    report.add_argument("run_dir", type=Path, help="a run folder written by 'valuegym run'")
    report.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    report.add_argument(
        "--allow-mixed-lm",
        action="store_true",
        help="sweeps: pool cells whose language models, model files or builds differ "
        "(refused by default; the report then carries a warning)",
    )

    replay = commands.add_parser(
        "replay",
        help="regenerate a run's recorded contexts under a grid of channel settings",
        description=(
            "Take every N-th recorded utterance of a finished run as a context and regenerate "
            "it under each cell of a grid over the stress and mood the prompt states, the "
            "speech temperature and the persona, K samples per cell with the same seeds in "
            "every cell (common random numbers), plus placebo cells that state another "
            "context's state and a manipulation check. Writes replay records into the run "
            "folder (resumable) and rebuilds its report with the paired channel contrasts. "
            "No env is needed."
        ),
    )
    replay.add_argument("run_dir", type=Path, help="a run folder written by 'valuegym run'")
    replay.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="CHANNEL=V1,V2,...",
        help="levels of one channel: prompt_stress, prompt_mood, temperature or persona "
        "(personas separated by '|'); may repeat, e.g. --grid prompt_stress=0.1,0.9 "
        "--grid temperature=0.7,1.0",
    )
    replay.add_argument("--samples", type=int, default=4, help="K samples per context and cell")
    replay.add_argument("--every", type=int, default=1, help="replay every N-th utterance")
    replay.add_argument("--no-placebo", action="store_true", help="leave out the placebo cells")
    replay.add_argument("--overwrite", action="store_true", help="replace a replay of another grid")
    replay.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    doctor = commands.add_parser(
        "doctor",
        help="check that this installation can run the demo, and what it runs on",
        description=(
            "Load the default model with each installed local LM backend and generate a few "
            "tokens in a child process (a crash such as SIGILL is reported, not fatal); print "
            "versions, CPU features, llama.cpp's system info, the model file's SHA-256 and "
            "tokens/s. Exit status 1, with one line per problem and what to do, when "
            "something the demo needs does not work."
        ),
    )
    doctor.add_argument(
        "--backend",
        dest="backends",
        action="append",
        choices=("llamacpp", "transformers"),
        help="probe only this backend (may repeat; default: every installed local backend)",
    )
    doctor.add_argument(
        "--timeout", type=float, default=120.0, help="seconds each probe may take (default 120)"
    )
    _add_calibrate_clusterer_parser(commands)
    return parser


_CALIBRATED_CLUSTERERS = ("text", "embedding", "entailment-lm", "entailment-nli")


def _add_calibrate_clusterer_parser(commands: Any) -> None:
    calibrate = commands.add_parser(
        "calibrate-clusterer",
        help="measure how often a clusterer merges or splits meanings",
        description=(
            "Cluster labelled sentence pairs (the set shipped with valuegym, or --pairs) and "
            "print each clusterer's accuracy, false-merge rate (different meanings put "
            "together, lowering semantic entropy) and false-split rate (one meaning split, "
            "raising it), per category of pair."
        ),
    )
    calibrate.add_argument(
        "--clusterer",
        action="append",
        choices=_CALIBRATED_CLUSTERERS,
        help="clusterer to check; may repeat (default: text and embedding). entailment-lm "
        "asks a valuegym language model, entailment-nli an NLI cross-encoder (--nli-model)",
    )
    calibrate.add_argument(
        "--pairs", type=Path, help="CSV of labelled pairs with the columns a,b,same,category"
    )
    calibrate.add_argument(
        "--threshold",
        type=float,
        action="append",
        help="embedding: cosine similarity; entailment: p(entails) both ways; may repeat "
        "(default: the clusterer's)",
    )
    calibrate.add_argument("--nli-model", help="entailment-nli: local folder or model id")
    calibrate.add_argument(
        "--lm-backend", help="entailment-lm: llamacpp, transformers or openai (default: auto)"
    )
    calibrate.add_argument(
        "--lm-model", default=None, help="entailment-lm: model name or path (default: embedded)"
    )


def _calibration_judge(kind: str, args: argparse.Namespace) -> Any:
    if kind == "entailment-nli":
        from valuegym.measures.entailment import NLIJudge

        if not args.nli_model:
            raise UsageError("--clusterer entailment-nli: needs --nli-model FOLDER_OR_ID")
        return NLIJudge(args.nli_model)
    if kind == "entailment-lm":
        from valuegym.lm import DEFAULT_MODEL, load_language_model
        from valuegym.measures.entailment import LanguageModelJudge

        return LanguageModelJudge(
            load_language_model(args.lm_backend, args.lm_model or DEFAULT_MODEL)
        )
    return None


def _command_calibrate_clusterer(args: argparse.Namespace) -> int:
    from valuegym.measures.calibration import calibrate, load_pairs
    from valuegym.measures.clustering import get_clusterer

    try:
        pairs = load_pairs(args.pairs)
    except (OSError, ValueError) as error:
        raise UsageError(f"--pairs: {error}") from None
    for kind in args.clusterer or ["text", "embedding"]:
        judge = _calibration_judge(kind, args)
        thresholds = [None] if kind == "text" else (args.threshold or [None])
        for threshold in thresholds:
            if judge is not None:
                clusterer = get_clusterer("entailment", judge=judge, threshold=threshold)
            elif kind == "embedding":
                clusterer = get_clusterer("embedding", threshold=threshold)
            else:
                clusterer = get_clusterer("text")
            calibration = calibrate(clusterer, pairs)
            settings = {k: v for k, v in calibration.clusterer.items() if k != "question"}
            print(f"{kind}: {settings}, {len(pairs)} pairs in {calibration.seconds:.1f} s")
            print(calibration.to_markdown() + "\n")
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from valuegym.scenarios.loader import YamlLoadError, load_yaml_text

    overrides: dict[str, Any] = {}
    for item in args.overrides:
        path, separator, text = item.partition("=")
        if not separator or not path.strip():
            raise UsageError(f"--set {item!r}: expected PATH=VALUE, e.g. seed=3")
        try:
            overrides[path.strip()] = load_yaml_text(text, source=f"--set {path.strip()}")
        except YamlLoadError as error:
            raise UsageError(str(error)) from None
    for option, key in (("seed", "seed"), ("episodes", "episodes"), ("max_steps", "max_steps")):
        if getattr(args, option) is not None:
            overrides[key] = getattr(args, option)
    return overrides


def _load(args: argparse.Namespace) -> Any:
    from valuegym.scenarios.validation import load_scenario, scenario_with_overrides

    scenario = load_scenario(args.scenario)
    overrides = _overrides(args)
    if overrides:
        sweep = scenario.sweep
        scenario = scenario_with_overrides(scenario, overrides)
        if sweep is not None and "sweep" not in overrides:
            # The sweep's cells are validated against the overridden base when they are planned.
            scenario = scenario.model_copy(update={"sweep": sweep})
    return scenario


def _command_validate(args: argparse.Namespace) -> int:
    from valuegym.scenarios.validation import ScenarioError, load_scenario

    status = 0
    for path in args.scenarios:
        try:
            scenario = load_scenario(path)
        except ScenarioError as error:
            print(error.format(), file=sys.stderr)
            status = 1
            continue
        sweep = ""
        if scenario.sweep is not None:
            cells = 1
            for values in scenario.sweep.grid.values():
                cells *= len(values)
            sweep = f", sweep of {cells} cell(s) x {len(scenario.sweep.seed_list)} seed(s)"
        print(
            f"{path}: ok ({scenario.name}: {scenario.env.id}, {scenario.n_agents} agent(s), "
            f"{scenario.episodes} episode(s) x {scenario.max_steps} steps{sweep})"
        )
    return status


def _listed_scenarios() -> list[tuple[str, Path]]:
    """``(how to name it, file)`` of the shipped scenarios and those in ./scenarios."""
    from valuegym.scenarios.catalog import shipped_scenarios

    shipped = {path.resolve(): path.name for path in shipped_scenarios()}
    local = Path.cwd() / "scenarios"
    own = sorted(local.glob("*.yaml")) if local.is_dir() else []
    return [(name, path) for path, name in shipped.items()] + [
        (str(path.relative_to(Path.cwd())), path) for path in own if path.resolve() not in shipped
    ]


def _command_list(args: argparse.Namespace) -> int:
    from valuegym.envs.registration import MULTI_AGENT_ENV_IDS, SINGLE_AGENT_ENV_IDS
    from valuegym.lm import available_backends
    from valuegym.scenarios.schema import AGENT_KINDS, LM_BACKENDS
    from valuegym.scenarios.validation import ScenarioError, load_scenario

    sections: list[tuple[str, list[str]]] = []
    if args.what in (None, "envs"):
        sections.append(
            (
                "envs",
                [f"{env_id}  (Gymnasium, single agent)" for env_id in SINGLE_AGENT_ENV_IDS]
                + [
                    f"{env_id}  (PettingZoo Parallel, multi-agent)"
                    for env_id in MULTI_AGENT_ENV_IDS
                ],
            )
        )
    if args.what in (None, "scenarios"):
        lines = []
        for name, path in _listed_scenarios():
            try:
                description = load_scenario(path).description.strip().splitlines()
                lines.append(f"{name}  {description[0] if description else ''}".rstrip())
            except ScenarioError:
                lines.append(f"{name}  (invalid: run valuegym validate on it)")
        sections.append(("scenarios (shipped ones run by name: valuegym run quickstart)", lines))
    if args.what in (None, "agents"):
        sections.append(("agent kinds", list(AGENT_KINDS)))
    if args.what in (None, "backends"):
        installed = available_backends()
        sections.append(
            (
                "LM backends",
                [
                    f"{name}  ({'installed' if name in installed else 'not installed'}"
                    f"{', the default' if installed and name == installed[0] else ''})"
                    for name in LM_BACKENDS
                ],
            )
        )
    for title, lines in sections:
        if args.what is None:
            print(f"{title}:")
            print("\n".join(f"  {line}" for line in lines))
        else:
            print("\n".join(lines))
    return 0


def _command_run(args: argparse.Namespace) -> int:
    scenario = _load(args)
    from valuegym.runs.runner import RunError, default_run_dir, run_scenario

    run_dir = args.output if args.output is not None else default_run_dir(scenario)
    if scenario.sweep is not None:
        return _run_sweep(scenario, run_dir, args)
    try:
        result = run_scenario(
            scenario,
            run_dir,
            progress=not args.quiet,
            overwrite=args.overwrite,
        )
    except RunError as error:
        raise UsageError(str(error)) from None
    print(f"records: {result.folder.records_dir}")
    if not args.no_report:
        from valuegym.analysis.report import write_report

        print(f"report:  {write_report(result.folder.root, seed=scenario.seed)}")
        for figure in sorted(result.folder.report_dir.glob("*.png")):
            print(f"figure:  {figure}")
    return 0


def _run_sweep(scenario: Any, run_dir: Path, args: argparse.Namespace) -> int:
    from valuegym.runs.sweeps import run_sweep

    outcome = run_sweep(
        scenario,
        run_dir,
        executor=args.executor,
        workers=args.workers,
        ray_address=args.ray_address,
        cell_gpus=args.cell_gpus,
        progress=not args.quiet,
    )
    print(
        f"sweep: {run_dir} ({len(outcome.ran)} cell(s) run, {len(outcome.skipped)} already "
        f"finished, {len(outcome.failures)} failed)"
    )
    if not args.no_report and len(outcome.failures) < len(outcome.cells):
        from valuegym.analysis.sweep_report import write_sweep_report

        print(f"report:  {write_sweep_report(run_dir, seed=scenario.seed)}")
    for failure in outcome.failures:
        print(
            f"failed: cell {failure.cell.cell_id} {dict(failure.cell.overrides)} "
            f"seed {failure.cell.seed}: {failure.error}",
            file=sys.stderr,
        )
    return 1 if outcome.failures else 0


def _command_train(args: argparse.Namespace) -> int:
    scenario = _load(args)
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


def _command_report(args: argparse.Namespace) -> int:
    from valuegym.analysis.report import write_report
    from valuegym.analysis.sweep_report import is_sweep_folder, write_sweep_report
    from valuegym.manifest import MixedLanguageModelsError

    if not args.run_dir.is_dir():
        raise UsageError(f"{args.run_dir}: no such run folder")
    try:
        if is_sweep_folder(args.run_dir):
            path = write_sweep_report(
                args.run_dir, seed=args.seed, allow_mixed_lm=args.allow_mixed_lm
            )
        else:
            path = write_report(args.run_dir, seed=args.seed)
    except (FileNotFoundError, MixedLanguageModelsError) as error:
        raise UsageError(str(error)) from None
    print(f"report: {path}")
    return 0


def _replay_grid(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from valuegym.scenarios.schema import CounterfactualSpec

    levels: dict[str, Any] = {}
    for item in args.grid:
        name, separator, text = item.partition("=")
        name = name.strip()
        if not separator or name not in ("prompt_stress", "prompt_mood", "temperature", "persona"):
            raise UsageError(
                f"--grid {item!r}: expected CHANNEL=V1,V2 with CHANNEL one of prompt_stress, "
                "prompt_mood, temperature, persona"
            )
        if name == "persona":
            levels[name] = [part.strip() for part in text.split("|") if part.strip()]
            continue
        try:
            levels[name] = [float(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise UsageError(f"--grid {item!r}: levels must be numbers") from None
    try:
        return CounterfactualSpec(
            samples=args.samples, every=args.every, placebo=not args.no_placebo, **levels
        )
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in detail['loc'])}: {detail['msg']}"
            for detail in error.errors()
        )
        raise UsageError(f"--grid: {problems}") from None


def _command_replay(args: argparse.Namespace) -> int:
    from valuegym.analysis.report import write_report
    from valuegym.runs.errors import RunError
    from valuegym.runs.replay import replay_run

    grid = _replay_grid(args)
    if not args.run_dir.is_dir():
        raise UsageError(f"{args.run_dir}: no such run folder")
    try:
        result = replay_run(args.run_dir, grid, overwrite=args.overwrite, progress=not args.quiet)
    except RunError as error:
        raise UsageError(str(error)) from None
    print(
        f"replayed {result.contexts} contexts x {len(result.cells)} cells "
        f"({result.episodes_replayed} episodes; {result.episodes_resumed} already done)"
    )
    print(f"report: {write_report(args.run_dir)}")
    return 0


def _command_doctor(args: argparse.Namespace) -> int:
    from valuegym.doctor import run_doctor

    return run_doctor(backends=args.backends, timeout_s=args.timeout)


_COMMANDS = {
    "run": _command_run,
    "validate": _command_validate,
    "list": _command_list,
    "train": _command_train,
    "report": _command_report,
    "doctor": _command_doctor,
    "replay": _command_replay,
    "calibrate-clusterer": _command_calibrate_clusterer,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 for bad input or a failed run, 2 for bad usage.
    """
    from valuegym.scenarios.validation import ScenarioError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return _COMMANDS[args.command](args)
    except (ScenarioError, UsageError) as error:
        print(str(error), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; finished episodes are on disk, rerun to resume", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        print(
            f"valuegym {args.command}: {type(error).__name__}: {error}\n"
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
