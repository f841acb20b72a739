"""Perolat et al.'s social outcome metrics against numbers worked out by hand."""

import math

import numpy as np
import pytest

from valuegym.analysis.social import (
    efficiency,
    episode_outcomes,
    equality,
    outcome_intervals,
    peace,
    sustainability,
)


def returns_as_rewards(returns):
    """One step whose rewards are the returns."""
    return np.asarray([returns], dtype=np.float64)


@pytest.mark.parametrize(
    ("returns", "expected"),
    [
        ([1.0, 1.0, 1.0, 1.0], 1.0),  # all equal: Gini 0
        ([0.0, 0.0, 0.0, 4.0], 0.25),  # one has all: Gini 1 - 1/4
        ([1.0, 3.0], 0.75),  # Gini = |1 - 3| / (2 * 2 * 2) = 0.25
        ([1.0, 2.0, 3.0], 1 - 2 / 9),  # sum over pairs |xi - xj| (8) / (2 n^2 mean) (36)
        ([0.0, 0.0], 1.0),  # nothing to share: equal
    ],
)
def test_equality_is_one_minus_the_gini_of_returns(returns, expected):
    assert equality(returns_as_rewards(returns)) == pytest.approx(expected)


def test_equality_is_not_defined_for_negative_returns():
    assert math.isnan(equality(returns_as_rewards([-1.0, 2.0])))


def test_efficiency_is_the_mean_return_per_agent():
    rewards = np.array([[1.0, 0.0, 2.0], [0.5, 0.5, 0.0]])  # returns 1.5, 0.5, 2.0
    assert efficiency(rewards) == pytest.approx(4.0 / 3.0)


def test_sustainability_is_the_mean_step_of_reward_averaged_over_agents():
    rewards = np.array(
        [
            [1.0, 0.0, 0.0],
            [0.0, 0.0, 0.0],
            [2.0, 1.0, 0.0],
            [0.0, 1.0, 0.0],
        ]
    )
    # agent 0 at steps 1 and 3 (mean 2), agent 1 at 3 and 4 (3.5), agent 2 never (left out)
    assert sustainability(rewards) == pytest.approx((2.0 + 3.5) / 2)
    assert math.isnan(sustainability(np.zeros((4, 2))))
    # a population that collects late is more sustainable than one that collects early
    early, late = np.zeros((10, 1)), np.zeros((10, 1))
    early[:3], late[:] = 1.0, 1.0
    assert sustainability(early) == 2.0 < sustainability(late) == 5.5


def test_peace_is_the_share_of_agent_steps_not_harmed():
    harmed = np.array([[0.0, 2.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    assert peace(harmed) == pytest.approx(6 / 8)
    assert math.isnan(peace(None))  # the env defines no harm: not a number


def test_episode_outcomes_per_group_and_intervals_over_episodes():
    rewards = np.array([[1.0, 0.0, 3.0], [1.0, 2.0, 0.0]])
    harmed = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    groups = {"focal": [0], "background": [1, 2], "all": [0, 1, 2]}
    outcomes = episode_outcomes(rewards, harmed, groups)
    assert outcomes["focal"] == {
        "efficiency": 2.0,
        "equality": 1.0,
        "sustainability": 1.5,
        "peace": 1.0,
    }
    assert outcomes["background"]["efficiency"] == 2.5
    assert outcomes["background"]["equality"] == pytest.approx(1 - 1 / 10)  # returns 2, 3
    assert outcomes["background"]["peace"] == 0.75
    assert outcomes["all"]["sustainability"] == pytest.approx((1.5 + 2.0 + 1.0) / 3)
    second = episode_outcomes(rewards * 2.0, None, groups)
    intervals = outcome_intervals([outcomes, second])
    focal_return = intervals["focal"]["efficiency"]
    assert focal_return.value == 3.0
    assert focal_return.n_units == 2
    assert focal_return.unit == "episodes"
    assert focal_return.method == "t"
    # t with 1 degree of freedom: 3 +- 12.706 * sd(2, 4) / sqrt(2)
    assert focal_return.high - focal_return.value == pytest.approx(12.7062, rel=1e-4)
    # peace is defined in one episode only: its interval is over that one
    assert intervals["all"]["peace"].n_units == 1


def test_the_module_example_runs():
    import doctest

    from valuegym.analysis import social

    result = doctest.testmod(social)
    assert result.attempted > 0
    assert result.failed == 0
