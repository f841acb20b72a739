"""Run a scenario: episodes with a progress bar, records per episode, a summary, a report.

Each step, LM agents first speak (one batched ``generate`` per group of agents sharing a model,
each at its value-state temperature; measured per token, and over K samples for semantic
entropy when the scenario asks), then every agent acts, then the env steps. Records:

- ``steps``: one row per agent and step with the state *after* the step: ``episode, step,
  agent, agent_kind, env_agent, action, reward, terminated, truncated, mood, stress,
  temperature, most_wanted, stock_<value>..., wanting_<value>..., env_<metric>...`` (the
  env's numeric ``info`` entries, e.g. ``env_resource``);
- ``utterances``: one row per utterance with the state the agent spoke *from*: ``episode,
  step, agent, agent_kind, mood, stress, temperature, most_wanted, sampling_temperature, text,
  finish_reason, model``, the :class:`~valuegym.measures.UtteranceEntropy` fields
  (``length, mean_token_entropy, total_token_entropy, mean_sampled_entropy, ..., unit``), the
  per-token lists ``token_entropy, sampled_entropy, token_logprob``, what replays it
  (``persona, context_id, context, prompt``, the channel settings ``prompt_state,
  prompt_mood, prompt_stress, prompt_most_wanted, speech_temperature_setting,
  act_temperature_setting, top_p, top_k, min_p`` and ``sampler_seed, sampler_index``), and
  ``semantic_entropy, semantic_entropy_discrete, n_clusters`` (NaN/0 on steps not measured);
- ``information``: per measured step and LM agent, the mutual information between a designed
  set of stated states and the utterance (when ``measure.mutual_information``); see
  :mod:`valuegym.runs.speech`.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import yaml

import valuegym
from valuegym.envs.protocol import CHAT, MESSAGES, TURN, VALUE_KEYS
from valuegym.manifest import (
    build_manifest,
    read_manifest,
    resume_differences,
    write_resumed_manifest,
)
from valuegym.numeric import SeedSalt
from valuegym.records import (
    EpisodeRecorder,
    RecordSchemaError,
    RunFolder,
    write_bytes_atomic,
    write_json_atomic,
)
from valuegym.runs.errors import RunError
from valuegym.runs.population import (
    Member,
    Population,
    PopulationError,
    build_population,
)
from valuegym.runs.speech import Speech
from valuegym.runs.timing import RunTiming
from valuegym.scenarios.schema import Scenario
from valuegym.values import AgentSnapshot

__all__ = ["RunError", "RunResult", "default_run_dir", "run_scenario"]

#: Runs go here (under the current folder) unless ``--output`` says otherwise.
RUNS_FOLDER: Final = Path("runs")
#: ``info`` entries that are not env metrics (they are recorded in their own columns).
_NOT_METRICS: Final = frozenset(VALUE_KEYS)
#: Most recent messages or events an LM prompt mentions.
_MAX_EVENTS: Final = 5


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
        overwrite: Replace the records of a different scenario found in ``run_dir``.
        load_model: Loads language models (see
            :func:`~valuegym.runs.population.build_population`).

    Returns:
        What was written.

    Raises:
        RunError: When the folder holds another scenario's records (without ``overwrite``),
            or the env, an agent or a language model fails; finished episodes stay on disk.
    """
    if scenario.sweep is not None:
        raise RunError(f"{scenario.name}: has a sweep; run its cells (valuegym.runs.sweeps)")
    folder = RunFolder(Path(run_dir))
    resolved = yaml.safe_dump(scenario.to_mapping(), sort_keys=False, allow_unicode=True)
    replace = _holds_other_scenario(folder, resolved, overwrite)
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
    if to_run:
        # Built before anything is written: a bad env argument, checkpoint or model leaves
        # no folder behind.
        try:
            population = build_population(scenario, load_model=load_model)
        except PopulationError as error:
            raise RunError(str(error)) from None
    created = not folder.root.exists()
    _prepare_folder(folder, resolved, replace)
    # Written before any episode, so that a run stopped half-way says what made its records.
    if manifest is not None and finished:
        write_resumed_manifest(folder, manifest, sorted(finished), to_run)
    elif manifest is not None:
        write_json_atomic(manifest, folder.manifest_file)
    folder.write_design(scenario.run_design())
    if population is not None:
        from valuegym.lm import LanguageModelError

        timing.add_models(population.models)
        try:
            _run_episodes(scenario, population, folder, to_run, progress, timing)
        except BaseException as error:
            if created and not folder.finished_episodes():
                shutil.rmtree(folder.root, ignore_errors=True)  # nothing finished: leave nothing
            if isinstance(error, LanguageModelError):
                kept = (
                    f"; finished episodes are in {folder.records_dir}, rerun to resume"
                    if folder.root.exists()
                    else ""
                )
                raise RunError(f"language model failed: {error}{kept}") from None
            raise
        finally:
            population.close()
    if scenario.measure.counterfactual is not None and scenario.measure.utterances:
        from valuegym.runs.replay import replay_run

        replay_run(
            folder.root,
            scenario.measure.counterfactual,
            progress=progress,
            load_model=load_model,
            overwrite=True,
            timing=timing,
        )
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
        "valuegym_version": valuegym.__version__,
        "python": sys.version.split()[0],
    }
    write_json_atomic(summary, folder.summary_file)
    return RunResult(folder, len(to_run), resumed)


