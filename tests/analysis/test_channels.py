import math

import numpy as np
import pytest

from valuegym.analysis.channels import (
    channel_contrasts,
    manipulation_check,
    paired_contrast,
    placebo_check,
)
from valuegym.analysis.confounds import temperature_confounds
from valuegym.measures.information import mutual_information_from_loglik

NAN = math.nan


def replay_rows(n_episodes, contexts_per_episode, *, temperature_effect, prompt_effect, seed=0):
    """Replay rows of a 2x2 grid whose cell means are known: each context has its own level."""
    rng = np.random.default_rng(seed)
    rows = []
    for episode in range(n_episodes):
        for c in range(contexts_per_episode):
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
                                "step": 4 * c,
                                "agent": "alice",
                                # the context id collides across episodes: it is not the key
                                "context_id": f"c{c}",
                                "placebo": False,
                                "set_stress": stress,
                                "set_mood": NAN,
                                "set_temperature": temperature,
                                "sample": sample,
                                "sequence_entropy": value,
                                "mean_token_entropy": value / 10,
                            }
                        )
    return rows


def find(contrasts, channel, at):
    [found] = [c for c in contrasts if c.channel == channel and c.at.startswith(at)]
    return found


def test_paired_contrasts_recover_known_effects_with_intervals_over_episodes():
    rows = replay_rows(8, 3, temperature_effect=4.0, prompt_effect=-1.0)
    contrasts = channel_contrasts(rows)
    # 2 temperature (per stated stress) + 2 prompt-stress (per temperature) + 1 interaction
    assert len(contrasts) == 5
    temperature = find(contrasts, "temperature", "prompt_stress=0.9")
    prompt = find(contrasts, "prompt_stress", "temperature=1")
    interaction = find(contrasts, "interaction", "")
    assert (temperature.estimate.unit, temperature.estimate.n_units) == ("episodes", 8)
    assert not temperature.estimate.pilot
    assert temperature.estimate.low < 4.0 < temperature.estimate.high
    assert temperature.estimate.low > 3.0  # the context levels (sd 3) are paired away
    assert temperature.mechanical  # sequence entropy rises with T by construction
    assert not prompt.mechanical
    assert prompt.estimate.low < -1.0 < prompt.estimate.high
    assert prompt.estimate.high < 0.0
    assert interaction.estimate.low < 0.0 < interaction.estimate.high
    assert interaction.levels == "prompt-stress effect 0.1 -> 0.9 at T=1 minus at T=0.7"
    # By hand, keyed by (episode, step, agent): the colliding context ids are told apart.
    means = {}
    for r in rows:
        if r["set_stress"] == 0.9:
            key = (r["episode"], r["step"], r["set_temperature"])
            means.setdefault(key, []).append(r["sequence_entropy"])
    per_episode = [
        np.mean([np.mean(means[(e, s, 1.0)]) - np.mean(means[(e, s, 0.7)]) for s in (0, 4, 8)])
        for e in range(8)
    ]
    assert temperature.estimate.value == pytest.approx(np.mean(per_episode))
    assert temperature.estimate.sd == pytest.approx(np.std(per_episode, ddof=1))
    assert temperature.to_dict()["mechanical"] is True
    token = channel_contrasts(rows, "mean_token_entropy")
    assert not find(token, "temperature", "prompt_stress=0.9").mechanical


def test_a_declared_estimand_matches_the_grid_and_averages_unheld_channels():
    rows = replay_rows(6, 2, temperature_effect=2.0, prompt_effect=0.5)
    grid = find(channel_contrasts(rows), "prompt_stress", "temperature=1")
    declared = paired_contrast(
        rows, "sequence_entropy", "prompt_stress", (0.1, 0.9), {"temperature": 1.0}
    )
    assert declared.estimate == grid.estimate
    averaged = paired_contrast(rows, "sequence_entropy", "temperature", (0.7, 1.0))
    at_low = paired_contrast(
        rows, "sequence_entropy", "temperature", (0.7, 1.0), {"prompt_stress": 0.1}
    )
    at_high = paired_contrast(
        rows, "sequence_entropy", "temperature", (0.7, 1.0), {"prompt_stress": 0.9}
    )
    assert averaged.at == "prompt_stress averaged over 0.1/0.9, prompt_mood=own"
    assert averaged.estimate.value == pytest.approx(
        (at_low.estimate.value + at_high.estimate.value) / 2
    )
    # An "own" cell (every setting the agent's) has no arm to pair with: averages skip it.
    own = [{**r, "set_stress": NAN, "set_temperature": NAN} for r in rows if r["set_stress"] == 0.1]
    with_own = paired_contrast([*rows, *own], "sequence_entropy", "prompt_stress", (0.1, 0.9))
    plain = paired_contrast(rows, "sequence_entropy", "prompt_stress", (0.1, 0.9))
    assert with_own.estimate == plain.estimate
    assert with_own.at == "prompt_mood=own, temperature averaged over 0.7/1"
    with pytest.raises(ValueError, match="can hold only"):
        paired_contrast(rows, "sequence_entropy", "interaction", (0.1, 0.9), {"temperature": 1.0})
    interaction = paired_contrast(rows, "sequence_entropy", "interaction", (0.1, 0.9))
    assert interaction.estimate == find(channel_contrasts(rows), "interaction", "").estimate
    # Without levels, the grid's lowest and highest ("own" cells are not a level).
    undeclared = paired_contrast([*rows, *own], "sequence_entropy", "prompt_stress")
    assert undeclared.estimate == plain.estimate
    assert undeclared.levels == plain.levels == "0.1 -> 0.9"
    assert paired_contrast(rows, "sequence_entropy", "prompt_stress", (0.1, 0.5)) is None
    with pytest.raises(ValueError, match="channel"):
        paired_contrast(rows, "sequence_entropy", "persona", (0.1, 0.9))


