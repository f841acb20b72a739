"""Orchard's rules: its state and transition, shared by the single and the vector env.

:class:`OrchardRules` (validated arguments) moves an :class:`OrchardState` (arrays, one row
per copy) from step to step, in one compiled call per step, so that
:class:`~valuegym.envs.orchard.OrchardEnv` (one copy) and
:class:`~valuegym.envs.orchard_vector.OrchardVectorEnv` (N copies) share one transition; the
envs say what Gymnasium asks of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numba
import numpy as np
from gymnasium import spaces

from valuegym.envs.core import ValueCore, write_value_observation
from valuegym.envs.profiles import default_profile, resolve_profile
from valuegym.envs.registration import EPISODE_LENGTH
from valuegym.values import ValueProfile, ValueStore
from valuegym.values.kernels import PARALLEL_THRESHOLD, step_all

__all__ = [
    "DEFAULT_EPISODE_LENGTH",
    "DEFAULT_GOODS",
    "OrchardRules",
    "OrchardState",
    "orchard_profile",
]

#: Steps per episode unless ``episode_length`` says otherwise: the registered horizon.
DEFAULT_EPISODE_LENGTH: Final = EPISODE_LENGTH

#: The default goods and their base weights: unequal, so which fruit to pick matters.
DEFAULT_GOODS: Final[Mapping[str, float]] = {"apple": 1.0, "pear": 0.8, "plum": 0.6, "fig": 1.2}


def orchard_profile(goods: Mapping[str, float] | None = None) -> ValueProfile:
    """The agent's profile when no ``profile`` is given: these goods, then ``rest``.

    Args:
        goods: Good name -> base weight; :data:`DEFAULT_GOODS` when ``None``.

    Returns:
        The goods with :data:`~valuegym.envs.profiles.GOOD_DEFAULTS`, then ``rest``.
    """
    return default_profile(dict(DEFAULT_GOODS if goods is None else goods))


@dataclass(eq=False)
class OrchardState:
    """What changes in ``n`` Orchards stepped together (``n = 1``: the single env).

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
            no_input = np.zeros(n_copies)  # never written: stands in for the inputs Orchard lacks
            self._arguments = (
                self.in_stock,
                self.step_count,
                self.truncated,
                self.consumption,
                self.load,
                self.rest,
                no_input,  # valence
                no_input,  # external surprise
                np.empty(n_copies),  # surprise (the prediction error): not used
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
    external_surprise,
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
        external_surprise,
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
    """What Orchard's actions do, shared by the single and the native vector Orchard.

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
        """Validate Orchard's arguments (the env's docstring documents them).

        Raises:
            ValueError: Naming the offending argument.
        """
        if profile is None:
            resolved = orchard_profile(goods)
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

    def get_state(self, state: OrchardState) -> dict[str, Any]:
        """A copy of what the transition reads from ``state`` (every copy's row).

        The step's store inputs are left out: a step writes them before reading them.
        """
        return {
            "values": state.core.get_state(),
            "in_stock": state.in_stock.copy(),
            "step_count": state.step_count.copy(),
            "truncated": state.truncated.copy(),
        }

    def set_state(self, state: OrchardState, saved: Mapping[str, Any]) -> None:
        """Write :meth:`get_state`'s copy back into ``state``, in place."""
        state.core.set_state(saved["values"])
        state.in_stock[...] = saved["in_stock"]
        state.step_count[...] = saved["step_count"]
        state.truncated[...] = saved["truncated"]

    def in_stock(self, state: OrchardState, copy: int) -> np.ndarray:
        """``(n_goods,)`` bool: which goods a copy finds in stock at its current step."""
        return state.in_stock[copy, _schedule_row(state.step_count.item(copy), self.episode_length)]

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
