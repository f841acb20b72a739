"""The value model's dynamics, compiled, over a range of rows: one step, and what it derives.

Each function works on rows ``start:stop`` of the store's arrays and touches only scalars
inside its loops (see the note above :func:`advance_rows`); :mod:`valuegym.values.kernels`
runs them over all rows, serially or in threads. Curves come from
:mod:`valuegym.values.curves`, so each formula exists once.

One step for agent ``i`` (``docs/design.md``, "The value model"), in this order:

1. modulation from the mood and stress at the start of the step:
   ``w_eff = w * exp(mood_weight * mood + stress_weight * stress)``, curvature
   ``eta * (1 + stress_curvature * stress)``;
2. consumption: the gain of consuming ``a`` of ``k`` is ``w_eff * (u(s + a) - u(s))``, or the
   reduction of the homeostatic drive; the stock grows by ``a``;
3. surprise ``delta_k = gain_k - expected_k`` for every consumed value, and learning
   ``expected_k += min(1, lr * (1 + kappa (|delta_k| + |x|))) * delta_k``, with ``x`` the
   external surprise input (what the caller appraised, e.g. a message; 0 when left out);
4. mood moves toward ``tanh((sum_k delta_k + valence - x) / scale)`` when something happened
   (a consumption, ``valence != 0`` or ``x != 0``), then relaxes toward its baseline; stress
   rises with load (plus the drive's share), falls with rest, relaxes toward its baseline;
   both are kept in range;
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

__all__ = ["advance_rows", "derive_rows", "temperature_rows"]


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
# rows with a homeostatic value (made for every row, it was a third of derive_rows' time).
@numba.njit(cache=True, error_model="numpy")
def advance_rows(
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
):  # pragma: no cover - compiled
    """One step of rows ``start:stop`` in place (the module's steps 1-5); gains, surprises out.

    ``external_surprise`` is the input ``x`` (see the module docstring); ``surprise`` the
    output, the summed prediction error of the consumption.
    """
    n_values = stock.shape[1]
    for i in range(start, stop):
        mood_i, stress_i = mood[i], stress[i]
        power, root = agent[i, p.DRIVE_POWER], agent[i, p.DRIVE_ROOT]
        total_gain = 0.0
        total_surprise = 0.0
        consumed = False
        has_drive = False
        surprise_in = external_surprise[i]
        # Added to every |delta_k| of the learning gate: an event that surprised the agent
        # makes what it consumes in the same step more salient.
        gate_surprise = abs(surprise_in)
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
                1.0,
                agent[i, p.LEARNING_RATE]
                * (1.0 + agent[i, p.SURPRISE_GATE] * (abs(delta) + gate_surprise)),
            )
            expected[i, k] += rate * delta
            total_gain += value_gain
            total_surprise += delta
        gain[i] = total_gain
        surprise[i] = total_surprise

        if consumed or valence[i] != 0.0 or surprise_in != 0.0:
            target = math.tanh(
                (total_surprise + valence[i] - surprise_in) / agent[i, p.SURPRISE_SCALE]
            )
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
def derive_rows(
    start, stop, stock, mood, stress, table, agent, weight, marginal, wanting
):  # pragma: no cover - compiled
    """Effective weights, marginal utilities and wantings of rows ``start:stop``, written out."""
    for i in range(start, stop):
        mood_i, stress_i = mood[i], stress[i]
        power, root = agent[i, p.DRIVE_POWER], agent[i, p.DRIVE_ROOT]
        # The drive is summed when a homeostatic value first needs it: _drive_sum is a call
        # that takes arrays (see the note above advance_rows), too dear to make for rows
        # without a drive.
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
def temperature_rows(start, stop, mood, stress, agent, out):  # pragma: no cover - compiled
    """Decision temperatures of rows ``start:stop``, written to ``out``."""
    for i in range(start, stop):
        out[i] = agent[i, p.BASE_TEMPERATURE] * math.exp(
            agent[i, p.TEMPERATURE_STRESS] * stress[i] + agent[i, p.TEMPERATURE_MOOD] * mood[i]
        )
