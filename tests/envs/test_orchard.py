import itertools

import gymnasium
import numpy as np
import pytest

import valuegym  # noqa: F401 - registers the ids
from valuegym.envs.orchard import DEFAULT_GOODS, OrchardEnv
from valuegym.envs.profiles import default_profile

APPLE, PEAR, PLUM, FIG, REST = range(5)


def rollout_return(env: gymnasium.Env, policy, seed: int) -> float:
    _, info = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        _, reward, terminated, truncated, info = env.step(policy(info))
        total += reward
        done = terminated or truncated
    return total


def greedy(info) -> int:
    return int(np.argmax(info["action_wanting"]))


def test_repeating_one_good_gives_decreasing_rewards_and_rest_restores_them():
    env = OrchardEnv(out_of_stock_probability=0.0)
    env.reset(seed=0)
    apples = [env.step(APPLE)[1] for _ in range(6)]
    assert all(later < earlier for earlier, later in itertools.pairwise(apples))
    assert apples[-1] < 0.5 * apples[0]
    for _ in range(12):
        env.step(REST)
    restored = env.step(APPLE)[1]
    assert restored > 2 * apples[-1]
    assert restored > 0.8 * apples[0]


def test_variety_beats_always_the_same_fruit():
    env = OrchardEnv()
    seeds = range(3)
    best_single = max(
        np.mean([rollout_return(env, lambda info, g=good: g, seed) for seed in seeds])
        for good in range(len(DEFAULT_GOODS))
    )
    greedy_return = np.mean([rollout_return(env, greedy, seed) for seed in seeds])
    fruit_only = np.mean(
        [
            rollout_return(env, lambda info: int(np.argmax(info["action_wanting"][:4])), seed)
            for seed in seeds
        ]
    )
    assert best_single < 0.35 * greedy_return
    assert fruit_only > 2 * best_single


def test_out_of_stock_good_gives_nothing_and_its_action_wanting_is_zero():
    env = OrchardEnv(out_of_stock_probability=0.5)
    observation, info = env.reset(seed=3)
    checked = 0
    for _ in range(40):
        in_stock = observation[12:16]
        np.testing.assert_array_equal(info["action_wanting"][:4] > 0, in_stock > 0)
        out = np.flatnonzero(in_stock == 0)
        if out.size:
            stocks_before = info["stocks"].copy()
            observation, reward, _, _, info = env.step(int(out[0]))
            assert reward == 0.0
            assert info["stocks"][out[0]] <= stocks_before[out[0]]
            checked += 1
        else:
            observation, *_, info = env.step(REST)
    assert checked > 10


def test_picking_raises_stress_and_rest_lowers_it():
    env = OrchardEnv(out_of_stock_probability=0.0)
    _, info = env.reset(seed=0)
    start = info["stress"]
    for step in range(20):
        *_, info = env.step(step % 4)
    stressed = info["stress"]
    assert stressed > start + 0.2
    *_, info = env.step(REST)
    assert info["stress"] < stressed
    assert info["action_wanting"][REST] == pytest.approx(info["wanting"][REST])


def test_stress_raises_the_wanting_of_rest():
    env = OrchardEnv(out_of_stock_probability=0.0)
    _, info = env.reset(seed=0)
    calm = info["wanting"][REST]
    for step in range(20):
        *_, info = env.step(step % 4)
    assert info["wanting"][REST] > 2 * calm


def test_observation_features_and_truncation():
    env = OrchardEnv(episode_length=5, out_of_stock_probability=0.3)
    observation, _ = env.reset(seed=1)
    assert env.observation_space.contains(observation)
    assert observation[-1] == 1.0
    for step in range(1, 6):
        observation, reward, terminated, truncated, _ = env.step(step % 5)
        assert env.observation_space.contains(observation)
        assert observation[-1] == pytest.approx(1 - step / 5)
        assert type(reward) is float
        assert terminated is False
        assert truncated is (step == 5)


def test_goods_and_profile_arguments():
    env = OrchardEnv(goods={"kiwi": 1.0, "mango": 2.0})
    assert env.rules.goods == ("kiwi", "mango")
    assert env.action_space.n == 3
    profile = default_profile({"kiwi": 1.0}).to_mapping()
    env = OrchardEnv(profile=profile)
    assert env.rules.goods == ("kiwi",)
    _, info = env.reset(seed=0)
    assert env.value_names == ("kiwi", "rest")
    assert info["stocks"].shape == (2,)


def test_rest_anywhere_in_the_profile_is_the_last_action():
    mapping = {"values": {"rest": {"curve": "saturating"}, "kiwi": {}, "mango": {"weight": 2.0}}}
    env = OrchardEnv(profile=mapping, out_of_stock_probability=0.0)
    assert env.rules.goods == ("kiwi", "mango")
    _, info = env.reset(seed=0)
    assert env.value_names == ("kiwi", "mango", "rest")
    *_, info = env.step(1)
    assert info["stocks"][1] > 0.0
    *_, info = env.step(2)
    assert info["stocks"][2] > 0.0
    assert info["stocks"][0] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"goods": {"a": 1.0}, "profile": default_profile(["a"])}, "goods: give goods or profile"),
        ({"profile": default_profile(["a"], rest=False)}, r"missing values \['rest'\]"),
        ({"out_of_stock_probability": 1.0}, "out_of_stock_probability: must be in"),
        ({"episode_length": 0}, "episode_length: must be >= 1"),
        ({"episode_length": 2.5}, "episode_length: must be an int"),
        ({"pick_effort": -1.0}, "pick_effort: must be >= 0"),
        ({"goods": {"a": -1.0}}, "weight"),
        ({"render_mode": "window"}, "render_mode"),
    ],
)
def test_bad_arguments_raise_one_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OrchardEnv(**kwargs)


def test_bad_action_raises():
    env = OrchardEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action: must be in \[0, 4\]"):
        env.step(5)


def test_render_modes():
    env = gymnasium.make("valuegym/Orchard-v0", render_mode="ansi")
    env.reset(seed=0)
    env.step(FIG)
    text = env.render()
    assert "last action: fig" in text
    assert "in stock:" in text
    env = gymnasium.make("valuegym/Orchard-v0", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8
    assert frame.ndim == 3
    assert frame.shape[2] == 3


def test_stepping_on_after_truncation_keeps_the_last_stock_and_stays_in_bounds():
    # Gymnasium leaves stepping a truncated env undefined; Orchard must not read past its
    # stock schedule or leave its observation space.
    env = OrchardEnv(episode_length=3, out_of_stock_probability=0.5)
    env.reset(seed=4)
    for _ in range(3):
        observation, *_, truncated, _ = env.step(REST)
    assert truncated
    last_stock = observation[-5:-1].copy()
    for action in [APPLE, PEAR, PLUM, FIG, REST] * 2:
        observation, reward, _, truncated, info = env.step(action)
        assert env.observation_space.contains(observation)
        np.testing.assert_array_equal(observation[-5:-1], last_stock)
        assert observation[-1] == 0.0
        if action != REST:
            assert (reward > 0.0) == bool(last_stock[action])
            assert info["action_wanting"][action] == 0.0 or last_stock[action]
    shown = OrchardEnv(episode_length=1, out_of_stock_probability=0.0, render_mode="ansi")
    shown.reset(seed=0)
    shown.step(REST)
    shown.step(REST)  # past the end
    assert "in stock: apple pear plum fig" in shown.render()