def test_few_episodes_stay_the_unit_and_are_flagged_as_a_pilot():
    rows = replay_rows(2, 5, temperature_effect=1.0, prompt_effect=0.0)
    temperature = find(channel_contrasts(rows), "temperature", "prompt_stress=0.1")
    assert (temperature.estimate.unit, temperature.estimate.n_units) == ("episodes", 2)
    assert temperature.estimate.pilot
    assert temperature.estimate.to_dict()["pilot"] is True


def placebo_rows(slope, *, prompt_effect=0.0, n_episodes=12, contexts=8, seed=1):
    """Placebo cells whose stated levels are drawn independently of the actual stress."""
    rng = np.random.default_rng(seed)
    rows = []
    for episode in range(n_episodes):
        episode_slope = slope + rng.normal(scale=0.5)
        for c in range(contexts):
            stress = rng.uniform()
            for cell, temperature in (("p000", 0.7), ("p001", 1.0)):
                stated = rng.uniform()
                for sample in range(2):
                    rows.append(
                        {
                            "episode": episode,
                            "step": c,
                            "agent": "bob",
                            "cell": cell,
                            "placebo": True,
                            "set_stress": NAN,
                            "set_mood": NAN,
                            "set_temperature": temperature,
                            "temperature": temperature,
                            "prompt_stress": stated,
                            "prompt_mood": rng.uniform(-1, 1),
                            "actual_stress": stress,
                            "sample": sample,
                            "sequence_entropy": 5.0
                            + episode_slope * stress
                            + prompt_effect * stated
                            + 2.0 * temperature
                            + rng.normal(scale=0.3),
                        }
                    )
    return rows


def test_placebo_slope_finds_a_context_effect_and_none_where_there_is_none():
    with_effect = placebo_check(placebo_rows(slope=-4.0))
    assert (with_effect.estimate.unit, with_effect.estimate.n_units) == ("episodes", 12)
    assert with_effect.estimate.method == "t"
    assert with_effect.estimate.low < -4.0 < with_effect.estimate.high
    assert with_effect.estimate.high < 0.0
    # A strong prompt effect does not leak: the stated level is independent of the actual one.
    without = placebo_check(placebo_rows(slope=0.0, prompt_effect=5.0))
    assert without.estimate.low < 0.0 < without.estimate.high
    assert abs(without.estimate.value) < 0.5
    one_context = [r for r in placebo_rows(slope=1.0) if r["step"] == 0 and r["cell"] == "p000"]
    assert placebo_check(one_context) is None  # one point per episode: no slope anywhere


def manipulation_rows(shift, *, n_episodes=6, contexts=3, samples=2, seed=2):
    """Cross-scored samples: the high prompt adds ``shift`` to a sample's log-likelihood."""
    rng = np.random.default_rng(seed)
    rows = []
    for episode in range(n_episodes):
        for c in range(contexts):
            for stated in (0.1, 0.9):
                for sample in range(samples):
                    base = rng.normal(-20.0, 3.0)
                    # a sample drawn at the high level is likelier under the high prompt
                    tilt = shift * (1 if stated == 0.9 else -1) * abs(rng.normal())
                    rows.append(
                        {
                            "episode": episode,
                            "step": c,
                            "agent": "carol",
                            "context_id": "same-everywhere",
                            "temperature": 1.0,
                            "low_stress": 0.1,
                            "high_stress": 0.9,
                            "sampled_stress": stated,
                            "sample": sample,
                            "loglik_low": base - tilt / 2,
                            "loglik_high": base + tilt / 2,
                        }
                    )
    return rows


def test_manipulation_check_is_the_cross_scored_js_divergence_per_episode():
    rows = manipulation_rows(3.0)
    check = manipulation_check(rows)
    assert (check.channel, check.levels, check.at) == (
        "manipulation",
        "0.1 -> 0.9",
        "temperature=1",
    )
    assert check.estimate.label == "reply shift (JS, cross-scored)"
    assert check.estimate.n_units == 6
    # By hand: episode 0's contexts, each a (2, K, 2) array, averaged.
    first = [r for r in rows if r["episode"] == 0]
    by_hand = []
    for step in range(3):
        context = [r for r in first if r["step"] == step]
        loglik = np.array(
            [
                [[r["loglik_low"], r["loglik_high"]] for r in context if r["sampled_stress"] == s]
                for s in (0.1, 0.9)
            ]
        )
        by_hand.append(mutual_information_from_loglik(loglik).mutual_information)
    per_episode = [
        manipulation_check([r for r in rows if r["episode"] == e]).estimate.value for e in range(6)
    ]
    assert per_episode[0] == pytest.approx(np.mean(by_hand))
    assert check.estimate.value == pytest.approx(np.mean(per_episode))
    assert check.estimate.low > 0.0
    # Identical prompts score every sample alike: exactly no shift.
    flat = [{**r, "loglik_high": r["loglik_low"]} for r in rows]
    assert manipulation_check(flat).estimate.value == 0.0
    assert manipulation_check([r for r in rows if r["sampled_stress"] == 0.1]) is None


def test_a_predictor_fixed_by_the_temperature_is_named():
    determined = [
        {"sampling_temperature": 0.7 + 0.1 * k, "stress": 0.2 * k, "mood": (-1) ** k * 0.1}
        for k in range(4)
    ]
    varied = [*determined, {"sampling_temperature": 0.7, "stress": 0.5, "mood": 0.3}]
    assert len(temperature_confounds(determined)) == 2
    assert temperature_confounds(varied) == []
