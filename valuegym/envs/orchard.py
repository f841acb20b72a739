"""Orchard: choose which fruit to eat, or rest; diminishing returns make variety optimal.

The env says what Gymnasium asks of it; its state and transition are
:mod:`valuegym.envs.orchard_rules`, shared with the native vector Orchard.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium
import numpy as np
from gymnasium import spaces

from valuegym.envs.core import ValueCore, generator_state, restore_generator
from valuegym.envs.orchard_rules import (
    DEFAULT_EPISODE_LENGTH,
    DEFAULT_GOODS,
    OrchardRules,
    orchard_profile,
)
from valuegym.envs.rendering import RENDER_MODES
from valuegym.values import ValueProfile

__all__ = ["DEFAULT_EPISODE_LENGTH", "DEFAULT_GOODS", "OrchardEnv"]


class OrchardEnv(gymnasium.Env[np.ndarray, np.int64]):
    """Choose which fruit to eat, or rest; diminishing returns make variety optimal.

    ## Description
    An agent in an orchard eats one fruit per step or rests. Each fruit is a value of the agent
    with a concave utility curve: the first apple is worth more than the fifth in a row, and
    satiation wears off over a few steps, so alternating between fruits beats eating the
    favourite every time. Picking takes effort, which builds stress; stress makes fruit less
    enjoyable and rest more wanted, and resting lowers it. Goods are out of stock at random.

    ## Action Space
    `Discrete(n_goods + 1)`: action `k < n_goods` eats one unit of good `k` (nothing if it is
    out of stock, though the trip still costs effort); action `n_goods` rests.

    ## Observation Space
    `Box(float32)` of size `3 n_values + 2` (`n_values = n_goods + 1` with rest; 17 by default):

    | Entries                  | Observation                                  | Min | Max |
    |--------------------------|----------------------------------------------|-----|-----|
    | `0 .. n_values-1`        | stock (satiation) per value, `s / (1 + s)`   | 0   | 1   |
    | `n_values .. 2n_values-1`| wanting per value, `w / (1 + abs(w))`        | -1  | 1   |
    | `2 n_values`             | mood                                         | -1  | 1   |
    | `2 n_values + 1`         | stress                                       | 0   | 1   |
    | next `n_goods`           | 1 if the good is in stock this step, else 0  | 0   | 1   |
    | last                     | fraction of the episode left                 | 0   | 1   |

    ## Rewards
    The agent's utility gain from the value store: `w_eff * (u(s + 1) - u(s))` for the fruit
    eaten or for rest, 0 for an out-of-stock fruit. With the default profile a first fig is
    worth about 0.75, the third fig in a row 0.33, and a first apple after them 0.54.

    ## Info
    Every entry is a number or a float64 array, by value index (names in `value_names`) or by
    action (names in `action_names`); the first six are the env contract's
    :class:`valuegym.envs.protocol.ValueInfo`:

    | Key              | Type                 | Meaning                                  |
    |------------------|----------------------|------------------------------------------|
    | `stocks`         | array `(n_values,)`  | stock (satiation) per value              |
    | `wanting`        | array `(n_values,)`  | effective weight x marginal utility      |
    | `mood`           | float in [-1, 1]     | valence                                  |
    | `stress`         | float in [0, 1]      | load                                     |
    | `temperature`    | float > 0            | decision and sampling temperature        |
    | `most_wanted`    | int                  | the value wanted most (first on ties)    |
    | `action_wanting` | array `(n_actions,)` | wanting each action serves (0: no stock) |

    ## State
    The agent's value state, stepped by its value store once per step
    (:mod:`valuegym.envs.core`): per value a stock (satiation, which halves without consumption
    every `satiation_half_life` steps) and a wanting (its weight, moved by mood and stress,
    times its marginal utility), and mood, stress and temperature, whose parameters are the
    Default Value Profile's below. Beside it, the schedule of which goods are in stock.
    `get_state()` copies all of it (the generator's state too) and `set_state()` restores
    it: the env's state contract (:class:`valuegym.envs.protocol.SupportsState`).

    ## Starting State
    Stocks at 0, mood and stress at their baselines; which goods are in stock at each step is
    drawn from `np_random` at reset.

    ## Episode End
    No termination; truncation after `episode_length` steps. `gymnasium.make` adds Gymnasium's
    `TimeLimit` at the registered `max_episode_steps`, 100 like the default `episode_length`;
    to change the horizon give both (`gymnasium.make(id, episode_length=N,
    max_episode_steps=N)`): Gymnasium does not pass `max_episode_steps` to the env, whose
    observation counts down to the end. `gymnasium.make_vec` does pass it to the native vector
    env, which takes it as the episode length when `episode_length` is not given.

    ## Arguments
    - `goods`: mapping of good name to base weight (default `DEFAULT_GOODS`: the goods and
      weights of the Default Value Profile above), with the other fields of that profile
      (:func:`valuegym.envs.orchard_rules.orchard_profile`).
    - `profile`: a full value profile instead (`ValueProfile` or its mapping); its values other
      than `rest` are the goods; it must have a `rest` value.
    - `out_of_stock_probability`: chance a good is out of stock at a step (default 0.4).
    - `episode_length`: steps per episode (default 100).
    - `pick_effort`: load of picking a fruit, which raises stress (default 0.3).
    - `render_mode`: `"human"` (a pygame window where pygame and a display are, else the
      text frame printed; see :mod:`valuegym.envs.rendering`), `"ansi"` or `"rgb_array"`.

    ## Version History
    - v0: initial version.

    Example:
        >>> import gymnasium
        >>> import valuegym
        >>> env = gymnasium.make("valuegym/Orchard-v0", out_of_stock_probability=0.0)
        >>> observation, info = env.reset(seed=0)
        >>> observation.shape
        (17,)
        >>> env.unwrapped.value_names[info["most_wanted"]]
        'fig'
        >>> [round(env.step(3)[1], 3) for _ in range(3)]  # fig three times: worth less each time
        [0.753, 0.462, 0.332]
        >>> round(env.step(0)[1], 3)  # an apple is worth more now
        0.542
        >>> sorted(info)
        ['action_wanting', 'mood', 'most_wanted', 'stocks', 'stress', 'temperature', 'wanting']
    """

    # Gymnasium annotates metadata as an instance attribute; it is a class-level constant.
    metadata: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
        "render_modes": list(RENDER_MODES),
        "render_fps": 4,
    }

    @classmethod
    def default_profile(cls, goods: Mapping[str, float] | None = None, **_: Any) -> ValueProfile:
        """The agent's profile when no ``profile`` is given, for these ``goods``.

        Args:
            goods: The env's ``goods`` argument; other constructor arguments are ignored.

        Returns:
            The goods with :data:`~valuegym.envs.profiles.GOOD_DEFAULTS`, then ``rest``.
        """
        return orchard_profile(goods)

    def __init__(
        self,
        goods: Mapping[str, float] | None = None,
        profile: ValueProfile | Mapping[str, Any] | None = None,
        out_of_stock_probability: float = 0.4,
        episode_length: int = DEFAULT_EPISODE_LENGTH,
        pick_effort: float = 0.3,
        render_mode: str | None = None,
    ):
        ValueCore.check_render_mode(render_mode)
        self.render_mode = render_mode
        self.rules = OrchardRules.from_arguments(
            goods, profile, out_of_stock_probability, episode_length, pick_effort
        )
        # One Orchard is the n = 1 case of the vector env's state and transition; the arrays
        # below are its inputs and observation, reused so that a step allocates little.
        self._state = self.rules.initial_state(1)
        self._core = self._state.core
        self._n_actions = self.rules.n_actions
        self._actions = np.zeros(1, dtype=np.int64)
        self._active = np.ones(1, dtype=bool)
        self._observation_buffer = np.zeros((1, 3 * self._core.n_values + 2), dtype=np.float32)
        self._reward = np.zeros(1)
        self._last_action: int | None = None
        self.action_space = spaces.Discrete(self.rules.n_actions)
        self.observation_space = self.rules.observation_space(self._core)

    @property
    def value_names(self) -> tuple[str, ...]:
        """The agents' values, in order (env contract, :mod:`valuegym.envs.protocol`)."""
        return self._core.value_names

    @property
    def action_names(self) -> tuple[str, ...]:
        """One text per action, in action order (each good, then ``rest``)."""
        return tuple(name.replace("_", " ") for name in (*self.rules.goods, "rest"))

    def step(
        self, action: int | np.integer
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Eat a fruit or rest; see the class docstring."""
        action = int(action)
        if not 0 <= action < self._n_actions:
            raise ValueError(f"action: must be in [0, {self._n_actions - 1}] (got {action})")
        self._actions[0] = action
        action_wanting = np.empty((1, self._n_actions))
        self.rules.step(
            self._state,
            self._actions,
            self._active,
            self._observation_buffer,
            self._reward,
            action_wanting,
        )
        self._last_action = action
        info = self._core.agent_info(0, action_wanting[0])
        observation = self._observation_buffer[0].copy()
        return observation, self._reward.item(0), False, self._state.truncated.item(0), info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode: fresh values and a newly drawn stock schedule."""
        super().reset(seed=seed)
        self.rules.reset(self._state, self.rules.draw_schedule(self.np_random)[np.newaxis])
        self._last_action = None
        return self._observe()

    def get_state(self) -> dict[str, Any]:
        """A deep copy of everything a step reads (:class:`~valuegym.envs.protocol.SupportsState`).

        The values, the stock schedule, the step count, the generator (which draws the next
        episode's schedule) and the last action (for :meth:`render`).
        """
        return {
            **self.rules.get_state(self._state),
            "np_random": generator_state(self._np_random),
            "last_action": self._last_action,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s copy: the next step is the one that followed it."""
        self.rules.set_state(self._state, state)
        self._np_random = restore_generator(self._np_random, state["np_random"])
        self._last_action = state["last_action"]

    def render(self) -> str | np.ndarray | None:
        """The value state as text (``"ansi"``) or a picture of bars (``"rgb_array"``)."""
        step_count = self._state.step_count.item(0)
        last = "-" if self._last_action is None else self._action_name(self._last_action)
        header = f"step {step_count}/{self.rules.episode_length}  last action: {last}"
        in_stock = self.rules.in_stock(self._state, 0)
        stock_line = "in stock: " + " ".join(
            good for good, available in zip(self.rules.goods, in_stock, strict=True) if available
        )
        return self._core.render(self.render_mode, 0, header, [stock_line])

    def close(self) -> None:
        """Close the ``"human"`` render window, if one is open."""
        self._core.close()

    def _action_name(self, action: int) -> str:
        return self.rules.goods[action] if action < self._n_actions - 1 else "rest"

    def _observe(self) -> tuple[np.ndarray, dict[str, Any]]:
        action_wanting = self.rules.observe(self._state, self._observation_buffer)
        return self._observation_buffer[0].copy(), self._core.agent_info(0, action_wanting[0])
