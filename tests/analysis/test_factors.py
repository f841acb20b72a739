import numpy as np
import pytest

from valuegym.analysis.factors import factor_contrasts


def test_factor_contrasts_weigh_design_cells_equally_per_episode():
    factors = {
        "persona": {
            "plain": ["calm_plain", "busy_plain"],
            "ornate": ["calm_ornate", "busy_ornate"],
        },
        "stress": {"calm": ["calm_plain", "calm_ornate"], "busy": ["busy_plain", "busy_ornate"]},
    }
    effect = {"calm_plain": 0.0, "busy_plain": 1.0, "calm_ornate": 3.0, "busy_ornate": 4.0}
    rng = np.random.default_rng(3)
    rows = [
        {"episode": e, "entry": entry, "y": effect[entry] + 0.2 * e + rng.normal(scale=0.1)}
        for e in range(6)
        for entry in effect
        # busy_plain speaks 5 times as often: cells, not rows, are weighted equally
        for _ in range(5 if entry == "busy_plain" else 1)
    ]
    persona, stress = factor_contrasts(rows, factors, "y")
    assert (persona.channel, persona.levels, persona.estimate.n_units) == (
        "persona",
        "plain -> ornate",
        6,
    )
    assert persona.estimate.low < 3.0 < persona.estimate.high
    assert stress.estimate.low < 1.0 < stress.estimate.high
    assert stress.estimate.value == pytest.approx(1.0, abs=0.1)
    (reversed_stress,) = [
        c
        for c in factor_contrasts(rows, factors, "y", levels={"stress": ("busy", "calm")})
        if c.channel == "stress"
    ]
    assert reversed_stress.estimate.value == pytest.approx(-stress.estimate.value)
    with pytest.raises(ValueError, match="levels"):
        factor_contrasts(rows, factors, "y", levels={"stress": ("calm", "frantic")})
