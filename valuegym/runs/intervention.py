"""The designed intervention: one incoming message replaced, the episode re-simulated.

For each episode of a run, the first message addressed to ``measure.intervention.listener`` at
or after ``at_step`` (read from the run's ``appraisals`` records) is replaced by each variant in
turn, and the episode is simulated again from its start. Every random choice is seeded by the
scenario's seed and its position (episode, step, agent), so the re-simulation repeats the
recorded episode exactly up to the replaced message (common random numbers, no env snapshot);
it stops after the listener's next turn. One ``interventions`` row per variant, and one for the
recorded message (``original``), say what the listener made of the message (its appraisal),
how its stress moved on that step, and what it did and said at its next turn.
:mod:`valuegym.analysis.contagion` contrasts the variants within each episode.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from valuegym.agents.prompts import DEFAULT_STOP
from valuegym.numeric import SeedSalt
from valuegym.records import EpisodeRecorder, RunFolder
from valuegym.runs.episode import EpisodeRun, Replacement
from valuegym.runs.errors import RunError
from valuegym.runs.population import Population
from valuegym.runs.timing import RunTiming
from valuegym.scenarios.appraisal_spec import GeneratedVariantSpec
from valuegym.scenarios.schema import Scenario

__all__ = ["intervention_row", "run_interventions"]


class _Rows(EpisodeRecorder):
    """An episode's rows kept in memory, never written (a re-simulation's)."""

    def finish(self) -> None:
        """Nothing is written."""


class _NoBar:
    def update(self, _: int) -> None:
        pass


def _target(appraisals: Sequence[Mapping[str, Any]], listener: str, at_step: int) -> Any:
    """The first appraisal row of a message addressed to ``listener`` from ``at_step`` on."""
    candidates = [
        row
        for row in appraisals
        if row["agent"] == listener and row["addressed"] and row["step"] >= at_step
    ]
    return min(candidates, key=lambda row: row["step"]) if candidates else None


def intervention_row(
    rows: Mapping[str, Sequence[Mapping[str, Any]]], listener: str, step: int, variant: str
) -> dict[str, Any] | None:
    """What the listener made of the message at ``step`` and did at its next turn.

    Args:
        rows: An episode's rows by table (``appraisals``, ``steps``, ``utterances``).
        listener: The listener's agent id.
        step: The step of the (replaced) message.
        variant: The variant's name.

    Returns:
        One ``interventions`` row (without the episode), or ``None`` when the listener did
        not appraise a message at that step.
    """
    appraisal = next(
        (r for r in rows["appraisals"] if r["agent"] == listener and r["step"] == step), None
    )
    if appraisal is None:
        return None
    own_steps = sorted(
        (r for r in rows["steps"] if r["agent"] == listener), key=lambda r: int(r["step"])
    )
    acted = [r for r in own_steps if r["step"] > step and r["action"] >= 0]
    next_step = int(acted[0]["step"]) if acted else -1
    utterance = next(
        (r for r in rows["utterances"] if r["agent"] == listener and r["step"] == next_step),
        None,
    )
    before_turn = next((r for r in own_steps if r["step"] == next_step - 1), None)
    at_turn = next((r for r in own_steps if r["step"] == next_step), None)
    return {
        "step": step,
        "agent": listener,
        **{key: appraisal[key] for key in ("entry", "entry_index", "agent_kind")},
        "variant": variant,
        "speaker": appraisal["speaker"],
        "text": appraisal["text"],
        "repeats": appraisal["repeats"],
        "judged_valence": appraisal["judged_valence"],
        "valence_input": appraisal["valence_input"],
        "surprise_input": appraisal["surprise_input"],
        "stress_before": appraisal["stress_before"],
        "stress_change": appraisal["stress_after"] - appraisal["stress_before"],
        "mood_change": appraisal["mood_after"] - appraisal["mood_before"],
        "next_step": next_step,
        "next_stress": float(before_turn["stress"]) if before_turn is not None else math.nan,
        "next_act": int(at_turn["action"]) if at_turn is not None else -1,
        "next_text": utterance["text"] if utterance is not None else "",
        "next_mean_token_entropy": (
            float(utterance["mean_token_entropy"]) if utterance is not None else math.nan
        ),
        "next_surprisal": float(utterance["surprisal"]) if utterance is not None else math.nan,
        "next_length": float(utterance["length"]) if utterance is not None else math.nan,
    }


def _last_ask(appraisals: Sequence[Mapping[str, Any]], listener: str, step: int) -> str:
    """The last ask ``listener`` received before ``step`` (empty when none)."""
    asks = [
        row
        for row in appraisals
        if row["agent"] == listener
        and row["addressed"]
        and row["act"] == "ask"
        and row["step"] < step
    ]
    return str(max(asks, key=lambda row: row["step"])["text"]) if asks else ""


def _variant_text(
    given: str | GeneratedVariantSpec,
    fields: Mapping[str, str],
    population: Population,
    episode: int,
    seed: int,
) -> str:
    """A variant's text for one episode: its placeholders filled, or written by the model."""
    if isinstance(given, str):
        return given.format(**fields)
    model = population.appraiser.model if population.appraiser is not None else None
    if model is None:
        raise RunError(
            "measure.intervention: a generated variant needs a language model (an LM agent "
            "or appraisal.model)"
        )
    instruction = given.generate.format(**fields)
    generation = model.generate(
        [[{"role": "user", "content": instruction}]],
        max_new_tokens=given.max_new_tokens,
        temperature=0.0,
        seed=SeedSalt.INTERVENTION.seed(seed, episode),
        stop=DEFAULT_STOP,
    )[0]
    return generation.text.strip()


