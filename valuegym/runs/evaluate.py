"""Held-out co-player evaluation (``valuegym evaluate``): run the focal population's episodes.

For each background population of the scenario's evaluation block
(:mod:`valuegym.scenarios.evaluation_spec`), every seat of the scenario gets its policy (the
focal policy on the focal seats, the background's policies cycled over the others; each seat
keeps its value profile) and the population plays one episode per seed. The seeds are the same
for every background (common random numbers), distinct per episode (episodes are the
independent units of the intervals), and offset from the seeds training uses.

This module runs the episodes and records what produced them; the social outcome metrics and
the table are :mod:`valuegym.analysis.social` and :mod:`valuegym.analysis.evaluation_report`.
The output folder holds ``scenario.yaml`` (the resolved scenario) and ``manifest.json``
(versions, seeds, the seats, each checkpoint's path and SHA-256), both written atomically
before any episode runs.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import yaml

from valuegym.envs.protocol import HARMED
from valuegym.lm.models import file_sha256
from valuegym.manifest import build_manifest
from valuegym.numeric import SeedSalt
from valuegym.records import RunFolder, write_bytes_atomic, write_json_atomic
from valuegym.runs.errors import RunError
from valuegym.runs.population import Population, PopulationError, build_population
from valuegym.scenarios.evaluation_spec import EvaluationSpec, PolicySpec
from valuegym.scenarios.schema import Scenario
from valuegym.scenarios.validation import ScenarioError, validate_scenario

__all__ = [
    "EVALUATION_SEED_OFFSET",
    "EvaluationEpisode",
    "EvaluationRun",
    "evaluation_seeds",
    "run_evaluation",
    "seated_scenario",
]

#: Evaluation episodes are seeded ``scenario.seed + EVALUATION_SEED_OFFSET + i``: away from the
#: seeds a policy trained on (``valuegym train`` evaluates on the same offset).
EVALUATION_SEED_OFFSET: Final = 100_000


@dataclass(frozen=True)
class EvaluationEpisode:
    """One episode of the focal population with one background population.

    Attributes:
        background: The background population's name.
        seed: The episode's seed.
        rewards: ``(steps, n_agents)`` rewards, agents in population order.
        harmed: ``(steps, n_agents)`` harms received (the env's ``info["harmed"]``), or
            ``None`` when the env defines no harm.
    """

    background: str
    seed: int
    rewards: np.ndarray
    harmed: np.ndarray | None

    @property
    def returns(self) -> np.ndarray:
        """Each agent's return."""
        return self.rewards.sum(axis=0)


@dataclass(frozen=True)
class EvaluationRun:
    """Every episode of an evaluation and who sat where.

    Attributes:
        scenario: The scenario evaluated (with its evaluation block).
        output: The output folder.
        agent_ids: Every seat's agent id, in population order.
        focal_rows: The focal seats' rows.
        focal: The focal policy's label.
        backgrounds: Background name -> the policy label of each background seat.
        seeds: The episodes' seeds (the same for every background).
        episodes: The episodes, background by background.
    """

    scenario: Scenario
    output: Path
    agent_ids: tuple[str, ...]
    focal_rows: tuple[int, ...]
    focal: str
    backgrounds: dict[str, tuple[str, ...]]
    seeds: tuple[int, ...]
    episodes: tuple[EvaluationEpisode, ...]

    @property
    def background_rows(self) -> tuple[int, ...]:
        """The background seats' rows."""
        return tuple(row for row in range(len(self.agent_ids)) if row not in self.focal_rows)

    @property
    def harm_defined(self) -> bool:
        """Whether the env says what harm is (peace is defined)."""
        return all(episode.harmed is not None for episode in self.episodes)


def evaluation_seeds(scenario: Scenario, episodes: int | None = None) -> tuple[int, ...]:
    """The seeds of an evaluation's episodes.

    Args:
        scenario: The scenario (its seed and evaluation block).
        episodes: How many; default the evaluation's ``seeds``, else the scenario's episodes.

    Returns:
        One seed per episode.
    """
    spec = scenario.evaluation or EvaluationSpec()
    count = episodes if episodes is not None else (spec.seeds or scenario.episodes)
    return tuple(scenario.seed + EVALUATION_SEED_OFFSET + i for i in range(count))


def seated_scenario(scenario: Scenario, policies: Sequence[PolicySpec]) -> Scenario:
    """The scenario with one agent entry per seat, each acting by the given policy.

    Seats keep their ids (the expanded ids, ``calm_0``), value profiles and affect.

    Args:
        scenario: A validated multi-agent scenario.
        policies: One policy per seat, in population order.

    Returns:
        The seated scenario (no design, sweep or evaluation).

    Raises:
        RunError: When the seated scenario does not validate.
    """
    data = scenario.to_mapping()
    seats: list[dict[str, Any]] = []
    for entry in scenario.entries():
        template = {
            key: value
            for key, value in data["agents"][entry.index].items()
            if key not in ("count", "lm", "script", "checkpoint", "planner", "id")
        }
        for agent_id in entry.agents:
            seats.append({**template, "id": agent_id, **policies[len(seats)].seat_fields()})
    data["agents"] = seats
    for key in ("design", "sweep", "evaluation"):
        data.pop(key, None)
    try:
        return validate_scenario(data)
    except ScenarioError as error:
        raise RunError(f"evaluation: the seated scenario is invalid: {error}") from None


def _play(
    population: Population, background: str, seed: int, episode: int, max_steps: int
) -> EvaluationEpisode:
    """One episode: every seat acts by its policy until the env ends it (or ``max_steps``).

    The env is reset with the episode's ``seed``; each policy's randomness comes from its own
    stream, ``SeedSalt.POLICY`` of that seed, the episode number and the seat's row.
    """
    env, members = population.env, population.members
    observations, infos = env.reset(seed=seed)
    for member in members:
        member.policy.reset(SeedSalt.POLICY.seed(seed, episode, member.row))
    harm_defined = all(HARMED in infos.get(m.env_agent, {}) for m in members)
    rewards: list[list[float]] = []
    harmed: list[list[float]] = []
    for _ in range(max_steps):
        if not env.agents:
            break
        actions = {
            m.env_agent: m.policy.act(observations[m.env_agent], infos[m.env_agent])
            for m in members
            if m.env_agent in env.agents
        }
        observations, step_rewards, _, _, infos = env.step(actions)
        rewards.append([float(step_rewards.get(m.env_agent, 0.0)) for m in members])
        if harm_defined:
            harmed.append([float(infos.get(m.env_agent, {}).get(HARMED, 0.0)) for m in members])
    shape = (len(rewards), len(members))
    return EvaluationEpisode(
        background=background,
        seed=seed,
        rewards=np.asarray(rewards, dtype=np.float64).reshape(shape),
        harmed=np.asarray(harmed, dtype=np.float64).reshape(shape) if harm_defined else None,
    )


def _record_provenance(
    scenario: Scenario, folder: RunFolder, seeds: Sequence[int], seats: dict[str, Any]
) -> None:
    spec = scenario.evaluation
    assert spec is not None
    mapping = scenario.to_mapping()
    manifest = build_manifest(mapping)
    manifest["evaluation"] = {
        "seeds": list(seeds),
        "unit": "episode (each its own seed, the same seeds for every background)",
        **seats,
        "checkpoints": [
            {"path": path, "sha256": file_sha256(Path(path))} for path in spec.checkpoints()
        ],
    }
    resolved = yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True)
    write_bytes_atomic(resolved.encode("utf-8"), folder.scenario_file)
    write_json_atomic(manifest, folder.manifest_file)


