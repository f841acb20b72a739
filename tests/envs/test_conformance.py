"""One battery over every registered single-agent valuegym id."""

import doctest
import importlib
import inspect
import pickle
import subprocess
import sys
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import valuegym  # noqa: F401 - registers the ids
from valuegym.envs import SINGLE_AGENT_ENV_IDS
from valuegym.envs.registration import EPISODE_LENGTH, env_class

DOCUMENTED_MODULES = [
    "valuegym.envs.orchard",
    "valuegym.envs.orchard_vector",
    "valuegym.envs.inbox",
    "valuegym.envs.conversation",
    "valuegym.envs.conversation_v1",
    "valuegym.agents.heuristic",
    "valuegym.agents.training",
    "valuegym.agents.tuned",
    "valuegym.agents.planner",
]
DOC_SECTIONS = [
    "## Description",
    "## Action Space",
    "## Observation Space",
    "## Rewards",
    "## Starting State",
    "## Episode End",
    "## Arguments",
    "## Version History",
]


def rollout(env: gymnasium.Env, seed: int, steps: int = 60) -> list:
    observation, info = env.reset(seed=seed)
    actions = np.random.default_rng(seed).integers(env.action_space.n, size=steps)
    trace = [(observation, info)]
    for action in actions:
        observation, reward, terminated, truncated, info = env.step(action)
        trace.append((observation, reward, terminated, truncated, info))
        if terminated or truncated:
            observation, info = env.reset()
            trace.append((observation, info))
    return trace


def assert_same(a, b) -> None:
    assert type(a) is type(b)
    if isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("env_id", SINGLE_AGENT_ENV_IDS)
def test_gymnasium_and_sb3_checkers_pass_without_warnings(env_id, monkeypatch):
    # Gymnasium's checker renders every declared mode, "human" included: give SDL a window it
    # can open off screen (a headless "human" render warns by design; tested below).
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gymnasium_check_env(gymnasium.make(env_id).unwrapped)
        sb3_check_env(gymnasium.make(env_id).unwrapped, warn=True)


@pytest.mark.parametrize("env_id", SINGLE_AGENT_ENV_IDS)
def test_step_types_and_info_protocol(env_id):
    env = gymnasium.make(env_id)
    observation, info = env.reset(seed=0)
    for action in range(env.action_space.n):
        observation, reward, terminated, truncated, info = env.step(action)
        assert type(reward) is float
        assert type(terminated) is bool
        assert type(truncated) is bool
        assert observation.dtype == np.float32
        assert env.observation_space.contains(observation)
        assert info["action_wanting"].shape == (env.action_space.n,)
        assert info["action_wanting"].dtype == np.float64
        assert type(info["temperature"]) is float
        assert info["stocks"].shape == info["wanting"].shape == (len(env.unwrapped.value_names),)
        assert type(info["most_wanted"]) is int


@pytest.mark.parametrize("env_id", SINGLE_AGENT_ENV_IDS)
def test_same_seed_same_rollout_and_different_seed_differs(env_id):
    first = rollout(gymnasium.make(env_id), seed=7)
    assert_same(first, rollout(gymnasium.make(env_id), seed=7))
    other = rollout(gymnasium.make(env_id), seed=8)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other, strict=False))


@pytest.mark.parametrize("env_id", SINGLE_AGENT_ENV_IDS)
def test_pickle_round_trip_continues_identically(env_id):
    env = gymnasium.make(env_id)
    env.reset(seed=3)
    for action in range(env.action_space.n):
        env.step(action)
    clone = pickle.loads(pickle.dumps(env))
    for action in [0, 1, 2, 3, 4] * 4:
        assert_same(env.step(action), clone.step(action))


@pytest.mark.slow
@pytest.mark.parametrize("env_id", SINGLE_AGENT_ENV_IDS)
def test_async_spawn_vector_env_matches_sync(env_id):
    sync = gymnasium.make_vec(env_id, num_envs=2, vectorization_mode="sync")
    spawned = gymnasium.make_vec(
        env_id, num_envs=2, vectorization_mode="async", vector_kwargs={"context": "spawn"}
    )
    try:
        observations, _ = spawned.reset(seed=5)
        np.testing.assert_array_equal(observations, sync.reset(seed=5)[0])
        actions = np.random.default_rng(0).integers(sync.single_action_space.n, size=(30, 2))
        for action in actions:
            ours, theirs = spawned.step(action), sync.step(action)
            for mine, reference in zip(ours[:4], theirs[:4], strict=True):
                np.testing.assert_array_equal(mine, reference)
            np.testing.assert_array_equal(ours[4]["action_wanting"], theirs[4]["action_wanting"])
    finally:
        spawned.close()
        sync.close()


