"""The mechanics every valuegym environment shares: a value store as observations, info, rewards.

An env owns one :class:`ValueCore` around one :class:`~valuegym.values.ValueStore` and says only
what its actions do. The rows of the store are whatever the env steps together: one agent
(Orchard, Inbox), one row per agent (Commons, Conversation) or one row per env copy (the native
vector Orchard). Every method works on all rows at once, so the three cases share this code::

    core = ValueCore(ValueStore.from_profile(profile, n_agents=n_rows))
    core.reset()                                     # after super().reset(seed=seed)
    gains = core.step(consumption, load=load, rest=rest, valence=valence)  # (n_rows,) rewards
    core.write_observation(observation[:, : core.observation_size])      # flat float32 part
    info = {"values": core.values_info(row), "action_wanting": ..., "temperature": ...}

The value part of an observation is, per row, ``[stock_squashed (n_values), wanting_squashed
(n_values), mood, stress]``, with ``squash(x) = x / (1 + |x|)``: every entry lies in
``[-1, 1]`` (:meth:`ValueCore.observation_bounds`), so Box bounds are honest. Envs append their
own features after it.

**The agent protocol.** Every valuegym env (single- or multi-agent) puts two entries in each
agent's ``info``, which the heuristic agents in :mod:`valuegym.agents.heuristic` read:

- ``info["action_wanting"]``: float64 array with one entry per discrete action, the wanting
  (effective weight x marginal utility) that the action serves now, 0 for an action that serves
  nothing (an out-of-stock good, replying to an empty inbox);
- ``info["temperature"]``: the agent's decision temperature as a Python float.

``info["values"]`` holds the agent's value state by name (:meth:`ValueCore.values_info`: the
``stocks``, ``wanting``, ``mood``, ``stress``, ``temperature`` and ``most_wanted`` entries of
:meth:`~valuegym.values.AgentSnapshot.to_dict`, built from arrays the step already computed
because a full snapshot costs more than the rest of a step).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numba
import numpy as np

from valuegym.values import ValueProfile, ValueStore

__all__ = [
    "GOOD_DEFAULTS",
    "RENDER_MODES",
    "REST_DEFAULTS",
    "ValueCore",
    "default_profile",
    "resolve_profile",
    "resolve_profiles",
    "squash",
]

#: Value-spec fields of a consumable good: concave log utility whose satiation wears off within
#: a few steps, enjoyed more in a good mood and less under stress.
GOOD_DEFAULTS: Final[Mapping[str, Any]] = {
    "curve": "log",
    "scale": 1.0,
    "satiation_half_life": 4.0,
    "mood_weight": 0.3,
    "stress_weight": -1.0,
}

#: Value-spec fields of rest: a small saturating value whose weight grows steeply with stress.
REST_DEFAULTS: Final[Mapping[str, Any]] = {
    "weight": 0.25,
    "curve": "saturating",
    "scale": 1.0,
    "satiation_half_life": 3.0,
    "stress_weight": 2.5,
}

#: Render modes of every valuegym env.
RENDER_MODES: Final = ("ansi", "rgb_array")

_RENDER_WIDTH: Final = 256
_BAR_HEIGHT: Final = 10


def squash(x: np.ndarray) -> np.ndarray:
    """Map reals into ``(-1, 1)`` monotonically: ``x / (1 + |x|)``.

    Args:
        x: Any float array.

    Returns:
        The squashed array (a new array).
    """
    return x / (1.0 + np.abs(x))


@numba.njit(cache=True)
def _write_value_observation(stock, wanting, mood, stress, out):  # pragma: no cover - compiled
    n_values = stock.shape[1]
    for i in range(stock.shape[0]):
        for k in range(n_values):
            out[i, k] = stock[i, k] / (1.0 + abs(stock[i, k]))
            out[i, n_values + k] = wanting[i, k] / (1.0 + abs(wanting[i, k]))
        out[i, 2 * n_values] = mood[i]
        out[i, 2 * n_values + 1] = stress[i]


def default_profile(
    goods: Sequence[str] | Mapping[str, float],
    *,
    rest: bool = True,
    affect: Mapping[str, float] | None = None,
) -> ValueProfile:
    """A profile of consumable goods (with :data:`GOOD_DEFAULTS`) and, optionally, rest.

    Args:
        goods: Names of the goods, or a mapping of name to base weight (default weight 1).
        rest: Whether to add a ``rest`` value with :data:`REST_DEFAULTS`, last.
        affect: Overrides of :class:`~valuegym.values.AffectParams` fields.

    Returns:
        The validated profile; its values are the goods in order, then ``rest``.

    Raises:
        valuegym.values.ProfileError: When a weight or affect field is invalid.
        ValueError: When there are no goods or a good is called ``rest``.
    """
    weights = dict(goods) if isinstance(goods, Mapping) else dict.fromkeys(goods, 1.0)
    if not weights:
        raise ValueError("goods: need at least one good")
    if rest and "rest" in weights:
        raise ValueError("goods: 'rest' is added by default_profile; name the goods otherwise")
    values: dict[str, Any] = {name: {**GOOD_DEFAULTS, "weight": w} for name, w in weights.items()}
    if rest:
        values["rest"] = dict(REST_DEFAULTS)
    return ValueProfile.from_mapping({"values": values, "affect": dict(affect or {})})


def resolve_profile(
    profile: ValueProfile | Mapping[str, Any] | None,
    default: ValueProfile,
    *,
    required: Sequence[str] = (),
    where: str = "profile",
) -> ValueProfile:
    """The profile an env argument names: a profile, its plain-data mapping, or the default.

    Args:
        profile: The env's ``profile`` argument.
        default: Used when ``profile`` is ``None``.
        required: Value names the env needs.
        where: Name of the argument, for error messages.

    Returns:
        The profile.

    Raises:
        ValueError: When the profile is of the wrong type, invalid, or misses a required value.
    """
    if profile is None:
        return default
    if isinstance(profile, Mapping):
        try:
            profile = ValueProfile.from_mapping(profile)
        except ValueError as error:
            raise ValueError(f"{where}: invalid value profile:\n{error}") from error
    if not isinstance(profile, ValueProfile):
        raise ValueError(
            f"{where}: expected a ValueProfile or a mapping (got {type(profile).__name__})"
        )
    missing = [name for name in required if name not in profile.value_names]
    if missing:
        raise ValueError(f"{where}: missing values {missing} (has {list(profile.value_names)})")
    return profile


def resolve_profiles(
    profile: ValueProfile | Mapping[str, Any] | Sequence[ValueProfile | Mapping[str, Any]] | None,
    n_rows: int,
    default: ValueProfile,
    *,
    required: Sequence[str] = (),
    where: str = "profile",
) -> tuple[ValueProfile, ...]:
    """One profile per row: one profile shared by every row, or a sequence of one per row.

    Multi-agent envs take their ``profile`` argument through this, so a population can mix
    profiles; each entry is resolved by :func:`resolve_profile`.

    Args:
        profile: A profile, its mapping, ``None`` (the default), or a sequence of those.
        n_rows: Number of rows (agents).
        default: Used for ``None`` entries.
        required: Value names the env needs.
        where: Name of the argument, for error messages.

    Returns:
        ``n_rows`` profiles.

    Raises:
        ValueError: On a sequence of the wrong length or an invalid entry (named by index).
    """
    if profile is None or isinstance(profile, ValueProfile | Mapping):
        return (resolve_profile(profile, default, required=required, where=where),) * n_rows
    if isinstance(profile, str) or not isinstance(profile, Sequence):
        raise ValueError(
            f"{where}: expected a profile, a mapping or a sequence of them "
            f"(got {type(profile).__name__})"
        )
    if len(profile) != n_rows:
        raise ValueError(f"{where}: got {len(profile)} profiles for {n_rows} agents")
    return tuple(
        resolve_profile(entry, default, required=required, where=f"{where}[{index}]")
        for index, entry in enumerate(profile)
    )


class ValueCore:
    """A value store as an env sees it: observations, rewards, info and pictures of its rows.

    After :meth:`reset` and :meth:`step` the current wanting and temperature of every row are
    cached in :attr:`wanting` and :attr:`temperature` (the store computes them on request), so an
    env reads them as often as it likes at no cost.

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
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._bind_views()

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
    ) -> np.ndarray:
        """Step every row's values; the arguments are those of :meth:`ValueStore.step`.

        Returns:
            ``(n_rows,)`` utility gains: the rewards.
        """
        outcome = self.store.step(
            consumption, load=load, rest=rest, valence=valence, with_wanting=True
        )
        assert outcome.wanting is not None
        assert outcome.temperature is not None
        self.wanting, self.temperature = outcome.wanting, outcome.temperature
        return outcome.utility_gain

    def refresh(self) -> None:
        """Recompute the cached wanting and temperature (after changing the store directly)."""
        self.wanting = self.store.wanting()
        self.temperature = self.store.temperature()

    def write_observation(self, out: np.ndarray) -> None:
        """Write every row's value observation.

        Args:
            out: ``(n_rows, observation_size)`` float32 array (a view into the full observation).
        """
        _write_value_observation(self.stock, self.wanting, self.mood, self.stress, out)

    def values_info(self, row: int = 0) -> dict[str, Any]:
        """One row's value state as plain data, by value name (the ``info["values"]`` entry).

        Args:
            row: Row of the agent or copy.

        Returns:
            ``stocks`` and ``wanting`` (name to float), ``mood``, ``stress``, ``temperature``
            (floats) and ``most_wanted`` (a value name), equal to those entries of
            ``store.snapshot(row).to_dict()``.
        """
        names, wanting = self.value_names, self.wanting[row].tolist()
        return {
            "stocks": dict(zip(names, self.stock[row].tolist())),  # noqa: B905 - same length
            "wanting": dict(zip(names, wanting)),  # noqa: B905 - same length
            "mood": self.mood.item(row),
            "stress": self.stress.item(row),
            "temperature": self.temperature.item(row),
            "most_wanted": names[wanting.index(max(wanting))],
        }

    def agent_info(self, row: int, action_wanting: np.ndarray, **extra: Any) -> dict[str, Any]:
        """One agent's ``info``: the entries of the env contract, then the env's own.

        Args:
            row: Row of the agent or copy.
            action_wanting: What each action is worth to the value store now.
            **extra: The env's own entries.

        Returns:
            An :class:`~valuegym.envs.protocol.AgentInfo`: ``values``, ``action_wanting``,
            ``temperature``, then ``extra``.
        """
        return {
            "values": self.values_info(row),
            "action_wanting": action_wanting,
            "temperature": self.temperature.item(row),
            **extra,
        }

    def render(
        self, render_mode: str | None, row: int = 0, header: str = "", lines: Sequence[str] = ()
    ) -> str | np.ndarray | None:
        """Render one row in an env's render mode (``None`` renders nothing).

        Args:
            render_mode: One of :data:`RENDER_MODES` or ``None``.
            row: Row of the agent or copy.
            header: First line of the text rendering.
            lines: Env-specific lines of the text rendering.

        Returns:
            Text for ``"ansi"``, an RGB image for ``"rgb_array"``, ``None`` for ``None``.
        """
        if render_mode == "ansi":
            return self.render_ansi(row, header, lines)
        if render_mode == "rgb_array":
            return self.render_rgb(row)
        return None

    @staticmethod
    def check_render_mode(render_mode: str | None) -> None:
        """Raise a ValueError unless ``render_mode`` is ``None`` or one of :data:`RENDER_MODES`."""
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(
                f"render_mode: expected one of {RENDER_MODES} or None (got {render_mode!r})"
            )

    def render_ansi(self, row: int = 0, header: str = "", lines: Sequence[str] = ()) -> str:
        """One row's value state as text, one line per value, then mood and stress.

        Args:
            row: Row of the agent or copy.
            header: First line (e.g. the step and last action).
            lines: Env-specific lines appended at the end.

        Returns:
            The text, newline-terminated.
        """
        width = max(len(name) for name in self.value_names)
        stock, wanting = self.stock[row], self.wanting[row]
        out = [header] if header else []
        for k, name in enumerate(self.value_names):
            bar = "#" * round(10 * float(squash(wanting[k])))
            out.append(f"{name:<{width}}  stock {stock[k]:6.2f}  wanting {wanting[k]:6.3f}  {bar}")
        out.append(
            f"mood {self.mood[row]:+.2f}  stress {self.stress[row]:.2f}  "
            f"temperature {self.temperature[row]:.2f}"
        )
        out.extend(lines)
        return "\n".join(out) + "\n"

    def render_rgb(self, row: int = 0) -> np.ndarray:
        """One row's value state as a picture of bars.

        Per value a stock bar (blue) over a wanting bar (orange), then mood (green right of the
        centre line when positive, red left of it when negative) and stress (purple).

        Args:
            row: Row of the agent or copy.

        Returns:
            ``(height, 256, 3)`` uint8 image on white.
        """
        n_bars = 2 * self.n_values + 2
        image = np.full((n_bars * (_BAR_HEIGHT + 2) + 2, _RENDER_WIDTH, 3), 255, dtype=np.uint8)
        stock, wanting = self.stock[row], self.wanting[row]
        fractions = np.empty(n_bars)
        fractions[0 : 2 * self.n_values : 2] = squash(stock)
        fractions[1 : 2 * self.n_values : 2] = squash(np.abs(wanting))
        colours = [(31, 119, 180), (255, 127, 14)] * self.n_values
        for bar, (fraction, colour) in enumerate(zip(fractions[:-2], colours, strict=True)):
            top = 2 + bar * (_BAR_HEIGHT + 2)
            image[top : top + _BAR_HEIGHT, : int(fraction * _RENDER_WIDTH)] = colour
        mood, centre = float(self.mood[row]), _RENDER_WIDTH // 2
        top = 2 + 2 * self.n_values * (_BAR_HEIGHT + 2)
        end = centre + int(mood * centre)
        image[top : top + _BAR_HEIGHT, min(centre, end) : max(centre, end) + 1] = (
            (44, 160, 44) if mood >= 0 else (214, 39, 40)
        )
        image[top : top + _BAR_HEIGHT, centre] = 0
        top += _BAR_HEIGHT + 2
        image[top : top + _BAR_HEIGHT, : int(float(self.stress[row]) * _RENDER_WIDTH)] = (
            148,
            103,
            189,
        )
        return image