def run_evaluation(
    scenario: Scenario,
    output: str | Path,
    *,
    episodes: int | None = None,
    progress: bool = False,
) -> EvaluationRun:
    """Play the focal population against each background population, one episode per seed.

    Args:
        scenario: A validated multi-agent scenario; without an evaluation block, the default
            one (greedy focal on half the seats, greedy, random and softmax backgrounds).
        output: The output folder; created if missing.
        episodes: Episodes per background (default: :func:`evaluation_seeds`'s), >= 2.
        progress: Show a progress bar (on stderr) naming the background being played.

    Returns:
        The episodes and the seating.

    Raises:
        RunError: A single-agent env, fewer than two episodes, or a population that cannot be
            built (a checkpoint that does not load), naming the scenario key.
        OSError: When the output folder cannot be written.
    """
    if not scenario.env.is_multi_agent:
        raise RunError(
            f"evaluation: {scenario.env.id} is a single-agent env: held-out co-player "
            "evaluation needs co-players (a multi-agent env such as valuegym/Commons-v0)"
        )
    if scenario.evaluation is None:
        scenario = scenario.model_copy(update={"evaluation": EvaluationSpec()})
    spec = scenario.evaluation
    assert spec is not None
    seeds = evaluation_seeds(scenario, episodes)
    if len(seeds) < 2:
        raise RunError(f"episodes: an interval over episodes needs at least 2 (got {len(seeds)})")
    agent_ids = [agent_id for agent_id, _ in scenario.expanded_agents()]
    entry_ids = {entry.entry: list(entry.agents) for entry in scenario.entries()}
    focal_rows = spec.focal_rows(agent_ids, entry_ids)
    background_rows = [row for row in range(len(agent_ids)) if row not in focal_rows]
    seatings = {
        name: _seat_policies(spec, len(agent_ids), focal_rows, policies)
        for name, policies in spec.background.items()
    }
    backgrounds = {
        name: tuple(seating[row].label for row in background_rows)
        for name, seating in seatings.items()
    }
    folder = RunFolder(Path(output))
    folder.root.mkdir(parents=True, exist_ok=True)
    seats = {
        "agents": agent_ids,
        "focal": {"policy": spec.focal.label, "agents": [agent_ids[row] for row in focal_rows]},
        "backgrounds": {
            name: dict(zip([agent_ids[r] for r in background_rows], labels, strict=True))
            for name, labels in backgrounds.items()
        },
    }
    _record_provenance(scenario, folder, seeds, seats)
    played = _play_all(scenario, seatings, seeds, progress)
    return EvaluationRun(
        scenario=scenario,
        output=folder.root,
        agent_ids=tuple(agent_ids),
        focal_rows=tuple(focal_rows),
        focal=spec.focal.label,
        backgrounds=backgrounds,
        seeds=seeds,
        episodes=played,
    )


