import numpy as np
import pytest

from valuegym.analysis.models import fit_mixed_model, within_between


def nested_design(rng, *, episodes, episode_sd, agent_sd, slope=0.7):
    """Rows of ``episodes`` x 3 agents x 10 steps with random intercepts of known spread."""
    episode = np.repeat(np.arange(episodes), 30)
    agent = np.tile(np.repeat(["a", "b", "c"], 10), episodes)
    stress = rng.uniform(0.0, 1.0, episode.size)
    intercepts = rng.normal(0.0, agent_sd, (episodes, 3))[
        episode, np.searchsorted(["a", "b", "c"], agent)
    ]
    y = 2.0 + slope * stress + rng.normal(0.0, episode_sd, episodes)[episode] + intercepts
    y = y + rng.normal(0.0, 0.2, episode.size)
    return {"episode": episode, "agent": agent, "stress": stress, "y": y}


def test_within_between_splits_a_predictor_per_agent_and_episode():
    values = np.array([1.0, 3.0, 10.0, 20.0, 5.0, 7.0])
    episodes = np.array([0, 0, 0, 0, 1, 1])
    agents = np.array(["a", "a", "b", "b", "a", "a"])
    within, between = within_between(values, episodes, agents)
    assert between.tolist() == [2.0, 2.0, 15.0, 15.0, 6.0, 6.0]
    assert within.tolist() == [-1.0, 1.0, -5.0, 5.0, -1.0, 1.0]


def test_a_nested_model_recovers_its_slope_and_writes_its_formula():
    data = nested_design(np.random.default_rng(0), episodes=12, episode_sd=0.5, agent_sd=0.4)
    data["stress_twice"] = 2 * data["stress"]
    fit = fit_mixed_model(data, "y", ["stress", "stress_twice"], group="episode", nested="agent")
    assert fit.formula == "y ~ stress + (1 | episode/agent)"
    assert fit.left_out == ("stress_twice",)
    assert fit.message == ""
    (stress,) = fit.estimates
    assert stress.low < 0.7 < stress.high
    assert stress.value == pytest.approx(0.7, abs=0.1)
    assert (stress.n_units, stress.unit) == (12, "episodes")


def test_too_few_groups_and_a_singular_fit_are_declined_in_words():
    rng = np.random.default_rng(1)
    few = fit_mixed_model(
        nested_design(rng, episodes=3, episode_sd=0.5, agent_sd=0.4),
        "y",
        ["stress"],
        group="episode",
        nested="agent",
    )
    assert few.estimates == ()
    assert few.message.startswith("not fitted: 3 episodes")
    # No episode-level variation at all: its variance is estimated at 0.
    flat = fit_mixed_model(
        nested_design(rng, episodes=10, episode_sd=0.0, agent_sd=0.0),
        "y",
        ["stress"],
        group="episode",
        nested="agent",
    )
    assert flat.estimates == ()
    assert flat.message.startswith("singular fit")
