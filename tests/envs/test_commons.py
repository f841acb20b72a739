import numpy as np
import pettingzoo
import pytest

import valuegym  # noqa: F401 - registers the environments
from valuegym.envs.commons import CommonsEnv
from valuegym.envs.commons_rules import (
    ACTION_NAMES,
    PRAISE,
    REST,
    SANCTION,
    cooperation_rate,
    regrow,
    share_out,
)

HARVEST_HALF, HARVEST_SHARE, HARVEST_DOUBLE, HARVEST_GREEDY = 1, 2, 3, 4


def run_constant(env: CommonsEnv, action: int, seed: int = 0) -> tuple[int, dict, bool]:
    """Every agent takes ``action`` until the episode ends; returns steps, last infos, collapsed."""
    env.reset(seed=seed)
    steps, infos, terminations = 0, {}, {}
    while env.agents:
        _, _, terminations, _, infos = env.step(dict.fromkeys(env.agents, action))
        steps += 1
    return steps, infos, any(terminations.values())


def test_regrow_is_logistic():
    assert regrow(0.0, 0.25, 100.0) == 0.0
    assert regrow(100.0, 0.25, 100.0) == 100.0
    assert regrow(50.0, 0.25, 100.0) == pytest.approx(50.0 + 0.25 * 50.0 * 0.5)
    assert regrow(99.0, 1.0, 100.0) <= 100.0


def test_share_out_scales_requests_down_alike_when_short():
    requested = np.array([1.0, 3.0, 0.0])
    np.testing.assert_allclose(share_out(requested, 10.0), requested)
    taken = share_out(requested, 2.0)
    np.testing.assert_allclose(taken, [0.5, 1.5, 0.0])
    assert taken.sum() == pytest.approx(2.0)


def test_cooperation_rate_counts_requests_at_or_under_the_share():
    assert cooperation_rate(np.array([0.0, 1.0, 2.0, 0.5]), 1.0) == 0.75


def test_everyone_harvesting_greedily_collapses_the_resource():
    env = CommonsEnv(n_agents=5, max_cycles=200)
    steps, infos, collapsed = run_constant(env, HARVEST_GREEDY)
    assert collapsed
    assert steps < 10
    assert infos["agent_0"]["resource"] < 0.05 * env.rules.capacity
    assert infos["agent_0"]["cooperation_rate"] == 0.0


@pytest.mark.parametrize("n_agents", [2, 5, 50])
def test_everyone_taking_the_sustainable_share_does_not_collapse(n_agents):
    env = CommonsEnv(n_agents=n_agents, max_cycles=300)
    steps, infos, collapsed = run_constant(env, HARVEST_SHARE)
    assert not collapsed
    assert steps == 300
    # Maximum sustainable yield: the resource falls toward K / 2 and never below it.
    assert env.rules.capacity / 2 <= infos["agent_0"]["resource"] < 0.6 * env.rules.capacity
    assert infos["agent_0"]["cooperation_rate"] == 1.0
    assert infos["agent_0"]["gini"] == pytest.approx(0.0, abs=1e-12)


def test_works_with_a_thousand_agents():
    env = CommonsEnv(n_agents=1000, max_cycles=5)
    observations, infos = env.reset(seed=0)
    assert len(observations) == len(infos) == 1000
    rng = np.random.default_rng(0)
    observations, rewards, _, _, infos = env.step(
        {agent: int(rng.integers(len(ACTION_NAMES))) for agent in env.agents}
    )
    assert len(rewards) == 1000
    assert all(env.observation_space(agent).contains(obs) for agent, obs in observations.items())


def test_gini_tracks_unequal_cumulative_harvests():
    env = CommonsEnv(n_agents=4)
    env.reset(seed=0)
    actions = {"agent_0": HARVEST_GREEDY, "agent_1": REST, "agent_2": REST, "agent_3": REST}
    _, _, _, _, infos = env.step(actions)
    assert infos["agent_0"]["harvest"] == pytest.approx(4.0)  # 4 shares of 1.0
    assert infos["agent_1"]["harvest"] == 0.0
    assert infos["agent_0"]["gini"] == pytest.approx(0.75)
    assert infos["agent_0"]["cooperation_rate"] == 0.75


def test_sanctions_hit_the_heaviest_harvester_if_it_defected():
    env = CommonsEnv(n_agents=4)
    env.reset(seed=0)
    env.step(
        {"agent_0": HARVEST_GREEDY, "agent_1": HARVEST_SHARE, "agent_2": REST, "agent_3": REST}
    )
    stress_before = env.unwrapped._core.stress.copy()
    _, _, _, _, infos = env.step(
        {"agent_0": REST, "agent_1": SANCTION, "agent_2": SANCTION, "agent_3": SANCTION}
    )
    stress = env.unwrapped._core.stress
    observations = env._observations()
    size = env._core.observation_size
    assert observations["agent_0"][size + 4] == pytest.approx(3 / 4)  # squash(3 sanctions)
    assert observations["agent_1"][size + 4] == 0.0
    # The env contract's harm count (peace in the social outcome metrics) is the sanctions.
    assert [infos[agent]["harmed"] for agent in env.possible_agents] == [3.0, 0.0, 0.0, 0.0]
    assert infos["agent_0"]["mood"] < infos["agent_1"]["mood"]
    # agent_0 rested (stress down) yet three sanctions raised its stress.
    assert stress[0] > stress_before[0]


