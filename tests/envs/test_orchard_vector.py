import copy as copying
import pickle

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import valuegym  # noqa: F401 - registers the ids
from valuegym.envs.core import most_wanted_index
from valuegym.envs.orchard import OrchardEnv
from valuegym.envs.orchard_vector import OrchardVectorEnv

KWARGS = {"episode_length": 6, "out_of_stock_probability": 0.3}


def sync_orchards(n: int, **kwargs) -> SyncVectorEnv:
    return SyncVectorEnv([lambda: OrchardEnv(**kwargs) for _ in range(n)])


def assert_same_infos(native: dict, sync: dict) -> None:
    np.testing.assert_array_equal(native["action_wanting"], sync["action_wanting"])
    assert native.keys() == sync.keys()
    for key in ("stocks", "wanting", "mood", "stress", "temperature", "most_wanted"):
        np.testing.assert_array_equal(native[key], sync[key])
        assert native[key].dtype == sync[key].dtype


def step_both(native, sync, actions) -> np.ndarray:
    """Step both with the same actions, check they agree, return the truncations."""
    ours, theirs = native.step(actions), sync.step(actions)
    for mine, reference in zip(ours[:4], theirs[:4], strict=True):
        np.testing.assert_array_equal(mine, reference)
        assert mine.dtype == reference.dtype
    assert_same_infos(ours[4], theirs[4])
    return theirs[3]


def test_make_vec_uses_the_native_vector_env():
    envs = gymnasium.make_vec("valuegym/Orchard-v0", num_envs=3, episode_length=7)
    assert isinstance(envs, OrchardVectorEnv)
    assert envs.rules.episode_length == 7
    assert envs.single_observation_space == OrchardEnv().observation_space
    assert envs.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.NEXT_STEP


@pytest.mark.parametrize("seed", [0, [5, 9, 2, 7]])
def test_matches_sync_vector_env_through_autoresets(seed):
    native, sync = OrchardVectorEnv(4, **KWARGS), sync_orchards(4, **KWARGS)
    observations, infos = native.reset(seed=seed)
    sync_observations, sync_infos = sync.reset(seed=seed)
    np.testing.assert_array_equal(observations, sync_observations)
    assert_same_infos(infos, sync_infos)
    rng = np.random.default_rng(0)
    truncations = 0
    for _ in range(20):  # three episodes and their autoresets
        actions = rng.integers(5, size=4)
        truncations += int(step_both(native, sync, actions).sum())
    assert truncations == 12
    native.reset()  # unseeded resets continue each copy's generator
    sync.reset()
    for _ in range(3):
        step_both(native, sync, rng.integers(5, size=4))


def test_partial_reset_mask_matches_sync():
    native, sync = OrchardVectorEnv(3, **KWARGS), sync_orchards(3, **KWARGS)
    native.reset(seed=1)
    sync.reset(seed=1)
    for _ in range(2):
        step_both(native, sync, np.array([0, 1, 4]))
    mask = np.array([True, False, True])
    observations, _ = native.reset(options={"reset_mask": mask})
    sync_observations, _ = sync.reset(options={"reset_mask": mask.copy()})
    np.testing.assert_array_equal(observations, sync_observations)
    step_both(native, sync, np.array([3, 3, 3]))


def assert_copy_matches_single(infos: dict, copy: int, info: dict) -> None:
    """Copy ``copy`` of the vector env's batched infos equals one single env's info."""
    assert {key for key in infos if not key.startswith("_")} == info.keys()
    for key, value in info.items():
        np.testing.assert_array_equal(infos[key][copy], value, err_msg=key)


