import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from valuegym.values import HomeostaticDrive, UtilityCurve

CURVES = [
    UtilityCurve("log", scale=1.0),
    UtilityCurve("log", scale=3.0),
    UtilityCurve("isoelastic", scale=1.0, eta=0.5),
    UtilityCurve("isoelastic", scale=2.0, eta=2.0),
    UtilityCurve("isoelastic", scale=0.5, eta=1.0),
    UtilityCurve("saturating", scale=1.0),
    UtilityCurve("saturating", scale=4.0),
]
stocks = st.floats(min_value=0.0, max_value=50.0, allow_nan=False)
steps = st.floats(min_value=1e-3, max_value=10.0)
steepening = st.floats(min_value=0.2, max_value=3.0)


@pytest.mark.parametrize("curve", CURVES, ids=repr)
@given(stock=stocks, step=steps, g=steepening)
@settings(max_examples=60, deadline=None)
def test_marginal_utility_is_positive_and_decreasing(curve, stock, step, g):
    here = float(curve.marginal_utility(stock, g))
    further = float(curve.marginal_utility(stock + step, g))
    assert here > 0
    assert further < here


@pytest.mark.parametrize("curve", CURVES, ids=repr)
@given(stock=st.floats(min_value=0.01, max_value=20.0), g=steepening)
@settings(max_examples=40, deadline=None)
def test_numeric_derivative_equals_analytic_marginal(curve, stock, g):
    h = 1e-6 * max(1.0, stock)
    numeric = (curve.utility(stock + h, g) - curve.utility(stock - h, g)) / (2 * h)
    assert numeric == pytest.approx(float(curve.marginal_utility(stock, g)), rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("curve", CURVES, ids=repr)
def test_same_amount_is_worth_less_after_consuming_more(curve):
    amount = 1.0
    gains = [float(curve.gain(stock, amount)) for stock in (0.0, 1.0, 2.0, 5.0, 10.0)]
    assert all(later < earlier for earlier, later in itertools.pairwise(gains))
    assert curve.utility(0.0) == 0.0


def test_closed_forms():
    s = np.array([0.0, 0.5, 2.0, 7.0])
    np.testing.assert_allclose(UtilityCurve("log", 2.0).utility(s), np.log1p(s / 2))
    np.testing.assert_allclose(
        UtilityCurve("isoelastic", 1.0, eta=3.0).utility(s), ((1 + s) ** -2 - 1) / -2
    )
    np.testing.assert_allclose(UtilityCurve("saturating", 2.0).utility(s), 1 - np.exp(-s / 2))
    np.testing.assert_allclose(
        UtilityCurve("saturating", 2.0).marginal_utility(s), np.exp(-s / 2) / 2
    )


@given(stock=stocks)
@settings(max_examples=50, deadline=None)
def test_isoelastic_with_eta_one_is_the_log_curve(stock):
    log = UtilityCurve("log", scale=1.5)
    for eta in (1.0, 1.0 + 1e-9, 1.0 - 1e-9):
        iso = UtilityCurve("isoelastic", scale=1.5, eta=eta)
        assert float(iso.utility(stock)) == pytest.approx(
            float(log.utility(stock)), rel=1e-6, abs=1e-12
        )


def test_steepening_keeps_the_first_unit_and_shrinks_later_ones():
    for curve in CURVES:
        assert float(curve.marginal_utility(0.0, 2.0)) == pytest.approx(1 / curve.scale)
        assert float(curve.marginal_utility(3.0, 2.0)) < float(curve.marginal_utility(3.0))


def test_homeostatic_reward_equals_drive_reduction():
    drive = HomeostaticDrive(setpoint=(5.0, 3.0), power=4.0, root=2.0)
    state = np.array([1.0, 2.5])
    outcome = np.array([2.0, 0.0])
    d_before = math.sqrt(4.0**4 + 0.5**4)
    d_after = math.sqrt(2.0**4 + 0.5**4)
    assert float(drive.drive(state)) == pytest.approx(d_before)
    assert float(drive.reward(state, outcome)) == pytest.approx(d_before - d_after)
    assert float(drive.reward(state, outcome)) > 0
    overshoot = np.array([10.0, 0.0])
    assert float(drive.reward(state, overshoot)) < 0  # past the set point is worse


@given(h=st.floats(min_value=0.0, max_value=4.9), other=st.floats(min_value=0.0, max_value=6.0))
@settings(max_examples=60, deadline=None)
def test_homeostatic_marginal_is_positive_below_setpoint_and_matches_gradient(h, other):
    drive = HomeostaticDrive(setpoint=(5.0, 3.0), power=4.0, root=2.0, weights=(1.0, 2.0))
    state = np.array([h, other])
    marginal = drive.marginal_utility(state)
    assert marginal[0] > 0
    eps = 1e-6
    step = np.array([eps, 0.0])
    numeric = -(drive.drive(state + step) - drive.drive(state - step)) / (2 * eps)
    assert float(numeric) == pytest.approx(float(marginal[0]), rel=1e-4, abs=1e-7)
    # one dimension alone: positive and decreasing toward the set point
    single = HomeostaticDrive(setpoint=(5.0,))
    assert (
        single.marginal_utility(np.array([h + 0.05]))[0] < single.marginal_utility(np.array([h]))[0]
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "cubic"}, "curve"),
        ({"scale": 0.0}, "scale"),
        ({"kind": "isoelastic", "eta": 0.0}, "eta"),
        ({"kind": "isoelastic", "eta": -1.0}, "eta"),
        ({"kind": "log", "eta": 2.0}, "eta"),
    ],
)
def test_bad_curve_parameters_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        UtilityCurve(**kwargs)


def test_bad_drive_parameters_name_the_field():
    with pytest.raises(ValueError, match="power"):
        HomeostaticDrive(setpoint=(1.0,), power=2.0, root=2.0)
    with pytest.raises(ValueError, match="root"):
        HomeostaticDrive(setpoint=(1.0,), power=4.0, root=0.5)
    with pytest.raises(ValueError, match="weights"):
        HomeostaticDrive(setpoint=(1.0, 2.0), weights=(1.0,))


@pytest.mark.parametrize("curve", CURVES, ids=repr)
@given(stock=stocks, amount=steps)
@settings(max_examples=60, deadline=None)
def test_gain_is_the_difference_of_utilities(curve, stock, amount):
    difference = float(curve.utility(stock + amount)) - float(curve.utility(stock))
    assert float(curve.gain(stock, amount)) == pytest.approx(difference, rel=1e-9, abs=1e-12)


def test_gain_keeps_its_digits_where_the_difference_of_utilities_cancels():
    # A tiny amount at a large stock: u(s + a) - u(s) keeps a few digits of a small number;
    # the closed forms keep them all.
    stock, amount = 1e6, 1e-9
    log = UtilityCurve("log", scale=2.0)
    assert float(log.gain(stock, amount)) == math.log1p(amount / (2.0 + stock))
    saturating = UtilityCurve("saturating", scale=1.0)
    exact = math.exp(-5.0) * -math.expm1(-amount)
    assert float(saturating.gain(5.0, amount)) == pytest.approx(exact, rel=1e-14)
    naive = float(saturating.utility(5.0 + amount)) - float(saturating.utility(5.0))
    assert abs(naive - exact) / exact > 1e-9  # what the old formula lost
