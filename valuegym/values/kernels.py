"""Compiled kernels of the value store: one step of the dynamics, and the derived quantities.

The maths lives in functions over a range of rows (``_step_rows``, ``_derive_rows``,
``_temperature_rows``); the serial kernel runs them over all rows and, for large populations,
the parallel kernel over blocks of rows in threads. Curves come from
:mod:`valuegym.values.curves`, so each formula exists once.

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
    curve_gain,
    curve_marginal_utility,
    drive_marginal_utility,
    drive_term,
)

__all__ = ["PARALLEL_THRESHOLD", "derive", "step", "step_all", "step_rows", "temperature"]

#: Populations at least this large are stepped with one thread per core. With ``c`` free cores
#: a step of ``n`` agents takes about ``n t / c`` plus a fork/join cost of tens of
#: microseconds that grows with ``c``, against ``n t`` serially (``t`` ~90 ns of CPU time per
#: agent with 6 values), so on idle cores the break-even is a few thousand agents for any
#: ``c`` (an estimate) and the gain approaches ``c``; what moves it is whether the cores are
#: free. Measured with benchmarks/values.py on a 2-core VM shared with other processes,
#: serial/parallel was 0.66x at 1 000 agents, 1.15x at 5 000 and 1.09x at 20 000 under a load
#: of ~6, but 0.02x at 1 000, 0.29x at 20 000, 0.77x at 100 000 and 0.92x at 500 000 under a
#: load of 8-10 (OpenMP's fork/join waits for a busy core). On the same VM with the cores idle
#: the threads win from a few hundred agents: 1.33x at 500, 1.67x at 1 000, 1.80x at 2 000 to
#: 5 000, 1.89x at 20 000. Threads lose a lot on shared cores (sweep workers, other jobs) and
#: gain under 2x on free ones, so only populations where they cost little even when the
#: cores are busy use them; on a dedicated machine, lower this (to a few thousand).
PARALLEL_THRESHOLD = 100_000

# Rows per task of the parallel kernel: large enough that a task's fixed costs (taking a
# reference to each of the 16 arrays, the call) vanish beside its rows, small enough to
# balance rows whose cost varies (consumption, homeostatic values) across threads.
_ROWS_PER_TASK = 256


@numba.njit(cache=True, inline="always", error_model="numpy")
def _retained(retention: float, dt: float) -> float:
    return retention if dt == 1.0 else retention**dt


@numba.njit(cache=True, inline="always", error_model="numpy")
def _modulation(mood_weight: float, stress_weight: float, mood: float, stress: float) -> float:
    if mood_weight == 0.0 and stress_weight == 0.0:
        return 1.0
    return math.exp(mood_weight * mood + stress_weight * stress)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _effective_weight(
    weight: float, mood_weight: float, stress_weight: float, mood: float, stress: float
) -> float:
    return weight * _modulation(mood_weight, stress_weight, mood, stress)


@numba.njit(cache=True, inline="always", error_model="numpy")
def _curvature(eta: float, stress_curvature: float, stress: float) -> float:
    return eta * (1.0 + stress_curvature * stress)


@numba.njit(cache=True, error_model="numpy")
def _drive_sum(
    stock: np.ndarray, table: np.ndarray, i: int, mood: float, stress: float, power: float
) -> float:
    total = 0.0
    for k in range(stock.shape[1]):
        if table[i, k, p.FAMILY] == HOMEOSTATIC:
            weight = _effective_weight(
                table[i, k, p.WEIGHT],
                table[i, k, p.MOOD_WEIGHT],
                table[i, k, p.STRESS_WEIGHT],
                mood,
                stress,
            )
            total += drive_term(weight, table[i, k, p.SETPOINT], stock[i, k], power)
    return total


# Why the kernels work on ranges of rows and index the tables element by element: in numba
# every array that enters a function, or is bound to a new name by ``inline="always"``, or
# is sliced into a view (``table[i, k]``), costs an atomic reference-count increment and
# decrement. The serial kernel used to call a per-agent body, inlined, from its row loop:
# 16 arrays rebound and 12 passed on per agent, about 56 atomic operations per agent, over
# half its time (CPU time per agent 237 ns before, 108 ns after). The parallel build hid it
# (``prange`` binds the arrays once per thread's chunk), so it looked 5x faster on 2 cores.
# Now both loops hand a range of rows to these functions, which touch only scalars inside
# their loops; the one call inside a row loop that takes arrays, _drive_sum, is made only for
# rows with a homeostatic value (made for every row, it was a third of _derive_rows' time).
@numba.njit(cache=True, error_model="numpy")
def _step_rows(
    start,
    stop,
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
    n_values = stock.shape[1]
    for i in range(start, stop):
        mood_i, stress_i = mood[i], stress[i]
        power, root = agent[i, p.DRIVE_POWER], agent[i, p.DRIVE_ROOT]
        total_gain = 0.0
        total_surprise = 0.0
        consumed = False
        has_drive = False
        for k in range(n_values):
            family = int(table[i, k, p.FAMILY])
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
                curvature = _curvature(
                    table[i, k, p.ETA], table[i, k, p.STRESS_CURVATURE], stress_i
                )
                scale = table[i, k, p.SCALE]
                weight = _effective_weight(
                    table[i, k, p.WEIGHT],
                    table[i, k, p.MOOD_WEIGHT],
                    table[i, k, p.STRESS_WEIGHT],
                    mood_i,
                    stress_i,
                )
                value_gain = weight * curve_gain(family, scale, curvature, before, amount)
                stock[i, k] = before + amount
            delta = value_gain - expected[i, k]
            rate = min(
                1.0, agent[i, p.LEARNING_RATE] * (1.0 + agent[i, p.SURPRISE_GATE] * abs(delta))
            )
            expected[i, k] += rate * delta
            total_gain += value_gain
            total_surprise += delta
        gain[i] = total_gain
        surprise[i] = total_surprise

        if consumed or valence[i] != 0.0:
            target = math.tanh((total_surprise + valence[i]) / agent[i, p.SURPRISE_SCALE])
            mood_i += agent[i, p.MOOD_RATE] * (target - mood_i)
        baseline = agent[i, p.MOOD_BASELINE]
        mood_i = baseline + (mood_i - baseline) * _retained(agent[i, p.MOOD_RETENTION], dt)
        mood[i] = min(1.0, max(-1.0, mood_i))

        if not (load[i] >= 0.0 and rest[i] >= 0.0):
            raise ValueError("load and rest: must be >= 0 and finite")
        total_load = load[i]
        if has_drive and agent[i, p.DRIVE_LOAD] > 0.0:
            total_load += agent[i, p.DRIVE_LOAD] * _drive_sum(
                stock, table, i, mood[i], stress_i, power
            ) ** (1.0 / root)
        if total_load > 0.0:
            stress_i -= (1.0 - stress_i) * math.expm1(-agent[i, p.STRESS_SENSITIVITY] * total_load)
        if rest[i] > 0.0:
            stress_i += stress_i * math.expm1(-agent[i, p.REST_RECOVERY] * rest[i])
        baseline = agent[i, p.STRESS_BASELINE]
        stress_i = baseline + (stress_i - baseline) * _retained(agent[i, p.STRESS_RETENTION], dt)
        stress[i] = min(1.0, max(0.0, stress_i))

        for k in range(n_values):
            stock[i, k] *= _retained(table[i, k, p.RETENTION], dt)


@numba.njit(cache=True, error_model="numpy")
def _derive_rows(
    start, stop, stock, mood, stress, table, agent, weight, marginal, wanting
):  # pragma: no cover - compiled
    for i in range(start, stop):
        mood_i, stress_i = mood[i], stress[i]
        power, root = agent[i, p.DRIVE_POWER], agent[i, p.DRIVE_ROOT]
        # The drive is summed when a homeostatic value first needs it: _drive_sum is a call
        # that takes arrays (see below), too dear to make for rows without a drive.
        drive_total, drive_summed = 0.0, False
        # Values often share their mood and stress weights (every good of an env's default
        # profile does): the modulation factor is computed once per distinct pair in a run.
        last_mood_weight, last_stress_weight, factor = 0.0, 0.0, 1.0
        for k in range(stock.shape[1]):
            family = int(table[i, k, p.FAMILY])
            mood_weight, stress_weight = table[i, k, p.MOOD_WEIGHT], table[i, k, p.STRESS_WEIGHT]
            if mood_weight != last_mood_weight or stress_weight != last_stress_weight:
                factor = _modulation(mood_weight, stress_weight, mood_i, stress_i)
                last_mood_weight, last_stress_weight = mood_weight, stress_weight
            w = table[i, k, p.WEIGHT] * factor
            if family == HOMEOSTATIC:
                if not drive_summed:
                    drive_total = _drive_sum(stock, table, i, mood_i, stress_i, power)
                    drive_summed = True
                m = drive_marginal_utility(
                    table[i, k, p.SETPOINT] - stock[i, k], drive_total, power, root
                )
            else:
                curvature = _curvature(
                    table[i, k, p.ETA], table[i, k, p.STRESS_CURVATURE], stress_i
                )
                m = curve_marginal_utility(family, table[i, k, p.SCALE], curvature, stock[i, k])
            weight[i, k] = w
            marginal[i, k] = m
            wanting[i, k] = w * m


@numba.njit(cache=True, error_model="numpy")
def _temperature_rows(start, stop, mood, stress, agent, out):  # pragma: no cover - compiled
    for i in range(start, stop):
        out[i] = agent[i, p.BASE_TEMPERATURE] * math.exp(
            agent[i, p.TEMPERATURE_STRESS] * stress[i] + agent[i, p.TEMPERATURE_MOOD] * mood[i]
        )


@numba.njit(cache=True, error_model="numpy")
def step_rows(
    start,
    stop,
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
    """Step rows ``start:stop`` in place, serially: :func:`step`'s arguments, compiled.

    The entry point for compiled env code that steps its value store inside its own compiled
    step (one call per env step instead of several); ``derive`` says whether to fill
    ``weight, marginal, wanting, temperature`` (ignored otherwise, may be empty). Arguments
    are not checked beyond what the maths raises on (negative or non-finite amounts).
    """
    _step_rows(
        start,
        stop,
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
        _derive_rows(start, stop, stock, mood, stress, table, agent, weight, marginal, wanting)
        _temperature_rows(start, stop, mood, stress, agent, temperature)


# Its own function, not step_rows compiled with parallel=True: numba's on-disk cache keys
# on the function, not on ``parallel=``, so one function would load one build for both.
@numba.njit(cache=True, parallel=True, error_model="numpy")
def _step_parallel(
    start,
    stop,
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
    n_tasks = (stop - start + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in numba.prange(n_tasks):
        task_start = start + np.int64(task) * _ROWS_PER_TASK
        step_rows(
            task_start,
            min(stop, task_start + _ROWS_PER_TASK),
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


@numba.njit(cache=True, error_model="numpy")
def step_all(
    parallel,
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
    """Step every row in place: :func:`step_rows` over all rows, in threads when ``parallel``.

    For compiled env code; pass ``parallel = n_rows >= PARALLEL_THRESHOLD`` as :func:`step`
    decides.
    """
    if parallel:
        _step_parallel(
            0,
            stock.shape[0],
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
    else:
        step_rows(
            0,
            stock.shape[0],
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
    if derived is None:
        derived = (_NO_ROWS, _NO_ROWS, _NO_ROWS, _NO_AGENTS)
        derive = False
    else:
        derive = True
    step_all(
        stock.shape[0] >= PARALLEL_THRESHOLD,
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
    _derive_rows(0, stock.shape[0], stock, mood, stress, table, agent, weight, marginal, wanting)
    return weight, marginal, wanting


def temperature(mood: np.ndarray, stress: np.ndarray, agent: np.ndarray) -> np.ndarray:
    """Decision temperature ``T = T0 * exp(a_stress * stress + a_mood * mood)`` per agent."""
    out = np.empty_like(mood)
    _temperature_rows(0, mood.shape[0], mood, stress, agent, out)
    return out
