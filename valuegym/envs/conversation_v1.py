"""Conversation-v1: Conversation where what is said reaches the listeners' values.

:class:`ConversationV1Env` is :class:`~valuegym.envs.conversation.ConversationEnv` whose
speaker's action may carry the listeners' appraisal of what it says (computed above the env,
by :mod:`valuegym.agents`), and which counts an ask's repeats within a window of the asks its
addressee received; this module says only what v1 changes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, cast

import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv
from pettingzoo.utils.conversions import parallel_to_aec

from valuegym.envs.conversation import ConversationEnv, ListenerInputs
from valuegym.envs.conversation_rules import ASK, ConversationV1Rules, ask_key
from valuegym.values import ValueProfile

__all__ = ["ConversationV1Env", "env", "parallel_env", "raw_env"]


class ConversationV1Env(ConversationEnv):
    """A group chat whose listeners appraise what is said: repeats, valence and surprise.

    ## Description
    `n_agents` agents take turns in order (`agent_0`, `agent_1`, ...). On its turn an agent asks,
    helps, shares, jokes or complains, addressed to another agent, or stays silent; the others
    observe. Being helped or addressed satisfies the `social` need with diminishing returns;
    being asked the same thing again raises stress (each repeat among the addressee's recent
    asks adds more load); helping costs energy (load on the helper) and earns `standing`;
    staying silent is rest, which restores energy (lowers stress). Mood follows the valence of
    jokes, help and complaints. All agents' values live in one value store, one row per agent,
    stepped once per turn. In text mode the utterance goes into every agent's observation
    through a chat of the last `history_length` lines, and the speaker's action may carry
    each listener's appraisal of it (how many of its recent asks it repeats, its valence and
    its surprise), computed above the env (a meaning clusterer, a valence judge, the
    listener's language model): what is said, not only the act, then moves the listeners'
    stress and mood. Without an appraisal the env appraises alone (repeats of identical text,
    no valence, no surprise).

    ## Action Space
    Action 0 is `silent`; action `1 + (a - 1) (n_agents - 1) + (o - 1)` is act `a` of
    `ask, help, share, joke, complain` (1 to 5) addressed to agent `(i + o) mod n_agents`, the
    `o`-th agent after the speaker `i`: addressing is relative, so one shared policy serves
    every agent. In text mode the action is `Dict(act=<that Discrete>, utterance=Text(
    max_utterance_length), appraisal=Dict(repeats=Box(0, repetition_window, (n_agents,)),
    valence=Box(-1, 1, (n_agents,)), surprise=Box(-10, 10, (n_agents,))))` (float64 boxes);
    utterances are transliterated to ASCII, other characters shown as `?`, cut to
    `max_utterance_length`. Only the speaker's action counts; the others' actions may be left
    out and are ignored.

    The `appraisal` is optional, and so is each of its entries; each is one number per agent,
    by agent index, and the speaker's own is ignored:

    | Entry      | For agent `j`                                      | Without it         |
    |------------|----------------------------------------------------|--------------------|
    | `repeats`  | on an ask to `j`, its repeats `r`                  | the env's count    |
    | `valence`  | added to `j`'s valence input this turn             | 0                  |
    | `surprise` | `j`'s surprise input this turn (scaled from nats)  | 0                  |

    An ask's repeats `r` are the earlier asks among its addressee's last `repetition_window`
    received asks that mean the same; the env's own count takes those whose text is
    identical, ignoring case and spacing (in numeric mode all of them). Every ask enters its
    addressee's window, appraised or not. An appraisal entry that is not `n_agents` finite
    numbers within its box raises `ValueError`.

    | Act      | Speaker                                | Addressee                                |
    |----------|----------------------------------------|------------------------------------------|
    | silent   | `rest` +1, rest 1                      |                                          |
    | ask      | `social` +c/2                          | `social` +c; load `ask_load (1 + rl r)`  |
    | help     | `standing` +1; load `help_cost`        | `social` +2c; valence +`help_valence`    |
    | share    | `social` +c                            | `social` +c                              |
    | joke     | `social` +c/2; valence +`joke_valence` | `social` +c; valence +`joke_valence`     |
    | complain | `rest` +`vent`, rest `vent`            | load `complain_load`; valence -`cv`      |

    Here `c` is `contact`, `cv` is `complain_valence`, `rl` is `repetition_load` and `r` the
    ask's repeats. Each listener's appraised valence adds to its valence input and its
    appraised surprise is the value store's surprise input, which speeds its learning and
    moves its mood down (:meth:`valuegym.values.ValueStore.step`).

    ## Observation Space
    | Entries                | Observation                                        | Min | Max |
    |------------------------|----------------------------------------------------|-----|-----|
    | first `2 n_values + 2` | the value part (:class:`~valuegym.envs.core.ValueCore`) | -1 | 1 |
    | next                   | 1 if it is this agent's turn                       | 0   | 1   |
    | next 6                 | the last act, one-hot (all 0 before the first)     | 0   | 1   |
    | next                   | 1 if the last act addressed this agent             | 0   | 1   |
    | next                   | 1 if this agent spoke last                         | 0   | 1   |
    | next                   | the repeats of the last ask received, `r / (1 + r)` | 0  | 1   |
    | last                   | fraction of `max_cycles` left                      | 0   | 1   |

    In text mode the observation is `Dict(observation=<that Box>, chat=Text)`: the chat holds
    the last `history_length` lines `"agent_0 -> agent_2 (ask): <utterance>"`, oldest first.

    ## Rewards
    Each agent's utility gain from its value store this turn.

    ## Info
    Every entry is a number or a float64 array, by value index (names in `value_names`) or by
    action (names in `action_names`); the first six are the env contract's
    :class:`valuegym.envs.protocol.ValueInfo`, the last four the same in every agent's info:

    | Key                  | Type                 | Meaning                                  |
    |----------------------|----------------------|------------------------------------------|
    | `stocks`             | array `(n_values,)`  | stock (satiation) per value              |
    | `wanting`            | array `(n_values,)`  | effective weight x marginal utility      |
    | `mood`               | float in [-1, 1]     | valence                                  |
    | `stress`             | float in [0, 1]      | load                                     |
    | `temperature`        | float > 0            | decision and sampling temperature        |
    | `most_wanted`        | int                  | the value wanted most (first on ties)    |
    | `action_wanting`     | array `(n_actions,)` | wanting x amount each act gives it       |
    | `ask_repetition`     | float                | the repeats of the last ask received (`r`) |
    | `appraised_valence`  | float in [-1, 1]     | the valence the last turn added to it    |
    | `appraised_surprise` | float in [-10, 10]   | its surprise input in the last turn      |
    | `speaker`            | int                  | the agent who took the last turn (index) |
    | `act`                | int                  | the act of that turn, an index in `ACTS` |
    | `addressee`          | int                  | its addressee (index; -1 for silent)     |
    | `next_speaker`       | int                  | the agent to speak next (index)          |

    Agents are indices in `possible_agents`. `action_wanting` is all 0 off turn; `speaker`,
    `act` and `addressee` are -1 at reset; `appraised_valence` and `appraised_surprise` are 0
    at reset, for the speaker, and without an appraisal.

    ## State
    Each agent's value state, one row of the shared value store, stepped once per turn
    (:mod:`valuegym.envs.core`): per value (`social`, `standing`, `rest`) a stock (satiation,
    which halves without consumption every `satiation_half_life` steps) and a wanting (its
    weight, moved by mood and stress, times its marginal utility), and mood, stress and
    temperature, whose parameters are the Default Value Profile's below. Beside it, whose turn
    it is, the last act, each agent's last `repetition_window` received asks and the repeats
    of the last, the last turn's appraisal, and the chat.

    `state()` (for centralised critics) is every agent's numeric observation (the `Box` part,
    in text mode too) concatenated in agent order, `state_space` the matching
    `Box(-1, 1, (n_agents (2 n_values + 13),), float32)`.

    ## Starting State
    Values at their initial state, an empty chat, no asks received, `agent_0` to speak.

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
    - `repetition_window`: the received asks each agent remembers, within which an ask's
      repeats are counted (default 8; `env.unwrapped.rules.repetition_window`).
    - `render_mode`: `"human"` (a pygame window where pygame and a display are, else the
      text frame printed; see :mod:`valuegym.envs.rendering`), `"ansi"` or `"rgb_array"`.

    ## Version History
    - v1: listener appraisal input; repetition counted within a window.
    - v0: initial version.

    Example:
        >>> import pettingzoo
        >>> import valuegym
        >>> env = pettingzoo.make("parallel", "valuegym/Conversation-v1", n_agents=3, mode="text")
        >>> observations, infos = env.reset(seed=0)
        >>> appraisal = {"repeats": [0, 2, 0], "valence": [0, -0.5, 0.25], "surprise": [0, 1, 0]}
        >>> action = {"act": 1, "utterance": "Where is the key?", "appraisal": appraisal}
        >>> observations, rewards, _, _, infos = env.step({"agent_0": action})  # ask agent_1
        >>> infos["agent_1"]["ask_repetition"], infos["agent_1"]["appraised_surprise"]
        (2.0, 1.0)
        >>> [infos[agent]["appraised_valence"] for agent in env.possible_agents]
        [0.0, -0.5, 0.25]
    """

    metadata: ClassVar[dict[str, Any]] = {**ConversationEnv.metadata, "name": "conversation_v1"}
    rules: ConversationV1Rules

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
        repetition_window: int = 8,
        render_mode: str | None = None,
    ):
        super().__init__(
            n_agents=n_agents,
            mode=mode,
            profile=profile,
            max_cycles=max_cycles,
            history_length=history_length,
            max_utterance_length=max_utterance_length,
            contact=contact,
            help_cost=help_cost,
            help_valence=help_valence,
            ask_load=ask_load,
            repetition_load=repetition_load,
            joke_valence=joke_valence,
            complain_load=complain_load,
            complain_valence=complain_valence,
            vent=vent,
            render_mode=render_mode,
        )
        self.rules = rules = ConversationV1Rules.from_rules(self.rules, repetition_window)
        n = rules.n_agents
        self._received = [deque[str](maxlen=rules.repetition_window) for _ in range(n)]
        self._appraised_valence = np.zeros(n)
        self._appraised_surprise = np.zeros(n)
        if rules.mode == "text":
            appraisal = spaces.Dict(
                {
                    key: spaces.Box(low, high, (n,), dtype=np.float64)
                    for key, (low, high) in rules.appraisal_bounds().items()
                }
            )
            text_action = cast("spaces.Dict", self.action_spaces[self.possible_agents[0]])
            action_space = spaces.Dict({**text_action.spaces, "appraisal": appraisal})
            self.action_spaces = dict.fromkeys(self.possible_agents, action_space)

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start a conversation: fresh values, no asks received, ``agent_0`` to speak.

        Args:
            seed: Seed of the env's random generator (the dynamics are deterministic; it is
                kept for wrappers and agents that draw from it).
            options: Unused.
        """
        for received in self._received:
            received.clear()
        self._appraised_valence[:] = 0.0
        self._appraised_surprise[:] = 0.0
        return super().reset(seed=seed, options=options)

    def _appraise(
        self, action: Any, speaker: int, act: int, addressee: int, utterance: str
    ) -> ListenerInputs:
        """The listeners' appraisal: given with the action, else the env's own; see the class."""
        rules = self.rules
        given = rules.parse_appraisal(action, self.possible_agents[speaker])
        inputs: dict[str, np.ndarray] = {}
        if given:  # numeric mode never is: it keeps v0's speed
            listening = np.arange(rules.n_agents) != speaker
            inputs = {
                key: np.where(listening, given[key], 0.0)
                for key in ("valence", "surprise")
                if key in given
            }
        self._appraised_valence[:] = inputs.get("valence", 0.0)
        self._appraised_surprise[:] = inputs.get("surprise", 0.0)
        repeats = 0.0
        if act == ASK:
            received, key = self._received[addressee], ask_key(utterance)
            if "repeats" in given:
                repeats = float(given["repeats"][addressee])
            else:
                repeats = float(received.count(key))
            received.append(key)
        return ListenerInputs(repeats, inputs.get("valence"), inputs.get("surprise"))

    def _infos(self) -> dict[str, Any]:
        infos = super()._infos()
        appraised = zip(
            self._appraised_valence.tolist(), self._appraised_surprise.tolist(), strict=True
        )
        for info, (valence, surprise) in zip(infos.values(), appraised, strict=True):
            info["appraised_valence"] = valence
            info["appraised_surprise"] = surprise
        return infos


raw_env = ConversationV1Env


def parallel_env(**kwargs: Any) -> ConversationV1Env:
    """Conversation-v1 through PettingZoo's Parallel API; arguments as the class's."""
    return ConversationV1Env(**kwargs)


def env(**kwargs: Any) -> AECEnv:
    """Conversation-v1 through PettingZoo's AEC API (``parallel_to_aec``, order enforced)."""
    return parallel_to_aec(ConversationV1Env(**kwargs))
