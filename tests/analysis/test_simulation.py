"""The report's replay, factor and model intervals hold their coverage in quickstart-like designs.

Each replicate simulates the records a quickstart run writes (5 to 8 episodes; four agent
entries in a 2 x 2 persona x stress design; 2 replayed contexts per entry and episode; replay
cells prompt_stress {0.1, 0.9} x temperature {0.7, 1.0} plus a placebo cell per temperature;
K = 2 samples) as rows in the records' own format, and feeds them to the real functions.

The truth varies by episode, as in a real run: random episode intercepts *and* effects whose
size varies from episode to episode, at two intra-class correlations (ICC: the share of an
effect's variance that lies between episodes, 0.5 and 0.9), besides context-to-context and
sample-to-sample noise. The estimand is the mean effect over episodes.

With 1000 replicates the binomial standard error of a 95% coverage is 0.7 points and of a 5%
false-positive rate also 0.7 points, so the bands [0.92, 0.98] and [0.025, 0.075] are about
four standard errors wide on each side: an honest method fails them by chance about once in
10,000 runs, while the issue's methods (contexts as units, a deranged placebo) miss them by far.
"""

import math

import numpy as np
import pytest
from scipy import stats

from valuegym.analysis.channels import paired_contrast, placebo_check
from valuegym.analysis.factors import factor_contrasts
from valuegym.analysis.models import fit_mixed_model, within_between

REPLICATES = 1000
COVERAGE_BAND = (0.92, 0.98)
FALSE_POSITIVE_BAND = (0.025, 0.075)

#: Entry -> (persona level, stress level): the quickstart's 2 x 2 between-agent design.
ENTRIES = {
    "calm_plain": (0, 0),
    "stressed_plain": (0, 1),
    "calm_ornate": (1, 0),
    "stressed_ornate": (1, 1),
}
FACTORS = {
    "persona": {
        "plain": ["calm_plain", "stressed_plain"],
        "ornate": ["calm_ornate", "stressed_ornate"],
    },
    "stress": {
        "calm": ["calm_plain", "calm_ornate"],
        "stressed": ["stressed_plain", "stressed_ornate"],
    },
}
GRID = ((0.1, 0.7), (0.1, 1.0), (0.9, 0.7), (0.9, 1.0))  # (stated stress, temperature)
PLACEBO_TEMPERATURES = (0.7, 1.0)
CONTEXTS_PER_ENTRY = 2
SAMPLES = 2


def episode_sd(icc: float, within_sd: float) -> float:
    """The between-episode sd that makes ``icc`` the between-episode share of the variance."""
    return within_sd * math.sqrt(icc / (1.0 - icc))


