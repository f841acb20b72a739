"""Run a scenario: episodes with a progress bar, records per episode, a summary, a report.

Each episode is an :class:`~valuegym.runs.episode.EpisodeRun`: LM agents speak, every agent
acts, the env steps. It records ``steps`` rows (one per agent and step, the state *after* the
step), ``utterances`` rows (one per utterance, the state it was spoken *from*, with what
replays it) and ``information`` rows (mutual information, when measured); their columns,
types and meaning are the record schema's (:mod:`valuegym.records.schema`). Before the first
episode the run folder gets its ``manifest.json`` and ``design.json``.

The summary (``summary.json``) says what ran and carries the run's timing: tokens and seconds
per phase, in the model, in measurement and in the env (:mod:`valuegym.runs.timing`);
timings stay out of the records, which must not differ between runs.

Every random choice is seeded from the scenario's seed and its position (episode, step, agent)
alone, so episodes are independent: the same scenario and seed give byte-identical records,
and a killed run resumes by running only the episodes without records.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

import valuegym
from valuegym.manifest import (
    build_manifest,
    read_manifest,
    resume_differences,
    write_resumed_manifest,
)
from valuegym.records import (
    EpisodeRecorder,
    RecordSchemaError,
    RunFolder,
    write_bytes_atomic,
    write_json_atomic,
)
from valuegym.runs.appraisal import appraisal_description, build_appraiser
from valuegym.runs.episode import EpisodeRun
from valuegym.runs.errors import RunError
from valuegym.runs.population import Population, PopulationError, build_population
from valuegym.runs.timing import RunTiming
from valuegym.scenarios.schema import Scenario

__all__ = ["RunError", "RunResult", "default_run_dir", "finished_run", "run_scenario"]

#: Runs go here (under the current folder) unless ``--output`` says otherwise.
RUNS_FOLDER: Final = Path("runs")


@dataclass(frozen=True)
class RunResult:
    """What a run wrote.

    Attributes:
        folder: The run folder.
        episodes_run: Episodes run now.
        episodes_resumed: Episodes already on disk from an earlier, interrupted run.
    """

    folder: RunFolder
    episodes_run: int
    episodes_resumed: int


def default_run_dir(scenario: Scenario, suffix: str = "") -> Path:
    """``runs/<output or name><suffix>`` under the current folder.

    Args:
        scenario: The scenario.
        suffix: Appended to the folder name (``"-train"`` for training runs).

    Returns:
        The relative path.
    """
    return RUNS_FOLDER / f"{scenario.output or scenario.name}{suffix}"


def finished_run(scenario: Scenario, run_dir: str | Path) -> RunFolder | None:
    """The run folder, when it holds a finished run of this very scenario.

    Args:
        scenario: The scenario (with the settings it would run with).
        run_dir: The run folder.

    Returns:
        The folder when its summary is written, its resolved scenario is this one and every
        episode has records; else ``None``.
    """
    folder = RunFolder(Path(run_dir))
    if not (folder.is_complete and folder.scenario_file.is_file()):
        return None
    if folder.scenario_file.read_text(encoding="utf-8") != _resolved(scenario):
        return None
    if not set(range(scenario.episodes)) <= set(folder.finished_episodes()):
        return None
    return folder


def run_scenario(
    scenario: Scenario,
    run_dir: str | Path,
    *,
    progress: bool = True,
    overwrite: bool = False,
    load_model: Callable[..., Any] | None = None,
) -> RunResult:
    """Run every episode of a scenario into a run folder, then write the summary.

    The report is written by whoever asked for the run (``valuegym run`` writes it with
    :func:`valuegym.analysis.report.write_report`), so running never depends on analysis.

    Args:
        scenario: A validated scenario without a sweep (a sweep cell is one).
        run_dir: The run folder; created if missing. A folder holding finished episodes of the
            same scenario is resumed.
        progress: Show a progress bar (on stderr).
        overwrite: Replace the records of a different scenario found in ``run_dir``, or rerun
            a finished run of this one.
        load_model: Loads language models (see
            :func:`~valuegym.runs.population.build_population`).

    Returns:
        What was written.

    Raises:
        RunError: When the folder holds another scenario's records (without ``overwrite``),
            or the env, an agent or a language model fails (a server still failing after
            its retries: one line naming it); finished episodes stay on disk, and running
            again resumes.
    """
    if scenario.sweep is not None:
        raise RunError(f"{scenario.name}: has a sweep; run its cells (valuegym.runs.sweeps)")
    folder = RunFolder(Path(run_dir))
    resolved = _resolved(scenario)
    replace = _holds_other_scenario(folder, resolved, overwrite)
    if overwrite and finished_run(scenario, folder.root) is not None:
        replace = True  # asked to rerun a finished run, not to resume it
    finished = set() if replace else set(folder.finished_episodes())
    if finished:
        try:
            folder.read_design()
        except RecordSchemaError as error:
            if not overwrite:
                raise RunError(f"{error}; or pass --overwrite to replace them") from None
            replace, finished = True, set()
    to_run = [episode for episode in range(scenario.episodes) if episode not in finished]
    started = time.perf_counter()
    population = None
    appraisal = None
    timing = RunTiming()
    manifest = build_manifest(scenario.to_mapping()) if to_run else None
    if finished and manifest is not None:
        differences = resume_differences(read_manifest(folder.root), manifest)
        if differences:
            raise RunError(
                f"{folder.root}: its finished episodes were made by other language models "
                "than this installation has, and entropies compare only within one backend, "
                "model file and build:\n  "
                + "\n  ".join(differences)
                + "\nresume it on the installation that started it, or run into another "
                "folder (--output)"
            )
    # Episodes whose designed intervention is still to be re-simulated (after a stop).
    intervening = scenario.measure.intervention is not None and any(
        not folder.episode_file("interventions", episode).is_file()
        for episode in range(scenario.episodes)
    )
    if to_run or intervening:
        # Built before anything is written: a bad env argument, checkpoint or model leaves
        # no folder behind.
        _phase(
            progress,
            f"loading {scenario.n_agents} agent(s)"
            + (" and the language model" if scenario.uses_language_model else ""),
        )
        try:
            population = build_population(scenario, load_model=load_model)
            population.appraiser = build_appraiser(scenario, population, load_model)
        except PopulationError as error:
            if population is not None:
                population.close()
            raise RunError(str(error)) from None
    created = not folder.root.exists()
    try:
        _prepare_folder(folder, resolved, replace)
        # Written before any episode, so that a run stopped half-way says what made its records.
        if manifest is not None and finished:
            write_resumed_manifest(folder, manifest, sorted(finished), to_run)
        elif manifest is not None:
            if population is not None and population.appraiser is not None:
                # Which clusterer, valence judge and model each listener appraises with.
                manifest["appraisal"] = appraisal_description(population.appraiser)
            if population is not None:
                steering = _steering_description(population)
                if steering:
                    manifest["steering"] = steering
            write_json_atomic(manifest, folder.manifest_file)
        folder.write_design(scenario.run_design())
        if population is not None:
            timing.add_models(population.models)
            _run_episodes(scenario, population, folder, to_run, progress, timing)
            appraisal = appraisal_description(population.appraiser)
            if scenario.measure.intervention is not None:
                from valuegym.runs.intervention import run_interventions

                _phase(progress, "re-simulating episodes with the designed message variants")
                run_interventions(scenario, population, folder, progress=progress, timing=timing)
    except BaseException as error:
        # A folder this run made and that holds no finished episode (a failed model, a disk
        # that cannot be written) is not left behind.
        if created and not folder.finished_episodes():
            shutil.rmtree(folder.root, ignore_errors=True)
        from valuegym.lm import LanguageModelError, TransientLanguageModelError

        if isinstance(error, LanguageModelError):
            # One line: what failed (the server's address is in it), and what to do.
            failure = " ".join(str(error).split())
            when = (
                " once the server answers again"
                if isinstance(error, TransientLanguageModelError)
                else ""
            )
            kept = (
                f"; finished episodes are in {folder.records_dir}, rerun{when} to resume"
                if folder.root.exists()
                else ""
            )
            raise RunError(f"language model failed: {failure}{kept}") from None
        raise
    finally:
        if population is not None:
            population.close()
    if scenario.measure.counterfactual is not None and scenario.measure.utterances:
        from valuegym.lm import LanguageModelError
        from valuegym.runs.replay import replay_run

        _phase(progress, "replaying recorded contexts under the channel grid")
        try:
            replay_run(
                folder.root,
                scenario.measure.counterfactual,
                progress=progress,
                load_model=load_model,
                overwrite=True,
                timing=timing,
            )
        except LanguageModelError as error:
            failure = " ".join(str(error).split())
            raise RunError(
                f"language model failed during the replay: {failure}; the episodes and the "
                f"replayed episodes are in {folder.records_dir}, rerun to resume the replay"
            ) from None
    resumed = len(finished & set(range(scenario.episodes)))
    summary = {
        "scenario": scenario.name,
        "description": scenario.description,
        "env": scenario.env.id,
        "agents": [
            {"id": agent_id, "kind": spec.kind} for agent_id, spec in scenario.expanded_agents()
        ],
        "seed": scenario.seed,
        "episodes": scenario.episodes,
        "episodes_run": len(to_run),
        "episodes_resumed": resumed,
        "max_steps": scenario.max_steps,
        "seconds": round(time.perf_counter() - started, 3),
        # Of the work done by this invocation (resumed episodes are not in it).
        "timing": timing.to_dict(),
        "appraisal": appraisal,
        "valuegym_version": valuegym.__version__,
        "python": sys.version.split()[0],
    }
    write_json_atomic(summary, folder.summary_file)
    return RunResult(folder, len(to_run), resumed)


def _steering_description(population: Population) -> dict[str, Any]:
    """Per steered LM agent: its directions' provenance, strength, centre and blocks."""
    described: dict[str, Any] = {}
    for group in population.lm_groups:
        channel = group.agent.steering
        if channel is None:
            continue
        for row in group.rows:
            described[population.members[row].agent_id] = {
                "directions": dict(channel.directions.provenance),
                "settings": dict(channel.settings),
                "strength": channel.strength,
                "center": dict(channel.center),
                "layers": list(channel.layers),
            }
    return described


