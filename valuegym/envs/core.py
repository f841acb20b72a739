"""The mechanics every valuegym environment shares: a value store as observations, info, rewards.

An env owns one :class:`ValueCore` around one :class:`~valuegym.values.ValueStore` and says only
what its actions do. The rows of the store are whatever the env steps together: one agent
(Orchard, Inbox), one row per agent (Commons, Conversation) or one row per env copy (the native
vector Orchard). Every method works on all rows at once, so the three cases share this code::

    core = ValueCore(ValueStore.from_profile(profile, n_agents=n_rows))
    core.reset()                                     # after super().reset(seed=seed)
    gains = core.step(consumption, load=load, rest=rest, valence=valence)  # (n_rows,) rewards
    core.write_observation(observation[:, : core.observation_size])      # flat float32 part
    info = core.agent_info(row, action_wanting, **env_entries)           # the env contract

The value part of an observation is, per row, ``[stock_squashed (n_values), wanting_squashed
(n_values), mood, stress]``, with ``squash(x) = x / (1 + |x|)``: every entry lies in
``[-1, 1]`` (:meth:`ValueCore.observation_bounds`), so Box bounds are honest. Envs append their
own features after it.

What every agent's ``info`` holds (the value state by value index and ``action_wanting``) is
the env contract, written down in :mod:`valuegym.envs.protocol`; :meth:`ValueCore.agent_info`
builds it from arrays the step already computed (a full snapshot costs more than the rest of a
step).
Rendering lives in :mod:`valuegym.envs.rendering`, default profiles in
:mod:`valuegym.envs.profiles`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numba
import numpy as np

from valuegym.envs.protocol import ValueInfo
from valuegym.envs.rendering import (
    RENDER_MODES,
    HumanWindow,
    check_render_mode,
    render_ansi,
    render_rgb,
)
from valuegym.values import ValueStore

__all__ = [
    "ValueCore",
    "generator_state",
    "most_wanted_index",
    "restore_generator",
    "write_value_observation",
]


def generator_state(generator: np.random.Generator | None) -> Mapping[str, Any] | None:
    """An independent copy of a generator's state (``None`` for no generator yet).

    Envs put it in their :meth:`get_state` so that a restored env draws the same numbers.
    """
    return None if generator is None else generator.bit_generator.state


def restore_generator(
    generator: np.random.Generator | None, state: Mapping[str, Any] | None
) -> np.random.Generator | None:
    """The generator with :func:`generator_state`'s ``state`` restored.

    In place when ``generator`` has the same bit generator, so that holders of it see the
    restored state; else a new generator (``None`` when the state is ``None``).
    """
    if state is None:
        return None
    bit_generator = getattr(np.random, state["bit_generator"])
    if generator is None or type(generator.bit_generator) is not bit_generator:
        generator = np.random.Generator(bit_generator())
    generator.bit_generator.state = state
    return generator


@numba.njit(cache=True, error_model="numpy")
def _squashed(values):  # pragma: no cover - compiled
    # x / (1 + |x|) over the flat array: one simple loop over contiguous memory, which LLVM
    # turns into vector divisions (with numpy's error model: no zero-division branch, and
    # 1 + |x| is never 0). Rows of a few values divided one by one are bound by the
    # divider's throughput.
    flat = values.ravel()
    squashed = np.empty(flat.size)
    for j in range(flat.size):
        squashed[j] = flat[j] / (1.0 + abs(flat[j]))
    return squashed


@numba.njit(cache=True)
def write_value_observation(stock, wanting, mood, stress, out):  # pragma: no cover - compiled
    """Write every row's value observation into the first columns of ``out``, compiled.

    What :meth:`ValueCore.write_observation` does; an env's own compiled observation code
    calls it to write a whole observation in one call.
    """
    n_values = stock.shape[1]
    stock_squashed, wanting_squashed = _squashed(stock), _squashed(wanting)
    for i in range(stock.shape[0]):
        for k in range(n_values):
            out[i, k] = stock_squashed[i * n_values + k]
            out[i, n_values + k] = wanting_squashed[i * n_values + k]
        out[i, 2 * n_values] = mood[i]
        out[i, 2 * n_values + 1] = stress[i]


@numba.njit(cache=True)
def most_wanted_index(wanting):  # pragma: no cover - compiled
    """``np.argmax(wanting, axis=1)`` (the first maximum, or the first NaN), compiled.

    numpy's axis argmax pays a per-row cost that dominates on small rows.
    """
    most = np.zeros(wanting.shape[0], dtype=np.int64)
    for row in range(wanting.shape[0]):
        best = wanting[row, 0]
        for k in range(1, wanting.shape[1]):
            if best != best:
                break
            if wanting[row, k] > best or wanting[row, k] != wanting[row, k]:
                best, most[row] = wanting[row, k], k
    return most


class ValueCore:
    """A value store as an env sees it: observations, rewards, info and pictures of its rows.

    After :meth:`reset` and :meth:`step` the current wanting and temperature of every row are
    cached in :attr:`wanting` and :attr:`temperature` (the store computes them on request), so an
    env reads them as often as it likes at no cost. Both are one array each for the core's life,
    updated in place: read them, copy what you keep.

    Args:
        store: The store; one row per agent or env copy.
    """

    def __init__(self, store: ValueStore):
        self.store = store
        self.value_names: tuple[str, ...] = store.value_names
        self.n_rows: int = store.n_agents
        self.n_values: int = store.n_values
        self.observation_size: int = 2 * self.n_values + 2
        self._bind_views()
        self.wanting: np.ndarray = store.wanting()
        self.temperature: np.ndarray = store.temperature()
        # The effective weights and marginal utilities a compiled step computes beside the
        # wanting (see kernel_arrays).
        self._scratch = (np.empty_like(self.wanting), np.empty_like(self.wanting))
        self._window: HumanWindow | None = None

    def _bind_views(self) -> None:
        # The store updates its state arrays in place, so these read-only views stay current;
        # holding them saves a view construction per access on the per-step path.
        self.stock: np.ndarray = self.store.stock
        self.mood: np.ndarray = self.store.mood
        self.stress: np.ndarray = self.store.stress

    def __getstate__(self) -> dict[str, Any]:
        # A pickled view would come back as a copy detached from the store: rebind instead.
        state = self.__dict__.copy()
        for view in ("stock", "mood", "stress"):
            del state[view]
        state["_window"] = None  # a window does not travel
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._bind_views()

    def get_state(self) -> dict[str, np.ndarray]:
        """A copy of every row's value state: what :meth:`step` reads, and the cached wanting.

        Part of the envs' state contract (:class:`valuegym.envs.protocol.SupportsState`).
        """
        stock, expected, mood, stress, _, _ = self.store.kernel_arrays()
        return {
            "stock": stock.copy(),
            "expected": expected.copy(),
            "mood": mood.copy(),
            "stress": stress.copy(),
            "wanting": self.wanting.copy(),
            "temperature": self.temperature.copy(),
        }

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`get_state`'s copy, in place (views and compiled arguments stay valid)."""
        stock, expected, mood, stress, _, _ = self.store.kernel_arrays()
        for target, key in (
            (stock, "stock"),
            (expected, "expected"),
            (mood, "mood"),
            (stress, "stress"),
            (self.wanting, "wanting"),
            (self.temperature, "temperature"),
        ):
            target[...] = state[key]

    def index(self, name: str) -> int:
        """Column of the value called ``name``.

        Raises:
            ValueError: When there is no such value.
        """
        try:
            return self.value_names.index(name)
        except ValueError:
            raise ValueError(f"no value {name!r} (values: {list(self.value_names)})") from None

    def observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds (float32) of one row's value observation: all ``[-1, 1]``."""
        high = np.ones(self.observation_size, dtype=np.float32)
        return -high, high

    def reset(self, rows: np.ndarray | None = None) -> None:
        """Return rows to their initial value state.

        Args:
            rows: Indices or a boolean mask of rows; all when ``None``.
        """
        self.store.reset(rows)
        self.refresh()

    def step(
        self,
        consumption: np.ndarray,
        *,
        load: np.ndarray | None = None,
        rest: np.ndarray | None = None,
        valence: np.ndarray | None = None,
        surprise: np.ndarray | None = None,
    ) -> np.ndarray:
        """Step every row's values; the arguments are those of :meth:`ValueStore.step`.

        Returns:
            ``(n_rows,)`` utility gains: the rewards.
        """
        outcome = self.store.step(
            consumption,
            load=load,
            rest=rest,
            valence=valence,
            surprise=surprise,
            wanting_out=(self.wanting, self.temperature),
        )
        return outcome.utility_gain

    def refresh(self) -> None:
        """Recompute the cached wanting and temperature (after changing the store directly)."""
        self.wanting[...] = self.store.wanting()
        self.temperature[...] = self.store.temperature()

    def kernel_arrays(self) -> tuple[np.ndarray, ...]:
        """The arguments of :func:`valuegym.values.kernels.step_all` that the core holds.

        Returns:
            ``stock, expected, mood, stress, value_table, agent_table`` (the store's,
            :meth:`~valuegym.values.ValueStore.kernel_arrays`), then ``weight, marginal,
            wanting, temperature``: the scratch and the cached :attr:`wanting` and
            :attr:`temperature`, which an env's compiled step fills so that they stay current.
            The arrays live as long as the core (a pickled core rebuilds them: ask again).
        """
        return (*self.store.kernel_arrays(), *self._scratch, self.wanting, self.temperature)

    def write_observation(self, out: np.ndarray) -> None:
        """Write every row's value observation.

        Args:
            out: ``(n_rows, observation_size)`` float32 array (a view into the full observation).
        """
        write_value_observation(self.stock, self.wanting, self.mood, self.stress, out)

    def values_info(self, row: int = 0) -> ValueInfo:
        """One row's value state as numbers, by value index (the value entries of ``info``).

        Args:
            row: Row of the agent or copy.

        Returns:
            A :class:`~valuegym.envs.protocol.ValueInfo`: ``stocks`` and ``wanting`` (float64
            arrays in :attr:`value_names` order), ``mood``, ``stress``, ``temperature``
            (floats) and ``most_wanted`` (the index of the highest wanting).
        """
        wanting = self.wanting[row].copy()
        return {
            "stocks": self.stock[row].copy(),
            "wanting": wanting,
            "mood": self.mood.item(row),
            "stress": self.stress.item(row),
            "temperature": self.temperature.item(row),
            "most_wanted": int(wanting.argmax()),
        }

    def batched_values_info(self) -> dict[str, Any]:
        """Every row's value state, batched as Gymnasium's vector envs batch per-copy infos.

        Returns:
            The entries of :meth:`values_info` stacked over rows (``(n_rows, n_values)`` and
            ``(n_rows,)`` arrays), each with its all-true ``_key`` mask.
        """
        everyone = np.ones(self.n_rows, dtype=bool)
        values: dict[str, Any] = {
            "stocks": self.stock.copy(),
            "wanting": self.wanting.copy(),
            "mood": self.mood.copy(),
            "stress": self.stress.copy(),
            "temperature": self.temperature.copy(),
            "most_wanted": most_wanted_index(self.wanting),
        }
        values.update({f"_{key}": everyone for key in list(values)})
        return values

    def agent_info(self, row: int, action_wanting: np.ndarray, **extra: Any) -> dict[str, Any]:
        """One agent's ``info``: the entries of the env contract, then the env's own.

        Args:
            row: Row of the agent or copy.
            action_wanting: What each action is worth to the value store now.
            **extra: The env's own entries (numbers or numeric arrays).

        Returns:
            An :class:`~valuegym.envs.protocol.AgentInfo`: the entries of :meth:`values_info`,
            ``action_wanting``, then ``extra``.
        """
        # The contract's ValueInfo, extended in place into an AgentInfo with the env's entries.
        info = cast(dict[str, Any], self.values_info(row))
        info["action_wanting"] = action_wanting
        if extra:
            info.update(extra)
        return info

    def render(
        self,
        render_mode: str | None,
        row: int = 0,
        header: str = "",
        lines: Sequence[str] = (),
        picture: np.ndarray | None = None,
    ) -> str | np.ndarray | None:
        """Render one row in an env's render mode (``None`` renders nothing).

        Args:
            render_mode: One of :data:`~valuegym.envs.rendering.RENDER_MODES` or ``None``.
            row: Row of the agent or copy.
            header: First line of the text rendering.
            lines: Env-specific lines of the text rendering.
            picture: The env's picture for ``"rgb_array"`` and ``"human"``, when it draws more
                than the row's value bars.

        Returns:
            Text for ``"ansi"``, an RGB image for ``"rgb_array"``, ``None`` for ``"human"``
            (the frame is shown, see :class:`~valuegym.envs.rendering.HumanWindow`) and
            ``None``.
        """
        if render_mode not in RENDER_MODES:
            return None
        values = self.values_info(row)
        if render_mode == "ansi":
            return render_ansi(self.value_names, values, header, lines)
        shown = render_rgb(values) if picture is None else picture
        if render_mode == "rgb_array":
            return shown
        if self._window is None:
            self._window = HumanWindow("valuegym", fps=4)
        self._window.show(shown, render_ansi(self.value_names, values, header, lines))
        return None

    def close(self) -> None:
        """Close the ``"human"`` window, if one is open."""
        if self._window is not None:
            self._window.close()
            self._window = None

    check_render_mode = staticmethod(check_render_mode)
