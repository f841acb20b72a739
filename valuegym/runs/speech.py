"""LM agents' speech in an episode: who says what, what is measured, the rows it records.

The runner asks a :class:`Speech` for each step's utterances; the speech groups speakers by
their shared :class:`~valuegym.agents.lm_agent.LMAgent` (one batched ``generate`` each), measures
every utterance (:mod:`valuegym.measures`) and records one ``utterances`` row per utterance.
Each row carries what is needed to replay it: the full prompt, the context (persona and events)
and its id, the channel settings and the sampler's seed and index. Optional measures:

- semantic entropy over K samples of the same prompt at temperature 1
  (``measure.semantic_entropy``);
- mutual information between a designed set of stated states and the utterance, in the
  speaker's real context (``measure.mutual_information``), one ``information`` row each. Its
  samples are drawn at temperature 1 without truncation (whatever the agent's top-p, top-k and
  min-p): the estimator scores them under the full model at temperature 1, and samples from a
  truncated distribution would bias it (:data:`INFORMATION_SAMPLING`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from valuegym.agents.prompts import DEFAULT_STOP, PromptState, StatedState
from valuegym.agents.steering_channel import no_steering_columns
from valuegym.lm.sampling import Truncation
from valuegym.measures.entropy import UtteranceEntropy
from valuegym.measures.information import mutual_information
from valuegym.numeric import SeedSalt
from valuegym.records import EpisodeRecorder
from valuegym.runs.population import LMGroup, Member, Population
from valuegym.runs.timing import RunTiming
from valuegym.scenarios.schema import LMSpec, Scenario
from valuegym.values import AgentSnapshot

__all__ = ["INFORMATION_SAMPLING", "Speech", "channel_columns"]

#: How mutual information's samples are drawn: the full distribution at temperature 1, the
#: one :meth:`~valuegym.lm.base.LanguageModel.score` gives.
INFORMATION_SAMPLING: Final = Truncation()


def channel_columns(lm: LMSpec, channel: PromptState, stated: StatedState | None) -> dict[str, Any]:
    """The channel settings of an utterance as record columns.

    Args:
        lm: The agent's LM settings.
        channel: What the prompt says about the state.
        stated: What the prompt stated, or ``None`` when it was blind.

    Returns:
        ``prompt_state, prompt_mood, prompt_stress, prompt_most_wanted,
        speech_temperature_setting, act_temperature_setting, top_p, top_k, min_p,
        max_new_tokens, stop``.
    """
    return {
        "prompt_state": channel.describe(),
        "prompt_mood": math.nan if stated is None else float(stated.mood),
        "prompt_stress": math.nan if stated is None else float(stated.stress),
        "prompt_most_wanted": "" if stated is None else str(stated.most_wanted),
        "speech_temperature_setting": str(lm.speech_temperature),
        "act_temperature_setting": str(lm.act_temperature),
        "top_p": float(lm.top_p),
        "top_k": int(lm.top_k),
        "min_p": float(lm.min_p),
        "max_new_tokens": int(lm.max_new_tokens),
        # LM agents of a scenario end speech at DEFAULT_STOP (valuegym.agents.prompts).
        "stop": json.dumps(list(DEFAULT_STOP)),
    }


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


class Speech:
    """The LM agents' speech in one episode.

    Args:
        scenario: The scenario being run.
        population: Its env and agents.
        episode: The episode number.
        recorder: Where the rows go.
        clusterer: Groups samples by meaning (semantic entropy), or ``None``.
        timing: Where the model's and the measurements' tokens and seconds are counted.
    """

    def __init__(
        self,
        scenario: Scenario,
        population: Population,
        episode: int,
        recorder: EpisodeRecorder,
        clusterer: Any,
        timing: RunTiming | None = None,
    ) -> None:
        self.scenario = scenario
        self.population = population
        self.episode = episode
        self.recorder = recorder
        self.clusterer = clusterer
        self.timing = timing if timing is not None else RunTiming()
        self.entropy_base = 2.0 if scenario.measure.entropy_unit == "bits" else None

    def speak(
        self,
        step: int,
        acting: Sequence[Member],
        snapshots: Mapping[int, AgentSnapshot],
        contexts: Mapping[int, list[str]],
    ) -> dict[str, str]:
        """Every acting LM agent speaks and is measured.

        Args:
            step: The step number.
            acting: The agents acting now (the LM agents among them speak).
            snapshots: Each LM agent's value state, by row.
            contexts: What each LM agent was told, by row.

        Returns:
            Env agent name -> utterance text.
        """
        said: dict[str, str] = {}
        for index, group in enumerate(self.population.lm_groups):
            speakers = [member for member in acting if member.lm_group == index]
            if not speakers:
                continue
            states = [snapshots[member.row] for member in speakers]
            events = [contexts[member.row] for member in speakers]
            seed = SeedSalt.SPEAK.seed(self.scenario.seed, self.episode, step, index)
            with self.timing.phase("speech"):
                utterances = group.agent.speak(states, events, seed=seed)
            for position, (member, state, told, utterance) in enumerate(
                zip(speakers, states, events, utterances, strict=True)
            ):
                said[member.env_agent] = utterance.text
                with self.timing.measuring("speech"):
                    row = self._utterance_row(step, member, group, state, told, utterance)
                row.update(sampler_seed=seed, sampler_index=position)
                row.update(self._semantic_entropy(step, group, member, state, told))
                self.recorder.add("utterances", [row])
                self._information(step, group, member, state, told)
        return said

    def _utterance_row(
        self,
        step: int,
        member: Member,
        group: LMGroup,
        state: AgentSnapshot,
        events: list[str],
        utterance: Any,
    ) -> dict[str, Any]:
        agent = group.agent
        lm = member.spec.language_model
        generation = utterance.generation
        measured = UtteranceEntropy.from_generation(generation, base=self.entropy_base)
        return {
            "step": step,
            "agent": member.agent_id,
            **member.entry.record_columns(),
            **state.to_record(),
            "sampling_temperature": utterance.temperature,
            "text": utterance.text,
            "finish_reason": generation.finish_reason,
            "model": str(getattr(agent.model, "name", "")),
            **measured.to_dict(),
            "token_entropy": [float(v) for v in generation.token_entropy],
            "sampled_entropy": [float(v) for v in generation.sampled_entropy],
            "token_logprob": [float(v) for v in generation.token_logprob],
            "persona": agent.persona_of(state),
            "context_id": agent.context_id(state, events),
            "context": _json(events),
            "prompt": _json(list(utterance.prompt)),
            **channel_columns(lm, agent.prompt_state, agent.prompt_state.stated(state)),
            **(
                agent.steering.record_columns(state)
                if agent.steering is not None
                else no_steering_columns()
            ),
        }

    def _semantic_entropy(
        self, step: int, group: LMGroup, member: Member, state: AgentSnapshot, events: list[str]
    ) -> dict[str, Any]:
        semantic = self.scenario.measure.semantic_entropy
        if semantic is None or step % semantic.every != 0:
            return {
                "semantic_entropy": math.nan,
                "semantic_entropy_discrete": math.nan,
                "n_clusters": 0,
            }
        from valuegym.measures.semantic import semantic_entropy

        # An entailment judge's calls during clustering count towards the phase too.
        with self.timing.phase("semantic"):
            samples = group.agent.sample(
                [state],
                events,
                n_samples=semantic.samples,
                temperature=1.0,
                seed=SeedSalt.SEMANTIC.seed(self.scenario.seed, self.episode, step, member.row),
            )
            with self.timing.measuring("semantic"):
                measured = semantic_entropy(
                    [sample.generation for sample in samples],
                    clusterer=self.clusterer,
                    base=self.entropy_base,
                )
        return {
            "semantic_entropy": measured.weighted,
            "semantic_entropy_discrete": measured.discrete,
            "n_clusters": measured.n_clusters,
        }

    def _information(
        self, step: int, group: LMGroup, member: Member, state: AgentSnapshot, events: list[str]
    ) -> None:
        design = self.scenario.measure.mutual_information
        if design is None or step % design.every != 0:
            return
        agent, k = group.agent, design.samples
        channels = [PromptState("fixed", **spec.model_dump()) for spec in design.states]
        prompts = [agent.prompt(state, events, prompt_state=channel) for channel in channels]
        with self.timing.phase("information"):
            samples = agent.generate(
                [member.row] * (len(prompts) * k),
                [prompt for prompt in prompts for _ in range(k)],
                [1.0] * (len(prompts) * k),
                SeedSalt.INFORMATION.seed(self.scenario.seed, self.episode, step, member.row),
                truncation=INFORMATION_SAMPLING,
            )
            texts = [
                [u.generation.text for u in samples[j * k : (j + 1) * k]]
                for j in range(len(prompts))
            ]
            with self.timing.measuring("information"):
                estimate = mutual_information(agent.model, prompts, texts, base=self.entropy_base)
        self.recorder.add(
            "information",
            [
                {
                    "step": step,
                    "agent": member.agent_id,
                    **member.entry.record_columns(),
                    "context_id": agent.context_id(state, events),
                    "states": _json([channel.describe() for channel in channels]),
                    **estimate.to_dict(),
                    "sampling_temperature": 1.0,
                    "top_p": INFORMATION_SAMPLING.top_p,
                    "top_k": INFORMATION_SAMPLING.top_k,
                    "min_p": INFORMATION_SAMPLING.min_p,
                }
            ],
        )