@pytest.mark.parametrize("seed", [0, 3])
def test_single_and_vector_envs_share_one_transition_step_for_step(seed):
    """N single Orchards (resetting after truncation as the vector env does) equal one vector."""
    n = 3
    native, singles = OrchardVectorEnv(n, **KWARGS), [OrchardEnv(**KWARGS) for _ in range(n)]
    observations, infos = native.reset(seed=seed)
    for copy, single in enumerate(singles):
        observation, info = single.reset(seed=seed + copy)
        np.testing.assert_array_equal(observations[copy], observation)
        assert_copy_matches_single(infos, copy, info)
    rng = np.random.default_rng(seed)
    ended = np.zeros(n, dtype=bool)
    for _ in range(4 * KWARGS["episode_length"]):
        actions = rng.integers(5, size=n)
        observations, rewards, terminated, truncated, infos = native.step(actions)
        for copy, single in enumerate(singles):
            if ended[copy]:
                observation, info = single.reset()
                reward, single_truncated = 0.0, False
            else:
                observation, reward, _, single_truncated, info = single.step(actions[copy])
            np.testing.assert_array_equal(observations[copy], observation)
            assert rewards[copy] == reward
            assert not terminated[copy]
            assert truncated[copy] == single_truncated
            assert_copy_matches_single(infos, copy, info)
        ended = truncated


def test_rewards_equal_single_env_rewards_for_a_long_run():
    native = OrchardVectorEnv(2)
    single = OrchardEnv()
    native.reset(seed=[11, 12])
    single.reset(seed=12)
    rng = np.random.default_rng(1)
    for _ in range(100):
        actions = rng.integers(5, size=2)
        _, rewards, _, truncated, _ = native.step(actions)
        _, reward, _, single_truncated, _ = single.step(actions[1])
        assert rewards[1] == reward
        assert truncated[1] == single_truncated
    assert single_truncated


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        (np.array([0, 1]), "expected 3 integer actions"),
        (np.array([0.0, 1, 2]), "integer"),
        (np.array([0, 5, 1]), r"must be in \[0, 4\]"),
    ],
)
def test_bad_actions_raise_and_change_nothing(actions, message):
    envs, untouched = OrchardVectorEnv(3, **KWARGS), OrchardVectorEnv(3, **KWARGS)
    envs.reset(seed=0)
    untouched.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        envs.step(actions)
    for _ in range(8):  # past the end of an episode: autoresets agree too
        ours, theirs = envs.step(np.array([3, 0, 4])), untouched.step(np.array([3, 0, 4]))
        for mine, reference in zip(ours[:4], theirs[:4], strict=True):
            np.testing.assert_array_equal(mine, reference)
        assert_same_infos(ours[4], theirs[4])


@pytest.mark.parametrize("clone", [copying.deepcopy, lambda e: pickle.loads(pickle.dumps(e))])
def test_copied_vector_env_continues_identically_and_apart(clone):
    envs = OrchardVectorEnv(3, **KWARGS)
    envs.reset(seed=1)
    envs.step(np.array([0, 1, 2]))
    twin = clone(envs)
    for actions in np.random.default_rng(0).integers(5, size=(10, 3)):
        ours, theirs = envs.step(actions), twin.step(actions)
        for mine, reference in zip(ours[:4], theirs[:4], strict=True):
            np.testing.assert_array_equal(mine, reference)
        assert_same_infos(ours[4], theirs[4])
    assert not np.shares_memory(envs._core.stock, twin._core.stock)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="num_envs"):
        OrchardVectorEnv(0)
    with pytest.raises(ValueError, match="episode_length"):
        OrchardVectorEnv(2, episode_length=0)
    envs = OrchardVectorEnv(2)
    with pytest.raises(ValueError, match="expected 2 seeds"):
        envs.reset(seed=[1, 2, 3])


def test_render_gives_one_frame_per_copy():
    envs = OrchardVectorEnv(2, render_mode="ansi")
    envs.reset(seed=0)
    frames = envs.render()
    assert len(frames) == 2
    assert frames[1].startswith("copy 1 step 0")
    assert OrchardVectorEnv(2).render() is None