def _phase(progress: bool, text: str) -> None:
    """Say on stderr which phase a run is in, to a person watching (a terminal, not a log).

    Shown with the progress bars (not with ``--quiet``) when stderr is a terminal, so that a
    failure's one-line message stays the only line a program reading stderr gets.
    """
    if progress and sys.stderr.isatty():
        print(f"valuegym: {text}", file=sys.stderr, flush=True)


def _resolved(scenario: Scenario) -> str:
    """The scenario as its run folder's ``scenario.yaml`` holds it."""
    return yaml.safe_dump(scenario.to_mapping(), sort_keys=False, allow_unicode=True)


def _holds_other_scenario(folder: RunFolder, resolved: str, overwrite: bool) -> bool:
    """Whether the folder holds another scenario's run, to be replaced (with ``overwrite``)."""
    if folder.root.exists() and not folder.root.is_dir():
        raise RunError(
            f"{folder.root}: exists and is not a folder; move it away or choose another "
            "folder with --output"
        )
    if not folder.scenario_file.is_file():
        return False
    if folder.scenario_file.read_text(encoding="utf-8") == resolved:
        return False
    if not overwrite:
        raise RunError(
            f"{folder.root}: holds the records of a different scenario (or different "
            "settings); choose another folder with --output, or pass --overwrite to "
            "replace them"
        )
    return True