class ReplayDesign:
    """The fixed layout of a replay's rows; each replicate only fills in the numbers."""

    def __init__(self, episodes: int) -> None:
        self.episodes = episodes
        self.contexts = episodes * len(ENTRIES) * CONTEXTS_PER_ENTRY
        names = list(ENTRIES)
        templates, columns = [], []
        for context in range(self.contexts):
            episode, rest = divmod(context, len(ENTRIES) * CONTEXTS_PER_ENTRY)
            entry, slot = divmod(rest, CONTEXTS_PER_ENTRY)
            cells = [(f"c{i:03d}", False, s, t) for i, (s, t) in enumerate(GRID)]
            cells += [(f"p{i:03d}", True, math.nan, t) for i, t in enumerate(PLACEBO_TEMPERATURES)]
            for cell_number, (cell, placebo, stress, temperature) in enumerate(cells):
                for sample in range(SAMPLES):
                    templates.append(
                        {
                            "episode": episode,
                            "step": 5 + 10 * slot,
                            "agent": names[entry],
                            "entry": names[entry],
                            "entry_index": entry,
                            "agent_kind": "lm",
                            # the same id in every episode, as a persona's context id can be
                            "context_id": f"{names[entry]}-{slot}",
                            "cell": cell,
                            "placebo": placebo,
                            "set_stress": stress,
                            "set_mood": math.nan,
                            "set_temperature": temperature,
                            "temperature": temperature,
                            "sample": sample,
                        }
                    )
                    columns.append(
                        (context, episode, entry, placebo, stress, temperature, cell_number)
                    )
        self.templates = templates
        table = np.array(columns, dtype=np.float64)
        self.context = table[:, 0].astype(np.int64)
        self.episode = table[:, 1].astype(np.int64)
        self.entry = table[:, 2].astype(np.int64)
        self.placebo = table[:, 3].astype(bool)
        self.hot = table[:, 5] == 1.0
        self.high = table[:, 4] == 0.9
        # one stated level per placebo cell of a context (the samples share it)
        self.placebo_cell = (table[:, 0] * 2 + (table[:, 6] - len(GRID))).astype(np.int64)
        entry_levels = np.array(list(ENTRIES.values()))
        self.context_group = entry_levels[
            (np.arange(self.contexts) // CONTEXTS_PER_ENTRY) % len(ENTRIES), 1
        ]
        self.row_persona = entry_levels[self.entry, 0]

    def simulate(
        self,
        rng: np.random.Generator,
        *,
        icc: float,
        temperature: float,
        prompt: float,
        interaction: float,
        context_slope: float = 0.0,
    ) -> list[dict]:
        """Replay rows of one run; ``context_slope`` is the placebo's estimand."""
        e, c = self.episodes, self.contexts
        ctx, ep = self.context, self.episode
        actual = 0.25 + 0.45 * self.context_group + rng.uniform(-0.2, 0.2, c)
        level = (
            2.0
            + rng.normal(0.0, episode_sd(icc, 1.0), e)[ep]
            + rng.normal(0.0, 1.0, c)[ctx]
            + 0.7 * self.row_persona
        )

        def effect(mean: float) -> np.ndarray:
            """Per row: the mean effect, varied by episode and by context."""
            return (
                mean + rng.normal(0.0, episode_sd(icc, 0.5), e)[ep] + rng.normal(0.0, 0.5, c)[ctx]
            )

        stated = rng.uniform(0.0, 1.0, 2 * c)[self.placebo_cell]
        stated_mood = rng.uniform(-1.0, 1.0, 2 * c)[self.placebo_cell]
        prompt_level = np.where(self.placebo, (stated - 0.1) / 0.8, self.high.astype(float))
        slope = context_slope + rng.normal(0.0, episode_sd(icc, 0.5), e)[ep]
        y = (
            level
            + slope * actual[ctx]
            + effect(temperature) * self.hot
            + effect(prompt) * prompt_level
            + effect(interaction) * self.hot * prompt_level
            + rng.normal(0.0, 1.0, ctx.size)
        )
        stated_stress = np.where(self.placebo, stated, np.where(self.high, 0.9, 0.1))
        stated_mood = np.where(self.placebo, stated_mood, 0.0)
        return [
            {
                **template,
                "prompt_stress": s,
                "prompt_mood": m,
                "actual_stress": a,
                "sequence_entropy": v,
            }
            for template, s, m, a, v in zip(
                self.templates,
                stated_stress.tolist(),
                stated_mood.tolist(),
                actual[ctx].tolist(),
                y.tolist(),
                strict=True,
            )
        ]


ESTIMANDS = {
    # name: (channel, levels, held settings)
    "temperature": ("temperature", (0.7, 1.0), {"prompt_stress": 0.9}),
    "prompt_stress": ("prompt_stress", (0.1, 0.9), {"temperature": 1.0}),
    "interaction": ("interaction", (0.1, 0.9), {}),
}


def replay_estimates(rows: list[dict]) -> dict:
    found = {
        name: paired_contrast(rows, "sequence_entropy", channel, levels, at).estimate
        for name, (channel, levels, at) in ESTIMANDS.items()
    }
    found["placebo"] = placebo_check(rows).estimate
    return found


def run_replays(episodes: int, icc: float, seed: int, **effects: float) -> dict[str, list]:
    design = ReplayDesign(episodes)
    rng = np.random.default_rng(seed)
    runs = [replay_estimates(design.simulate(rng, icc=icc, **effects)) for _ in range(REPLICATES)]
    return {name: [run[name] for run in runs] for name in runs[0]}


def coverage(estimates, truth: float) -> float:
    return float(np.mean([e.low <= truth <= e.high for e in estimates]))


def false_positives(estimates) -> float:
    return float(np.mean([e.excludes_zero for e in estimates]))


def within(value: float, band: tuple[float, float]) -> bool:
    return band[0] <= value <= band[1]


# ICC 0.5 with the fewest episodes the report gives an interval for; 0.9 with 8.
DESIGNS = [(5, 0.5), (8, 0.9)]


@pytest.mark.parametrize(("episodes", "icc"), DESIGNS)
def test_replay_contrasts_cover_effects_that_vary_by_episode(episodes, icc):
    effects = {"temperature": 1.0, "prompt": 0.5, "interaction": 0.3}
    found = run_replays(episodes, icc, seed=episodes, **effects)
    truths = {
        "temperature": effects["temperature"] + effects["interaction"],  # at stated stress 0.9
        "prompt_stress": effects["prompt"] + effects["interaction"],  # at temperature 1.0
        "interaction": effects["interaction"],
    }
    rates = {name: coverage(found[name], truth) for name, truth in truths.items()}
    # The placebo with the prompt acting (its stated level drawn apart from the actual one).
    rates["placebo false positives"] = false_positives(found["placebo"])
    assert all(
        within(rate, COVERAGE_BAND) for name, rate in rates.items() if "placebo" not in name
    ), rates
    assert within(rates["placebo false positives"], FALSE_POSITIVE_BAND), rates
    assert all(e.n_units == episodes and e.method == "t" for e in found["temperature"])


@pytest.mark.parametrize(("episodes", "icc"), DESIGNS)
def test_replay_contrasts_under_the_full_null_rarely_exclude_zero(episodes, icc):
    found = run_replays(
        episodes, icc, seed=100 + episodes, temperature=0.0, prompt=0.0, interaction=0.0
    )
    rates = {name: false_positives(estimates) for name, estimates in found.items()}
    assert all(within(rate, FALSE_POSITIVE_BAND) for rate in rates.values()), rates


def test_the_placebo_covers_a_context_effect_that_varies_by_episode():
    design, rng = ReplayDesign(6), np.random.default_rng(7)
    effects = {"temperature": 1.0, "prompt": 0.5, "interaction": 0.3, "context_slope": 1.5}
    found = [
        placebo_check(design.simulate(rng, icc=0.5, **effects)).estimate for _ in range(REPLICATES)
    ]
    assert within(coverage(found, 1.5), COVERAGE_BAND)
    # unbiased: the sd of the mean of 1000 estimates is about 0.026
    assert np.mean([e.value for e in found]) == pytest.approx(1.5, abs=0.1)


def utterance_rows(rng, episodes: int, icc: float, persona: float, stress: float) -> list[dict]:
    """Utterance rows of the 2 x 2 design: 5 per entry and episode, effects varying by episode."""
    per_entry = 5
    names = list(ENTRIES)
    levels = np.array(list(ENTRIES.values()), dtype=np.float64)
    n = episodes * len(names) * per_entry
    episode = np.repeat(np.arange(episodes), len(names) * per_entry)
    entry = np.tile(np.repeat(np.arange(len(names)), per_entry), episodes)
    sd = episode_sd(icc, 0.5)
    persona_effect = persona + rng.normal(0.0, sd, episodes)
    stress_effect = stress + rng.normal(0.0, sd, episodes)
    y = (
        2.0
        + rng.normal(0.0, episode_sd(icc, 1.0), episodes)[episode]
        + persona_effect[episode] * levels[entry, 0]
        + stress_effect[episode] * levels[entry, 1]
        + rng.normal(0.0, 0.5, (episodes, len(names)))[episode, entry]  # the agent that day
        + rng.normal(0.0, 1.0, n)
    )
    return [
        {"episode": e, "step": i, "entry": names[a], "mean_token_entropy": v}
        for i, (e, a, v) in enumerate(
            zip(episode.tolist(), entry.tolist(), y.tolist(), strict=True)
        )
    ]


@pytest.mark.parametrize(("episodes", "icc"), DESIGNS)
def test_designed_factor_contrasts_cover_the_truth_and_rarely_find_a_null(episodes, icc):
    rng = np.random.default_rng(200 + episodes)
    effect = [
        factor_contrasts(
            utterance_rows(rng, episodes, icc, 0.8, 0.4), FACTORS, "mean_token_entropy"
        )
        for _ in range(REPLICATES)
    ]
    null = [
        factor_contrasts(
            utterance_rows(rng, episodes, icc, 0.0, 0.0), FACTORS, "mean_token_entropy"
        )
        for _ in range(REPLICATES)
    ]
    rates = {
        "persona coverage": coverage([p.estimate for p, _ in effect], 0.8),
        "stress coverage": coverage([s.estimate for _, s in effect], 0.4),
    }
    fp = {
        "persona false positives": false_positives([p.estimate for p, _ in null]),
        "stress false positives": false_positives([s.estimate for _, s in null]),
    }
    assert all(within(rate, COVERAGE_BAND) for rate in rates.values()), rates
    assert all(within(rate, FALSE_POSITIVE_BAND) for rate in fp.values()), fp


#: Replicates of the mixed model (a fit takes 20 to 80 ms): its check is a smaller one.
MODEL_REPLICATES = 200


def model_rows(rng, episodes: int, *, slope_sd: float, episode_sd: float) -> dict[str, np.ndarray]:
    """Utterances with crossed episode and persona intercepts and a within-agent stress slope."""
    agents, utterances = 4, 10
    n = episodes * agents * utterances
    episode = np.repeat(np.arange(episodes), agents * utterances)
    agent = np.tile(np.repeat(np.arange(agents), utterances), episodes)
    stress = np.clip(np.array([0.2, 0.7, 0.2, 0.7])[agent] + rng.normal(0.0, 0.15, n), 0.0, 1.0)
    slope = 0.8 + rng.normal(0.0, slope_sd, episodes)[episode]
    y = (
        2.0
        + rng.normal(0.0, episode_sd, episodes)[episode]
        + rng.normal(0.0, 0.5, agents)[agent]  # the persona, the same in every episode
        + slope * stress
        + rng.normal(0.0, 0.5, n)
    )
    names = np.array(["a", "b", "c", "d"])[agent]
    stress_within, _ = within_between(stress, episode, names)
    return {"episode": episode, "agent": names, "stress_within": stress_within, "y": y}


def model_coverage(seed: int, replicates: int, **truth: float) -> tuple[float, float, np.ndarray]:
    """Coverage of the slope 0.8 with episodes - 1 degrees of freedom, with the rows' instead,
    and which fits dropped the episode intercept as singular."""
    rng = np.random.default_rng(seed)
    fits = [
        fit_mixed_model(
            model_rows(rng, 6, **truth), "y", ["stress_within"], group="episode", crossed="agent"
        )
        for _ in range(replicates)
    ]
    assert all(len(fit.estimates) == 1 for fit in fits)
    estimates = [fit.estimates[0] for fit in fits]
    ours = np.array([e.low <= 0.8 <= e.high for e in estimates])
    # the same Wald error with a normal quantile (the rows' ~236 degrees of freedom)
    errors = np.array([(e.high - e.low) / 2 for e in estimates]) / stats.t.ppf(0.975, 5)
    rows = np.abs(np.array([e.value for e in estimates]) - 0.8) <= 1.97 * errors
    dropped = np.array(["episode" in fit.fallback for fit in fits])
    return float(ours.mean()), float(rows.mean()), dropped


def test_the_crossed_mixed_model_keeps_coverage_with_episodes_minus_one_degrees_of_freedom():
    """The degrees-of-freedom rule of :mod:`valuegym.analysis.models`, checked.

    6 episodes x 4 personas (crossed) x 10 utterances. 200 replicates (binomial standard error
    1.5 points at 95%) where the slope varies by episode (sd 0.45), which random intercepts do
    not model: episodes - 1 degrees of freedom keep the coverage (0.965 here) while the rows'
    degrees of freedom fall short (0.91). And 80 replicates without any episode variance,
    where most fits drop the episode intercept as singular: the rule stays episodes - 1 and
    the coverage stays at or above 95% (conservative when the model is right). The band is
    [0.93, 1.0]: conservative is acceptable for this secondary model, liberal is not.
    """
    varying, varying_rows, _ = model_coverage(11, MODEL_REPLICATES, slope_sd=0.45, episode_sd=0.5)
    assert 0.93 <= varying <= 1.0
    assert varying_rows < 0.93  # what a t on the rows' degrees of freedom would give
    flat, _, dropped = model_coverage(12, 80, slope_sd=0.0, episode_sd=0.0)
    assert dropped.mean() > 0.3  # the singular path is exercised
    assert 0.93 <= flat <= 1.0