def test_most_wanted_is_numpy_argmax_with_ties_and_nans():
    rng = np.random.default_rng(0)
    wanting = rng.integers(0, 3, (500, 5)).astype(float)  # many ties
    wanting[rng.random(wanting.shape) < 0.1] = np.nan
    wanting[rng.random(wanting.shape) < 0.1] = -np.inf
    np.testing.assert_array_equal(most_wanted_index(wanting), np.argmax(wanting, axis=1))


def assert_same_step_results(ours: tuple, theirs: tuple) -> None:
    """Observations, rewards, terminations, truncations and the info keys both have agree."""
    for mine, reference in zip(ours[:4], theirs[:4], strict=True):
        np.testing.assert_array_equal(mine, reference)
        assert mine.dtype == reference.dtype
    assert_same_nested_infos(ours[4], theirs[4])


def assert_same_nested_infos(native: dict, sync: dict) -> None:
    assert native.keys() == sync.keys()
    for key, value in sync.items():
        if isinstance(value, dict):
            assert_same_nested_infos(native[key], value)
        elif value.dtype == object:  # final_obs: one observation per finished copy, else None
            assert [None if v is None else v.tolist() for v in native[key]] == [
                None if v is None else v.tolist() for v in value
            ]
        else:
            np.testing.assert_array_equal(native[key], value, err_msg=key)
            assert native[key].dtype == value.dtype, key


@pytest.mark.parametrize("mode", list(AutoresetMode))
def test_each_autoreset_mode_matches_sync_vector_env(mode):
    native = OrchardVectorEnv(4, autoreset_mode=mode, **KWARGS)
    sync = SyncVectorEnv([lambda: OrchardEnv(**KWARGS) for _ in range(4)], autoreset_mode=mode)
    assert native.autoreset_mode == native.metadata["autoreset_mode"] == mode
    observations, infos = native.reset(seed=[3, 1, 4, 1])
    sync_observations, sync_infos = sync.reset(seed=[3, 1, 4, 1])
    np.testing.assert_array_equal(observations, sync_observations)
    assert_same_nested_infos(infos, sync_infos)
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(3 * KWARGS["episode_length"] + 2):
        actions = rng.integers(5, size=4)
        ours, theirs = native.step(actions), sync.step(actions)
        assert_same_step_results(ours, theirs)
        done = theirs[3]
        finished += int(done.sum())
        if mode == AutoresetMode.SAME_STEP and done.any():
            assert set(ours[4]) >= {"final_obs", "_final_obs", "final_info", "_final_info"}
        if mode == AutoresetMode.DISABLED and done.any():
            mask = done.copy()
            observations, _ = native.reset(options={"reset_mask": mask})
            np.testing.assert_array_equal(
                observations, sync.reset(options={"reset_mask": mask.copy()})[0]
            )
    assert finished == 3 * 4


def test_disabled_autoreset_refuses_to_step_a_finished_copy():
    envs = OrchardVectorEnv(2, autoreset_mode="Disabled", episode_length=1)
    envs.reset(seed=0)
    envs.step(np.array([0, 1]))
    with pytest.raises(ValueError, match=r"copies \[0, 1\] ended their episodes"):
        envs.step(np.array([0, 1]))
    envs.reset(options={"reset_mask": np.array([True, True])})
    envs.step(np.array([0, 1]))


def test_autoreset_mode_by_name_and_bad_mode():
    envs = gymnasium.make_vec(
        "valuegym/Orchard-v0",
        num_envs=2,
        vectorization_mode="vector_entry_point",
        autoreset_mode="SameStep",
    )
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert OrchardVectorEnv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    with pytest.raises(ValueError, match="autoreset_mode: expected"):
        OrchardVectorEnv(2, autoreset_mode="Sometimes")


def test_make_vec_takes_the_registered_horizon():
    envs = gymnasium.make_vec("valuegym/Orchard-v0", num_envs=2)
    assert envs.rules.episode_length == gymnasium.spec("valuegym/Orchard-v0").max_episode_steps
    envs = gymnasium.make_vec("valuegym/Orchard-v0", num_envs=2, max_episode_steps=9)
    assert envs.rules.episode_length == 9
