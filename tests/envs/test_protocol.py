import gymnasium
import numpy as np
import pettingzoo
import pytest

import valuegym  # noqa: F401 - registers the environments
from valuegym.envs.protocol import (
    MESSAGES,
    check_state_roundtrip,
    check_value_env,
    supports_state,
)
from valuegym.envs.registration import MULTI_AGENT_ENV_IDS, SINGLE_AGENT_ENV_IDS, env_class
from valuegym.values import AgentSnapshot

CONFIGURATIONS = [
    *((env_id, {}) for env_id in SINGLE_AGENT_ENV_IDS),
    *((env_id, {}) for env_id in MULTI_AGENT_ENV_IDS),
    ("valuegym/Conversation-v0", {"mode": "text"}),
    ("valuegym/Conversation-v1", {"mode": "text"}),
]


def _make(env_id, arguments):
    if env_id in MULTI_AGENT_ENV_IDS:
        return pettingzoo.make("parallel", env_id, **arguments)
    return gymnasium.make(env_id, **arguments)


@pytest.mark.parametrize(("env_id", "arguments"), CONFIGURATIONS)
def test_every_env_keeps_the_value_env_contract(env_id, arguments):
    env = _make(env_id, arguments)
    check_value_env(env, steps=8)
    env.close()


def _is_numeric(value):
    return isinstance(value, int | float | np.number) or (
        isinstance(value, np.ndarray) and value.dtype.kind in "biuf"
    )


@pytest.mark.parametrize(("env_id", "arguments"), CONFIGURATIONS)
def test_the_only_non_numeric_info_entry_is_inbox_messages(env_id, arguments):
    # What the README says: every info entry is a number or a numeric array but Inbox's.
    env = _make(env_id, arguments)
    if env_id in MULTI_AGENT_ENV_IDS:
        _, infos = env.reset(seed=0)
        _, _, _, _, stepped = env.step({a: env.action_space(a).sample() for a in env.agents})
        seen = [*infos.values(), *stepped.values()]
    else:
        _, info = env.reset(seed=0)
        seen = [info, env.step(0)[4]]
    other = {key for info in seen for key, value in info.items() if not _is_numeric(value)}
    assert other == ({MESSAGES} if env_id == "valuegym/Inbox-v0" else set())
    env.close()


@pytest.mark.parametrize(("env_id", "arguments"), CONFIGURATIONS)
def test_default_profiles_are_known_without_building_the_env(env_id, arguments):
    env = _make(env_id, arguments)
    default = env_class(env_id).default_profile(**arguments)
    assert default.value_names == env.unwrapped.value_names
    env.close()


def test_info_values_become_a_snapshot_equal_to_the_stores():
    env = gymnasium.make("valuegym/Orchard-v0")
    _, info = env.reset(seed=3)
    env.step(1)
    _, _, _, _, info = env.step(2)
    snapshot = AgentSnapshot.from_info(info, 0, env.unwrapped.value_names)
    stored = env.unwrapped._core.store.snapshot(0)
    assert snapshot.to_record() == stored.to_record()


class _Broken(gymnasium.Env):
    """An env whose info lacks the value state: the checker must say so."""

    observation_space = gymnasium.spaces.Box(0.0, 1.0, (1,))
    action_space = gymnasium.spaces.Discrete(2)
    action_names = ("a", "b")
    value_names = ("x",)

    @classmethod
    def default_profile(cls, **_):
        return None

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {"action_wanting": [0.0, 0.0], "temperature": 1.0}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


def test_the_checker_names_a_missing_value_state():
    with pytest.raises(AssertionError, match=r"misses \['stocks', 'wanting', 'mood'"):
        check_value_env(_Broken())


class _ExtraInfo(gymnasium.Wrapper):
    """Adds one entry to every info."""

    def __init__(self, env, value):
        super().__init__(env)
        self.value = value

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        return observation, {**info, "x": self.value}


def test_the_checker_refuses_strings_and_nested_mappings_in_info():
    env = gymnasium.make("valuegym/Orchard-v0")
    check_value_env(env)
    for wrong in ("fig", {"fig": 1.0}, None):
        with pytest.raises(AssertionError, match=r"info\['x'\] of agent is a"):
            check_value_env(_ExtraInfo(env, wrong))


def test_the_checker_counts_action_names():
    broken = _Broken()
    broken.action_names = ("only one",)
    with pytest.raises(AssertionError, match="1 names for 2 actions"):
        check_value_env(broken)


STATEFUL = [
    ("valuegym/Orchard-v0", {}),
    ("valuegym/Orchard-v0", {"out_of_stock_probability": 0.5}),
    ("valuegym/Inbox-v0", {"burst_probability": 0.5}),
    ("valuegym/Commons-v0", {"n_agents": 3}),
]


@pytest.mark.parametrize(("env_id", "arguments"), STATEFUL)
@pytest.mark.parametrize("seed", [0, 1])
def test_state_roundtrip(env_id, arguments, seed):
    env = _make(env_id, arguments)
    assert supports_state(env)
    check_state_roundtrip(env, seed=seed, warmup=4, steps=12)


def test_a_restored_state_draws_the_same_random_numbers():
    # Inbox's arrivals come from its generator: the restored env receives the same messages.
    env = gymnasium.make("valuegym/Inbox-v0", arrival_rate=3.0).unwrapped
    env.reset(seed=3)
    state = env.get_state()
    first = [env.step(4)[4]["messages"] for _ in range(3)]
    env.set_state(state)
    assert [env.step(4)[4]["messages"] for _ in range(3)] == first
    assert len(first[-1]) >= 6  # arrivals did happen


class _ForgetsItsGenerator(env_class("valuegym/Inbox-v0")):
    def set_state(self, state):
        super().set_state({**state, "np_random": None})
        self._np_random = np.random.default_rng(12345)


def test_the_roundtrip_check_catches_a_state_without_the_generator():
    with pytest.raises(AssertionError, match="restore, step"):
        check_state_roundtrip(_ForgetsItsGenerator(arrival_rate=3.0), seed=0, steps=8)


def test_the_roundtrip_check_refuses_an_env_without_state():
    env = pettingzoo.make("parallel", "valuegym/Conversation-v0")
    assert not supports_state(env)
    with pytest.raises(AssertionError, match="no get_state and set_state"):
        check_state_roundtrip(env)


def test_commons_observe_all_gives_back_the_last_step():
    env = pettingzoo.make("parallel", "valuegym/Commons-v0", n_agents=3).unwrapped
    env.reset(seed=0)
    observations, _, _, _, infos = env.step({agent: 2 for agent in env.agents})  # harvest
    again_observations, again_infos = env.observe_all()
    assert all(np.array_equal(again_observations[a], observations[a]) for a in observations)
    assert again_infos["agent_1"]["cooperation_rate"] == infos["agent_1"]["cooperation_rate"]
    assert again_infos["agent_1"]["harvest"] == infos["agent_1"]["harvest"] > 0


def test_commons_aec_env_keeps_the_state_contract_through_its_parallel_env():
    env = pettingzoo.make("aec", "valuegym/Commons-v0", n_agents=3)
    assert type(env.unwrapped).__name__ == "CommonsEnv"
    check_state_roundtrip(env, seed=2, steps=6)
