import math

import numpy as np
import pytest

from valuegym.analysis.statistics import fit_slope, gini, mean_interval, ols_slope


def test_ols_recovers_an_exact_line():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    assert ols_slope(x, 3.0 - 0.5 * x) == pytest.approx((-0.5, 3.0))


def test_ols_without_spread_in_x_has_no_slope():
    slope, intercept = ols_slope(np.ones(5), np.arange(5.0))
    assert math.isnan(slope)
    assert math.isnan(intercept)


@pytest.mark.parametrize("true_slope", [-1.5, 0.0, 0.8])
def test_bootstrap_interval_covers_the_true_slope(true_slope):
    rng = np.random.default_rng(1)
    x = rng.uniform(0.0, 1.0, 400)
    y = 2.0 + true_slope * x + rng.normal(0.0, 0.3, x.size)
    fit = fit_slope(x, y, seed=0)
    assert fit.low < true_slope < fit.high
    assert fit.slope == pytest.approx(true_slope, abs=0.15)
    # Standard error of the OLS slope is sigma / (sd(x) sqrt(n)) ~ 0.052; the 95% interval
    # spans about 4 of them.
    assert 0.1 < fit.high - fit.low < 0.35
    assert fit.n == 400
    assert fit.excludes_zero == (true_slope != 0.0)


def test_bootstrap_coverage_is_near_nominal():
    rng = np.random.default_rng(7)
    covered = 0
    for trial in range(200):
        x = rng.uniform(0.0, 1.0, 60)
        y = 0.5 * x + rng.normal(0.0, 0.2, x.size)
        fit = fit_slope(x, y, n_resamples=400, seed=trial)
        covered += fit.low <= 0.5 <= fit.high
    assert 0.88 <= covered / 200 <= 0.99


def test_fit_is_reproducible_and_drops_non_finite_pairs():
    x = np.array([0.0, 1.0, 2.0, np.nan, 3.0, 4.0])
    y = np.array([1.0, 2.9, 5.2, 1.0, 7.1, np.inf])
    first, second = fit_slope(x, y, seed=3), fit_slope(x, y, seed=3)
    assert first == second
    assert first.n == 4
    assert first.slope == pytest.approx(ols_slope(x[[0, 1, 2, 4]], y[[0, 1, 2, 4]])[0])


def test_perfect_fit_has_zero_width_interval_and_unit_r_squared():
    x = np.linspace(0, 1, 20)
    fit = fit_slope(x, 4.0 * x - 1.0)
    assert (fit.low, fit.high) == pytest.approx((4.0, 4.0))
    assert fit.r_squared == pytest.approx(1.0)


def test_too_few_points_give_nan_interval():
    fit = fit_slope([0.0, 1.0], [0.0, 1.0])
    assert fit.slope == pytest.approx(1.0)
    assert math.isnan(fit.low)
    assert fit.n_resamples == 0


def test_mean_interval_covers_the_mean_of_a_known_distribution():
    rng = np.random.default_rng(2)
    summary = mean_interval(rng.normal(3.0, 1.0, 500), group="g", seed=1)
    assert summary.group == "g"
    assert summary.low < 3.0 < summary.high
    assert summary.high - summary.low == pytest.approx(2 * 1.96 / math.sqrt(500), rel=0.2)
    assert math.isnan(mean_interval([]).mean)


@pytest.mark.parametrize(
    ("amounts", "expected"),
    [([1, 1, 1, 1], 0.0), ([0, 0, 0, 4], 0.75), ([1, 2, 3, 4], 0.25), ([0, 0], 0.0)],
)
def test_gini_known_values(amounts, expected):
    assert gini(amounts) == pytest.approx(expected)


def test_gini_refuses_negative_amounts():
    with pytest.raises(ValueError, match="non-negative"):
        gini([1.0, -1.0])
