import math

import numpy as np
import pytest
from scipy import stats

from valuegym.analysis.statistics import (
    BCA_MIN_UNITS,
    gini,
    holm,
    mean_interval,
    minimum_detectable_effect,
    ols_slope,
    unit_slopes,
    units_needed,
)


def test_ols_recovers_an_exact_line():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    assert ols_slope(x, 3.0 - 0.5 * x) == pytest.approx((-0.5, 3.0))


def test_ols_without_spread_in_x_has_no_slope():
    slope, intercept = ols_slope(np.ones(5), np.arange(5.0))
    assert math.isnan(slope)
    assert math.isnan(intercept)


def test_few_units_get_the_t_interval_with_its_textbook_numbers():
    estimate = mean_interval([1.0, 2.0, 3.0, 6.0], label="x", unit="episodes")
    # mean 3, sd sqrt(14/3), se = sd / 2; t(0.975, 3) = 3.182446
    half = 3.182446 * math.sqrt(14 / 3) / 2
    assert (estimate.value, estimate.low, estimate.high) == pytest.approx(
        (3.0, 3.0 - half, 3.0 + half), abs=1e-5
    )
    assert estimate.p_value == pytest.approx(
        2 * stats.t.sf(3.0 / (math.sqrt(14 / 3) / 2), 3), rel=1e-9
    )
    assert (estimate.method, estimate.n_units, estimate.unit) == ("t", 4, "episodes")
    assert estimate.few_units
    assert estimate.basis == "t over 4 episodes"


def test_many_units_get_the_bca_bootstrap_close_to_t_for_normal_data():
    data = np.random.default_rng(2).normal(3.0, 1.0, 400)
    estimate = mean_interval(data, label="g", unit="seeds", seed=1)
    t = stats.t.interval(0.95, data.size - 1, loc=data.mean(), scale=stats.sem(data))
    assert estimate.method == "BCa bootstrap"
    assert (estimate.low, estimate.high) == pytest.approx(t, abs=0.01)
    # Zero lies far outside every resample: the p-value is at its floor, set by 4000 resamples.
    assert estimate.p_value < 0.001
    assert mean_interval(data, label="g", unit="seeds", seed=1) == estimate


def test_bca_follows_skew_where_t_is_symmetric():
    data = np.random.default_rng(3).exponential(1.0, BCA_MIN_UNITS + 10)
    estimate = mean_interval(data, label="g", unit="episodes")
    # A right-skewed mean: the upper arm of the interval is longer than the lower one.
    assert estimate.high - estimate.value > 1.1 * (estimate.value - estimate.low)


def test_no_interval_from_one_unit_and_none_needed_without_spread():
    one = mean_interval([2.0, math.nan], label="x", unit="episodes")
    assert (one.value, one.n_units) == (2.0, 1)
    assert math.isnan(one.low)
    assert math.isnan(one.p_value)
    assert math.isnan(mean_interval([], label="x", unit="episodes").value)
    flat = mean_interval([4.0, 4.0, 4.0], label="x", unit="seeds")
    assert (flat.low, flat.high, flat.p_value) == (4.0, 4.0, 0.0)


def test_unit_slopes_remove_each_groups_mean_inside_each_unit():
    # Two agents whose level differs by 10 (a persona) while stress differs by 1 between them:
    # the pooled slope would be ~10, the within-agent slope is the true 0.5.
    stress = np.array([0.0, 0.1, 0.2, 1.0, 1.1, 1.2] * 2)
    agent = np.array([0, 0, 0, 1, 1, 1] * 2)
    episode = np.repeat([0, 1], 6)
    y = 10.0 * agent + 0.5 * stress + np.array([0, 0.01, 0, 0, -0.01, 0] * 2)
    slopes = unit_slopes({"stress": stress}, y, episode, within=agent)["stress"]
    assert slopes == pytest.approx([0.5, 0.5], abs=0.06)
    assert ols_slope(stress, y)[0] > 8
    # Two predictors at once, and a unit where they cannot be separated gets nan.
    mood = np.array([0.3, 0.1, 0.2, 0.0, 0.4, 0.1, 0.0, 0.1, 0.2, 1.0, 1.1, 1.2])
    joint = unit_slopes({"stress": stress, "mood": mood}, y, episode, within=agent)
    assert math.isfinite(joint["stress"][0])
    assert math.isnan(joint["stress"][1])


def test_holm_matches_the_step_down_rule():
    assert holm([0.01, 0.04, 0.03, math.nan]) == pytest.approx(
        [0.03, 0.06, 0.06, math.nan], nan_ok=True
    )
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


@pytest.mark.parametrize(
    ("amounts", "expected"),
    [([1, 1, 1, 1], 0.0), ([0, 0, 0, 4], 0.75), ([1, 2, 3, 4], 0.25), ([0, 0], 0.0)],
)
def test_gini_known_values(amounts, expected):
    assert gini(amounts) == pytest.approx(expected)


def test_gini_refuses_negative_amounts():
    with pytest.raises(ValueError, match="non-negative"):
        gini([1.0, -1.0])


def test_an_estimate_carries_its_units_sd_and_minimum_detectable_effect():
    estimate = mean_interval([1.0, 2.0, 3.0, 6.0], label="x", unit="episodes")
    assert estimate.sd == pytest.approx(math.sqrt(14 / 3))
    # (t(0.975, 3) + t(0.8, 3)) * sd / sqrt(4) = (3.182446 + 0.978472) * 2.160247 / 2
    assert estimate.mde == pytest.approx(4.160918 * math.sqrt(14 / 3) / 2, rel=1e-5)
    assert estimate.pilot
    assert estimate.to_dict()["sd"] == estimate.sd
    assert estimate.to_dict()["mde"] == estimate.mde
    assert estimate.to_dict()["pilot"] is True
    many = mean_interval(np.arange(30.0), label="x", unit="seeds")
    assert many.method == "BCa bootstrap"
    assert many.sd == pytest.approx(np.std(np.arange(30.0), ddof=1))
    assert not many.pilot
    assert mean_interval([4.0, 4.0], label="x", unit="seeds").sd == 0.0
    assert math.isnan(mean_interval([4.0], label="x", unit="seeds").mde)


def test_units_needed_inverts_the_minimum_detectable_effect():
    # Large n: the normal approximation (1.96 + 0.84)^2 (sd / effect)^2 = 7.85 * 100 = 785.
    assert units_needed(1.0, 0.1) == pytest.approx(787, abs=2)
    for sd, effect in ((1.0, 0.5), (2.5, 1.0), (0.3, 0.05)):
        n = units_needed(sd, effect)
        assert minimum_detectable_effect(sd, n) <= effect < minimum_detectable_effect(sd, n - 1)
    assert units_needed(1.0, 0.0, limit=50) == 50
    assert units_needed(0.0, 1.0) == 2
    assert minimum_detectable_effect(1.0, 1) != minimum_detectable_effect(1.0, 1)  # nan
    with pytest.raises(ValueError, match="sd"):
        units_needed(math.nan, 1.0)
