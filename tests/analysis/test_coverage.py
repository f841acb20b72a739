"""Nominal 95% intervals hold their coverage in the layouts the shipped scenarios produce.

Each test simulates summaries with a known truth (not envs: seconds, not hours) and counts how
often the report's interval covers it. With 1000 replicates the binomial standard error of a
95% coverage is 0.7 points, so the 92-98% band is more than four of them either side: a method
with the issue's old coverage (74%, or 80% under a persona effect) fails by a wide margin,
and an honest one passes by chance alone in all but about one run in 40,000.
"""

import numpy as np
import pytest
from scipy import stats

from valuegym.analysis.statistics import mean_interval, unit_slopes

REPLICATES = 1000


def simulate_run(
    rng: np.random.Generator,
    *,
    slope: float,
    persona_sd: float,
    episodes: int,
    agents: int = 3,
    utterances: int = 6,
) -> dict[str, np.ndarray]:
    """Utterance rows of a conversation run: personas, shared chat, autocorrelated stress.

    Stress starts from a per-agent baseline (calm to swamped, as in the quickstart) and drifts
    as an AR(1) series; a persona shifts an agent's entropy in every episode; the shared chat
    adds a shock per episode and step felt by every agent; residuals are AR(1) too.
    """
    baseline = np.linspace(0.05, 0.9, agents)
    persona = rng.normal(0.0, persona_sd, agents)
    rows = episodes * agents * utterances
    episode = np.repeat(np.arange(episodes), agents * utterances)
    agent = np.tile(np.repeat(np.arange(agents), utterances), episodes)
    step = np.tile(np.arange(utterances), episodes * agents)
    drift = np.zeros(rows)
    residual = np.zeros(rows)
    shocks, noise = rng.normal(0.0, 0.1, rows), rng.normal(0.0, 0.3, rows)
    for t in range(utterances):
        now = step == t
        previous = np.roll(now, -1)
        drift[now] = (0.8 * drift[previous] if t else 0.0) + shocks[now]
        residual[now] = (0.6 * residual[previous] if t else 0.0) + noise[now]
    stress = np.clip(baseline[agent] + drift, 0.0, 1.0)
    mood = 0.6 - 1.2 * baseline[agent] + rng.normal(0.0, 0.1, rows)
    chat = rng.normal(0.0, 0.2, (episodes, utterances))[episode, step]
    entropy = 2.0 + persona[agent] + slope * stress + chat + residual
    return {"episode": episode, "agent": agent, "stress": stress, "mood": mood, "y": entropy}


def run_slope(run: dict[str, np.ndarray]):
    """The run report's stress contrast: within-agent slopes per episode, t over episodes."""
    slopes = unit_slopes(
        {"stress": run["stress"], "mood": run["mood"]},
        run["y"],
        run["episode"],
        within=run["agent"],
    )
    return mean_interval(slopes["stress"], label="stress", unit="episodes")


def rates(estimates, truth: float) -> tuple[float, float]:
    """Share of intervals covering ``truth``, and share excluding zero."""
    covered = np.mean([e.low <= truth <= e.high for e in estimates])
    return float(covered), float(np.mean([e.excludes_zero for e in estimates]))


@pytest.mark.parametrize(("episodes", "persona_sd"), [(2, 0.0), (2, 0.6), (6, 0.3), (10, 0.6)])
def test_run_slope_interval_covers_the_truth(episodes, persona_sd):
    rng = np.random.default_rng(episodes)
    estimates = [
        run_slope(simulate_run(rng, slope=0.8, persona_sd=persona_sd, episodes=episodes))
        for _ in range(REPLICATES)
    ]
    covered, _ = rates(estimates, 0.8)
    assert 0.92 <= covered <= 0.98
    assert all(e.n_units == episodes and e.method == "t" for e in estimates)