@pytest.mark.parametrize("env_id", SINGLE_AGENT_ENV_IDS)
def test_render_modes(env_id):
    for mode, kind in (("ansi", str), ("rgb_array", np.ndarray)):
        env = gymnasium.make(env_id, render_mode=mode)
        env.reset(seed=0)
        env.step(0)
        assert isinstance(env.render(), kind)


@pytest.mark.parametrize("env_id", SINGLE_AGENT_ENV_IDS)
def test_human_render_shows_a_window_or_prints_the_text_frame(env_id, monkeypatch, capsys):
    pygame = pytest.importorskip("pygame")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    env = gymnasium.make(env_id, render_mode="human")
    env.reset(seed=0)
    env.step(0)
    assert env.render() is None
    window = pygame.display.get_surface()
    assert window is not None
    assert window.get_size()[0] == 512
    env.close()
    assert pygame.display.get_surface() is None
    monkeypatch.setitem(sys.modules, "pygame", None)  # as if pygame were not installed
    text = gymnasium.make(env_id, render_mode="ansi")
    text.reset(seed=0)
    env.reset(seed=0)
    capsys.readouterr()
    assert env.render() is None
    assert capsys.readouterr().out == text.render()


@pytest.mark.parametrize("env_id", SINGLE_AGENT_ENV_IDS)
def test_env_docstring_is_a_documentation_page(env_id):
    env_class = type(gymnasium.make(env_id).unwrapped)
    positions = [env_class.__doc__.find(section) for section in DOC_SECTIONS]
    assert -1 not in positions
    assert positions == sorted(positions)
    assert ">>> " in env_class.__doc__


@pytest.mark.parametrize("module_name", DOCUMENTED_MODULES)
def test_docstring_examples_run(module_name):
    result = doctest.testmod(importlib.import_module(module_name))
    assert result.attempted > 0
    assert result.failed == 0


def test_make_with_module_prefix_imports_valuegym():
    code = (
        "import gymnasium, sys; env = gymnasium.make('valuegym:valuegym/Orchard-v0'); "
        "assert 'valuegym' in sys.modules; print(env.reset(seed=0)[0].shape)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "(17,)"


@pytest.mark.parametrize("env_id", SINGLE_AGENT_ENV_IDS)
@pytest.mark.parametrize("horizon", [None, 7])
def test_time_limit_and_the_envs_own_horizon_end_the_same_step(env_id, horizon):
    """The registry's horizon is the env's default; given together they move together."""
    spec = gymnasium.spec(env_id)
    default = inspect.signature(env_class(env_id)).parameters["episode_length"].default
    assert spec.max_episode_steps == default == EPISODE_LENGTH
    if horizon is None:
        env = gymnasium.make(env_id)
    else:
        env = gymnasium.make(env_id, episode_length=horizon, max_episode_steps=horizon)
    expected = default if horizon is None else horizon
    assert env.spec.max_episode_steps == expected
    assert env.get_wrapper_attr("_max_episode_steps") == expected
    env.reset(seed=0)
    for step in range(1, expected + 1):
        _, _, terminated, truncated, _ = env.step(env.action_space.n - 1)
        assert not terminated
        assert truncated == (step == expected)


def test_human_render_without_a_display_warns_once_and_prints_the_text_frame(monkeypatch, capsys):
    pygame = pytest.importorskip("pygame")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    env_id = SINGLE_AGENT_ENV_IDS[0]
    text = gymnasium.make(env_id, render_mode="ansi")
    text.reset(seed=0)
    for _ in range(2):  # once per env
        env = gymnasium.make(env_id, render_mode="human")
        env.reset(seed=0)
        capsys.readouterr()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # counts every warning, repeats included
            frames = [env.render(), env.render()]
        assert frames == [None, None]
        assert [w.category for w in caught] == [RuntimeWarning]
        assert "no display to open a window on" in str(caught[0].message)
        assert "printing each frame as text to stdout" in str(caught[0].message)
        assert capsys.readouterr().out == text.render() * 2
        assert pygame.display.get_surface() is None
        env.close()
