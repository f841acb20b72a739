"""Statistics over recorded runs: fitted slopes with bootstrap intervals, returns, inequality.

Every estimate that involves resampling takes a seed, so a report is reproducible.

Example:
    >>> import numpy as np
    >>> x = np.linspace(0.0, 1.0, 50)
    >>> fit = fit_slope(x, 2.0 * x + 1.0, seed=0)
    >>> round(fit.slope, 6), round(fit.intercept, 6)
    (2.0, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "GroupSummary",
    "SlopeFit",
    "fit_slope",
    "gini",
    "mean_interval",
    "ols_slope",
]


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


@dataclass(frozen=True)
class SlopeFit:
    """A fitted line with a bootstrap confidence interval for its slope.

    Attributes:
        slope: OLS slope.
        intercept: OLS intercept.
        low: Lower end of the percentile bootstrap interval for the slope.
        high: Upper end of the interval.
        confidence: Coverage of the interval, e.g. 0.95.
        r_squared: Fraction of the variance of y the line explains.
        n: Number of (x, y) pairs used (non-finite pairs are dropped).
        n_resamples: Bootstrap resamples drawn.
    """

    slope: float
    intercept: float
    low: float
    high: float
    confidence: float
    r_squared: float
    n: int
    n_resamples: int

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely on one side of zero."""
        return bool(self.low > 0 or self.high < 0)

    def to_dict(self) -> dict[str, Any]:
        """The fit as a plain dict."""
        return {
            "slope": self.slope,
            "intercept": self.intercept,
            "low": self.low,
            "high": self.high,
            "confidence": self.confidence,
            "r_squared": self.r_squared,
            "n": self.n,
            "n_resamples": self.n_resamples,
        }


def fit_slope(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> SlopeFit:
    """OLS slope of ``y`` on ``x`` with a percentile bootstrap interval (pairs resampled).

    Args:
        x: Predictor values (e.g. stress).
        y: Response values (e.g. mean token entropy of an utterance).
        n_resamples: Bootstrap resamples.
        confidence: Coverage of the interval, in (0, 1).
        seed: Seed of the resampling.

    Returns:
        The fit; slope and interval are ``nan`` when ``x`` does not vary or fewer than three
        finite pairs remain.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: must be in (0, 1) (got {confidence})")
    if n_resamples < 1:
        raise ValueError(f"n_resamples: must be >= 1 (got {n_resamples})")
    x_all = np.asarray(x, dtype=np.float64)
    y_all = np.asarray(y, dtype=np.float64)
    finite = np.isfinite(x_all) & np.isfinite(y_all)
    x_used, y_used = x_all[finite], y_all[finite]
    n = int(x_used.size)
    slope, intercept = ols_slope(x_used, y_used)
    if n < 3 or math.isnan(slope):
        return SlopeFit(slope, intercept, math.nan, math.nan, confidence, math.nan, n, 0)
    residual = y_used - (intercept + slope * x_used)
    total = float(np.sum((y_used - y_used.mean()) ** 2))
    r_squared = 1.0 - float(np.sum(residual**2)) / total if total > 0 else 1.0

    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(n_resamples, n))
    x_boot, y_boot = x_used[picks], y_used[picks]
    x_centred = x_boot - x_boot.mean(axis=1, keepdims=True)
    spread = np.einsum("ij,ij->i", x_centred, x_centred)
    covariance = np.einsum("ij,ij->i", x_centred, y_boot - y_boot.mean(axis=1, keepdims=True))
    # A resample that happens to repeat one x value has no slope; it is left out.
    usable = spread > 1e-12
    boot_slopes = covariance[usable] / spread[usable]
    tail = (1.0 - confidence) / 2.0
    low, high = (
        np.quantile(boot_slopes, [tail, 1.0 - tail]) if boot_slopes.size else (math.nan, math.nan)
    )
    return SlopeFit(
        slope, intercept, float(low), float(high), confidence, r_squared, n, n_resamples
    )


@dataclass(frozen=True)
class GroupSummary:
    """Mean of a quantity in one group with a bootstrap interval.

    Attributes:
        group: The group's label (e.g. an agent kind).
        mean: Sample mean.
        low: Lower end of the percentile bootstrap interval of the mean.
        high: Upper end of the interval.
        n: Number of observations.
    """

    group: str
    mean: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """The numbers as plain data (``mean``, ``low``, ``high``, ``n``) for statistics JSON."""
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def mean_interval(
    values: Sequence[float] | np.ndarray,
    *,
    group: str = "",
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> GroupSummary:
    """Mean with a percentile bootstrap interval.

    Args:
        values: Observations (non-finite ones are dropped).
        group: Label carried into the result.
        n_resamples: Bootstrap resamples.
        confidence: Coverage of the interval, in (0, 1).
        seed: Seed of the resampling.

    Returns:
        The summary; with one observation the interval is that value, with none all ``nan``.
    """
    data = np.asarray(values, dtype=np.float64)
    data = data[np.isfinite(data)]
    if data.size == 0:
        return GroupSummary(group, math.nan, math.nan, math.nan, 0)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(n_resamples, data.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return GroupSummary(group, float(data.mean()), float(low), float(high), int(data.size))


def gini(values: Sequence[float] | np.ndarray) -> float:
    """Gini coefficient of non-negative amounts: 0 when equal, ``1 - 1/n`` when one has all.

    Args:
        values: Amounts per member (e.g. food harvested per agent); must be >= 0.

    Returns:
        The coefficient; ``0`` when every amount is 0, ``nan`` for no members.
    """
    data = np.sort(np.asarray(values, dtype=np.float64))
    if data.size == 0:
        return math.nan
    if np.any(data < 0) or not np.all(np.isfinite(data)):
        raise ValueError("values: Gini needs finite, non-negative amounts")
    total = float(data.sum())
    if total == 0:
        return 0.0
    ranks = np.arange(1, data.size + 1)
    return float((2.0 * np.dot(ranks, data)) / (data.size * total) - (data.size + 1) / data.size)