@pytest.mark.parametrize(("episodes", "persona_sd"), [(2, 0.6), (10, 0.6)])
def test_run_slope_under_the_null_rarely_excludes_zero(episodes, persona_sd):
    rng = np.random.default_rng(100 + episodes)
    estimates = [
        run_slope(simulate_run(rng, slope=0.0, persona_sd=persona_sd, episodes=episodes))
        for _ in range(REPLICATES)
    ]
    _, false_positives = rates(estimates, 0.0)
    assert false_positives <= 0.08


LEVELS = np.array([0.0, 0.5, 1.0])


def simulate_sweep(rng: np.random.Generator, *, slope: float, seeds: int = 3) -> np.ndarray:
    """Cell means of a sweep, shape ``(levels, seeds)``: the stress sweep's 3 x 3 layout.

    A seed shares its random numbers across levels (common random numbers), so each seed
    shifts all its cells alike; each cell adds its own noise.
    """
    seed_effect = rng.normal(0.0, 0.3, seeds)
    cell_noise = rng.normal(0.0, 0.2, (LEVELS.size, seeds))
    return 2.0 + slope * LEVELS[:, None] + seed_effect[None, :] + cell_noise


def sweep_estimates(cells: np.ndarray):
    """The sweep report's numbers: per-level means over seeds, and the per-seed slope."""
    levels = [mean_interval(row, label="level", unit="seeds") for row in cells]
    seeds = np.tile(np.arange(cells.shape[1]), LEVELS.size)
    per_seed = unit_slopes({"level": np.repeat(LEVELS, cells.shape[1])}, cells.ravel(), seeds)
    return levels, mean_interval(per_seed["level"], label="slope", unit="seeds")


@pytest.mark.parametrize("seeds", [3, 8])
def test_sweep_level_means_and_slope_cover_the_truth(seeds):
    rng = np.random.default_rng(seeds)
    runs = [sweep_estimates(simulate_sweep(rng, slope=0.5, seeds=seeds)) for _ in range(REPLICATES)]
    for index, level in enumerate(LEVELS):
        covered, _ = rates([levels[index] for levels, _ in runs], 2.0 + 0.5 * level)
        assert 0.92 <= covered <= 0.98
    covered, _ = rates([slope for _, slope in runs], 0.5)
    assert 0.92 <= covered <= 0.98
    assert all(slope.n_units == seeds for _, slope in runs)


def test_sweep_slope_under_the_null_rarely_excludes_zero():
    rng = np.random.default_rng(33)
    slopes = [sweep_estimates(simulate_sweep(rng, slope=0.0))[1] for _ in range(REPLICATES)]
    _, false_positives = rates(slopes, 0.0)
    assert false_positives <= 0.08


def test_many_units_switch_to_bca_and_keep_coverage_of_a_skewed_mean():
    # 30 episodes whose returns are skewed (gamma, shape 2): the BCa bootstrap over units.
    rng = np.random.default_rng(5)
    estimates = [
        mean_interval(rng.gamma(2.0, 1.0, 30), label="return", unit="episodes", seed=trial)
        for trial in range(REPLICATES)
    ]
    assert {e.method for e in estimates} == {"BCa bootstrap"}
    covered, _ = rates(estimates, 2.0)
    assert 0.92 <= covered <= 0.98
    null = [
        mean_interval(rng.gamma(2.0, 1.0, 30) - 2.0, label="x", unit="episodes", seed=trial)
        for trial in range(REPLICATES)
    ]
    _, false_positives = rates(null, 0.0)
    assert false_positives <= 0.08
    # The p-value inverts the interval: below 0.05 exactly when zero lies outside.
    assert all((e.p_value < 0.05) == e.excludes_zero for e in null if abs(e.p_value - 0.05) > 0.005)


def test_the_simulated_run_is_hard_enough_to_fail_rows_as_units():
    # The same null layout analysed the old way (one OLS over utterance rows, rows as units)
    # excludes zero far too often: the coverage tests above would catch that method.
    rng = np.random.default_rng(9)
    false_positives = np.mean(
        [
            stats.linregress(run["stress"], run["y"]).pvalue < 0.05
            for run in (
                simulate_run(rng, slope=0.0, persona_sd=0.6, episodes=2) for _ in range(200)
            )
        ]
    )
    assert false_positives > 0.3
