"""Commons: a shared resource that regrows; harvest, rest, praise or sanction; the social dilemma.

The resource dynamics, the actions and what praise and sanctions do are Commons's rules
(:mod:`valuegym.envs.commons_rules`); :class:`CommonsEnv` steps them and every agent's values,
in one call of the shared value store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from valuegym.envs.commons_rules import (
    ACTION_NAMES,
    HARVEST_SHARES,
    PRAISE,
    REST,
    SANCTION,
    CommonsRules,
    commons_profile,
    cooperation_rate,
    regrow,
    share_out,
)
from valuegym.envs.core import ValueCore, generator_state, restore_generator
from valuegym.envs.protocol import HARMED
from valuegym.envs.rendering import RENDER_MODES, render_rgb
from valuegym.numeric import gini
from valuegym.values import ValueProfile, ValueStore

__all__ = [
    "ACTION_NAMES",
    "HARVEST_SHARES",
    "CommonsEnv",
    "env",
    "parallel_env",
    "raw_env",
]

_N_FEATURES: Final = 6


class CommonsEnv(ParallelEnv[str, np.ndarray, np.int64]):
    """A shared resource that regrows; harvest, rest, praise or sanction: the social dilemma.

    ## Description
    `n_agents` agents share a resource that regrows logistically towards a carrying capacity
    `K = capacity_per_agent * n_agents`. Each step every agent rests, harvests one of a few
    amounts, praises a neighbour or sanctions the heaviest harvester. The *sustainable share* is
    each agent's part of the maximum sustainable yield, `rate * K / (4 n_agents)`: if everyone
    takes at most that, the resource settles at `K / 2` or above; if everyone takes four times
    that, it collapses within a few steps. Food has diminishing returns (a concave utility whose
    satiation wears off), so greed buys little; scarcity (resource under `K / 2`) and being
    sanctioned raise stress; praise raises standing (a value) and mood. All agents' values live
    in one value store, one row per agent, stepped once per step.

    ## Action Space
    | Action | Meaning                                                                       |
    |--------|-------------------------------------------------------------------------------|
    | 0      | rest: consume one unit of `rest`, lower stress                                |
    | 1 .. 4 | harvest 0.5, 1, 2 or 4 sustainable shares (scaled down alike when short)     |
    | 5      | praise a neighbour (agent `i - 1` or `i + 1`, at random): +standing, +mood   |
    | 6      | sanction last step's heaviest other harvester: +stress, -mood (see below)    |

    A sanction lands only on an agent that took more than the sustainable share last step.

    ## Observation Space
    | Entries             | Observation                                            | Min | Max |
    |---------------------|--------------------------------------------------------|-----|-----|
    | first `2 n_values + 2` | stocks, wantings, mood, stress (`ValueCore`)      | -1  | 1   |
    | next                | resource level `R / K`                                 | 0   | 1   |
    | next                | own harvest last step / the largest harvest            | 0   | 1   |
    | next                | mean harvest last step / the largest harvest           | 0   | 1   |
    | next                | praise received last step, `p / (1 + p)`               | 0   | 1   |
    | next                | sanctions received last step, `s / (1 + s)`            | 0   | 1   |
    | last                | fraction of `max_cycles` left                          | 0   | 1   |

    ## Rewards
    Each agent's utility gain from its value store: food harvested (in sustainable shares),
    rest taken and standing from praise received, each with diminishing returns.

    ## Info
    Every entry is a number or a float64 array, by value index (names in `value_names`) or by
    action (names in `action_names`); the first six are the env contract's
    :class:`valuegym.envs.protocol.ValueInfo`, the last three the same in every agent's info:

    | Key                | Type                | Meaning                                         |
    |--------------------|---------------------|-------------------------------------------------|
    | `stocks`           | array `(n_values,)` | stock (satiation) per value                     |
    | `wanting`          | array `(n_values,)` | effective weight x marginal utility             |
    | `mood`             | float in [-1, 1]    | valence                                         |
    | `stress`           | float in [0, 1]     | load                                            |
    | `temperature`      | float > 0           | decision and sampling temperature               |
    | `most_wanted`      | int                 | the value wanted most (first on ties)           |
    | `action_wanting`   | array `(7,)`        | wanting x amount each action serves             |
    | `harvest`          | float               | resource units the agent took this step         |
    | `harmed`           | float               | sanctions the agent received this step          |
    | `resource`         | float in [0, K]     | the resource level `R`                          |
    | `gini`             | float in [0, 1]     | Gini coefficient of food taken so far           |
    | `cooperation_rate` | float in [0, 1]     | fraction of agents within the sustainable share |

    `harmed` is the env contract's harm count (:data:`valuegym.envs.protocol.HARMED`): a
    sanction is Commons's only action that harms another agent.

    `action_wanting` is `rest`'s wanting for action 0, `food`'s times the harvest asked (in
    sustainable shares) for 1 to 4, 0 for praise and sanction.

    ## State
    Each agent's value state, one row of the shared value store, stepped once per step
    (:mod:`valuegym.envs.core`): per value (`food`, `standing`, `rest`) a stock (satiation,
    which halves without consumption every `satiation_half_life` steps) and a wanting (its
    weight, moved by mood and stress, times its marginal utility), and mood, stress and
    temperature, whose parameters are the Default Value Profile's below. Beside it, the
    resource level and last step's harvests, praise and sanctions.
    `get_state()` copies all of it (the generator's state too) and `set_state()` restores
    it: the env's state contract (:class:`valuegym.envs.protocol.SupportsState`).

    `state()` (for centralised critics) is every agent's observation concatenated in agent
    order, `state_space` the matching `Box(-1, 1, (n_agents (2 n_values + 8),), float32)`: the
    resource level, every agent's stocks, wantings, mood, stress and last harvest.

    ## Starting State
    Resource at `initial_level * K`; values at their initial state.

    ## Episode End
    Every agent terminates when the resource falls under `collapse_level * K`; every agent is
    truncated after `max_cycles` steps.

    ## Arguments
    - `n_agents`: number of agents, at least 2 (default 5).
    - `profile`: one value profile for everyone, or a sequence of one per agent (each a
      `ValueProfile` or its mapping) with values `food`, `standing` and `rest`; default
      `default_profile({"food": 1.0, "standing": 0.5})`.
    - `max_cycles`: steps per episode (default 200).
    - `regrowth_rate`: logistic rate in (0, 1] (default 0.25).
    - `capacity_per_agent`: carrying capacity per agent (default 16, a sustainable share of 1).
    - `initial_level`, `collapse_level`: starting and collapse levels as fractions of `K`
      (defaults 0.75 and 0.05).
    - `scarcity_load`: load on everyone at full scarcity (default 0.5).
    - `sanction_load`, `sanction_valence`, `praise_valence`: effects of one sanction or praise
      received (defaults 1.0, 0.5, 0.5).
    - `render_mode`: `"human"` (a pygame window where pygame and a display are, else the
      text frame printed; see :mod:`valuegym.envs.rendering`), `"ansi"` or `"rgb_array"`.

    ## Version History
    - v0: initial version.

    Example:
        >>> import pettingzoo
        >>> import valuegym
        >>> env = pettingzoo.make("parallel", "valuegym/Commons-v0", n_agents=3)
        >>> observations, infos = env.reset(seed=0)
        >>> env.agents, observations["agent_0"].shape
        (['agent_0', 'agent_1', 'agent_2'], (14,))
        >>> _, rewards, _, _, infos = env.step({agent: 2 for agent in env.agents})
        >>> round(rewards["agent_0"], 3), infos["agent_0"]["harvest"]  # exp(-stress) * log(1 + 1)
        (0.627, 1.0)
        >>> infos["agent_0"]["cooperation_rate"], infos["agent_0"]["gini"]
        (1.0, 0.0)
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "commons_v0",
        "render_modes": list(RENDER_MODES),
        "render_fps": 4,
        "is_parallelizable": True,
    }

    @classmethod
    def default_profile(cls, **_: Any) -> ValueProfile:
        """Each agent's profile when no ``profile`` is given: ``food``, ``standing``, ``rest``."""
        return commons_profile()

    def __init__(
        self,
        n_agents: int = 5,
        profile: ValueProfile | Mapping[str, Any] | Sequence[Any] | None = None,
        max_cycles: int = 200,
        regrowth_rate: float = 0.25,
        capacity_per_agent: float = 16.0,
        initial_level: float = 0.75,
        collapse_level: float = 0.05,
        scarcity_load: float = 0.5,
        sanction_load: float = 1.0,
        praise_valence: float = 0.5,
        sanction_valence: float = 0.5,
        render_mode: str | None = None,
    ):
        ValueCore.check_render_mode(render_mode)
        self.render_mode = render_mode
        self.rules = rules = CommonsRules.from_arguments(
            n_agents,
            profile,
            max_cycles,
            regrowth_rate=regrowth_rate,
            capacity_per_agent=capacity_per_agent,
            initial_level=initial_level,
            collapse_level=collapse_level,
            scarcity_load=scarcity_load,
            sanction_load=sanction_load,
            praise_valence=praise_valence,
            sanction_valence=sanction_valence,
        )
        self._core = core = ValueCore(ValueStore.from_profiles(rules.profiles))
        self._food, self._standing, self._rest = map(core.index, ("food", "standing", "rest"))
        n = rules.n_agents
        self.possible_agents = [f"agent_{i}" for i in range(n)]
        self.agents: list[str] = []
        self._request = rules.harvest_requests()
        self._largest_harvest = float(self._request.max())
        self._consumption = np.zeros((n, core.n_values))
        self.np_random, self.np_random_seed = seeding.np_random()
        self._resource = 0.0
        self._step_count = 0
        self._taken = np.zeros(n)
        self._cumulative = np.zeros(n)
        self._praised = np.zeros(n)
        self._sanctioned = np.zeros(n)
        self._last_actions = np.zeros(n, dtype=np.int64)
        self._cooperation = 1.0
        low, high = core.observation_bounds()
        observation_space = spaces.Box(
            np.concatenate([low, np.zeros(_N_FEATURES, dtype=np.float32)]),
            np.concatenate([high, np.ones(_N_FEATURES, dtype=np.float32)]),
            dtype=np.float32,
        )
        action_space = spaces.Discrete(len(ACTION_NAMES))
        self.observation_spaces = dict.fromkeys(self.possible_agents, observation_space)
        self.action_spaces = dict.fromkeys(self.possible_agents, action_space)
        self.state_space = spaces.Box(
            np.tile(observation_space.low, n), np.tile(observation_space.high, n), dtype=np.float32
        )

    @property
    def value_names(self) -> tuple[str, ...]:
        """The agents' values, in order (env contract, :mod:`valuegym.envs.protocol`)."""
        return self._core.value_names

    @property
    def action_names(self) -> tuple[str, ...]:
        """One text per action, in action order (:data:`ACTION_NAMES`)."""
        return ACTION_NAMES

    def observation_space(self, agent: str) -> spaces.Box:
        """The same Box for every agent (see the class docstring)."""
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        """The same ``Discrete(7)`` for every agent (see the class docstring)."""
        return self.action_spaces[agent]

    def step(
        self, actions: Mapping[str, int | np.integer]
    ) -> tuple[
        dict[str, np.ndarray],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Every agent acts at once; see the class docstring.

        Args:
            actions: An action in ``[0, 7)`` for every live agent.

        Raises:
            ValueError: On a missing or out-of-range action, or after the episode ended.
        """
        if not self.agents:
            raise ValueError("step: the episode is over; call reset()")
        chosen = self._decode(actions)
        rules = self.rules
        requested = self._request[chosen]
        taken = share_out(requested, self._resource)
        self._resource = regrow(
            self._resource - float(taken.sum()), rules.regrowth_rate, rules.capacity
        )
        praised = rules.praise_received(chosen == PRAISE, self.np_random)
        sanctioned = rules.sanctions_received(chosen == SANCTION, self._taken)
        resting = (chosen == REST).astype(np.float64)
        consumption = self._consumption
        consumption[:, self._food] = taken / rules.sustainable_share
        consumption[:, self._rest] = resting
        consumption[:, self._standing] = praised
        scarcity = min(1.0, max(0.0, 1.0 - 2.0 * self._resource / rules.capacity))
        rewards = self._core.step(
            consumption,
            load=rules.scarcity_load * scarcity + rules.sanction_load * sanctioned,
            rest=resting,
            valence=rules.praise_valence * praised - rules.sanction_valence * sanctioned,
        )
        self._taken, self._praised, self._sanctioned = taken, praised, sanctioned
        self._cumulative += taken
        self._last_actions = chosen
        self._step_count += 1
        agents = self.agents
        collapsed = self._resource < rules.collapse_level * rules.capacity
        truncated = self._step_count >= rules.max_cycles
        observations = self._observations()
        self._cooperation = cooperation_rate(requested, rules.sustainable_share)
        infos = self._infos(self._cooperation)
        terminations = dict.fromkeys(agents, collapsed)
        truncations = dict.fromkeys(agents, truncated and not collapsed)
        rewards_by_agent = dict(zip(agents, rewards.tolist(), strict=True))
        if collapsed or truncated:
            self.agents = []
        return observations, rewards_by_agent, terminations, truncations, infos

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start an episode: the resource at its initial level, fresh values.

        Args:
            seed: Seed of the env's random generator (praise targets).
            options: Unused.
        """
        if seed is not None:
            self.np_random, self.np_random_seed = seeding.np_random(seed)
        self.agents = list(self.possible_agents)
        self._core.reset()
        self._resource = self.rules.initial_level * self.rules.capacity
        self._step_count = 0
        n = self.rules.n_agents
        self._taken, self._cumulative = np.zeros(n), np.zeros(n)
        self._praised, self._sanctioned = np.zeros(n), np.zeros(n)
        self._last_actions = np.zeros(n, dtype=np.int64)
        self._cooperation = 1.0
        return self._observations(), self._infos(1.0)

    def get_state(self) -> dict[str, Any]:
        """A deep copy of everything a step reads (:class:`~valuegym.envs.protocol.SupportsState`).

        Every agent's values, the live agents, the resource, the step count, the last step's
        harvests, praise, sanctions and actions, the harvests so far and the generator (praise
        targets).
        """
        return {
            "values": self._core.get_state(),
            "agents": list(self.agents),
            "resource": self._resource,
            "step_count": self._step_count,
            "taken": self._taken.copy(),
            "cumulative": self._cumulative.copy(),
            "praised": self._praised.copy(),
            "sanctioned": self._sanctioned.copy(),
            "last_actions": self._last_actions.copy(),
            "cooperation": self._cooperation,
            "np_random": generator_state(self.np_random),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s copy: the next step is the one that followed it."""
        self._core.set_state(state["values"])
        self.agents = list(state["agents"])
        self._resource = state["resource"]
        self._step_count = state["step_count"]
        self._taken = state["taken"].copy()
        self._cumulative = state["cumulative"].copy()
        self._praised = state["praised"].copy()
        self._sanctioned = state["sanctioned"].copy()
        self._last_actions = state["last_actions"].copy()
        self._cooperation = state["cooperation"]
        generator = restore_generator(self.np_random, state["np_random"])
        assert generator is not None  # Commons always holds a generator
        self.np_random = generator

    def observe_all(self) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Every agent's observation and info now: what the last ``reset`` or ``step`` returned.

        A planner reads its co-players' infos here after :meth:`set_state`.
        """
        return self._observations(), self._infos(self._cooperation)

    def render(self) -> str | np.ndarray | None:
        """The commons and agent 0 as text, a picture of bars, or both in a window."""
        rules = self.rules
        header = (
            f"step {self._step_count}/{rules.max_cycles}  resource "
            f"{self._resource:.1f}/{rules.capacity:.0f}  gini {gini(self._cumulative):.2f}"
        )
        picture = None
        if self.render_mode in ("rgb_array", "human"):
            bars = render_rgb(self._core.values_info(0))
            picture = np.full((12, bars.shape[1], 3), 255, dtype=np.uint8)
            picture[2:10, : int(bars.shape[1] * self._resource / rules.capacity)] = (44, 160, 44)
            picture = np.concatenate([picture, bars])
        shown = min(rules.n_agents, 8)
        lines = [
            f"agent_{i}: {ACTION_NAMES[self._last_actions[i]]}, took {self._taken[i]:.2f}"
            for i in range(shown)
        ]
        if shown < rules.n_agents:
            lines.append(f"... and {rules.n_agents - shown} more agents")
        return self._core.render(self.render_mode, 0, header + "\nagent_0:", lines, picture)

    def close(self) -> None:
        """Close the ``"human"`` render window, if one is open."""
        self._core.close()

    def _decode(self, actions: Mapping[str, int | np.integer]) -> np.ndarray:
        try:
            chosen = np.fromiter(
                map(actions.__getitem__, self.agents), dtype=np.int64, count=len(self.agents)
            )
        except KeyError as error:
            raise ValueError(f"actions: no action for live agent {error.args[0]!r}") from None
        if chosen.min() < 0 or chosen.max() >= len(ACTION_NAMES):
            bad = int(np.flatnonzero((chosen < 0) | (chosen >= len(ACTION_NAMES)))[0])
            raise ValueError(
                f"actions[{self.agents[bad]!r}]: must be in [0, "
                f"{len(ACTION_NAMES) - 1}] (got {chosen[bad]})"
            )
        return chosen

    def state(self) -> np.ndarray:
        """The global state: every agent's observation, concatenated in agent order."""
        return self._observation_table().ravel()

    def _observations(self) -> dict[str, np.ndarray]:
        return dict(zip(self.possible_agents, self._observation_table(), strict=True))

    def _observation_table(self) -> np.ndarray:
        rules, core = self.rules, self._core
        size = core.observation_size
        table = np.empty((rules.n_agents, size + _N_FEATURES), dtype=np.float32)
        core.write_observation(table[:, :size])
        table[:, size] = self._resource / rules.capacity
        table[:, size + 1] = self._taken / self._largest_harvest
        table[:, size + 2] = self._taken.mean() / self._largest_harvest
        table[:, size + 3] = self._praised / (1.0 + self._praised)
        table[:, size + 4] = self._sanctioned / (1.0 + self._sanctioned)
        table[:, size + 5] = 1.0 - self._step_count / rules.max_cycles
        return table

    def _infos(self, cooperation: float) -> dict[str, dict[str, Any]]:
        core = self._core
        action_wanting = np.zeros((self.rules.n_agents, len(ACTION_NAMES)))
        action_wanting[:, REST] = core.wanting[:, self._rest]
        action_wanting[:, 1:PRAISE] = np.multiply.outer(
            core.wanting[:, self._food], self._request[1:PRAISE] / self.rules.sustainable_share
        )
        shared = {
            "resource": self._resource,
            "gini": gini(self._cumulative),
            "cooperation_rate": cooperation,
        }
        harvests, harms = self._taken.tolist(), self._sanctioned.tolist()
        return {
            agent: core.agent_info(
                i, action_wanting[i], harvest=harvests[i], **{HARMED: harms[i]}, **shared
            )
            for i, agent in enumerate(self.possible_agents)
        }


raw_env = CommonsEnv


def parallel_env(**kwargs: Any) -> CommonsEnv:
    """Commons through PettingZoo's Parallel API; arguments as :class:`CommonsEnv`."""
    return CommonsEnv(**kwargs)


def env(**kwargs: Any) -> AECEnv:
    """Commons through PettingZoo's AEC API (``parallel_to_aec``, with order enforcement)."""
    return parallel_to_aec(CommonsEnv(**kwargs))
