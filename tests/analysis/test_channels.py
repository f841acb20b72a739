import math

import numpy as np
import pytest

from valuegym.analysis.channels import (
    channel_contrasts,
    manipulation_check,
    placebo_check,
    temperature_confounds,
)

NAN = math.nan


def replay_rows(n_episodes, contexts_per_episode, *, temperature_effect, prompt_effect, seed=0):
    """Replay rows of a 2x2 grid whose cell means are known: each context has its own level."""
    rng = np.random.default_rng(seed)
    rows = []
    for episode in range(n_episodes):
        for c in range(contexts_per_episode):
            context = f"e{episode}c{c}"
            level = rng.normal(scale=3.0)  # contexts differ a lot; pairing removes it
            for stress in (0.1, 0.9):
                for temperature in (0.7, 1.0):
                    for sample in range(2):
                        value = (
                            level
                            + temperature_effect * (temperature == 1.0)
                            + prompt_effect * (stress == 0.9)
                            + rng.normal(scale=0.5)
                        )
                        rows.append(
                            {
                                "episode": episode,
                                "context_id": context,
                                "placebo": False,
                                "set_stress": stress,
                                "set_mood": NAN,
                                "set_temperature": temperature,
                                "sample": sample,
                                "sequence_entropy": value,
                            }
                        )
    return rows


def find(contrasts, channel, at):
    [found] = [c for c in contrasts if c.channel == channel and c.at.startswith(at)]
    return found


def test_paired_contrasts_recover_known_effects_with_intervals_over_episodes():
    rows = replay_rows(8, 3, temperature_effect=4.0, prompt_effect=-1.0)
    contrasts = channel_contrasts(rows)
    temperature = find(contrasts, "temperature", "prompt_stress=0.9")
    prompt = find(contrasts, "prompt_stress", "temperature=1")
    interaction = find(contrasts, "interaction", "")
    assert temperature.estimate.unit == "episodes"  # 8 episodes: contexts are clustered
    assert temperature.estimate.n_units == 8
    assert temperature.estimate.low < 4.0 < temperature.estimate.high
    assert temperature.estimate.low > 2.0  # the context levels (sd 3) are paired away
    assert prompt.estimate.low < -1.0 < prompt.estimate.high
    assert prompt.estimate.high < 0.0
    assert interaction.estimate.low < 0.0 < interaction.estimate.high


def test_few_episodes_fall_back_to_contexts_as_the_unit():
    rows = replay_rows(2, 5, temperature_effect=1.0, prompt_effect=0.0)
    temperature = find(channel_contrasts(rows), "temperature", "prompt_stress=0.1")
    assert (temperature.estimate.unit, temperature.estimate.n_units) == ("contexts", 10)


def placebo_rows(slope, n_contexts=30, seed=1):
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_contexts):
        stress = rng.uniform()
        for sample in range(2):
            rows.append(
                {
                    "episode": c,
                    "context_id": f"c{c}",
                    "placebo": True,
                    "actual_stress": stress,
                    "sample": sample,
                    "sequence_entropy": 5.0 + slope * stress + rng.normal(scale=0.3),
                }
            )
    return rows


def test_placebo_slope_finds_a_context_effect_and_none_where_there_is_none():
    with_effect = placebo_check(placebo_rows(slope=-4.0))
    assert with_effect.estimate.unit == "episodes"
    assert with_effect.estimate.low < -4.0 < with_effect.estimate.high
    assert with_effect.estimate.high < 0.0
    without = placebo_check(placebo_rows(slope=0.0))
    assert without.estimate.low < 0.0 < without.estimate.high
    assert placebo_check(placebo_rows(slope=1.0, n_contexts=2)) is None  # too few contexts


def test_manipulation_check_pairs_self_reports_by_context():
    rows = [
        {"episode": 0, "context_id": c, "prompt_stress": s, "self_report": base + 3.0 * s}
        for c, base in (("a", 0.0), ("b", 5.0), ("c", -2.0))
        for s in (0.1, 0.9)
    ]
    check = manipulation_check(rows)
    assert check.estimate.value == pytest.approx(2.4)  # 3.0 * (0.9 - 0.1) in every context
    assert manipulation_check([r for r in rows if r["prompt_stress"] == 0.1]) is None


def test_a_predictor_fixed_by_the_temperature_is_named():
    determined = [
        {"sampling_temperature": 0.7 + 0.1 * k, "stress": 0.2 * k, "mood": (-1) ** k * 0.1}
        for k in range(4)
    ]
    varied = [*determined, {"sampling_temperature": 0.7, "stress": 0.5, "mood": 0.3}]
    assert len(temperature_confounds(determined)) == 2
    assert temperature_confounds(varied) == []