def test_sanctions_do_not_land_on_restraint():
    env = CommonsEnv(n_agents=3)
    env.reset(seed=0)
    env.step(dict.fromkeys(env.agents, HARVEST_SHARE))
    env.step({"agent_0": HARVEST_SHARE, "agent_1": SANCTION, "agent_2": SANCTION})
    assert env._sanctioned.sum() == 0.0


def test_praise_raises_standing_and_mood_of_a_neighbour():
    env = CommonsEnv(n_agents=3)
    env.reset(seed=0)
    _, rewards, _, _, infos = env.step({"agent_0": PRAISE, "agent_1": REST, "agent_2": REST})
    praised = [
        name
        for name in ("agent_1", "agent_2")
        if infos[name]["stocks"][env.value_names.index("standing")] > 0
    ]
    assert len(praised) == 1
    other = "agent_2" if praised == ["agent_1"] else "agent_1"
    assert infos[praised[0]]["mood"] > infos[other]["mood"]
    assert rewards[praised[0]] > rewards[other]
    assert rewards["agent_0"] == 0.0  # praising serves no value of the praiser


def test_scarcity_raises_stress():
    plenty = CommonsEnv(n_agents=3, initial_level=0.9)
    scarce = CommonsEnv(n_agents=3, initial_level=0.1)
    for env in (plenty, scarce):
        env.reset(seed=0)
        env.step(dict.fromkeys(env.agents, PRAISE))
    assert scarce._core.stress[0] > plenty._core.stress[0]


def test_action_wanting_follows_the_protocol():
    env = CommonsEnv(n_agents=3)
    _, infos = env.reset(seed=0)
    info = infos["agent_0"]
    wanting = dict(zip(env.value_names, info["wanting"], strict=True))
    assert info["action_wanting"].shape == (len(ACTION_NAMES),)
    assert info["action_wanting"][REST] == pytest.approx(wanting["rest"])
    np.testing.assert_allclose(
        info["action_wanting"][1:PRAISE], wanting["food"] * np.array([0.5, 1.0, 2.0, 4.0])
    )
    assert info["action_wanting"][PRAISE] == info["action_wanting"][SANCTION] == 0.0
    assert isinstance(info["temperature"], float)


def test_per_agent_profiles():
    profile = {"values": {"food": {"weight": 2.0}, "standing": {}, "rest": {}}}
    weak = {"values": {"food": {"weight": 0.5}, "standing": {}, "rest": {}}}
    env = CommonsEnv(n_agents=2, profile=[profile, weak])
    env.reset(seed=0)
    _, rewards, _, _, _ = env.step(dict.fromkeys(env.agents, HARVEST_SHARE))
    assert rewards["agent_0"] == pytest.approx(4 * rewards["agent_1"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_agents": 1}, "n_agents"),
        ({"n_agents": 2.5}, "n_agents"),
        ({"max_cycles": 0}, "max_cycles"),
        ({"regrowth_rate": 1.5}, "regrowth_rate"),
        ({"profile": [None]}, "profile"),
        ({"profile": "food"}, "profile: expected a profile"),
        ({"n_agents": 2, "profile": [None, {"values": {"food": {}}}]}, r"profile\[1\]: missing"),
        ({"profile": {"values": {"food": {}}}}, "profile"),
        ({"initial_level": 0.01}, "collapse_level"),
        ({"render_mode": "window"}, "render_mode"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CommonsEnv(**kwargs)


def test_bad_actions_are_named():
    env = CommonsEnv(n_agents=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="agent_1"):
        env.step({"agent_0": 0})
    with pytest.raises(ValueError, match=r"actions\['agent_1'\]"):
        env.step({"agent_0": 0, "agent_1": 7})


def test_stepping_after_the_end_is_an_error():
    env = pettingzoo.make("parallel", "valuegym/Commons-v0", n_agents=2, max_cycles=1)
    env.reset(seed=0)
    env.step(dict.fromkeys(env.agents, REST))
    assert env.agents == []
    with pytest.raises(ValueError, match="reset"):
        env.step({"agent_0": 0, "agent_1": 0})


def test_render_shows_the_commons():
    env = CommonsEnv(n_agents=12, render_mode="ansi")
    env.reset(seed=0)
    env.step(dict.fromkeys(env.agents, HARVEST_SHARE))
    text = env.render()
    assert "resource 142.3/192" in text  # 144 - 12, then logistic regrowth
    assert "agent_7: harvest x1, took 1.00" in text
    assert "... and 4 more agents" in text
    image = CommonsEnv(n_agents=3, render_mode="rgb_array")
    image.reset(seed=0)
    picture = image.render()
    assert picture.dtype == np.uint8
    assert picture.ndim == 3
    assert picture.shape[2] == 3