def _seat_policies(
    spec: EvaluationSpec, n_agents: int, focal_rows: Sequence[int], policies: Sequence[PolicySpec]
) -> list[PolicySpec]:
    """Each seat's policy: the focal one on focal seats, ``policies`` cycled over the rest."""
    cycle = itertools.cycle(policies)
    return [spec.focal if row in focal_rows else next(cycle) for row in range(n_agents)]


def _play_all(
    scenario: Scenario,
    seatings: dict[str, list[PolicySpec]],
    seeds: Sequence[int],
    progress: bool,
) -> tuple[EvaluationEpisode, ...]:
    from tqdm.auto import tqdm

    episodes: list[EvaluationEpisode] = []
    with tqdm(
        total=len(seatings) * len(seeds),
        unit="episode",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    ) as bar:
        for name, seating in seatings.items():
            bar.set_description(f"evaluate {scenario.name}: focal vs {name}")
            try:
                population = build_population(seated_scenario(scenario, seating))
            except PopulationError as error:
                raise RunError(f"evaluation.background.{name}: {error}") from None
            if population.text_actions:
                population.close()
                raise RunError(
                    "env.args.mode: text mode takes an utterance with every act; evaluation "
                    "seats numeric policies, use mode: numeric"
                )
            try:
                for episode, seed in enumerate(seeds):
                    episodes.append(_play(population, name, seed, episode, scenario.max_steps))
                    bar.update(1)
            finally:
                population.close()
    return tuple(episodes)
