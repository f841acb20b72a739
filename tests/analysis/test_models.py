import numpy as np
import pytest

from valuegym.analysis.models import fit_mixed_model, within_between


def crossed_design(rng, *, episodes, episode_sd, agent_sd, slope=0.7):
    """Rows of ``episodes`` x 3 agents x 10 steps; each agent's persona recurs every episode."""
    episode = np.repeat(np.arange(episodes), 30)
    agent_index = np.tile(np.repeat([0, 1, 2], 10), episodes)
    stress = rng.uniform(0.0, 1.0, episode.size)
    persona = rng.normal(0.0, agent_sd, 3)[agent_index]  # the same in every episode
    y = 2.0 + slope * stress + rng.normal(0.0, episode_sd, episodes)[episode] + persona
    y = y + rng.normal(0.0, 0.2, episode.size)
    agent = np.array(["a", "b", "c"])[agent_index]
    return {"episode": episode, "agent": agent, "stress": stress, "y": y}


def without_episode_spread(data, slope=0.7):
    """The same rows with every episode's mean residual (beside the slope) made equal."""
    y, episode = data["y"], data["episode"]
    residual = y - slope * data["stress"]
    means = np.bincount(episode, residual) / np.bincount(episode)
    return {**data, "y": y - means[episode] + residual.mean()}


def test_within_between_splits_a_predictor_per_agent_and_episode():
    values = np.array([1.0, 3.0, 10.0, 20.0, 5.0, 7.0])
    episodes = np.array([0, 0, 0, 0, 1, 1])
    agents = np.array(["a", "a", "b", "b", "a", "a"])
    within, between = within_between(values, episodes, agents)
    assert between.tolist() == [2.0, 2.0, 15.0, 15.0, 6.0, 6.0]
    assert within.tolist() == [-1.0, 1.0, -5.0, 5.0, -1.0, 1.0]


def test_a_crossed_model_recovers_its_slope_variances_and_writes_its_formula():
    rng = np.random.default_rng(0)
    data = crossed_design(rng, episodes=12, episode_sd=0.5, agent_sd=1.0)
    data["stress_twice"] = 2 * data["stress"]
    fit = fit_mixed_model(data, "y", ["stress", "stress_twice"], group="episode", crossed="agent")
    assert fit.formula == "y ~ stress + (1 | episode) + (1 | agent)"
    assert fit.left_out == ("stress_twice",)
    assert (fit.message, fit.fallback) == ("", "")
    (stress,) = fit.estimates
    assert stress.low < 0.7 < stress.high
    assert stress.value == pytest.approx(0.7, abs=0.1)
    assert (stress.n_units, stress.unit) == (12, "episodes")
    assert fit.variances["residual"] == pytest.approx(0.04, rel=0.2)
    assert fit.variances["episode"] == pytest.approx(0.25, rel=0.6)
    assert fit.variances["agent"] > 0.1  # three personas: a rough variance, but not 0
    assert set(fit.to_dict()) >= {"fallback", "variances", "estimates"}


def test_too_few_groups_are_declined_and_a_singular_component_is_dropped_in_words():
    rng = np.random.default_rng(1)
    few = fit_mixed_model(
        crossed_design(rng, episodes=3, episode_sd=0.5, agent_sd=0.4),
        "y",
        ["stress"],
        group="episode",
        crossed="agent",
    )
    assert few.estimates == ()
    assert few.message.startswith("not fitted: 3 episodes")
    # Episode means that agree exactly: the episode variance is estimated at 0 and dropped.
    no_episode = fit_mixed_model(
        without_episode_spread(crossed_design(rng, episodes=10, episode_sd=0.0, agent_sd=1.0)),
        "y",
        ["stress"],
        group="episode",
        crossed="agent",
    )
    assert no_episode.message == ""
    assert no_episode.formula == "y ~ stress + (1 | agent)"
    assert no_episode.fallback.startswith("the random-intercept variance of episode was")
    assert "10 - 1 degrees of freedom" in no_episode.fallback
    (stress,) = no_episode.estimates
    assert stress.method == "mixed model (Wald, t)"
    # A large persona variance: the slope is the one within agents (least squares with a
    # dummy per agent), to the optimiser's precision.
    data = without_episode_spread(crossed_design(rng, episodes=10, episode_sd=0.0, agent_sd=1.0))
    fit = fit_mixed_model(data, "y", ["stress"], group="episode", crossed="agent")
    dummies = np.column_stack([data["stress"], *(data["agent"] == a for a in "abc")])
    within = np.linalg.lstsq(dummies.astype(float), data["y"], rcond=None)[0][0]
    assert fit.estimates[0].value == pytest.approx(within, abs=0.005)
    # Neither: ordinary least squares, still with episodes - 1 degrees of freedom.
    flat_data = without_episode_spread(
        crossed_design(rng, episodes=10, episode_sd=0.0, agent_sd=0.0)
    )
    flat = fit_mixed_model(
        flat_data,
        "y",
        ["stress"],
        group="episode",
        crossed="agent",
    )
    assert flat.formula == "y ~ stress"
    assert "episode and agent" in flat.fallback
    assert "least squares" in flat.fallback
    (stress,) = flat.estimates
    assert stress.method == "least squares (Wald, t)"
    assert stress.low < 0.7 < stress.high
    # the t quantile on episodes - 1 = 9 degrees of freedom times the least-squares error
    x = np.column_stack([np.ones(300), flat_data["stress"]])
    residual = flat_data["y"] - x @ np.linalg.lstsq(x, flat_data["y"], rcond=None)[0]
    error = np.sqrt(residual @ residual / 298 * np.linalg.inv(x.T @ x)[1, 1])
    assert (stress.high - stress.low) / 2 == pytest.approx(2.262157 * error, rel=1e-5)


def test_one_grouping_factor_is_a_plain_random_intercept():
    data = crossed_design(np.random.default_rng(4), episodes=8, episode_sd=0.5, agent_sd=0.0)
    fit = fit_mixed_model(data, "y", ["stress"], group="episode")
    assert fit.formula == "y ~ stress + (1 | episode)"
    assert fit.fallback == ""
    assert fit.estimates[0].low < 0.7 < fit.estimates[0].high
