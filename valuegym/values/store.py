"""The value store: a population's stocks, expectations, mood and stress in arrays.

State is held as arrays shaped ``(n_agents, n_values)`` (stocks, expected utilities) and
``(n_agents,)`` (mood, stress); one agent or a million use the same code. Derived quantities
(effective weights, marginal utilities, wanting, temperature) are computed on request, never
stored. The dynamics are documented in :mod:`valuegym.values.dynamics`.

Example:
    >>> from valuegym.values import ValueProfile, ValueStore
    >>> profile = ValueProfile.from_mapping({"values": {"apple": {}, "pear": {}}})
    >>> store = ValueStore.from_profile(profile, n_agents=2)
    >>> outcome = store.step([[1.0, 0.0], [0.0, 0.0]])
    >>> round(float(outcome.utility_gain[0]), 4)  # log(1 + 1)
    0.6931
    >>> store.snapshot(0).most_wanted
    'pear'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from valuegym.values import kernels
from valuegym.values import params as columns
from valuegym.values.params import ValueParams
from valuegym.values.profile import ValueProfile

__all__ = ["AgentSnapshot", "KernelArrays", "StepOutcome", "ValueStore"]


class StepOutcome(NamedTuple):
    """What one store step gave each agent.

    Attributes:
        utility_gain: ``(n_agents,)`` utility gained from consumption (the reward).
        surprise: ``(n_agents,)`` summed signed prediction error of the consumed values (not
            the ``surprise`` input of :meth:`ValueStore.step`).
        wanting: ``(n_agents, n_values)`` wanting after the step, when asked for
            (``step(..., with_wanting=True)``), else ``None``.
        temperature: ``(n_agents,)`` temperature after the step, when asked for, else ``None``.
    """

    utility_gain: np.ndarray
    surprise: np.ndarray
    wanting: np.ndarray | None = None
    temperature: np.ndarray | None = None


class KernelArrays(NamedTuple):
    """A store's arrays in the order the compiled kernels take them.

    See :meth:`ValueStore.kernel_arrays`.
    """

    stock: np.ndarray
    expected: np.ndarray
    mood: np.ndarray
    stress: np.ndarray
    value_table: np.ndarray
    agent_table: np.ndarray


@dataclass(frozen=True)
class AgentSnapshot:
    """A read-only view of one agent's value state, by value name.

    Attributes:
        agent: Row of the agent in its store.
        value_names: Names of the values, in order.
        stocks: Stock (satiation level) per value.
        wanting: Effective weight x marginal utility per value: what it wants now.
        effective_weight: Weight per value after mood and stress modulation.
        expected: Expected utility per value.
        mood: Valence in [-1, 1].
        stress: Load/arousal in [0, 1].
        temperature: Decision and sampling temperature.
    """

    agent: int
    value_names: tuple[str, ...]
    stocks: Mapping[str, float]
    wanting: Mapping[str, float]
    effective_weight: Mapping[str, float]
    expected: Mapping[str, float]
    mood: float
    stress: float
    temperature: float

    @property
    def most_wanted(self) -> str:
        """The value with the highest wanting (the first one on ties)."""
        return max(self.value_names, key=lambda name: self.wanting[name])

    @classmethod
    def from_info(
        cls, info: Mapping[str, Any], agent: int, value_names: Sequence[str]
    ) -> AgentSnapshot:
        """The value state an env reports in an agent's ``info``, read back by value name.

        Envs report ``stocks`` and ``wanting`` by value index, ``mood``, ``stress``,
        ``temperature`` and ``most_wanted`` (see :class:`valuegym.envs.protocol.ValueInfo`);
        a :meth:`to_dict` result (by value name) is read as well. Effective weights and
        expectations are empty when the mapping leaves them out.

        Args:
            info: The agent's ``info`` (or a :meth:`to_dict` result).
            agent: The agent's row in its population.
            value_names: The env's ``value_names``: the name of each value index.

        Returns:
            The snapshot.

        Raises:
            ValueError: If an entry the snapshot needs is missing or has the wrong length.
        """
        missing = [
            k for k in ("stocks", "wanting", "mood", "stress", "temperature") if k not in info
        ]
        if missing:
            raise ValueError(
                f"info: missing {missing} (got keys {sorted(info)}); see "
                "valuegym.envs.protocol.ValueInfo"
            )
        names = tuple(value_names)

        def by_name(entry: str) -> dict[str, float]:
            value = info.get(entry, {})
            if isinstance(value, Mapping):
                return {name: float(value[name]) for name in names if name in value}
            numbers = np.asarray(value, dtype=np.float64).tolist()
            if len(numbers) != len(names):
                raise ValueError(
                    f"info[{entry!r}]: {len(numbers)} numbers for {len(names)} values {names}"
                )
            return dict(zip(names, numbers, strict=True))

        return cls(
            agent=agent,
            value_names=names,
            stocks=by_name("stocks"),
            wanting=by_name("wanting"),
            effective_weight=by_name("effective_weight") if "effective_weight" in info else {},
            expected=by_name("expected") if "expected" in info else {},
            mood=float(info["mood"]),
            stress=float(info["stress"]),
            temperature=float(info["temperature"]),
        )

    def to_record(self) -> dict[str, Any]:
        """Flat columns for the per-step and per-utterance records.

        Returns:
            ``mood, stress, temperature, most_wanted``, then ``stock_<value>`` and
            ``wanting_<value>`` per value.
        """
        columns: dict[str, Any] = {
            "mood": self.mood,
            "stress": self.stress,
            "temperature": self.temperature,
            "most_wanted": self.most_wanted,
        }
        columns.update({f"stock_{name}": float(v) for name, v in self.stocks.items()})
        columns.update({f"wanting_{name}": float(v) for name, v in self.wanting.items()})
        return columns

    @classmethod
    def from_record(cls, record: Mapping[str, Any], agent: int) -> AgentSnapshot:
        """The snapshot a record row holds (the inverse of :meth:`to_record`).

        Args:
            record: A row with ``mood, stress, temperature, stock_<value>..., wanting_<value>...``.
            agent: The agent's row in its population.

        Returns:
            The snapshot (effective weights and expectations empty).
        """
        names = tuple(key.removeprefix("stock_") for key in record if key.startswith("stock_"))
        return cls(
            agent=agent,
            value_names=names,
            stocks={name: float(record[f"stock_{name}"]) for name in names},
            wanting={name: float(record[f"wanting_{name}"]) for name in names},
            effective_weight={},
            expected={},
            mood=float(record["mood"]),
            stress=float(record["stress"]),
            temperature=float(record["temperature"]),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able data by value name: the readable form of an env's ``info``."""
        return {
            "stocks": dict(self.stocks),
            "wanting": dict(self.wanting),
            "effective_weight": dict(self.effective_weight),
            "expected": dict(self.expected),
            "mood": self.mood,
            "stress": self.stress,
            "temperature": self.temperature,
            "most_wanted": self.most_wanted,
        }


