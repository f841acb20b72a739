"""One battery over every registered multi-agent id (and Conversation's text mode)."""

import functools
import importlib
import pickle
import types

import numpy as np
import pettingzoo
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import data_equivalence
from pettingzoo.test import (
    api_test,
    max_cycles_test,
    parallel_api_test,
    parallel_seed_test,
    render_test,
    seed_test,
    state_test,
)
from supersuit import concat_vec_envs_v1, pettingzoo_env_to_vec_env_v1

from valuegym.envs import MULTI_AGENT_ENV_IDS

# Each case: a registered id and extra arguments; the ids' defaults, then text mode.
CASES = [(env_id, {}) for env_id in MULTI_AGENT_ENV_IDS] + [
    ("valuegym/Conversation-v0", {"mode": "text"}),
    ("valuegym/Conversation-v1", {"mode": "text"}),
]
CASE_IDS = [
    env_id.split("/")[1] + "".join(f"-{v}" for v in kwargs.values()) for env_id, kwargs in CASES
]


@pytest.fixture(params=CASES, ids=CASE_IDS)
def case(request):
    return request.param


# SuperSuit's vector envs stack array observations: text mode (a Dict with the chat) is not one.
NUMERIC_CASES = [case for case in CASES if case[1].get("mode") != "text"]


@pytest.fixture(params=NUMERIC_CASES, ids=[CASE_IDS[CASES.index(c)] for c in NUMERIC_CASES])
def numeric_case(request):
    return request.param


def make_parallel(env_id, kwargs, **more):
    return pettingzoo.make("parallel", env_id, **kwargs, **more)


def make_aec(env_id, kwargs, **more):
    return pettingzoo.make("aec", env_id, **kwargs, **more)


def module_of(env_id, kwargs):
    """The env's module, with ``kwargs`` bound, as ``max_cycles_test`` wants it."""
    entry_point = pettingzoo.parallel_registry[env_id].entry_point
    module = importlib.import_module(entry_point.split(":")[0])
    return types.SimpleNamespace(
        parallel_env=functools.partial(module.parallel_env, **kwargs),
        env=functools.partial(module.env, **kwargs),
    )


def test_every_multi_agent_id_is_registered_for_both_apis():
    assert set(MULTI_AGENT_ENV_IDS) == {
        "valuegym/Commons-v0",
        "valuegym/Conversation-v0",
        "valuegym/Conversation-v1",
    }
    for env_id in MULTI_AGENT_ENV_IDS:
        assert env_id in pettingzoo.parallel_registry
        assert env_id in pettingzoo.aec_registry


def test_module_has_pettingzoo_entry_points(case):
    env_id, kwargs = case
    entry_point = pettingzoo.parallel_registry[env_id].entry_point
    module = importlib.import_module(entry_point.split(":")[0])
    assert isinstance(module.parallel_env(**kwargs), module.raw_env)
    assert isinstance(module.env(**kwargs), pettingzoo.AECEnv)
    assert module.raw_env.__name__[0].isupper()
    assert module.raw_env.__doc__ is not None
    assert "## Version History" in module.raw_env.__doc__


# Text mode's Dict spaces with a chat are deliberate; api_test recommends Box or Discrete.
@pytest.mark.filterwarnings("ignore:(Observation|Action) space for each agent probably")
@pytest.mark.filterwarnings("ignore:Observation is not a NumPy array")
def test_aec_api(case):
    api_test(make_aec(*case), num_cycles=200)


def test_parallel_api(case):
    parallel_api_test(make_parallel(*case), num_cycles=200)


def test_aec_seed(case):
    seed_test(functools.partial(make_aec, *case), num_cycles=50)


def test_parallel_seed(case):
    parallel_seed_test(functools.partial(make_parallel, *case), num_cycles=50)


def test_max_cycles(case):
    max_cycles_test(module_of(*case))


def test_state(case):
    state_test(make_aec(*case), make_parallel(*case), num_cycles=20)
    env = make_parallel(*case)
    observations, _ = env.reset(seed=0)
    state = env.state()
    assert env.state_space.contains(state)
    numeric = [o["observation"] if isinstance(o, dict) else o for o in observations.values()]
    np.testing.assert_array_equal(state, np.concatenate(numeric))


def test_render(case, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # "human" opens its window off screen
    render_test(
        functools.partial(make_aec, *case), custom_tests={"ansi": lambda text: text.endswith("\n")}
    )


def rollout(env, seed, n_steps):
    """Step with seeded random actions; every step's (observations, rewards, ..., infos)."""
    observations, infos = env.reset(seed=seed)
    for index, agent in enumerate(env.possible_agents):
        env.action_space(agent).seed(seed + index)
    history = [(observations, infos)]
    for _ in range(n_steps):
        if not env.agents:
            observations, infos = env.reset()
            history.append((observations, infos))
        history.append(env.step({a: env.action_space(a).sample() for a in env.agents}))
    return history


def test_same_seed_gives_the_same_full_rollout(case):
    # Upstream parallel_seed_test compares the first step only; this compares every step of
    # several episodes, resets included.
    first = rollout(make_parallel(*case, max_cycles=40), seed=3, n_steps=100)
    second = rollout(make_parallel(*case, max_cycles=40), seed=3, n_steps=100)
    assert len(first) == len(second)
    for step, (one, two) in enumerate(zip(first, second, strict=True)):
        assert data_equivalence(one, two), f"rollouts differ at entry {step}"


def test_pickled_env_continues_identically(case):
    env = make_parallel(*case)
    rollout(env, seed=1, n_steps=5)
    copy = pickle.loads(pickle.dumps(env))
    for index, agent in enumerate(env.agents):
        env.action_space(agent).seed(index)
        copy.action_space(agent).seed(index)
    for _ in range(5):
        actions = {a: env.action_space(a).sample() for a in env.agents}
        assert data_equivalence(actions, {a: copy.action_space(a).sample() for a in copy.agents})
        assert data_equivalence(env.step(actions), copy.step(actions))


def test_supersuit_vectorises_numeric_envs(numeric_case):
    env_id, kwargs = numeric_case
    parallel = make_parallel(env_id, kwargs)
    assert isinstance(parallel.observation_space(parallel.possible_agents[0]), spaces.Box)
    n_agents = len(parallel.possible_agents)
    vector = pettingzoo_env_to_vec_env_v1(parallel)
    vector = concat_vec_envs_v1(vector, 2, num_cpus=0, base_class="stable_baselines3")
    observations = vector.reset()
    assert observations.shape == (2 * n_agents, *vector.observation_space.shape)
    vector.action_space.seed(0)
    for _ in range(3):
        actions = np.array([vector.action_space.sample() for _ in range(vector.num_envs)])
        observations, rewards, dones, infos = vector.step(actions)
        assert observations.shape[0] == rewards.shape[0] == dones.shape[0] == 2 * n_agents
        assert np.isfinite(rewards).all()
        assert all("action_wanting" in info for info in infos)
    vector.close()
