"""Intervals at the unit of replication: the one place the reports compute an interval.

Rows that share a unit (utterances of one episode, cells of one seed) are not independent, so
no interval here resamples rows. Each analysis first reduces its rows to one number per
independent unit (an episode's within-agent slope, a seed's slope across sweep levels, an
episode's mean return) and only then forms an interval over those numbers:

- fewer than :data:`BCA_MIN_UNITS` units: the t interval (exact when unit summaries are normal,
  which averages over many rows nearly are);
- more: the BCa bootstrap over units (Efron 1987), which also follows skewed summaries;
- fewer than :data:`FEW_UNITS`: the number and interval are still computed, but the estimate
  is a pilot (:attr:`Estimate.pilot`): a report draws no finding from its interval.

Several contrasts are a family: :func:`holm` adjusts their p-values (Holm 1979). How big an
effect a design can tell from noise is its minimum detectable effect
(:func:`minimum_detectable_effect`, :attr:`Estimate.mde`); :func:`units_needed` inverts it.

Example:
    >>> estimate = mean_interval([1.0, 2.0, 3.0], label="x", unit="episodes")
    >>> round(estimate.value, 3), round(estimate.low, 3), round(estimate.high, 3)
    (2.0, -0.484, 4.484)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
from scipy import special

from valuegym.numeric import gini

__all__ = [
    "BCA_MIN_UNITS",
    "FEW_UNITS",
    "Estimate",
    "gini",
    "holm",
    "mean_interval",
    "minimum_detectable_effect",
    "ols_slope",
    "unit_slopes",
    "units_needed",
]

#: Below this many units an interval is reported as too few to mean much.
FEW_UNITS: Final = 5
#: From this many units on, the BCa bootstrap over units replaces the t interval.
BCA_MIN_UNITS: Final = 20
_RESAMPLES: Final = 4000


@dataclass(frozen=True)
class Estimate:
    """A number with its interval over the independent units it was computed from.

    Attributes:
        label: What was estimated (a measure, a contrast, a group).
        value: The estimate (a mean of per-unit numbers, or a model coefficient).
        low: Lower end of the interval (``nan`` without one).
        high: Upper end of the interval.
        p_value: Two-sided p-value of "the true value is 0", from the same method.
        n_units: Independent units behind the interval.
        unit: Plural name of the unit (``"episodes"``, ``"seeds"``).
        method: How the interval was formed (``"t"``, ``"BCa bootstrap"``, ...).
        confidence: Nominal coverage of the interval.
        sd: Standard deviation over the units of the per-unit numbers (ddof 1; ``nan`` when
            unknown, e.g. for a model coefficient).
    """

    label: str
    value: float
    low: float
    high: float
    p_value: float
    n_units: int
    unit: str
    method: str
    confidence: float = 0.95
    sd: float = math.nan

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely on one side of zero."""
        return bool(self.low > 0 or self.high < 0)

    @property
    def few_units(self) -> bool:
        """Whether there are too few units for the interval to separate a finding from noise."""
        return self.n_units < FEW_UNITS

    @property
    def pilot(self) -> bool:
        """Whether this is a pilot number: too few units for an interval-based finding."""
        return self.n_units < FEW_UNITS

    @property
    def mde(self) -> float:
        """The effect these units detect with power 0.8 at two-sided alpha 0.05 (``nan``: no sd)."""
        return minimum_detectable_effect(self.sd, self.n_units)

    @property
    def basis(self) -> str:
        """The method and units, as printed beside the interval (e.g. "t over 2 episodes")."""
        return f"{self.method} over {self.n_units} {self.unit}"

    def to_dict(self) -> dict[str, Any]:
        """The numbers as plain data for ``statistics.json``."""
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "p_value": self.p_value,
            "n_units": self.n_units,
            "unit": self.unit,
            "method": self.method,
            "confidence": self.confidence,
            "sd": self.sd,
            "mde": self.mde,
            "pilot": self.pilot,
        }


def mean_interval(
    values: Sequence[float] | np.ndarray,
    *,
    label: str,
    unit: str,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Mean of one number per independent unit, with its interval and p-value.

    Args:
        values: One number per unit (non-finite ones are dropped).
        label: What the numbers are.
        unit: Plural name of the units.
        confidence: Nominal coverage, in (0, 1).
        seed: Seed of the bootstrap (used from :data:`BCA_MIN_UNITS` units on).

    Returns:
        The estimate with the units' standard deviation; with fewer than two units its
        interval, p-value and ``sd`` are ``nan``.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: must be in (0, 1) (got {confidence})")
    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data)]
    n = int(data.size)
    mean = float(data.mean()) if n else math.nan
    if n < 2:
        return Estimate(label, mean, math.nan, math.nan, math.nan, n, unit, "none", confidence)
    if np.ptp(data) <= 1e-12 * max(1.0, abs(mean)):
        # Every unit agrees: no spread to form an interval from, and none needed.
        p_value = 1.0 if mean == 0 else 0.0
        return Estimate(label, mean, mean, mean, p_value, n, unit, "no spread", confidence, 0.0)
    if n < BCA_MIN_UNITS:
        estimate = _t_interval(data, label, unit, confidence)
    else:
        estimate = _bca_interval(data, label, unit, confidence, np.random.default_rng(seed))
    return replace(estimate, sd=float(data.std(ddof=1)))


