"""Compiled kernels of the value store: every row stepped, serially or in threads.

The maths lives in :mod:`valuegym.values.dynamics`, in functions over a range of rows
(``advance_rows``, ``derive_rows``, ``temperature_rows``); here the serial kernel runs them
over all rows and, for large populations (:data:`PARALLEL_THRESHOLD`), the parallel kernel
over blocks of rows in threads. :func:`step`, :func:`derive` and :func:`temperature` are what
the value store calls; :func:`step_rows` and :func:`step_all` what compiled env code calls.
"""

from __future__ import annotations

import numba
import numpy as np

from valuegym.values.dynamics import advance_rows, derive_rows, temperature_rows

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
# reference to each of the 17 arrays, the call) vanish beside its rows, small enough to
# balance rows whose cost varies (consumption, homeostatic values) across threads.
_ROWS_PER_TASK = 256


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
    external_surprise,
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
    advance_rows(
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
        external_surprise,
        dt,
        table,
        agent,
        gain,
        surprise,
    )
    if derive:
        derive_rows(start, stop, stock, mood, stress, table, agent, weight, marginal, wanting)
        temperature_rows(start, stop, mood, stress, agent, temperature)


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
    external_surprise,
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
            external_surprise,
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
    external_surprise,
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
            external_surprise,
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
            external_surprise,
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
    external_surprise: np.ndarray,
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
        external_surprise: ``(n_agents,)`` signed surprise the caller appraised (dimensionless,
            finite): raises the learning rate of the step's consumption and moves the mood
            toward negative (``x`` in :mod:`valuegym.values.dynamics`).
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
        external_surprise,
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
    derive_rows(0, stock.shape[0], stock, mood, stress, table, agent, weight, marginal, wanting)
    return weight, marginal, wanting


def temperature(mood: np.ndarray, stress: np.ndarray, agent: np.ndarray) -> np.ndarray:
    """Decision temperature ``T = T0 * exp(a_stress * stress + a_mood * mood)`` per agent."""
    out = np.empty_like(mood)
    temperature_rows(0, mood.shape[0], mood, stress, agent, out)
    return out