def _holds_other_scenario(folder: RunFolder, resolved: str, overwrite: bool) -> bool:
    """Whether the folder holds another scenario's run, to be replaced (with ``overwrite``)."""
    if folder.root.exists() and not folder.root.is_dir():
        raise RunError(f"{folder.root}: exists and is not a folder")
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
        desc=scenario.name,
        unit="step",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    ) as bar:
        for episode in episodes:
            recorder = EpisodeRecorder(folder, episode)
            steps_done = _EpisodeRun(
                scenario, population, episode, recorder, clusterer, bar, timing
            ).run()
            recorder.finish()
            bar.update(scenario.max_steps - steps_done)


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    return None


def _acting(
    live: Sequence[Member], infos: Mapping[str, Any], agents: Sequence[str]
) -> list[Member]:
    """The agents that act this step: the one whose turn it is in turn-based envs, else all."""
    turn = next(
        (infos[member.env_agent][TURN] for member in live if TURN in infos[member.env_agent]),
        None,
    )
    return [member for member in live if turn is None or member.env_agent == agents[turn]]


def _events(info: Mapping[str, Any], observation: Any = None) -> list[str]:
    """What an LM agent is told happened, newest last: the env's text channel.

    The chat transcript of a text-mode observation and the messages in ``info`` (the keys of
    :mod:`valuegym.envs.protocol`).
    """
    lines: list[str] = []
    if isinstance(observation, Mapping) and isinstance(observation.get(CHAT), str):
        lines.extend(line for line in observation[CHAT].splitlines()[-_MAX_EVENTS:] if line)
    for message in info.get(MESSAGES, ())[:_MAX_EVENTS]:
        sender = message.get("sender")
        lines.append(f"{sender}: {message['text']}" if sender else str(message["text"]))
    return lines