def _t_interval(data: np.ndarray, label: str, unit: str, confidence: float) -> Estimate:
    n = data.size
    mean = float(data.mean())
    standard_error = float(data.std(ddof=1)) / math.sqrt(n)
    # special.stdtrit/stdtr are stats.t.ppf/cdf without their argument checks (a tenth the time)
    half = float(special.stdtrit(n - 1, 0.5 + confidence / 2)) * standard_error
    p_value = float(2 * special.stdtr(n - 1, -abs(mean) / standard_error))
    return Estimate(label, mean, mean - half, mean + half, p_value, n, unit, "t", confidence)


def _bca_interval(
    data: np.ndarray, label: str, unit: str, confidence: float, rng: np.random.Generator
) -> Estimate:
    n = data.size
    mean = float(data.mean())
    boot = data[rng.integers(0, n, size=(_RESAMPLES, n))].mean(axis=1)
    edge = 1.0 / (2 * _RESAMPLES)
    below = float(np.mean(boot < mean) + 0.5 * np.mean(boot == mean))
    bias = float(special.ndtri(np.clip(below, edge, 1 - edge)))
    jackknife = (data.sum() - data) / (n - 1)
    deviation = jackknife.mean() - jackknife
    acceleration = float(np.sum(deviation**3) / (6 * np.sum(deviation**2) ** 1.5))

    def level(z: float) -> float:
        return float(special.ndtr(bias + (bias + z) / (1 - acceleration * (bias + z))))

    tail = float(special.ndtri((1 - confidence) / 2))
    low, high = np.quantile(boot, [level(tail), level(-tail)])
    # The p-value inverts the same interval: the level at which one of its ends reaches 0.
    at_zero = float(special.ndtri(np.clip(np.mean(boot <= 0), edge, 1 - edge))) - bias
    z_zero = at_zero / (1 + acceleration * at_zero) - bias
    p_value = float(2 * min(special.ndtr(z_zero), 1 - special.ndtr(z_zero)))
    return Estimate(
        label, mean, float(low), float(high), p_value, n, unit, "BCa bootstrap", confidence
    )


