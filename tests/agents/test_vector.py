import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

import valuegym  # noqa: F401 - registers the ids
from valuegym.agents.vector import GymnasiumVecEnv
from valuegym.envs.orchard import OrchardEnv

KWARGS = {"episode_length": 5, "out_of_stock_probability": 0.3}
N_ENVS = 3


def native(mode=AutoresetMode.NEXT_STEP):
    return gymnasium.make_vec(
        "valuegym/Orchard-v0",
        N_ENVS,
        vectorization_mode="vector_entry_point",
        autoreset_mode=mode,
        **KWARGS,
    )


def sync(mode):
    return SyncVectorEnv([lambda: OrchardEnv(**KWARGS)] * N_ENVS, autoreset_mode=mode)


@pytest.mark.parametrize(
    "make",
    [
        native,
        lambda: native(AutoresetMode.SAME_STEP),
        lambda: native(AutoresetMode.DISABLED),
        lambda: sync(AutoresetMode.NEXT_STEP),
        lambda: sync(AutoresetMode.SAME_STEP),
        lambda: sync(AutoresetMode.DISABLED),
    ],
    ids=[
        "native-next-step",
        "native-same-step",
        "native-disabled",
        "sync-next-step",
        "sync-same-step",
        "sync-disabled",
    ],
)
def test_steps_as_sb3_steps_one_env_per_copy(make):
    ours = GymnasiumVecEnv(make())
    reference = DummyVecEnv([lambda: OrchardEnv(**KWARGS)] * N_ENVS)
    for vec_env in (ours, reference):
        vec_env.seed(11)
    np.testing.assert_array_equal(ours.reset(), reference.reset())
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(13):
        actions = rng.integers(0, 5, N_ENVS)
        ours.step_async(actions)
        reference.step_async(actions)
        mine, theirs = ours.step_wait(), reference.step_wait()
        for a, b in zip(mine[:3], theirs[:3], strict=True):
            np.testing.assert_array_equal(a, b)
        for info, expected in zip(mine[3], theirs[3], strict=True):
            assert info.keys() <= expected.keys()
            if "terminal_observation" in expected:
                finished += 1
                np.testing.assert_array_equal(
                    info["terminal_observation"], expected["terminal_observation"]
                )
                assert info["TimeLimit.truncated"] is expected["TimeLimit.truncated"] is True
    assert finished == 2 * N_ENVS


def test_with_info_unbatches_the_vector_info():
    vec_env = GymnasiumVecEnv(native(), with_info=True)
    vec_env.reset()
    _, _, _, infos = vec_env.step(np.zeros(N_ENVS, dtype=np.int64))
    single = OrchardEnv(**KWARGS)
    assert infos[0].keys() == single.reset(seed=0)[1].keys()
    assert infos[0]["stocks"].shape == (len(single.value_names),)
    assert vec_env.get_attr("num_envs") == [N_ENVS] * N_ENVS


def test_ppo_trains_on_the_native_vector_env():
    vec_env = GymnasiumVecEnv(native())
    model = PPO("MlpPolicy", vec_env, n_steps=8, batch_size=12, n_epochs=1, seed=0)
    model.learn(48)
    assert model.num_timesteps == 48
    actions, _ = model.predict(vec_env.reset(), deterministic=True)
    assert actions.shape == (N_ENVS,)