class _EpisodeRun:
    """One episode of a population: the step loop and the rows it records."""

    def __init__(
        self,
        scenario: Scenario,
        population: Population,
        episode: int,
        recorder: EpisodeRecorder,
        clusterer: Any,
        bar: Any,
        timing: RunTiming,
    ) -> None:
        self.scenario = scenario
        self.population = population
        self.episode = episode
        self.recorder = recorder
        self.timing = timing
        self.speech = Speech(scenario, population, episode, recorder, clusterer, timing)
        self.bar = bar
        self.seed = scenario.seed

    def run(self) -> int:
        """Run the episode; returns the number of steps taken."""
        population, seed, episode = self.population, self.seed, self.episode
        observations, infos = self._reset(SeedSalt.ENV.seed(seed, episode))
        for member in population.members:
            if member.policy is not None:
                member.policy.reset(SeedSalt.POLICY.seed(seed, episode, member.row))
        act_rngs = {
            member.row: np.random.default_rng(SeedSalt.ACT.seed(seed, episode, member.row))
            for member in population.members
            if member.lm_group is not None
        }
        steps = 0
        speaking = self.scenario.measure.utterances or population.text_actions
        for step in range(self.scenario.max_steps):
            live = [member for member in population.members if member.env_agent in observations]
            if not live:
                break
            acting = _acting(live, infos, getattr(population.env, "possible_agents", ()))
            snapshots = {
                member.row: AgentSnapshot.from_info(
                    infos[member.env_agent], member.row, population.env.unwrapped.value_names
                )
                for member in acting
                if member.lm_group is not None
            }
            contexts = {
                member.row: _events(infos[member.env_agent], observations[member.env_agent])
                for member in acting
                if member.lm_group is not None
            }
            said = self.speech.speak(step, acting, snapshots, contexts) if speaking else {}
            actions = {
                member.env_agent: self._act(
                    member, observations, infos, snapshots, contexts, act_rngs
                )
                for member in acting
            }
            env_actions: dict[str, Any] = actions
            if population.text_actions:
                env_actions = {
                    agent: {"act": act, "utterance": said.get(agent, "")}
                    for agent, act in actions.items()
                }
            observations, rewards, terminations, truncations, infos = self._step(env_actions)
            self.recorder.add(
                "steps",
                (
                    {
                        "step": step,
                        "agent": member.agent_id,
                        **member.entry,
                        "env_agent": member.env_agent,
                        "action": actions.get(member.env_agent, -1),
                        "reward": float(rewards[member.env_agent]),
                        "terminated": bool(terminations[member.env_agent]),
                        "truncated": bool(truncations[member.env_agent]),
                        **self._info_columns(infos[member.env_agent], member.row),
                    }
                    for member in live
                ),
            )
            steps += 1
            self.bar.update(1)
            observations = {
                agent: observation
                for agent, observation in observations.items()
                if not (terminations.get(agent) or truncations.get(agent))
            }
        return steps

    def _reset(self, env_seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
        env = self.population.env
        with self.timing.stepping_env():
            if self.population.multi_agent:
                observations, infos = env.reset(seed=env_seed)
                return dict(observations), dict(infos)
            observation, info = env.reset(seed=env_seed)
        return {"agent": observation}, {"agent": info}

    def _step(self, actions: dict[str, int]) -> tuple[dict[str, Any], ...]:
        env = self.population.env
        with self.timing.stepping_env():
            if self.population.multi_agent:
                return tuple(dict(part) for part in env.step(actions))
            observation, reward, terminated, truncated, info = env.step(actions["agent"])
        return (
            {"agent": observation},
            {"agent": reward},
            {"agent": terminated},
            {"agent": truncated},
            {"agent": info},
        )

    def _info_columns(self, info: Mapping[str, Any], row: int) -> dict[str, Any]:
        value_names = self.population.env.unwrapped.value_names
        columns = AgentSnapshot.from_info(info, row, value_names).to_record()
        for key, value in info.items():
            if key in _NOT_METRICS:
                continue
            number = _as_number(value)
            if number is not None:
                columns[f"env_{key}"] = number
            elif isinstance(value, str):
                columns[f"env_{key}"] = value
        return columns

    def _options(self, n_actions: int) -> list[str]:
        names = self.population.action_names
        if names is not None and len(names) == n_actions:
            return list(names)
        return [f"action {index}" for index in range(n_actions)]

    def _act(
        self,
        member: Member,
        observations: Mapping[str, Any],
        infos: Mapping[str, Any],
        snapshots: Mapping[int, AgentSnapshot],
        contexts: Mapping[int, list[str]],
        act_rngs: Mapping[int, np.random.Generator],
    ) -> int:
        info = infos[member.env_agent]
        if member.policy is not None:
            observation = observations[member.env_agent]
            if isinstance(observation, Mapping) and "observation" in observation:
                observation = observation["observation"]  # text mode: the numeric part
            return int(member.policy.act(observation, info))
        assert member.lm_group is not None
        wanting = np.asarray(info["action_wanting"], dtype=np.float64)
        lm_agent = self.population.lm_groups[member.lm_group].agent
        with self.timing.phase("act"):
            return int(
                lm_agent.choose_act(
                    snapshots[member.row],
                    self._options(wanting.size),
                    action_wanting=wanting,
                    events=contexts[member.row],
                    rng=act_rngs[member.row],
                )
            )
