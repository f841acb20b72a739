"""One episode of a population: the step loop and the rows it records.

Each step, LM agents first speak (:class:`~valuegym.runs.speech.Speech`), then every agent acts
(its policy, or an LM agent's scored choice among the env's actions, which sees the same chat
its speech saw), then the env steps (in text mode each act with what was said: an LM agent's
utterance, a scripted speaker's line); one ``steps`` row per live agent records the state after
the step. Every random choice is seeded from the scenario's seed and its position
(:class:`~valuegym.numeric.SeedSalt`), so episodes are independent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from valuegym.agents.scripted import ScriptedSpeaker
from valuegym.envs.conversation_rules import ACTS, ASK, SILENT, chat_line, clean_utterance
from valuegym.envs.protocol import CHAT, MESSAGES, TURN, VALUE_KEYS
from valuegym.numeric import SeedSalt
from valuegym.records import EpisodeRecorder
from valuegym.records.schema import metric_column
from valuegym.runs.population import Member, Population
from valuegym.runs.speech import Speech
from valuegym.runs.timing import RunTiming
from valuegym.scenarios.schema import Scenario
from valuegym.values import AgentSnapshot

__all__ = ["EpisodeRun", "Replacement"]

#: ``info`` entries that are not env metrics (they are recorded in their own columns).
_NOT_METRICS: Final = frozenset(VALUE_KEYS)
#: Most recent messages or events an LM prompt mentions.
_MAX_EVENTS: Final = 5


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


@dataclass(frozen=True)
class Replacement:
    """A message replaced in a re-simulated episode (the designed intervention).

    Attributes:
        step: The step whose utterance is replaced.
        listener: The agent id it is addressed to; the episode stops after this agent's
            next turn.
        text: What is said instead.
    """

    step: int
    listener: str
    text: str


def _text_action(member: Member, act: int, said: Mapping[str, str]) -> dict[str, Any]:
    """A text-mode env action: the act and what is said with it.

    An LM agent says what it spoke this step (``said``, by env agent), a scripted speaker its
    line; a scripted line is not an LM utterance and is not measured or recorded as one.
    """
    if isinstance(member.policy, ScriptedSpeaker):
        return {"act": act, "utterance": member.policy.utterance}
    return {"act": act, "utterance": said.get(member.env_agent, "")}


class EpisodeRun:
    """One episode of a population: the step loop and the rows it records.

    Args:
        scenario: The scenario being run.
        population: Its env and agents.
        episode: The episode number.
        recorder: Where the rows go.
        clusterer: Groups samples by meaning (semantic entropy), or ``None``.
        bar: The progress bar, advanced one step at a time.
        timing: Where the model's, the measurements' and the env's time is counted.
        replacement: Replace one utterance and stop after its listener's next turn (the
            designed intervention), or ``None``: the episode as it is.
    """

    def __init__(
        self,
        scenario: Scenario,
        population: Population,
        episode: int,
        recorder: EpisodeRecorder,
        clusterer: Any,
        bar: Any,
        timing: RunTiming,
        replacement: Replacement | None = None,
    ) -> None:
        self.scenario = scenario
        self.population = population
        self.episode = episode
        self.recorder = recorder
        self.timing = timing
        self.speech = Speech(scenario, population, episode, recorder, clusterer, timing)
        self.bar = bar
        self.seed = scenario.seed
        self.replacement = replacement

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
        appraiser = population.appraiser
        if appraiser is not None:
            appraiser.reset()
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
                    member.env_agent: _text_action(member, actions[member.env_agent], said)
                    for member in acting
                }
            replacing = self.replacement is not None and self.replacement.step == step
            if replacing:
                assert self.replacement is not None
                for action in env_actions.values():
                    action["utterance"] = self.replacement.text
            heard = self._appraise(acting, env_actions, observations) if appraiser else None
            before = infos
            observations, rewards, terminations, truncations, infos = self._step(env_actions)
            if heard is not None:
                self.recorder.add("appraisals", self._appraisal_rows(step, heard, before, infos))
            self.recorder.add(
                "steps",
                (
                    {
                        "step": step,
                        "agent": member.agent_id,
                        **member.entry.record_columns(),
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
            if self._listener_answered(step, acting):
                break
            observations = {
                agent: observation
                for agent, observation in observations.items()
                if not (terminations.get(agent) or truncations.get(agent))
            }
        return steps

    def _listener_answered(self, step: int, acting: Sequence[Member]) -> bool:
        """Whether a replacement's listener has taken its next turn (the re-simulation's end)."""
        replacement = self.replacement
        return (
            replacement is not None
            and step > replacement.step
            and any(member.agent_id == replacement.listener for member in acting)
        )

    def _appraise(
        self,
        acting: Sequence[Member],
        env_actions: dict[str, Any],
        observations: Mapping[str, Any],
    ) -> tuple[Member, str, int | None, str, Any] | None:
        """The listeners' appraisal of the turn's utterance, put into the speaker's action."""
        if len(acting) != 1:
            return None  # appraisal is for turn-based conversations: one speaker a step
        speaker = acting[0]
        action = env_actions[speaker.env_agent]
        rules = self.population.env.unwrapped.rules
        act, offset = rules.decode(int(action["act"]))
        addressee = None if act == SILENT else (speaker.row + offset) % rules.n_agents
        text = clean_utterance(action["utterance"], rules.max_utterance_length)
        chat = observations[speaker.env_agent]
        context = chat.get(CHAT, "").splitlines() if isinstance(chat, Mapping) else []
        header = chat_line(speaker.row, act, -1 if addressee is None else addressee, "") + ":"
        appraiser = self.population.appraiser
        with self.timing.phase("appraisal"), self.timing.measuring("appraisal"):
            appraisal = appraiser.appraise(
                speaker.row, addressee, act == ASK, text, context, header
            )
        action["appraisal"] = appraisal.env_input()
        return speaker, ACTS[act], addressee, text, appraisal

    def _appraisal_rows(
        self,
        step: int,
        heard: tuple[Member, str, int | None, str, Any],
        before: Mapping[str, Any],
        after: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        speaker, act, _, text, appraisal = heard
        members = self.population.members
        rows = []
        for listened in appraisal.listeners:
            member = members[listened.listener]
            was, now = before[member.env_agent], after[member.env_agent]
            rows.append(
                {
                    "step": step,
                    "agent": member.agent_id,
                    **member.entry.record_columns(),
                    "speaker": speaker.agent_id,
                    "speaker_entry": speaker.entry.entry,
                    "act": act,
                    "text": text,
                    "replaced": self.replacement is not None and self.replacement.step == step,
                    **listened.to_record(),
                    "stress_before": float(was["stress"]),
                    "stress_after": float(now["stress"]),
                    "mood_before": float(was["mood"]),
                    "mood_after": float(now["mood"]),
                }
            )
        return rows

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
                columns[metric_column(key)] = number
            elif isinstance(value, str):
                columns[metric_column(key)] = value
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
