"""Agents driven by a language model: they speak from their value state and choose acts.

An :class:`LMAgent` turns a persona and an agent's value state (an
:class:`~valuegym.values.AgentSnapshot`; an env's ``info`` becomes one through
:meth:`~valuegym.values.AgentSnapshot.from_info`) into chat messages through a
:class:`~valuegym.agents.prompts.PromptTemplate`, and writes utterances for a whole population in
one ``generate`` call at each agent's value-state temperature. Its discrete act is chosen from
the value store's wanting of each option, or by scoring each option's text with the language
model; either way by a softmax at the value-state temperature. What is said is measured
elsewhere (:mod:`valuegym.measures`): the agent returns the backend's
:class:`~valuegym.lm.base.Generation` with its per-token distributions.

The env glue is deliberately thin: whatever an env says happened (messages received, other
agents' utterances) arrives as a list of strings per agent and goes into the prompt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from valuegym.agents.prompts import (
    DEFAULT_PERSONA,
    DEFAULT_STOP,
    PromptState,
    PromptTemplate,
    context_id,
)
from valuegym.agents.steering_channel import SteeringChannel, steerings
from valuegym.lm.base import Generation, LanguageModel, Message
from valuegym.lm.sampling import Truncation
from valuegym.numeric import sample_by_temperature
from valuegym.values import AgentSnapshot

__all__ = ["LMAgent", "Utterance"]


@dataclass(frozen=True)
class Utterance:
    """What an agent said.

    Attributes:
        agent: Row of the speaking agent in its value store.
        text: The utterance, surrounding whitespace removed.
        generation: The backend's output with per-token measurements.
        temperature: The sampling temperature used.
        prompt: The chat messages it answered.
    """

    agent: int
    text: str
    generation: Generation
    temperature: float
    prompt: tuple[Message, ...]


class LMAgent:
    """Agents whose words (and optionally acts) come from a language model.

    One ``LMAgent`` serves every agent of a population that shares a model and template:
    ``speak`` takes the value states of all speakers and makes one ``generate`` call. A value
    state is an :class:`~valuegym.values.AgentSnapshot` (a store's ``snapshot(row)``, or
    ``AgentSnapshot.from_info(info, row, env.value_names)`` from an env).

    Args:
        model: The language model (see :func:`valuegym.lm.load_language_model`).
        persona: One persona for every agent, or one per row of the value store
            (indexed by the state's ``agent`` row).
        template: How persona and value state become the prompt.
        act_selection: ``"values"``: ``choose_act`` samples from the env's wanting of each
            option; ``"lm"``: it scores each option's text with the model (energy = negative
            log-likelihood). Both sample at the act temperature.
        speech_temperature: Hold the speech (sampling) temperature at this value (>= 0)
            instead of the value state's; ``None`` follows the value state.
        act_temperature: Hold the act temperature at this value (>= 0); ``None`` follows the
            value state. Speech and act temperatures are separate channels.
        prompt_state: What the prompt says about the value state (default: the actual
            state); see :class:`~valuegym.agents.prompts.PromptState`.
        truncation: Which tokens speech may draw (top-k, top-p, min-p; default all).
        max_new_tokens: Upper bound on the tokens of an utterance.
        stop: Strings that end an utterance (default: the end of its first sentence or line,
            :data:`~valuegym.agents.prompts.DEFAULT_STOP`, which the default template's
            request for one short sentence goes with).
        steering: The steering channel (the state as a direction added inside the model), or
            ``None``; see :class:`~valuegym.agents.steering_channel.SteeringChannel`.

    Example:
        A turn in Inbox (the messages the env reports become the events)::

            agent = LMAgent(load_language_model(), "Ana, a nurse who works nights")
            state = AgentSnapshot.from_info(info, 0, env.unwrapped.value_names)
            events = [f"{m['sender']}: {m['text']}" for m in info["messages"]]
            act = agent.choose_act(state, env.unwrapped.action_names,
                                   action_wanting=info["action_wanting"], rng=rng)
            [reply] = agent.speak([state], [events], seed=step)
    """

    def __init__(
        self,
        model: LanguageModel,
        persona: str | Sequence[str] = DEFAULT_PERSONA,
        *,
        template: PromptTemplate | None = None,
        act_selection: Literal["values", "lm"] = "values",
        speech_temperature: float | None = None,
        act_temperature: float | None = None,
        prompt_state: PromptState | None = None,
        truncation: Truncation | None = None,
        max_new_tokens: int = 48,
        stop: Sequence[str] = DEFAULT_STOP,
        steering: SteeringChannel | None = None,
    ) -> None:
        if act_selection not in ("values", "lm"):
            raise ValueError(f"act_selection: expected 'values' or 'lm' (got {act_selection!r})")
        for name, value in (
            ("speech_temperature", speech_temperature),
            ("act_temperature", act_temperature),
        ):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: must be finite and >= 0, or None (got {value})")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens: must be >= 1 (got {max_new_tokens})")
        if not isinstance(persona, str) and len(persona) == 0:
            raise ValueError("persona: give one persona, or one per agent (got an empty list)")
        self.model = model
        self.personas: str | tuple[str, ...] = (
            persona if isinstance(persona, str) else tuple(persona)
        )
        self.template = template if template is not None else PromptTemplate()
        self.act_selection = act_selection
        self.speech_temperature = speech_temperature
        self.act_temperature = act_temperature
        self.prompt_state = prompt_state if prompt_state is not None else PromptState()
        self.truncation = truncation if truncation is not None else Truncation()
        self.max_new_tokens = max_new_tokens
        self.stop = tuple(stop)
        self.steering = steering

    def persona_of(self, state: AgentSnapshot) -> str:
        """The persona of the agent whose value state this is.

        Args:
            state: The agent's value state (its ``agent`` row selects the persona).

        Returns:
            The persona text.
        """
        if isinstance(self.personas, str):
            return self.personas
        row = state.agent
        if not 0 <= row < len(self.personas):
            raise ValueError(f"persona: agent {row} has none ({len(self.personas)} personas given)")
        return self.personas[row]

    def temperature(self, state: AgentSnapshot) -> float:
        """The speech (sampling) temperature: the fixed one, else the value state's.

        Args:
            state: The agent's value state.

        Returns:
            A temperature >= 0.
        """
        if self.speech_temperature is not None:
            return self.speech_temperature
        return state.temperature

    def choice_temperature(self, state: AgentSnapshot) -> float:
        """The act temperature: the fixed one, else the value state's (apart from speech).

        Args:
            state: The agent's value state.

        Returns:
            A temperature >= 0.
        """
        return self.act_temperature if self.act_temperature is not None else state.temperature

    def prompt(
        self,
        state: AgentSnapshot,
        events: Sequence[str] = (),
        *,
        prompt_state: PromptState | None = None,
    ) -> list[Message]:
        """The chat messages that ask the agent to speak (stating what ``prompt_state`` says).

        Args:
            state: The agent's value state.
            events: What just happened, as text (messages received, others' utterances).
            prompt_state: What the prompt says about the state; default the agent's own
                channel setting.

        Returns:
            A system and a user message.
        """
        channel = prompt_state if prompt_state is not None else self.prompt_state
        stated = channel.stated(state)
        return self.template.speak_messages(self.persona_of(state), stated, events)

    def context_id(self, state: AgentSnapshot, events: Sequence[str] = ()) -> str:
        """The key of what the model sees besides the state text: persona, template, events.

        Args:
            state: The agent's value state (selects the persona).
            events: What just happened, as text.

        Returns:
            16 hex digits; equal for two prompts that differ only in the state they state.
        """
        blind = self.template.speak_messages(self.persona_of(state), None, events)
        return context_id(blind)

    def speak(
        self,
        states: Sequence[AgentSnapshot],
        contexts: Sequence[Sequence[str]] | None = None,
        *,
        seed: int | None = None,
    ) -> list[Utterance]:
        """One utterance per agent, generated in one batch at each agent's temperature.

        Args:
            states: The speakers' value states.
            contexts: Per speaker, what just happened (text lines); ``None`` for nothing.
            seed: Seed of the sampler; vary it between turns (the same seed and prompts give
                the same utterances).

        Returns:
            One :class:`Utterance` per state, in order.
        """
        if contexts is None:
            contexts = [()] * len(states)
        if len(contexts) != len(states):
            raise ValueError(
                f"contexts: expected one list of events per value state ({len(states)}), "
                f"got {len(contexts)}"
            )
        if isinstance(contexts, str) or any(isinstance(events, str) for events in contexts):
            raise ValueError("contexts: expected a list of strings per agent, not a string")
        prompts = [
            self.prompt(state, events) for state, events in zip(states, contexts, strict=True)
        ]
        temperatures = [self.temperature(state) for state in states]
        return self.generate(
            [state.agent for state in states],
            prompts,
            temperatures,
            seed,
            steering=steerings(self.steering, states),
        )

    def sample(
        self,
        states: Sequence[AgentSnapshot],
        events: Sequence[str] = (),
        *,
        n_samples: int,
        seed: int | None = None,
        temperature: float | None = None,
    ) -> list[Utterance]:
        """K utterances for each state, all in one batch (for semantic entropy and information).

        Args:
            states: The value states; each gets K samples, in order.
            events: What just happened, as text (the same for every state).
            n_samples: How many utterances K per state.
            seed: Seed of the sampler; the samples differ from each other.
            temperature: Sampling temperature; ``None`` uses :meth:`temperature`. Semantic
                entropy and mutual information estimate the model's own distribution at 1.

        Returns:
            ``len(states) * K`` utterances: the K of the first state, then the next state's.
        """
        if n_samples < 1:
            raise ValueError(f"n_samples: must be >= 1 (got {n_samples})")
        prompts = [self.prompt(state, events) for state in states]
        used = [self.temperature(state) if temperature is None else temperature for state in states]
        steered = steerings(self.steering, states)
        return self.generate(
            [state.agent for state in states for _ in range(n_samples)],
            [prompt for prompt in prompts for _ in range(n_samples)],
            [t for t in used for _ in range(n_samples)],
            seed,
            steering=None if steered is None else [s for s in steered for _ in range(n_samples)],
        )

    def choose_act(
        self,
        state: AgentSnapshot,
        options: Sequence[str],
        *,
        action_wanting: Sequence[float] | np.ndarray | None = None,
        events: Sequence[str] = (),
        rng: np.random.Generator | None = None,
        seed: int | None = None,
    ) -> int:
        """Choose one of the env's acts by a softmax at the act temperature.

        With ``act_selection="values"`` the scores are the env's ``action_wanting`` (what
        each act is worth to the value store now); with ``"lm"`` they are the log-likelihood
        of each option's text as the reply to the act prompt, i.e. ``p ∝ exp(-energy / T)``
        with energy = negative log-likelihood (longer option texts have lower likelihood;
        keep them comparably short). Temperature 0 picks the best option.

        Args:
            state: The agent's value state.
            options: The acts' texts, in the env's action order.
            action_wanting: Score per option from the value store (``"values"`` only).
            events: What just happened, as text (``"lm"`` only).
            rng: Source of randomness; give this or ``seed``, not both.
            seed: Seed for a fresh generator.

        Returns:
            The index of the chosen option.
        """
        if len(options) == 0:
            raise ValueError("options: need at least one act to choose from")
        if rng is not None and seed is not None:
            raise ValueError("choose_act: give rng or seed, not both")
        generator = rng if rng is not None else np.random.default_rng(seed)
        if self.act_selection == "values":
            if action_wanting is None:
                raise ValueError("action_wanting: required when act_selection='values'")
            scores = np.asarray(action_wanting, dtype=np.float64)
            if scores.shape != (len(options),):
                raise ValueError(
                    f"action_wanting: expected one score per option ({len(options)}), "
                    f"got shape {scores.shape}"
                )
        else:
            stated = self.prompt_state.stated(state)
            prompt = self.template.act_messages(self.persona_of(state), stated, options, events)
            scores = np.asarray(self.model.score(prompt, list(options)), dtype=np.float64)
        return sample_by_temperature(scores, self.choice_temperature(state), generator)

    def generate(
        self,
        agents: Sequence[int],
        prompts: Sequence[list[Message]],
        temperatures: Sequence[float],
        seed: int | Sequence[np.random.SeedSequence] | None,
        *,
        truncation: Truncation | None = None,
        steering: Sequence[Any] | None = None,
    ) -> list[Utterance]:
        """Utterances for ready-made prompts (designed measurements and replays use this).

        Args:
            agents: The speaking agent's row, per prompt.
            prompts: The chat messages, per prompt.
            temperatures: The sampling temperature, per prompt.
            seed: Seed of the sampler (prompt ``i`` draws from the ``i``-th child seed), or one
                seed sequence per prompt (:func:`valuegym.lm.sampling.prompt_seed`).
            truncation: Which tokens may be drawn; ``None`` uses the agent's own. Estimators
                that score samples under the full model (mutual information) pass
                ``Truncation()``, so the samples come from the distribution scored.
            steering: One :class:`~valuegym.lm.steering.Steering` (or ``None``) per prompt;
                ``None``: no steering.

        Returns:
            One :class:`Utterance` per prompt, in order.
        """
        if not prompts:
            return []
        options: dict[str, Any] = {}
        if steering is not None and any(s is not None for s in steering):
            options["steering"] = list(steering)
        generations = self.model.generate(
            prompts,
            max_new_tokens=self.max_new_tokens,
            temperature=list(temperatures),
            seed=seed,
            stop=self.stop,
            truncation=self.truncation if truncation is None else truncation,
            **options,
        )
        if len(generations) != len(prompts):
            raise RuntimeError(
                f"{self.model.name}: returned {len(generations)} generations "
                f"for {len(prompts)} prompts"
            )
        return [
            Utterance(
                agent=agent,
                text=generation.text.strip(),
                generation=generation,
                temperature=float(temperature),
                prompt=tuple(prompt),
            )
            for agent, prompt, temperature, generation in zip(
                agents, prompts, temperatures, generations, strict=True
            )
        ]