def minimum_detectable_effect(
    sd: float, n: int, *, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The smallest true mean a t test over ``n`` units detects with the given power.

    ``(t_{1-alpha/2, n-1} + t_{power, n-1}) * sd / sqrt(n)``: the usual approximation, which
    ignores the chance of rejecting on the wrong side.

    Args:
        sd: Standard deviation of the per-unit numbers.
        n: Number of units.
        alpha: Two-sided level of the test.
        power: Wanted chance of rejecting when the effect is there.

    Returns:
        The effect, in the units of ``sd``; ``nan`` when ``n < 2`` or ``sd`` is not finite.

    Example:
        >>> round(minimum_detectable_effect(1.0, 10), 3)
        0.995
    """
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError(f"alpha and power: must be in (0, 1) (got {alpha}, {power})")
    if n < 2 or not math.isfinite(sd):
        return math.nan
    quantiles = float(special.stdtrit(n - 1, 1 - alpha / 2) + special.stdtrit(n - 1, power))
    return quantiles * sd / math.sqrt(n)


def units_needed(
    sd: float,
    effect: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    limit: int = 100_000,
) -> int:
    """How many units a t test needs to detect ``effect`` (the inverse of the MDE).

    Args:
        sd: Standard deviation of the per-unit numbers (e.g. from a pilot's :class:`Estimate`).
        effect: The effect worth detecting (its sign is ignored).
        alpha: Two-sided level of the test.
        power: Wanted chance of rejecting when the effect is there.
        limit: The most units considered.

    Returns:
        The smallest ``n >= 2`` whose :func:`minimum_detectable_effect` is at most ``|effect|``;
        ``limit`` when not even ``limit`` units are enough (e.g. ``effect`` 0).

    Example:
        >>> units_needed(1.0, 0.995)
        10
    """
    if not math.isfinite(sd) or sd < 0:
        raise ValueError(f"sd: must be finite and non-negative (got {sd})")
    if limit < 2:
        raise ValueError(f"limit: must be at least 2 (got {limit})")
    target = abs(effect)

    def enough(n: int) -> bool:
        return minimum_detectable_effect(sd, n, alpha=alpha, power=power) <= target

    if not enough(limit):
        return limit
    low, high = 2, limit  # the MDE falls with n: bisect for the first n that is enough
    while low < high:
        middle = (low + high) // 2
        if enough(middle):
            high = middle
        else:
            low = middle + 1
    return low


def unit_slopes(
    predictors: Mapping[str, np.ndarray],
    response: np.ndarray,
    units: np.ndarray,
    *,
    within: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Least-squares coefficients fitted separately in each unit, one row per unit.

    With ``within`` (e.g. the agent of each row), each group's own mean is removed inside
    the unit first, so a coefficient is learnt from changes within a group only and a
    group's fixed character (a persona) cannot pose as an effect of the predictors.

    Args:
        predictors: Name -> predictor per row, all shaped like ``response``.
        response: The measure per row.
        units: The independent unit of each row (e.g. the episode).
        within: Optional group of each row whose mean is removed inside each unit.

    Returns:
        Name -> coefficient per unit (in order of first appearance); ``nan`` in a unit where
        the predictors do not vary independently or too few rows remain.
    """
    names = list(predictors)
    design = np.column_stack([np.asarray(predictors[n], dtype=np.float64) for n in names])
    y = np.asarray(response, dtype=np.float64)
    unit_array = np.asarray(units)
    finite = np.isfinite(y) & np.all(np.isfinite(design), axis=1)
    unit_ids = list(dict.fromkeys(unit_array[finite].tolist()))
    coefficients = np.full((len(unit_ids), len(names)), math.nan)
    if not unit_ids:
        return {name: coefficients[:, j] for j, name in enumerate(names)}
    x, y = design[finite], y[finite]
    # One pass over all rows: each row's unit (in order of first appearance) and its
    # (unit, group) cell, whose mean is removed.
    order = {unit_id: row for row, unit_id in enumerate(unit_ids)}
    unit_of = np.array([order[u] for u in unit_array[finite].tolist()], dtype=np.int64)
    if within is None:
        cell_of = unit_of
    else:
        group_of = np.unique(np.asarray(within)[finite], return_inverse=True)[1].ravel()
        cell_of = np.unique(unit_of * (int(group_of.max()) + 1) + group_of, return_inverse=True)[1]
        cell_of = cell_of.ravel()
    counts = np.bincount(cell_of).astype(np.float64)
    x_centred = (
        x
        - np.stack([np.bincount(cell_of, x[:, j]) for j in range(len(names))], 1)[cell_of]
        / counts[cell_of, None]
    )
    y_centred = y - (np.bincount(cell_of, y) / counts)[cell_of]
    cells_per_unit = np.bincount(np.unique(np.stack([unit_of, cell_of]), axis=1)[0])
    rows_by_unit = np.argsort(unit_of, kind="stable")
    bounds = np.cumsum(np.bincount(unit_of, minlength=len(unit_ids)))
    for row, (start, stop) in enumerate(
        zip([0, *bounds[:-1].tolist()], bounds.tolist(), strict=True)
    ):
        chosen = rows_by_unit[start:stop]
        x_unit, y_unit = x_centred[chosen], y_centred[chosen]
        if y_unit.size - int(cells_per_unit[row]) - len(names) < 0:
            continue
        scale = max(1.0, float(np.abs(x_unit).max(initial=0.0)))
        solution, _, _, singular_values = np.linalg.lstsq(x_unit, y_unit, rcond=None)
        # the rank test of np.linalg.matrix_rank(x_unit, tol=1e-9 * scale)
        if int(np.sum(singular_values > 1e-9 * scale)) < len(names):
            continue
        coefficients[row] = solution
    return {name: coefficients[:, j] for j, name in enumerate(names)}


def ols_slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Ordinary least squares of ``y = intercept + slope * x``.

    Args:
        x: Predictor, shape ``(n,)``.
        y: Response, shape ``(n,)``.

    Returns:
        ``(slope, intercept)``; both ``nan`` when ``x`` does not vary or ``n < 2``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(
            f"x and y: expected two 1-D arrays of one length (got {x.shape}, {y.shape})"
        )
    if x.size < 2:
        return math.nan, math.nan
    x_centred = x - x.mean()
    spread = float(np.dot(x_centred, x_centred))
    if spread <= 1e-12 * max(1.0, float(np.dot(x, x))):
        return math.nan, math.nan
    slope = float(np.dot(x_centred, y - y.mean()) / spread)
    return slope, float(y.mean() - slope * x.mean())


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (``nan`` ones stay ``nan``).

    Args:
        p_values: One p-value per contrast of the family.

    Returns:
        The adjusted p-values, in the given order; rejecting where adjusted ``p <= alpha``
        keeps the chance of any false rejection in the family at most ``alpha``.
    """
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.size, math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (order.size - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()
