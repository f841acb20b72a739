"""Orchard: choose which fruit to eat, or rest; diminishing returns make variety optimal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Final

import gymnasium
import numba
import numpy as np
from gymnasium import spaces

from valuegym.envs.core import ValueCore, write_value_observation
from valuegym.envs.profiles import default_profile, resolve_profile
from valuegym.envs.registration import EPISODE_LENGTH
from valuegym.envs.rendering import RENDER_MODES
from valuegym.values import ValueProfile, ValueStore
from valuegym.values.kernels import PARALLEL_THRESHOLD, step_all

__all__ = [
    "DEFAULT_EPISODE_LENGTH",
    "DEFAULT_GOODS",
    "OrchardEnv",
    "OrchardRules",
    "OrchardState",
]

#: Steps per episode unless ``episode_length`` says otherwise: the registered horizon.
DEFAULT_EPISODE_LENGTH: Final = EPISODE_LENGTH

#: The default goods and their base weights: unequal, so which fruit to pick matters.
DEFAULT_GOODS: Final[Mapping[str, float]] = {"apple": 1.0, "pear": 0.8, "plum": 0.6, "fig": 1.2}


@dataclass(eq=False)
class OrchardState:
    """What changes in ``n`` Orchards stepped together (``n = 1`` is :class:`OrchardEnv`).

    Row ``i`` of every array is copy ``i``; :class:`OrchardRules` moves the state from step to
    step, so the single and the vector env share one transition.

    Args:
        core: The copies' values, one store row per copy.
        in_stock: ``(n, episode_length, n_goods)`` bool, whether each good is in stock at each
            step of the copy's episode (drawn at reset).
        step_count: ``(n,)`` steps taken in the current episode.
        consumption: ``(n, n_values)`` the store's consumption input, rewritten each step.
        load: ``(n,)`` the store's load input, rewritten each step.
        rest: ``(n,)`` the store's rest input, rewritten each step.
        truncated: ``(n,)`` whether the last step ended the copy's episode.
    """

    core: ValueCore
    in_stock: np.ndarray
    step_count: np.ndarray
    consumption: np.ndarray
    load: np.ndarray
    rest: np.ndarray
    truncated: np.ndarray
    _arguments: tuple[np.ndarray, ...] | None = field(default=None, init=False, repr=False)

    def arguments(self) -> tuple[np.ndarray, ...]:
        """The arrays the compiled step takes after the actions, in its order (built once).

        Not pickled: an unpickled state's arrays are new objects, so it builds them again.
        """
        if self._arguments is None:
            n_copies = len(self.step_count)
            self._arguments = (
                self.in_stock,
                self.step_count,
                self.truncated,
                self.consumption,
                self.load,
                self.rest,
                np.zeros(n_copies),  # valence: none in Orchard
                np.empty(n_copies),  # surprise: not used
                *self.core.kernel_arrays(),
            )
        return self._arguments

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_arguments": None}


@numba.njit(cache=True, inline="always")
def _schedule_row(step_count, length):  # pragma: no cover - compiled
    # The row of the stock schedule that applies at a step count: after the last step (a
    # truncated episode stepped on) the last step's stock stays.
    return min(step_count, length - 1)


@numba.njit(cache=True)
def _store_inputs(
    actions,
    active,
    step_count,
    in_stock,
    pick_effort,
    consumption,
    load,
    rest,
    truncated,
):  # pragma: no cover - compiled
    # The value store's inputs for the actions (action k serves store column k; an
    # out-of-stock good serves nothing), and the step counts and truncations after the step.
    length, rest_action = in_stock.shape[1], in_stock.shape[2]
    for copy in range(actions.shape[0]):
        for k in range(consumption.shape[1]):
            consumption[copy, k] = 0.0
        action = actions[copy]
        if active[copy]:
            if action == rest_action:
                consumption[copy, action] = 1.0
                load[copy] = 0.0
                rest[copy] = 1.0
            else:
                row = _schedule_row(step_count[copy], length)
                consumption[copy, action] = 1.0 if in_stock[copy, row, action] else 0.0
                load[copy] = pick_effort
                rest[copy] = 0.0
            step_count[copy] += 1
            truncated[copy] = step_count[copy] == length
        else:
            load[copy] = 0.0
            rest[copy] = 0.0
            truncated[copy] = False


@numba.njit(cache=True)
def _observe(
    stock, wanting, mood, stress, in_stock, step_count, out, action_wanting
):  # pragma: no cover - compiled
    # One compiled call per step for the whole observation (a call costs more than its work):
    # the value part, availability per good, the fraction of the episode left; and the
    # wanting each action serves (0 for an out-of-stock good).
    write_value_observation(stock, wanting, mood, stress, out)
    length, n_goods = in_stock.shape[1], in_stock.shape[2]
    offset = 2 * stock.shape[1] + 2
    for copy in range(out.shape[0]):
        step = step_count[copy]
        row = _schedule_row(step, length)
        for g in range(n_goods):
            available = 1.0 if in_stock[copy, row, g] else 0.0
            out[copy, offset + g] = available
            action_wanting[copy, g] = wanting[copy, g] * available
        out[copy, offset + n_goods] = max(0.0, 1.0 - step / length)
        action_wanting[copy, n_goods] = wanting[copy, n_goods]


@numba.njit(cache=True)
def _step_and_observe(
    parallel,
    actions,
    active,
    pick_effort,
    observation,
    gain,
    action_wanting,
    in_stock,
    step_count,
    truncated,
    consumption,
    load,
    rest,
    valence,
    surprise,
    stock,
    expected,
    mood,
    stress,
    value_table,
    agent_table,
    weight,
    marginal,
    wanting,
    temperature,
):  # pragma: no cover - compiled
    # The whole transition and the next observation in one compiled call: a call from Python
    # costs more than an Orchard's step itself (~50 ns per array argument, ~400 ns per array
    # returned, so the caller passes its outputs in). Returns -1, or the first copy whose
    # action is invalid, before anything changed.
    n_actions = in_stock.shape[2] + 1
    for copy in range(actions.shape[0]):
        if not 0 <= actions[copy] < n_actions:
            return copy
    _store_inputs(
        actions, active, step_count, in_stock, pick_effort, consumption, load, rest, truncated
    )
    step_all(
        parallel,
        stock,
        expected,
        mood,
        stress,
        consumption,
        load,
        rest,
        valence,
        1.0,
        value_table,
        agent_table,
        gain,
        surprise,
        True,
        weight,
        marginal,
        wanting,
        temperature,
    )
    _observe(stock, wanting, mood, stress, in_stock, step_count, observation, action_wanting)
    return -1


@dataclass(frozen=True, eq=False)
class OrchardRules:
    """What Orchard's actions do, shared by :class:`OrchardEnv` and the native vector Orchard.

    Args:
        profile: The agent's values: the goods, then ``rest``, so that action ``k`` serves
            store column ``k``.
        goods: Names of the goods, in action order.
        out_of_stock_probability: Chance that a good is out of stock at a step.
        episode_length: Steps until the episode is truncated.
        pick_effort: Load that picking a fruit puts on the agent (raises stress).
    """

    profile: ValueProfile
    goods: tuple[str, ...]
    out_of_stock_probability: float
    episode_length: int
    pick_effort: float

    @classmethod
    def from_arguments(
        cls,
        goods: Mapping[str, float] | None = None,
        profile: ValueProfile | Mapping[str, Any] | None = None,
        out_of_stock_probability: float = 0.4,
        episode_length: int = DEFAULT_EPISODE_LENGTH,
        pick_effort: float = 0.3,
    ) -> OrchardRules:
        """Validate Orchard's arguments (documented on :class:`OrchardEnv`).

        Raises:
            ValueError: Naming the offending argument.
        """
        if profile is None:
            resolved = OrchardEnv.default_profile(goods)
        elif goods is not None:
            raise ValueError("goods: give goods or profile, not both (the profile names goods)")
        else:
            resolved = resolve_profile(profile, profile, required=("rest",))  # type: ignore[arg-type]
        if not 0.0 <= out_of_stock_probability < 1.0:
            raise ValueError(
                f"out_of_stock_probability: must be in [0, 1) (got {out_of_stock_probability})"
            )
        if isinstance(episode_length, bool) or not isinstance(episode_length, int):
            raise ValueError(f"episode_length: must be an int (got {episode_length!r})")
        if episode_length < 1:
            raise ValueError(f"episode_length: must be >= 1 (got {episode_length})")
        if not pick_effort >= 0.0:
            raise ValueError(f"pick_effort: must be >= 0 (got {pick_effort})")
        good_specs = tuple(spec for spec in resolved.values if spec.name != "rest")
        rest_spec = next(spec for spec in resolved.values if spec.name == "rest")
        return cls(
            profile=replace(resolved, values=(*good_specs, rest_spec)),
            goods=tuple(spec.name for spec in good_specs),
            out_of_stock_probability=float(out_of_stock_probability),
            episode_length=episode_length,
            pick_effort=float(pick_effort),
        )

    @property
    def n_actions(self) -> int:
        """One action per good, then rest."""
        return len(self.goods) + 1

    def observation_space(self, core: ValueCore) -> spaces.Box:
        """The value observation, then availability per good and the fraction of time left."""
        low, high = core.observation_bounds()
        n_features = len(self.goods) + 1
        return spaces.Box(
            np.concatenate([low, np.zeros(n_features, dtype=np.float32)]),
            np.concatenate([high, np.ones(n_features, dtype=np.float32)]),
            dtype=np.float32,
        )

    def draw_schedule(self, rng: np.random.Generator, out: np.ndarray | None = None) -> np.ndarray:
        """A whole episode's stock as uniform draws: ``(episode_length, n_goods)`` float64.

        A good is in stock at a step where its draw is at least ``out_of_stock_probability``
        (:meth:`reset` reads them so). Drawn at once, at reset, so that N copies stepped
        together use exactly the random numbers of N separate envs.

        Args:
            rng: The copy's generator.
            out: Where to write the draws: a C-contiguous float64 array of that shape (the
                same numbers as without it).

        Returns:
            The draws (``out`` when given).
        """
        if out is not None:
            return rng.random(out=out)
        return rng.random((self.episode_length, len(self.goods)))

    def initial_state(self, n_copies: int) -> OrchardState:
        """``n_copies`` Orchards before their first reset (every good in stock)."""
        core = ValueCore(ValueStore.from_profile(self.profile, n_agents=n_copies))
        return OrchardState(
            core=core,
            in_stock=np.ones((n_copies, self.episode_length, len(self.goods)), dtype=bool),
            step_count=np.zeros(n_copies, dtype=np.int64),
            consumption=np.zeros((n_copies, core.n_values)),
            load=np.zeros(n_copies),
            rest=np.zeros(n_copies),
            truncated=np.zeros(n_copies, dtype=bool),
        )

    def reset(
        self, state: OrchardState, schedules: np.ndarray, copies: np.ndarray | None = None
    ) -> None:
        """Start new episodes: fresh values, step 0, the given stock schedules.

        Args:
            state: The state, changed in place.
            schedules: ``(len(copies), episode_length, n_goods)`` from :meth:`draw_schedule`,
                one per copy.
            copies: Indices of the copies to reset; all when ``None``.
        """
        rows = slice(None) if copies is None else copies
        state.in_stock[rows] = schedules >= self.out_of_stock_probability
        state.step_count[rows] = 0
        state.truncated[rows] = False
        state.core.reset(copies)

    def in_stock(self, state: OrchardState, copy: int) -> np.ndarray:
        """``(n_goods,)`` bool: which goods a copy finds in stock at its current step."""
        return state.in_stock[copy, min(state.step_count.item(copy), self.episode_length - 1)]

    def step(
        self,
        state: OrchardState,
        actions: np.ndarray,
        active: np.ndarray,
        observations: np.ndarray,
        rewards: np.ndarray,
        action_wanting: np.ndarray,
    ) -> None:
        """The transition: every copy eats a fruit or rests (an out-of-stock fruit gives nothing).

        Copies not ``active`` take an idle step (no consumption, load or rest) and keep their
        step count, so that a vector env can reset them afterwards. One compiled call steps
        the copies and observes them (as :meth:`observe`).

        Args:
            state: The state, changed in place (:attr:`OrchardState.truncated` included).
            actions: ``(n,)`` int64 valid actions.
            active: ``(n,)`` bool, the copies that act.
            observations: ``(n, observation size)`` float32, filled with the observations
                after the step.
            rewards: ``(n,)`` float64, filled with the rewards: the utility gains of the value
                store.
            action_wanting: ``(n, n_actions)`` float64, filled with the wanting each action
                serves after the step (see :meth:`observe`).

        Raises:
            ValueError: When an action is not in ``[0, n_actions)`` (nothing has changed).
        """
        invalid = _step_and_observe(
            len(actions) >= PARALLEL_THRESHOLD,
            actions,
            active,
            self.pick_effort,
            observations,
            rewards,
            action_wanting,
            *state.arguments(),
        )
        if invalid >= 0:
            raise ValueError(
                f"actions: copy {invalid} got {actions[invalid]}, which is not an action "
                f"(must be in [0, {self.n_actions - 1}])"
            )

    def observe(self, state: OrchardState, observations: np.ndarray) -> np.ndarray:
        """What the copies see: their observations, and the wanting each action serves.

        Args:
            state: The state.
            observations: ``(n, observation size)`` float32, filled with the observations.

        Returns:
            ``(n, n_actions)`` the wanting each action serves now, 0 for an out-of-stock good
            (``info["action_wanting"]``).
        """
        core = state.core
        action_wanting = np.empty((len(state.step_count), self.n_actions))
        _observe(
            core.stock,
            core.wanting,
            core.mood,
            core.stress,
            state.in_stock,
            state.step_count,
            observations,
            action_wanting,
        )
        return action_wanting


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
    | `n_values .. 2n_values-1`| wanting per value, `w / (1 + |w|)`           | -1  | 1   |
    | `2 n_values`             | mood                                         | -1  | 1   |
    | `2 n_values + 1`         | stress                                       | 0   | 1   |
    | next `n_goods`           | 1 if the good is in stock this step, else 0  | 0   | 1   |
    | last                     | fraction of the episode left                 | 0   | 1   |

    `info` holds the value state by value index (`stocks`, `wanting`, `mood`, `stress`,
    `temperature`, `most_wanted`; see :class:`valuegym.envs.protocol.ValueInfo`, names in
    `value_names`) and `action_wanting` (the wanting each action serves, 0 for an out-of-stock
    good).

    ## Rewards
    The agent's utility gain from the value store: `w_eff * (u(s + 1) - u(s))` for the fruit
    eaten or for rest, 0 for an out-of-stock fruit. With the default profile a first fig is
    worth about 0.75, the third fig in a row 0.33, and a first apple after them 0.54.

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
    - `goods`: mapping of good name to base weight (default `DEFAULT_GOODS`), with the default
      value profile of :func:`valuegym.envs.core.default_profile`.
    - `profile`: a full value profile instead (`ValueProfile` or its mapping); its values other
      than `rest` are the goods; it must have a `rest` value.
    - `out_of_stock_probability`: chance a good is out of stock at a step (default 0.4).
    - `episode_length`: steps per episode (default 100).
    - `pick_effort`: load of picking a fruit, which raises stress (default 0.3).
    - `render_mode`: `"human"` (a pygame window where pygame is installed, else the text
      frame printed; see :mod:`valuegym.envs.rendering`), `"ansi"` or `"rgb_array"`.

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
            The goods with :data:`~valuegym.envs.core.GOOD_DEFAULTS`, then ``rest``.
        """
        return default_profile(dict(DEFAULT_GOODS if goods is None else goods))

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
        """The agents' values, in order (the env contract: :mod:`valuegym.envs.protocol`)."""
        return self._core.value_names

    @property
    def action_names(self) -> tuple[str, ...]:
        """One text per action, in action order: each good, then ``rest``."""
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