def _episode_rows(folder: RunFolder, kind: str, episode: int) -> list[dict[str, Any]]:
    path = folder.episode_file(kind, episode)
    if not path.is_file():
        return []
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def run_interventions(
    scenario: Scenario,
    population: Population,
    folder: RunFolder,
    *,
    progress: bool = True,
    timing: RunTiming | None = None,
) -> None:
    """Re-simulate each episode without ``interventions`` records with every variant.

    Args:
        scenario: The run's scenario (with ``measure.intervention``).
        population: Its env and agents, appraiser built.
        folder: The run folder, its episodes recorded.
        progress: Show a progress bar (on stderr).
        timing: Where the model's time is counted.
    """
    import sys

    from tqdm.auto import tqdm

    spec = scenario.measure.intervention
    assert spec is not None
    timing = timing if timing is not None else RunTiming()
    # The re-simulation needs no entropy samples: the measures that do not steer the episode.
    quiet = scenario.model_copy(
        update={
            "measure": scenario.measure.model_copy(
                update={"semantic_entropy": None, "mutual_information": None}
            )
        }
    )
    episodes = [
        episode
        for episode in range(scenario.episodes)
        if not folder.episode_file("interventions", episode).is_file()
    ]
    with tqdm(
        total=len(episodes) * len(spec.variants),
        desc=f"{scenario.name}: interventions",
        unit="episode",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    ) as bar:
        for episode in episodes:
            recorded = {
                kind: _episode_rows(folder, kind, episode)
                for kind in ("appraisals", "steps", "utterances")
            }
            target = _target(recorded["appraisals"], spec.listener, spec.at_step)
            rows: list[dict[str, Any]] = []
            if target is not None:
                step = int(target["step"])
                original = intervention_row(recorded, spec.listener, step, "original")
                if original is not None:
                    rows.append(original)
                fields = {
                    "original": str(target["text"]),
                    "last_ask": _last_ask(recorded["appraisals"], spec.listener, step),
                }
                for variant, given in spec.variants.items():
                    text = _variant_text(given, fields, population, episode, quiet.seed)
                    sink = _Rows(folder, episode)
                    EpisodeRun(
                        quiet,
                        population,
                        episode,
                        sink,
                        None,
                        _NoBar(),
                        timing,
                        replacement=Replacement(step, spec.listener, text),
                    ).run()
                    simulated = {
                        kind: sink.rows(kind) for kind in ("appraisals", "steps", "utterances")
                    }
                    row = intervention_row(simulated, spec.listener, step, variant)
                    if row is not None:
                        rows.append(row)
                    bar.update(1)
            else:
                bar.update(len(spec.variants))
            folder.write_episode(
                "interventions",
                episode,
                [{"episode": episode, **row, "reference": spec.reference} for row in rows],
            )