def _prepare_folder(folder: RunFolder, resolved: str, replace: bool) -> None:
    if replace:
        for path in (folder.records_dir, folder.report_dir):
            if path.is_dir():
                shutil.rmtree(path)
    # A summary belongs to a finished run; this run writes its own at the end.
    folder.summary_file.unlink(missing_ok=True)
    folder.create()
    write_bytes_atomic(resolved.encode("utf-8"), folder.scenario_file)


def _run_episodes(
    scenario: Scenario,
    population: Population,
    folder: RunFolder,
    episodes: Sequence[int],
    progress: bool,
    timing: RunTiming,
) -> None:
    from tqdm.auto import tqdm

    clusterer = None
    if scenario.measure.semantic_entropy is not None and population.lm_groups:
        from valuegym.measures.clustering import get_clusterer

        kind = scenario.measure.semantic_entropy.clusterer
        judge = None
        if kind == "entailment":
            from valuegym.measures.entailment import LanguageModelJudge

            # One judge (and one cache of judgements) for the run: the first LM group's model.
            judge = LanguageModelJudge(population.lm_groups[0].agent.model)
        clusterer = get_clusterer(kind, judge=judge)
    with tqdm(
        total=len(episodes) * scenario.max_steps,
        desc=f"{scenario.name}: episodes",
        unit="step",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    ) as bar:
        for episode in episodes:
            recorder = EpisodeRecorder(folder, episode)
            steps_done = EpisodeRun(
                scenario, population, episode, recorder, clusterer, bar, timing
            ).run()
            recorder.finish()
            bar.update(scenario.max_steps - steps_done)
