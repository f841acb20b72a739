"""Counterfactual replay: recorded contexts regenerated under a grid of channel settings.

A run records, for every utterance, what the model saw (persona, events, prompt), the agent's
value state and the channel settings. :func:`replay_run` takes, in each episode, ``per_entry``
recorded utterances of every agent entry, evenly spaced over the episode
(:func:`select_contexts`), as *contexts* and regenerates each under each *cell* of a grid over
the prompt channel (the stress and mood the prompt states), the speech temperature, the
persona and the steering channel's stress coefficient (:mod:`valuegym.runs.replay_grid`), K
samples per cell. The K samples of a context use the same seeds in every cell
(common random numbers), so two cells differ only by their settings and each context gives
paired, within-context contrasts. A *placebo* cell states a stress drawn uniformly from [0, 1]
and a mood from [-1, 1], a fresh draw per context and cell, independent of the actual state
(a negative control: an effect of the actual state on what a placebo cell says cannot come
through the prompt).

Each sample is one ``replay`` row (per episode; the columns are the record schema's,
:mod:`valuegym.records.schema`): the cell's settings, what was stated and sampled at, the
recorded agent's actual state, and the measures of what was said (``sequence_entropy``, the
sum of the entropies of the distributions sampled from, first). With two or more stated stress
levels, the *manipulation check* asks whether the stated stress shifts what the model says: the
K samples of the lowest and of the highest level's cell (at the grid temperature nearest 1)
are each scored under both prompts (``manipulation`` rows), so that the Jensen-Shannon
divergence between the two reply distributions can be estimated
(:func:`~valuegym.measures.information.mutual_information_from_loglik`); it is 0 when the
stated level does not change the model's distribution. A ``llamacpp`` model is loaded for the
replay with ``exact_scoring=False``: the check (the only scoring a replay does) decodes a
prompt's 2K samples together in llama.cpp's batched mode, several times faster than one token
per decode. Batched scores differ from one-token decoding by a few tenths of a nat per reply
(and depend on which replies share the call), but both prompts score the same 2K replies
alike and deterministically, so identical prompts give identical scores and the estimated
divergence stays 0 when the stated level changes nothing.
Generation is unaffected.

Replays are resumable per episode and written atomically; the grid is kept in
``replay.yaml`` and a different grid is refused unless asked to replace the replay.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from valuegym.lm.sampling import prompt_seed
from valuegym.measures.degenerate import is_degenerate
from valuegym.measures.entropy import UtteranceEntropy
from valuegym.measures.information import cross_score
from valuegym.numeric import SeedSalt
from valuegym.records import RecordSchemaError, RunFolder, write_bytes_atomic
from valuegym.runs.errors import RunError
from valuegym.runs.population import PopulationError, load_lm_model, make_lm_agent
from valuegym.runs.replay_grid import (
    ReplayCell,
    cell_steering,
    checked_cells,
    dose_scores,
    level_of,
    plan_cells,
    select_contexts,
    stated_channel,
)
from valuegym.runs.timing import RunTiming
from valuegym.scenarios.agent_checks import (
    STEER_GRID_PATH,
    unsteered_entries,
    unsteered_message,
)
from valuegym.scenarios.schema import CounterfactualSpec, Scenario
from valuegym.values import AgentSnapshot

__all__ = [
    "ReplayCell",
    "ReplayResult",
    "plan_cells",
    "replay_run",
    "reproduce_utterance",
    "select_contexts",
]


@dataclass(frozen=True)
class ReplayResult:
    """What a replay wrote.

    Attributes:
        folder: The run folder.
        episodes_replayed: Episodes replayed now.
        episodes_resumed: Episodes whose replay was already on disk.
        contexts: Contexts replayed now.
        cells: The grid's cells.
        timing: Tokens and seconds of the replay (phase ``replay``).
        contexts_per_entry: Per agent entry, the fewest contexts replayed now in one episode
            (``per_entry`` unless the entry spoke less often).
    """

    folder: RunFolder
    episodes_replayed: int
    episodes_resumed: int
    contexts: int
    cells: tuple[ReplayCell, ...]
    timing: RunTiming
    contexts_per_entry: dict[str, int] = field(default_factory=dict)


def _load_scenario(folder: RunFolder) -> Scenario:
    from valuegym.scenarios.validation import validate_scenario

    data = yaml.safe_load(folder.scenario_file.read_text(encoding="utf-8"))
    return validate_scenario(data)


def replay_run(
    run_dir: str | Path,
    grid: CounterfactualSpec,
    *,
    overwrite: bool = False,
    progress: bool = True,
    load_model: Callable[..., Any] | None = None,
    timing: RunTiming | None = None,
) -> ReplayResult:
    """Replay a finished run's recorded contexts under a grid of channel settings.

    Args:
        run_dir: A run folder with utterance records.
        grid: The cells and how many contexts and samples.
        overwrite: Replace a replay of another grid found in the folder.
        progress: Show a progress bar (on stderr).
        load_model: Loads language models (see
            :func:`~valuegym.runs.population.build_population`).
        timing: Where the replay's tokens and seconds are counted (a new one if ``None``).

    Returns:
        What was written.

    Raises:
        RunError: When the folder has no utterances, holds a replay of another grid (without
            ``overwrite``), or a model cannot be loaded.
    """
    folder = RunFolder(Path(run_dir))
    timing = timing if timing is not None else RunTiming()
    if not folder.scenario_file.is_file():
        raise RunError(f"{folder.root}: not a run folder (no scenario.yaml)")
    try:
        folder.read_design()
    except RecordSchemaError as error:
        raise RunError(str(error)) from None
    scenario = _load_scenario(folder)
    _check_steerable(scenario, grid)
    spec_file = folder.root / "replay.yaml"
    wanted = yaml.safe_dump(grid.model_dump(), sort_keys=True)
    if spec_file.is_file() and spec_file.read_text(encoding="utf-8") != wanted:
        if not overwrite:
            raise RunError(
                f"{folder.root}: holds a replay of another grid ({spec_file.name}); pass "
                "--overwrite to replace it"
            )
        for kind in ("replay", "manipulation", "dose"):
            for path in folder.records_dir.glob(f"{kind}-e*.parquet"):
                path.unlink()
    episodes = folder.finished_episodes()
    utterances = folder.read("utterances")
    if utterances.num_rows == 0 or "context" not in utterances.column_names:
        raise RunError(f"{folder.root}: no replayable utterances (run with measure.utterances)")
    todo = [e for e in episodes if not folder.episode_file("replay", e).is_file()]
    cells = plan_cells(grid)
    write_bytes_atomic(wanted.encode("utf-8"), spec_file)
    if not todo:
        return ReplayResult(folder, 0, len(episodes), 0, cells, timing)
    agents = _ReplayAgents(scenario, grid, load_model)
    timing.add_models(agents.models())
    rows = utterances.to_pylist()
    contexts = 0
    per_entry: dict[str, int] = {}
    try:
        from tqdm.auto import tqdm

        for episode in tqdm(todo, desc="replay", unit="episode", disable=not progress):
            chosen = select_contexts(
                [row for row in rows if row["episode"] == episode], grid.per_entry
            )
            with timing.phase("replay"), timing.measuring("replay"):
                replay_rows, check_rows, dose_rows = _replay_episode(
                    scenario, grid, cells, agents, chosen
                )
            if check_rows:
                folder.write_episode("manipulation", episode, check_rows)
            if dose_rows:
                folder.write_episode("dose", episode, dose_rows)
            folder.write_episode("replay", episode, replay_rows)
            contexts += len(chosen)
            counts = Counter(row["entry"] for row in chosen)
            for entry, count in counts.items():
                per_entry[entry] = min(per_entry.get(entry, count), count)
    finally:
        agents.close()
    return ReplayResult(
        folder, len(todo), len(episodes) - len(todo), contexts, cells, timing, per_entry
    )


def _check_steerable(scenario: Scenario, grid: CounterfactualSpec) -> None:
    """Refuse a grid that sets ``steer_stress`` for an LM agent without a steering channel."""
    unsteered = unsteered_entries(scenario)
    if grid.steer_stress and unsteered:
        raise RunError(f"{STEER_GRID_PATH}: {unsteered_message(unsteered)}")


class _ReplayAgents:
    """The LM agents of a scenario by agent id, built without the env (each model loaded once)."""

    def __init__(
        self, scenario: Scenario, grid: CounterfactualSpec, load_model: Callable[..., Any] | None
    ) -> None:
        from valuegym.agents.prompts import DEFAULT_PERSONA

        self.grid = grid
        self.rows: dict[str, int] = {}
        self.agents: dict[str, Any] = {}
        self.lm: dict[str, Any] = {}
        self._models: dict[tuple[Any, ...], Any] = {}
        expanded = scenario.expanded_agents()
        personas = [spec.persona or DEFAULT_PERSONA for _, spec in expanded]
        index_of = {id(spec): index for index, spec in enumerate(scenario.agents)}
        try:
            for row, (agent_id, spec) in enumerate(expanded):
                if spec.kind != "lm":
                    continue
                lm = spec.language_model
                key = (lm.backend, lm.model, lm.base_url)
                if key not in self._models:
                    where = f"agents.{index_of[id(spec)]}"
                    self._models[key] = load_lm_model(lm, where, load_model, batched_scoring=True)
                self.rows[agent_id] = row
                self.lm[agent_id] = lm
                self.agents[agent_id] = make_lm_agent(self._models[key], lm, personas)
        except PopulationError as error:
            self.close()
            raise RunError(str(error)) from None

    def models(self) -> list[Any]:
        return list(self._models.values())

    def close(self) -> None:
        for model in self._models.values():
            model.close()


def _replay_episode(
    scenario: Scenario,
    grid: CounterfactualSpec,
    cells: Sequence[ReplayCell],
    agents: _ReplayAgents,
    chosen: Sequence[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    base = 2.0 if scenario.measure.entropy_unit == "bits" else None
    checked = checked_cells(grid, cells)
    replay_rows: list[dict[str, Any]] = []
    check_rows: list[dict[str, Any]] = []
    dose_rows: list[dict[str, Any]] = []
    for row in chosen:
        agent = agents.agents[row["agent"]]
        state = AgentSnapshot.from_record(row, agents.rows[row["agent"]])
        events = json.loads(row["context"])
        where = (row["episode"], row["step"], state.agent)
        seed = SeedSalt.REPLAY.seed(scenario.seed, *where)
        k = grid.samples
        settings = []
        for number, cell in enumerate(cells):
            persona = (
                grid.persona[cell.persona_index]
                if grid.persona and cell.persona_index is not None
                else agent.persona_of(state)
            )
            placebo_seed = SeedSalt.PLACEBO.seed(scenario.seed, *where, number)
            channel = stated_channel(cell, placebo_seed)
            stated = channel.stated(state)
            prompt = agent.template.speak_messages(persona, stated, events)
            temperature = agent.temperature(state) if cell.temperature is None else cell.temperature
            settings.append((cell, stated, prompt, temperature))
        steered = None
        if agent.steering is not None:
            steered = [
                cell_steering(agent.steering, cell, state) for cell in cells for _ in range(k)
            ]
        # One call for every cell: the prompts share the context's prefix, and sample j of
        # every cell draws from the same seed (common random numbers across cells).
        samples = agent.generate(
            [state.agent] * (k * len(settings)),
            [prompt for _, _, prompt, _ in settings for _ in range(k)],
            [temperature for *_, temperature in settings for _ in range(k)],
            [prompt_seed(seed, index) for _ in settings for index in range(k)],
            # The agent's own steering, its stress coefficient set where the cell sets it.
            steering=steered,
        )
        for position_in_call, sample in enumerate(samples):
            cell, stated, _, temperature = settings[position_in_call // k]
            measured = UtteranceEntropy.from_generation(sample.generation, base=base)
            replay_rows.append(
                {
                    **_position(row),
                    "context_id": row["context_id"],
                    "cell": cell.cell,
                    "placebo": cell.placebo,
                    "set_stress": level_of(cell.prompt_stress),
                    "set_mood": level_of(cell.prompt_mood),
                    "set_temperature": level_of(cell.temperature),
                    "set_steer_stress": level_of(cell.steer_stress),
                    "prompt_stress": math.nan if stated is None else stated.stress,
                    "prompt_mood": math.nan if stated is None else stated.mood,
                    "temperature": float(temperature),
                    "persona_index": -1 if cell.persona_index is None else cell.persona_index,
                    "sample": position_in_call % k,
                    "actual_stress": state.stress,
                    "actual_mood": state.mood,
                    "actual_temperature": state.temperature,
                    "text": sample.text,
                    "length": measured.length,
                    "finish_reason": sample.generation.finish_reason,
                    "sequence_entropy": measured.total_sampled_entropy,
                    "mean_sampled_entropy": measured.mean_sampled_entropy,
                    "total_token_entropy": measured.total_token_entropy,
                    "mean_token_entropy": measured.mean_token_entropy,
                    "surprisal": measured.surprisal,
                }
            )
        if checked is not None:
            pair = [
                (settings[number], samples[number * k : (number + 1) * k]) for number in checked
            ]
            check_rows.extend(_manipulation_rows(agent.model, row, pair))
        if grid.dose_response is not None:
            dose_rows.extend(_dose_rows(agent.model, row, settings, samples, steered, k))
    return replay_rows, check_rows, dose_rows


def _dose_rows(
    model: Any,
    row: Mapping[str, Any],
    settings: Sequence[tuple[Any, ...]],
    samples: Sequence[Any],
    steered: Sequence[Any] | None,
    k: int,
) -> list[dict[str, Any]]:
    """The non-placebo cells' samples scored unsteered and under their cell's steering."""
    numbers = [number for number, (cell, *_) in enumerate(settings) if not cell.placebo]
    replies = [[s.generation.text for s in samples[n * k : (n + 1) * k]] for n in numbers]
    unsteered, steered_scores = dose_scores(
        model,
        [settings[n][2] for n in numbers],
        replies,
        [None if steered is None else steered[n * k] for n in numbers],
    )
    rows = []
    for position, number in enumerate(numbers):
        cell = settings[number][0]
        for index in range(k):
            sample = samples[number * k + index]
            rows.append(
                {
                    **_position(row),
                    "context_id": row["context_id"],
                    "cell": cell.cell,
                    "set_steer_stress": level_of(cell.steer_stress),
                    "sample": index,
                    "length": sample.generation.length,
                    "degenerate": is_degenerate(sample.generation.text),
                    "loglik_unsteered": float(unsteered[position][index]),
                    "loglik_steered": float(steered_scores[position][index]),
                }
            )
    return rows


def _manipulation_rows(
    model: Any, row: Mapping[str, Any], pair: Sequence[tuple[tuple[Any, ...], Sequence[Any]]]
) -> list[dict[str, Any]]:
    """The low and high cells' samples, each scored under both cells' prompts."""
    (low_cell, _, low_prompt, temperature), low_samples = pair[0]
    (high_cell, _, high_prompt, _), high_samples = pair[1]
    loglik = cross_score(
        model,
        [low_prompt, high_prompt],
        [[s.generation.text for s in low_samples], [s.generation.text for s in high_samples]],
    )
    rows = []
    for level, (cell, samples) in enumerate(((low_cell, low_samples), (high_cell, high_samples))):
        for index, sample in enumerate(samples):
            rows.append(
                {
                    **_position(row),
                    "context_id": row["context_id"],
                    "temperature": float(temperature),
                    "low_stress": float(low_cell.prompt_stress),
                    "high_stress": float(high_cell.prompt_stress),
                    "sampled_stress": float(cell.prompt_stress),
                    "sample": index,
                    "loglik_low": float(loglik[level, index, 0]),
                    "loglik_high": float(loglik[level, index, 1]),
                    "length": sample.generation.length,
                }
            )
    return rows


def _position(row: Mapping[str, Any]) -> dict[str, Any]:
    """The columns that place a replayed context: episode, step, agent and its entry."""
    return {
        name: row[name]
        for name in ("episode", "step", "agent", "entry", "entry_index", "agent_kind")
    }


def reproduce_utterance(agent: Any, row: Mapping[str, Any]) -> Any:
    """Regenerate a recorded utterance from its row: its prompt, temperature and seed.

    Args:
        agent: The recorded agent's :class:`~valuegym.agents.lm_agent.LMAgent`.
        row: The ``utterances`` row.

    Returns:
        The :class:`~valuegym.agents.lm_agent.Utterance`; on the same installation its text
        equals the recorded one.
    """
    prompt = json.loads(row["prompt"])
    seed = [prompt_seed(int(row["sampler_seed"]), int(row["sampler_index"]))]
    steered = None
    if agent.steering is not None:  # the recorded coefficients, as the utterance had them
        coefficients = {
            name: float(row[f"steer_{name}"])
            for name in ("stress", "mood")
            if not math.isnan(float(row.get(f"steer_{name}", math.nan)))
        }
        if any(coefficients.values()):
            steered = [agent.steering.directions.steering(coefficients, agent.steering.layers)]
    [utterance] = agent.generate(
        [0], [prompt], [float(row["sampling_temperature"])], seed, steering=steered
    )
    return utterance
