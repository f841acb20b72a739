"""Conversation: a group chat where agents take turns to speak, in speech acts or in text.

Each turn one agent asks, helps, shares, jokes, complains or stays silent, and, in text mode,
says something the others read.
:class:`ConversationEnv` says what the speech acts do; every agent's values live in one value
store, stepped once per turn.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final, NamedTuple

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from valuegym.envs.conversation_rules import (
    ACTS,
    ASK,
    CHAT_CHARSET,
    SILENT,
    UTTERANCE_CHARSET,
    ConversationRules,
    ask_key,
    chat_line,
    conversation_profile,
)
from valuegym.envs.core import ValueCore
from valuegym.envs.rendering import RENDER_MODES
from valuegym.values import ValueProfile, ValueStore

__all__ = [
    "ACTS",
    "UTTERANCE_CHARSET",
    "ConversationEnv",
    "ListenerInputs",
    "env",
    "parallel_env",
    "raw_env",
]

_N_FEATURES: Final = len(ACTS) + 5


class ListenerInputs(NamedTuple):
    """What the listeners take from a turn, beside its act's effects."""

    #: On an ask, the earlier asks the addressee received that count as repeats of it (``r``).
    repeats: float
    #: ``(n_agents,)`` added to the value store's valence input, or ``None`` (nothing).
    valence: np.ndarray | None = None
    #: ``(n_agents,)`` the value store's surprise input, or ``None`` (none).
    surprise: np.ndarray | None = None


