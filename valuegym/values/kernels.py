"""Compiled kernels of the value store: one step of the dynamics, and the derived quantities.

The maths of one agent lives in the per-agent functions (``_step_agent``, ``_derive_agent``);
the row loops call them serially or, for large populations, in parallel over agents. Curves
come from :mod:`valuegym.values.curves`, so each formula exists once.

One step for agent ``i`` (DESIGN.md, "The value model"), in this order:

1. modulation from the mood and stress at the start of the step:
   ``w_eff = w * exp(mood_weight * mood + stress_weight * stress)``, curvature
   ``eta * (1 + stress_curvature * stress)``;
2. consumption: the gain of consuming ``a`` of ``k`` is ``w_eff * (u(s + a) - u(s))``, or the
   reduction of the homeostatic drive; the stock grows by ``a``;
3. surprise ``delta_k = gain_k - expected_k`` for every consumed value, and learning
   ``expected_k += min(1, lr * (1 + kappa |delta_k|)) * delta_k``;
4. mood moves toward ``tanh((sum_k delta_k + valence) / scale)`` when something happened, then
   relaxes toward its baseline; stress rises with load (plus the drive's share), falls with
   rest, relaxes toward its baseline; both are kept in range;
5. satiation wears off: ``s <- s * 0.5 ** (dt / half_life)``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from valuegym.values import params as p
from valuegym.values.curves import (
    HOMEOSTATIC,
    curve_marginal_utility,
    curve_utility,
    drive_marginal_utility,
    drive_term,
)

__all__ = ["PARALLEL_THRESHOLD", "derive", "step", "temperature"]

#: Populations at least this large are stepped with one thread per core.
PARALLEL_THRESHOLD = 20_000


@numba.njit(cache=True, inline="always")
def _retained(retention: float, dt: float) -> float:
    return retention if dt == 1.0 else retention**dt


@numba.njit(cache=True, inline="always")
def _effective_weight(row: np.ndarray, mood: float, stress: float) -> float:
    mood_weight, stress_weight = row[p.MOOD_WEIGHT], row[p.STRESS_WEIGHT]
    if mood_weight == 0.0 and stress_weight == 0.0:
        return row[p.WEIGHT]
    return row[p.WEIGHT] * math.exp(mood_weight * mood + stress_weight * stress)


@numba.njit(cache=True, inline="always")
def _curvature(row: np.ndarray, stress: float) -> float:
    return row[p.ETA] * (1.0 + row[p.STRESS_CURVATURE] * stress)


@numba.njit(cache=True)
def _drive_sum(
    stock: np.ndarray, table: np.ndarray, i: int, mood: float, stress: float, power: float
) -> float:
    total = 0.0
    for k in range(stock.shape[1]):
        row = table[i, k]
        if row[p.FAMILY] == HOMEOSTATIC:
            total += drive_term(
                _effective_weight(row, mood, stress), row[p.SETPOINT], stock[i, k], power
            )
    return total


@numba.njit(cache=True)
def _step_agent(
    i,
    stock,
    expected,
    mood,
    stress,
    consumption,
    load,
    rest,
    valence,
    dt,
    table,
    agent,
    gain,
    surprise,
):  # pragma: no cover - compiled
    a = agent[i]
    mood_i, stress_i = mood[i], stress[i]
    power, root = a[p.DRIVE_POWER], a[p.DRIVE_ROOT]
    total_gain = 0.0
    total_surprise = 0.0
    consumed = False
    has_drive = False
    for k in range(stock.shape[1]):
        row = table[i, k]
        family = int(row[p.FAMILY])
        if family == HOMEOSTATIC:
            has_drive = True
        amount = consumption[i, k]
        if amount == 0.0:
            continue
        if not amount > 0.0:
            raise ValueError("consumption: amounts must be >= 0 and finite")
        consumed = True
        before = stock[i, k]
        if family == HOMEOSTATIC:
            drive_before = _drive_sum(stock, table, i, mood_i, stress_i, power) ** (1.0 / root)
            stock[i, k] = before + amount
            drive_after = _drive_sum(stock, table, i, mood_i, stress_i, power) ** (1.0 / root)
            value_gain = drive_before - drive_after
        else:
            curvature = _curvature(row, stress_i)
            scale = row[p.SCALE]
            value_gain = _effective_weight(row, mood_i, stress_i) * (
                curve_utility(family, scale, curvature, before + amount)
                - curve_utility(family, scale, curvature, before)
            )
            stock[i, k] = before + amount
        delta = value_gain - expected[i, k]
        rate = min(1.0, a[p.LEARNING_RATE] * (1.0 + a[p.SURPRISE_GATE] * abs(delta)))
        expected[i, k] += rate * delta
        total_gain += value_gain
        total_surprise += delta
    gain[i] = total_gain
    surprise[i] = total_surprise

    if consumed or valence[i] != 0.0:
        target = math.tanh((total_surprise + valence[i]) / a[p.SURPRISE_SCALE])
        mood_i += a[p.MOOD_RATE] * (target - mood_i)
    baseline = a[p.MOOD_BASELINE]
    mood_i = baseline + (mood_i - baseline) * _retained(a[p.MOOD_RETENTION], dt)
    mood[i] = min(1.0, max(-1.0, mood_i))

    if not (load[i] >= 0.0 and rest[i] >= 0.0):
        raise ValueError("load and rest: must be >= 0 and finite")
    total_load = load[i]
    if has_drive and a[p.DRIVE_LOAD] > 0.0:
        total_load += a[p.DRIVE_LOAD] * _drive_sum(stock, table, i, mood[i], stress_i, power) ** (
            1.0 / root
        )
    if total_load > 0.0:
        stress_i -= (1.0 - stress_i) * math.expm1(-a[p.STRESS_SENSITIVITY] * total_load)
    if rest[i] > 0.0:
        stress_i += stress_i * math.expm1(-a[p.REST_RECOVERY] * rest[i])
    baseline = a[p.STRESS_BASELINE]
    stress_i = baseline + (stress_i - baseline) * _retained(a[p.STRESS_RETENTION], dt)
    stress[i] = min(1.0, max(0.0, stress_i))

    for k in range(stock.shape[1]):
        stock[i, k] *= _retained(table[i, k, p.RETENTION], dt)


@numba.njit(cache=True)
def _derive_agent(
    i, stock, mood, stress, table, agent, weight, marginal, wanting
):  # pragma: no cover - compiled
    mood_i, stress_i = mood[i], stress[i]
    power, root = agent[i, p.DRIVE_POWER], agent[i, p.DRIVE_ROOT]
    drive_total = _drive_sum(stock, table, i, mood_i, stress_i, power)
    for k in range(stock.shape[1]):
        row = table[i, k]
        family = int(row[p.FAMILY])
        w = _effective_weight(row, mood_i, stress_i)
        if family == HOMEOSTATIC:
            m = drive_marginal_utility(row[p.SETPOINT] - stock[i, k], drive_total, power, root)
        else:
            m = curve_marginal_utility(family, row[p.SCALE], _curvature(row, stress_i), stock[i, k])
        weight[i, k] = w
        marginal[i, k] = m
        wanting[i, k] = w * m


@numba.njit(cache=True)
def _derive_serial(
    stock, mood, stress, table, agent, weight, marginal, wanting
):  # pragma: no cover - compiled
    for i in range(stock.shape[0]):
        _derive_agent(i, stock, mood, stress, table, agent, weight, marginal, wanting)


@numba.njit(cache=True, inline="always")
def _temperature_of(agent: np.ndarray, i: int, mood: float, stress: float) -> float:
    return agent[i, p.BASE_TEMPERATURE] * math.exp(
        agent[i, p.TEMPERATURE_STRESS] * stress + agent[i, p.TEMPERATURE_MOOD] * mood
    )


# Two kernels with one loop each, not one function compiled twice: numba's on-disk cache keys
# on the function, not on ``parallel=``, so a shared body would load the serial build for both.
@numba.njit(cache=True)
def _step_serial(
    stock,
    expected,
    mood,
    stress,
    consumption,
    load,
    rest,
    valence,
    dt,
    table,
    agent,
    gain,
    surprise,
    derive,
    weight,
    marginal,
    wanting,
    temperature,
):  # pragma: no cover - compiled
    for i in range(stock.shape[0]):
        _step_and_derive(
            i,
            stock,
            expected,
            mood,
            stress,
            consumption,
            load,
            rest,
            valence,
            dt,
            table,
            agent,
            gain,
            surprise,
            derive,
            weight,
            marginal,
            wanting,
            temperature,
        )


@numba.njit(cache=True, parallel=True)
def _step_parallel(
    stock,
    expected,
    mood,
    stress,
    consumption,
    load,
    rest,
    valence,
    dt,
    table,
    agent,
    gain,
    surprise,
    derive,
    weight,
    marginal,
    wanting,
    temperature,
):  # pragma: no cover - compiled
    for i in numba.prange(stock.shape[0]):
        _step_and_derive(
            i,
            stock,
            expected,
            mood,
            stress,
            consumption,
            load,
            rest,
            valence,
            dt,
            table,
            agent,
            gain,
            surprise,
            derive,
            weight,
            marginal,
            wanting,
            temperature,
        )


@numba.njit(cache=True, inline="always")
def _step_and_derive(
    i,
    stock,
    expected,
    mood,
    stress,
    consumption,
    load,
    rest,
    valence,
    dt,
    table,
    agent,
    gain,
    surprise,
    derive,
    weight,
    marginal,
    wanting,
    temperature,
):  # pragma: no cover - compiled
    _step_agent(
        i,
        stock,
        expected,
        mood,
        stress,
        consumption,
        load,
        rest,
        valence,
        dt,
        table,
        agent,
        gain,
        surprise,
    )
    if derive:
        _derive_agent(i, stock, mood, stress, table, agent, weight, marginal, wanting)
        temperature[i] = _temperature_of(agent, i, mood[i], stress[i])


_NO_ROWS = np.empty((0, 0))
_NO_AGENTS = np.empty(0)


def step(
    stock: np.ndarray,
    expected: np.ndarray,
    mood: np.ndarray,
    stress: np.ndarray,
    consumption: np.ndarray,
    load: np.ndarray,
    rest: np.ndarray,
    valence: np.ndarray,
    dt: float,
    table: np.ndarray,
    agent: np.ndarray,
    gain: np.ndarray,
    surprise: np.ndarray,
    derived: tuple[np.ndarray, ...] | None = None,
) -> None:
    """Advance every agent's state by one step in place; write gains and surprises.

    Args:
        stock: ``(n_agents, n_values)`` stocks, updated in place.
        expected: ``(n_agents, n_values)`` expected utilities, updated in place.
        mood: ``(n_agents,)`` moods, updated in place.
        stress: ``(n_agents,)`` stresses, updated in place.
        consumption: ``(n_agents, n_values)`` amounts consumed, ``>= 0``.
        load: ``(n_agents,)`` demands on each agent, ``>= 0``.
        rest: ``(n_agents,)`` rest taken, ``>= 0``.
        valence: ``(n_agents,)`` signed social events.
        dt: Length of the step.
        table: ``ValueParams.value_table``.
        agent: ``ValueParams.agent_table``.
        gain: ``(n_agents,)`` output: the utility gained.
        surprise: ``(n_agents,)`` output: the summed prediction error.
        derived: Optional outputs ``(weight, marginal, wanting, temperature)`` filled in the
            same pass with the quantities of :func:`derive` and :func:`temperature` after the
            step (one compiled call instead of three, for envs that need them every step).
    """
    kernel = _step_parallel if stock.shape[0] >= PARALLEL_THRESHOLD else _step_serial
    if derived is None:
        derived = (_NO_ROWS, _NO_ROWS, _NO_ROWS, _NO_AGENTS)
        derive = False
    else:
        derive = True
    kernel(
        stock,
        expected,
        mood,
        stress,
        consumption,
        load,
        rest,
        valence,
        dt,
        table,
        agent,
        gain,
        surprise,
        derive,
        *derived,
    )


def derive(
    stock: np.ndarray, mood: np.ndarray, stress: np.ndarray, table: np.ndarray, agent: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Effective weights, marginal utilities and wantings at the current state.

    For a homeostatic value the marginal utility is ``-dD/dh_k`` per unit of weight.

    Returns:
        Three ``(n_agents, n_values)`` arrays: ``weight``, ``marginal``, ``wanting``
        (``wanting = weight * marginal``).
    """
    weight = np.empty_like(stock)
    marginal = np.empty_like(stock)
    wanting = np.empty_like(stock)
    _derive_serial(stock, mood, stress, table, agent, weight, marginal, wanting)
    return weight, marginal, wanting


@numba.njit(cache=True)
def _temperature(mood, stress, agent, out):  # pragma: no cover - compiled
    for i in range(mood.shape[0]):
        out[i] = _temperature_of(agent, i, mood[i], stress[i])


def temperature(mood: np.ndarray, stress: np.ndarray, agent: np.ndarray) -> np.ndarray:
    """Decision temperature ``T = T0 * exp(a_stress * stress + a_mood * mood)`` per agent."""
    out = np.empty_like(mood)
    _temperature(mood, stress, agent, out)
    return out