class ValueStore:
    """The values, satiation, mood and stress of a population of agents.

    Args:
        params: The packed profiles, one row per agent.
    """

    def __init__(self, params: ValueParams):
        self.params = params
        shape = (params.n_agents, params.n_values)
        self._stock = np.zeros(shape)
        self._expected = np.zeros(shape)
        self._mood = np.zeros(params.n_agents)
        self._stress = np.zeros(params.n_agents)
        # Never written: stands in for an input left out (writable like callers' arrays, so the
        # kernel compiles one specialisation for both).
        self._zeros = np.zeros(params.n_agents)
        # The step's effective weights and marginal utilities are computed beside the wanting
        # but not returned: scratch, not allocated per step.
        self._scratch = (np.empty(shape), np.empty(shape))
        self.reset()

    @classmethod
    def from_profiles(cls, profiles: Sequence[ValueProfile]) -> ValueStore:
        """A store with one row per profile (all profiles share value names)."""
        return cls(ValueParams.from_profiles(profiles))

    @classmethod
    def from_profile(cls, profile: ValueProfile, n_agents: int = 1) -> ValueStore:
        """A store of ``n_agents`` agents sharing one profile."""
        if n_agents < 1:
            raise ValueError(f"n_agents: must be >= 1 (got {n_agents})")
        return cls(ValueParams.from_profiles([profile] * n_agents))

    @property
    def value_names(self) -> tuple[str, ...]:
        """Names of the values (the columns)."""
        return self.params.value_names

    @property
    def n_agents(self) -> int:
        """Number of agents (rows)."""
        return self.params.n_agents

    @property
    def n_values(self) -> int:
        """Number of values (columns)."""
        return self.params.n_values

    @property
    def stock(self) -> np.ndarray:
        """Read-only view of the stocks, ``(n_agents, n_values)``."""
        return _read_only(self._stock)

    @property
    def expected(self) -> np.ndarray:
        """Read-only view of the expected utilities, ``(n_agents, n_values)``."""
        return _read_only(self._expected)

    @property
    def mood(self) -> np.ndarray:
        """Read-only view of the moods, ``(n_agents,)``, in [-1, 1]."""
        return _read_only(self._mood)

    @property
    def stress(self) -> np.ndarray:
        """Read-only view of the stresses, ``(n_agents,)``, in [0, 1]."""
        return _read_only(self._stress)

    def reset(self, agents: ArrayLike | None = None) -> None:
        """Return agents to their initial state.

        Stocks go to 0, expectations to their initial values, mood and stress to their
        baselines.

        Args:
            agents: Indices or a boolean mask of the agents to reset; all when ``None``.
        """
        rows = slice(None) if agents is None else np.asarray(agents)
        value_table, agent_table = self.params.value_table, self.params.agent_table
        self._stock[rows] = 0.0
        self._expected[rows] = value_table[rows, :, columns.INITIAL_EXPECTATION]
        self._mood[rows] = agent_table[rows, columns.MOOD_BASELINE]
        self._stress[rows] = agent_table[rows, columns.STRESS_BASELINE]

    def step(
        self,
        consumption: ArrayLike,
        *,
        load: ArrayLike | None = None,
        rest: ArrayLike | None = None,
        valence: ArrayLike | None = None,
        surprise: ArrayLike | None = None,
        dt: float = 1.0,
        with_wanting: bool = False,
        wanting_out: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> StepOutcome:
        """Advance every agent by one step.

        Args:
            consumption: ``(n_agents, n_values)`` amounts consumed, ``>= 0``.
            load: ``(n_agents,)`` demands on each agent (requests, repetition), ``>= 0``;
                raises stress.
            rest: ``(n_agents,)`` rest taken, ``>= 0``; lowers stress.
            valence: ``(n_agents,)`` signed social events (praise > 0, sanction < 0); moves mood.
            surprise: ``(n_agents,)`` signed, dimensionless, finite surprise of an event the
                caller appraised (already scaled, e.g. from nats), ``x``: a message more
                surprising than expected (``x > 0``) moves mood toward
                ``tanh((sum_k delta_k + valence - x) / surprise_scale)`` and ``|x|`` raises the
                learning rate of what is consumed in the same step,
                ``min(1, learning_rate * (1 + surprise_gate * (|delta_k| + |x|)))``. Not the
                outcome's ``surprise``, which stays the prediction error of consumption.
            dt: Length of the step, ``> 0``; satiation and relaxation scale with it.
            with_wanting: Also return the wanting and temperature after the step, computed in
                the same compiled pass (what an env needs for its next observation).
            wanting_out: ``(n_agents, n_values)`` and ``(n_agents,)`` float64 arrays to write
                the wanting and temperature into (and return) instead of new ones; implies
                ``with_wanting``.

        Returns:
            The utility gain (reward) and surprise of each agent, and with ``with_wanting``
            the new wanting and temperature.

        Raises:
            ValueError: On a wrong shape, a negative amount, load or rest, a non-finite
                surprise, or ``dt <= 0``.
        """
        n_agents = self._stock.shape[0]
        consumption = self._array(consumption, self._stock.shape, "consumption")
        load = self._zeros if load is None else self._array(load, (n_agents,), "load")
        rest = self._zeros if rest is None else self._array(rest, (n_agents,), "rest")
        valence = self._zeros if valence is None else self._array(valence, (n_agents,), "valence")
        if surprise is None:
            surprise = self._zeros
        else:
            surprise = self._array(surprise, (n_agents,), "surprise")
            finite = np.isfinite(surprise)
            if not finite.all():
                agent = int(np.argmin(finite))
                raise ValueError(f"surprise: must be finite (agent {agent}: {surprise[agent]})")
        if not dt > 0:
            raise ValueError(f"dt: must be > 0 (got {dt})")
        gain = np.empty(n_agents)
        prediction_error = np.empty(n_agents)
        derived = None
        if wanting_out is not None:
            wanting, temperature = wanting_out
            _check_out(wanting, self._stock.shape, "wanting_out[0]")
            _check_out(temperature, (n_agents,), "wanting_out[1]")
            derived = (*self._scratch, wanting, temperature)
        elif with_wanting:
            derived = (*self._scratch, np.empty(self._stock.shape), np.empty(n_agents))
        kernels.step(
            self._stock,
            self._expected,
            self._mood,
            self._stress,
            consumption,
            load,
            rest,
            valence,
            surprise,
            float(dt),
            self.params.value_table,
            self.params.agent_table,
            gain,
            prediction_error,
            derived,
        )
        if derived is None:
            return StepOutcome(gain, prediction_error)
        return StepOutcome(gain, prediction_error, derived[2], derived[3])

    def kernel_arrays(self) -> KernelArrays:
        """The store's own arrays, for compiled code that steps it.

        Env code that steps the store with :func:`valuegym.values.kernels.step_all` inside its
        own compiled step passes these. The state arrays are the store's, writable: only that
        kernel should write them.
        """
        return KernelArrays(
            self._stock,
            self._expected,
            self._mood,
            self._stress,
            self.params.value_table,
            self.params.agent_table,
        )

    def effective_weight(self) -> np.ndarray:
        """Weights after mood and stress modulation, ``(n_agents, n_values)``."""
        return self._derive()[0]

    def marginal_utility(self) -> np.ndarray:
        """Marginal utility at the current stocks, ``(n_agents, n_values)``."""
        return self._derive()[1]

    def wanting(self) -> np.ndarray:
        """Effective weight x marginal utility, ``(n_agents, n_values)``: what each agent wants."""
        return self._derive()[2]

    def temperature(self) -> np.ndarray:
        """Decision temperature ``T0 * exp(a_stress * stress + a_mood * mood)``, ``(n_agents,)``."""
        return kernels.temperature(self._mood, self._stress, self.params.agent_table)

    def snapshot(self, agent: int) -> AgentSnapshot:
        """A read-only view of one agent's value state, by value name.

        Args:
            agent: Row of the agent.

        Returns:
            The agent's snapshot.
        """
        if not -self.n_agents <= agent < self.n_agents:
            raise IndexError(f"agent: {agent} out of range for {self.n_agents} agents")
        row = slice(agent, agent + 1 if agent != -1 else None)
        weight, _, wanting = kernels.derive(
            self._stock[row],
            self._mood[row],
            self._stress[row],
            self.params.value_table[row],
            self.params.agent_table[row],
        )
        names = self.value_names

        def by_name(values: np.ndarray) -> Mapping[str, float]:
            return MappingProxyType(dict(zip(names, map(float, values), strict=True)))

        return AgentSnapshot(
            agent=agent % self.n_agents,
            value_names=names,
            stocks=by_name(self._stock[agent]),
            wanting=by_name(wanting[0]),
            effective_weight=by_name(weight[0]),
            expected=by_name(self._expected[agent]),
            mood=float(self._mood[agent]),
            stress=float(self._stress[agent]),
            temperature=float(self.temperature()[agent]),
        )

    def get_state(self) -> dict[str, Any]:
        """The whole store as plain data (profiles and state); see :meth:`from_state`."""
        return {
            "profiles": [profile.to_mapping() for profile in self.params.profiles],
            "stock": self._stock.tolist(),
            "expected": self._expected.tolist(),
            "mood": self._mood.tolist(),
            "stress": self._stress.tolist(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ValueStore:
        """Rebuild a store from :meth:`get_state`'s plain data."""
        store = cls.from_profiles([ValueProfile.from_mapping(m) for m in state["profiles"]])
        shape = (store.n_agents, store.n_values)
        store._stock[:] = store._array(state["stock"], shape, "stock")
        store._expected[:] = store._array(state["expected"], shape, "expected")
        store._mood[:] = store._array(state["mood"], (store.n_agents,), "mood")
        store._stress[:] = store._array(state["stress"], (store.n_agents,), "stress")
        return store

    def _derive(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return kernels.derive(
            self._stock, self._mood, self._stress, self.params.value_table, self.params.agent_table
        )

    @staticmethod
    def _array(values: ArrayLike, shape: tuple[int, ...], name: str) -> np.ndarray:
        if type(values) is np.ndarray and values.dtype == np.float64 and values.shape == shape:
            return values  # the per-step case: spares np.asarray's conversion machinery
        array = np.asarray(values, dtype=np.float64)
        if array.shape != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {array.shape}")
        return array


def _check_out(array: np.ndarray, shape: tuple[int, ...], name: str) -> None:
    if not (
        isinstance(array, np.ndarray)
        and array.dtype == np.float64
        and array.shape == shape
        and array.flags.writeable
    ):
        raise ValueError(f"{name}: expected a writable float64 array of shape {shape}")


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view