class ConversationEnv(ParallelEnv[str, Any, Any]):
    """A group chat: each turn one agent picks a speech act and, in text mode, says something.

    ## Description
    `n_agents` agents take turns in order (`agent_0`, `agent_1`, ...). On its turn an agent asks,
    helps, shares, jokes or complains, addressed to another agent, or stays silent; the others
    observe. Being helped or addressed satisfies the `social` need with diminishing returns;
    being asked the same thing again and again raises stress (each identical ask in a row adds
    more load); helping costs energy (load on the helper) and earns `standing`; staying silent
    is rest, which restores energy (lowers stress). Mood follows the valence of jokes, help and
    complaints. All agents' values live in one value store, one row per agent, stepped once per
    turn. In text mode the utterance goes into every agent's observation through a chat of the
    last `history_length` lines.

    ## Action Space
    Action 0 is `silent`; action `1 + (a - 1) (n_agents - 1) + (o - 1)` is act `a` of
    `ask, help, share, joke, complain` (1 to 5) addressed to agent `(i + o) mod n_agents`, the
    `o`-th agent after the speaker `i`: addressing is relative, so one shared policy serves
    every agent. In text mode the action is `Dict(act=<that Discrete>, utterance=Text(
    max_utterance_length))`; utterances are transliterated to ASCII, other characters shown as
    `?`, cut to `max_utterance_length`. Only the speaker's action counts; the others' actions
    may be left out and are ignored.

    | Act      | Speaker                                | Addressee                                |
    |----------|----------------------------------------|------------------------------------------|
    | silent   | `rest` +1, rest 1                      |                                          |
    | ask      | `social` +c/2                          | `social` +c; load `ask_load (1 + rl r)`  |
    | help     | `standing` +1; load `help_cost`        | `social` +2c; valence +`help_valence`    |
    | share    | `social` +c                            | `social` +c                              |
    | joke     | `social` +c/2; valence +`joke_valence` | `social` +c; valence +`joke_valence`     |
    | complain | `rest` +`vent`, rest `vent`            | load `complain_load`; valence -`cv`      |

    Here `c` is `contact`, `cv` is `complain_valence`, `rl` is `repetition_load` and `r` counts
    the identical asks the addressee received in a row before this one (in text mode asks are
    identical when their utterances are, ignoring case and spacing; in numeric mode all asks
    are).

    ## Observation Space
    | Entries                | Observation                                        | Min | Max |
    |------------------------|----------------------------------------------------|-----|-----|
    | first `2 n_values + 2` | the value part (:class:`~valuegym.envs.core.ValueCore`) | -1 | 1 |
    | next                   | 1 if it is this agent's turn                       | 0   | 1   |
    | next 6                 | the last act, one-hot (all 0 before the first)     | 0   | 1   |
    | next                   | 1 if the last act addressed this agent             | 0   | 1   |
    | next                   | 1 if this agent spoke last                         | 0   | 1   |
    | next                   | identical asks received in a row, `r / (1 + r)`    | 0   | 1   |
    | last                   | fraction of `max_cycles` left                      | 0   | 1   |

    In text mode the observation is `Dict(observation=<that Box>, chat=Text)`: the chat holds
    the last `history_length` lines `"agent_0 -> agent_2 (ask): <utterance>"`, oldest first.

    ## Rewards
    Each agent's utility gain from its value store this turn.

    ## Info
    Every entry is a number or a float64 array, by value index (names in `value_names`) or by
    action (names in `action_names`); the first six are the env contract's
    :class:`valuegym.envs.protocol.ValueInfo`, the last four the same in every agent's info:

    | Key              | Type                 | Meaning                                  |
    |------------------|----------------------|------------------------------------------|
    | `stocks`         | array `(n_values,)`  | stock (satiation) per value              |
    | `wanting`        | array `(n_values,)`  | effective weight x marginal utility      |
    | `mood`           | float in [-1, 1]     | valence                                  |
    | `stress`         | float in [0, 1]      | load                                     |
    | `temperature`    | float > 0            | decision and sampling temperature        |
    | `most_wanted`    | int                  | the value wanted most (first on ties)    |
    | `action_wanting` | array `(n_actions,)` | wanting x amount each act gives it       |
    | `ask_repetition` | float                | identical asks received in a row (`r`)   |
    | `speaker`        | int                  | the agent who took the last turn (index) |
    | `act`            | int                  | the act of that turn, an index in `ACTS` |
    | `addressee`      | int                  | its addressee (index; -1 for silent)     |
    | `next_speaker`   | int                  | the agent to speak next (index)          |

    Agents are indices in `possible_agents`. `action_wanting` is all 0 off turn; `speaker`,
    `act` and `addressee` are -1 at reset.

    ## State
    Each agent's value state, one row of the shared value store, stepped once per turn
    (:mod:`valuegym.envs.core`): per value (`social`, `standing`, `rest`) a stock (satiation,
    which halves without consumption every `satiation_half_life` steps) and a wanting (its
    weight, moved by mood and stress, times its marginal utility), and mood, stress and
    temperature, whose parameters are the Default Value Profile's below. Beside it, whose turn
    it is, the last act, the identical asks each agent received in a row, and the chat.

    `state()` (for centralised critics) is every agent's numeric observation (the `Box` part,
    in text mode too) concatenated in agent order, `state_space` the matching
    `Box(-1, 1, (n_agents (2 n_values + 13),), float32)`.

    ## Starting State
    Values at their initial state, an empty chat, `agent_0` to speak.

    ## Episode End
    No termination; every agent is truncated after `max_cycles` turns.

    ## Arguments
    - `n_agents`: number of agents, at least 2 (default 4).
    - `mode`: `"numeric"` (default) or `"text"`.
    - `profile`: one value profile for everyone or one per agent, with values `social`,
      `standing` and `rest`; default `default_profile({"social": 1.0, "standing": 0.5})`.
    - `max_cycles`: turns per episode (default 100).
    - `history_length`: chat lines kept (default 8); `max_utterance_length` (default 200).
    - `contact`, `help_cost`, `help_valence`, `ask_load`, `repetition_load`, `joke_valence`,
      `complain_load`, `complain_valence`, `vent`: the effects above (defaults 1.0, 0.5, 0.5,
      0.3, 1.0, 0.5, 0.5, 0.5, 0.5).
    - `render_mode`: `"human"` (a pygame window where pygame and a display are, else the
      text frame printed; see :mod:`valuegym.envs.rendering`), `"ansi"` or `"rgb_array"`.

    ## Version History
    - v0: initial version.

    Example:
        >>> import pettingzoo
        >>> import valuegym
        >>> from valuegym.envs.conversation import ACTS
        >>> env = pettingzoo.make("parallel", "valuegym/Conversation-v0", n_agents=3, mode="text")
        >>> observations, infos = env.reset(seed=0)
        >>> action = {"act": 1, "utterance": "Where is the key?"}  # ask the next agent
        >>> observations, rewards, _, _, infos = env.step({"agent_0": action})
        >>> print(observations["agent_2"]["chat"])
        agent_0 -> agent_1 (ask): Where is the key?
        >>> infos["agent_1"]["next_speaker"], ACTS[infos["agent_1"]["act"]]
        (1, 'ask')
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "conversation_v0",
        "render_modes": list(RENDER_MODES),
        "render_fps": 2,
        "is_parallelizable": True,
    }

    @classmethod
    def default_profile(cls, **_: Any) -> ValueProfile:
        """Each agent's profile when no ``profile`` is given: ``social``, ``standing``, ``rest``."""
        return conversation_profile()

    def __init__(
        self,
        n_agents: int = 4,
        mode: str = "numeric",
        profile: ValueProfile | Mapping[str, Any] | Sequence[Any] | None = None,
        max_cycles: int = 100,
        history_length: int = 8,
        max_utterance_length: int = 200,
        contact: float = 1.0,
        help_cost: float = 0.5,
        help_valence: float = 0.5,
        ask_load: float = 0.3,
        repetition_load: float = 1.0,
        joke_valence: float = 0.5,
        complain_load: float = 0.5,
        complain_valence: float = 0.5,
        vent: float = 0.5,
        render_mode: str | None = None,
    ):
        ValueCore.check_render_mode(render_mode)
        self.render_mode = render_mode
        self.rules = rules = ConversationRules.from_arguments(
            n_agents,
            profile,
            mode,
            counts={
                "max_cycles": max_cycles,
                "history_length": history_length,
                "max_utterance_length": max_utterance_length,
            },
            numbers={
                "contact": contact,
                "help_cost": help_cost,
                "help_valence": help_valence,
                "ask_load": ask_load,
                "repetition_load": repetition_load,
                "joke_valence": joke_valence,
                "complain_load": complain_load,
                "complain_valence": complain_valence,
                "vent": vent,
            },
        )
        self._core = core = ValueCore(ValueStore.from_profiles(rules.profiles))
        self.possible_agents = [f"agent_{i}" for i in range(rules.n_agents)]
        self.agents: list[str] = []
        self._effects = rules.effect_table(
            core.n_values, *map(core.index, ("social", "standing", "rest"))
        )
        self._acts = np.array([rules.decode(a)[0] for a in range(rules.n_actions)])
        self.np_random, self.np_random_seed = seeding.np_random()
        self._step_count = 0
        self._last: tuple[int, int, int] | None = None  # speaker, act, addressee
        self._repeats = np.zeros(rules.n_agents)
        self._last_ask: list[str | None] = [None] * rules.n_agents
        self._chat: deque[str] = deque(maxlen=rules.history_length)
        low, high = core.observation_bounds()
        box = spaces.Box(
            np.concatenate([low, np.zeros(_N_FEATURES, dtype=np.float32)]),
            np.concatenate([high, np.ones(_N_FEATURES, dtype=np.float32)]),
            dtype=np.float32,
        )
        acts = spaces.Discrete(rules.n_actions)
        if mode == "text":
            longest_header = len(f"agent_{rules.n_agents} -> agent_{rules.n_agents} (complain): ")
            chat = spaces.Text(
                rules.history_length * (longest_header + rules.max_utterance_length + 1),
                min_length=0,
                charset=CHAT_CHARSET,
            )
            observation_space: spaces.Space[Any] = spaces.Dict({"observation": box, "chat": chat})
            utterance = spaces.Text(
                rules.max_utterance_length, min_length=0, charset=UTTERANCE_CHARSET
            )
            action_space: spaces.Space[Any] = spaces.Dict({"act": acts, "utterance": utterance})
        else:
            observation_space, action_space = box, acts
        self.observation_spaces = dict.fromkeys(self.possible_agents, observation_space)
        self.action_spaces = dict.fromkeys(self.possible_agents, action_space)
        n = rules.n_agents
        self.state_space = spaces.Box(np.tile(box.low, n), np.tile(box.high, n), dtype=np.float32)

    @property
    def value_names(self) -> tuple[str, ...]:
        """The agents' values, in order (env contract, :mod:`valuegym.envs.protocol`)."""
        return self._core.value_names

    @property
    def action_names(self) -> tuple[str, ...]:
        """One text per action, in order (the speech act and its addressee after the speaker)."""
        names = []
        for action in range(self.rules.n_actions):
            act, offset = self.rules.decode(action)
            names.append(
                ACTS[act] if offset == 0 else f"{ACTS[act]} (to the agent {offset} after you)"
            )
        return tuple(names)

    def observation_space(self, agent: str) -> spaces.Space[Any]:
        """The same space for every agent (see the class docstring)."""
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space[Any]:
        """The same space for every agent (see the class docstring)."""
        return self.action_spaces[agent]

    def step(
        self, actions: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, float], dict[str, bool], dict[str, bool], dict[str, Any]]:
        """The speaker acts, everyone's values step; see the class docstring.

        Args:
            actions: At least the speaker's action (others are ignored).

        Raises:
            ValueError: On a missing, malformed or out-of-range speaker action, or after the
                episode ended.
        """
        if not self.agents:
            raise ValueError("step: the episode is over; call reset()")
        rules, n = self.rules, self.rules.n_agents
        speaker = self._step_count % n
        name = self.possible_agents[speaker]
        action, utterance = rules.parse_action(actions, name)
        act, offset = rules.decode(action)
        addressee = (speaker + offset) % n
        heard = self._appraise(actions[name], speaker, act, addressee, utterance)
        consumption = np.zeros((n, self._core.n_values))
        load, rest, valence = np.zeros(n), np.zeros(n), np.zeros(n)
        rows = np.array([speaker, addressee])
        # Rows: speaker, addressee; columns: consumption per value, then load, rest, valence.
        effect = self._effects[act]
        if act == ASK:
            self._repeats[addressee] = heard.repeats
            load[addressee] += rules.repetition_load * rules.ask_load * self._repeats[addressee]
        # np.add.at: for silent the speaker is its own "addressee" row, which carries zeros.
        np.add.at(consumption, rows, effect[:, :-3])
        np.add.at(load, rows, effect[:, -3])
        np.add.at(rest, rows, effect[:, -2])
        np.add.at(valence, rows, effect[:, -1])
        if heard.valence is not None:
            valence += heard.valence
        gains = self._core.step(
            consumption, load=load, rest=rest, valence=valence, surprise=heard.surprise
        )
        self._chat.append(chat_line(speaker, act, addressee, utterance))
        self._last = (speaker, act, addressee)
        self._step_count += 1
        agents = self.agents
        truncated = self._step_count >= rules.max_cycles
        observations, infos = self._observations(), self._infos()
        if truncated:
            self.agents = []
        return (
            observations,
            dict(zip(agents, gains.tolist(), strict=True)),
            dict.fromkeys(agents, False),
            dict.fromkeys(agents, truncated),
            infos,
        )

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start a conversation: fresh values, an empty chat, ``agent_0`` to speak.

        Args:
            seed: Seed of the env's random generator (the dynamics are deterministic; it is
                kept for wrappers and agents that draw from it).
            options: Unused.
        """
        if seed is not None:
            self.np_random, self.np_random_seed = seeding.np_random(seed)
        self.agents = list(self.possible_agents)
        self._core.reset()
        self._step_count = 0
        self._last = None
        self._repeats = np.zeros(self.rules.n_agents)
        self._last_ask = [None] * self.rules.n_agents
        self._chat.clear()
        return self._observations(), self._infos()

    def render(self) -> str | np.ndarray | None:
        """The chat and the next speaker's values as text, or its values as bars."""
        speaker = self._step_count % self.rules.n_agents
        header = f"turn {self._step_count}/{self.rules.max_cycles}  next: agent_{speaker}"
        return self._core.render(self.render_mode, speaker, header, ["chat:", *self._chat])

    def close(self) -> None:
        """Close the ``"human"`` render window, if one is open."""
        self._core.close()

    def state(self) -> np.ndarray:
        """The global state: every agent's numeric observation, concatenated in agent order."""
        return self._observation_table().ravel()

    def _appraise(
        self, action: Any, speaker: int, act: int, addressee: int, utterance: str
    ) -> ListenerInputs:
        """What the listeners take from this turn: on an ask, the identical asks in a row.

        Called once the speaker's action is checked, before the values step; it updates the
        env's memory of the asks each agent received.

        Args:
            action: The speaker's action as given.
            speaker: Index of the speaker.
            act: The act, an index in ``ACTS``.
            addressee: Index of its addressee (the speaker for ``silent``).
            utterance: The cleaned utterance (``""`` in numeric mode).
        """
        if act != ASK:
            return ListenerInputs(repeats=0.0)
        key = ask_key(utterance)
        same = self._last_ask[addressee] == key
        self._last_ask[addressee] = key
        return ListenerInputs(repeats=self._repeats[addressee] + 1 if same else 0.0)

    def _observations(self) -> dict[str, Any]:
        table = self._observation_table()
        if self.rules.mode == "numeric":
            return dict(zip(self.possible_agents, table, strict=True))
        chat = "\n".join(self._chat)
        return {
            agent: {"observation": row, "chat": chat}
            for agent, row in zip(self.possible_agents, table, strict=True)
        }

    def _observation_table(self) -> np.ndarray:
        rules, core = self.rules, self._core
        n, size = rules.n_agents, core.observation_size
        table = np.zeros((n, size + _N_FEATURES), dtype=np.float32)
        core.write_observation(table[:, :size])
        table[self._step_count % n, size] = 1.0
        if self._last is not None:
            speaker, act, addressee = self._last
            table[:, size + 1 + act] = 1.0
            if act != SILENT:
                table[addressee, size + 1 + len(ACTS)] = 1.0
            table[speaker, size + 2 + len(ACTS)] = 1.0
        table[:, size + 3 + len(ACTS)] = self._repeats / (1.0 + self._repeats)
        table[:, -1] = 1.0 - self._step_count / rules.max_cycles
        return table

    def _infos(self) -> dict[str, Any]:
        core, rules = self._core, self.rules
        n = rules.n_agents
        speaker = self._step_count % n
        gives = self._effects[:, 0, :-3] @ core.wanting[speaker]  # per act, for the speaker
        action_wanting = np.zeros((n, rules.n_actions))
        action_wanting[speaker] = gives[self._acts]
        speaker_last, act_last, addressee_last = self._last or (-1, -1, -1)
        shared = {
            "speaker": speaker_last,
            "act": act_last,
            "addressee": -1 if act_last == SILENT else addressee_last,
            "next_speaker": speaker,
        }
        repeats = self._repeats.tolist()
        return {
            agent: core.agent_info(i, action_wanting[i], ask_repetition=repeats[i], **shared)
            for i, agent in enumerate(self.possible_agents)
        }


raw_env = ConversationEnv


def parallel_env(**kwargs: Any) -> ConversationEnv:
    """Conversation through PettingZoo's Parallel API; arguments as :class:`ConversationEnv`."""
    return ConversationEnv(**kwargs)


def env(**kwargs: Any) -> AECEnv:
    """Conversation through PettingZoo's AEC API (``parallel_to_aec``, with order enforcement)."""
    return parallel_to_aec(ConversationEnv(**kwargs))
