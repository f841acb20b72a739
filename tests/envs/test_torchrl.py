"""TorchRL wraps every valuegym env: its spec checker passes and a rollout runs."""

import gymnasium
import pettingzoo
import pytest
from gymnasium.vector import AutoresetMode

import valuegym  # noqa: F401 - registers the ids
from valuegym.envs import MULTI_AGENT_ENV_IDS

pytest.importorskip("torchrl", reason="TorchRL is in the test extra")
from torchrl.envs.libs.gym import GymWrapper
from torchrl.envs.libs.pettingzoo import PettingZooWrapper
from torchrl.envs.utils import check_env_specs

# TorchRL warns on any PettingZoo but the one it was tested with (1.24); 1.27 works.
pytestmark = pytest.mark.filterwarnings("ignore:PettingZoo in TorchRL is tested:UserWarning")


@pytest.mark.parametrize("env_id", MULTI_AGENT_ENV_IDS)
def test_pettingzoo_wrapper_with_global_state(env_id):
    parallel = pettingzoo.make("parallel", env_id, n_agents=3, max_cycles=6)
    env = PettingZooWrapper(parallel, return_state=True, seed=0)
    check_env_specs(env, seed=0)
    rollout = env.rollout(10, break_when_any_done=True)
    assert rollout.batch_size == (6,)  # truncated after max_cycles
    assert rollout["agent", "observation"].shape == (
        6,
        3,
        parallel.observation_space("agent_0").shape[0],
    )
    assert rollout["state"].shape == (6, *parallel.state_space.shape)
    assert rollout["agent", "info", "stocks"].shape == (6, 3, len(parallel.value_names))
    assert rollout["next", "agent", "truncated"][-1].all()


def test_gym_wrapper_single_orchard():
    env = GymWrapper(gymnasium.make("valuegym/Orchard-v0", episode_length=5))
    check_env_specs(env, seed=0)
    rollout = env.rollout(8, break_when_any_done=True)
    assert rollout.batch_size == (5,)
    assert rollout["next", "truncated"][-1].item()


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.DISABLED])
def test_gym_wrapper_native_vector_orchard(mode):
    envs = gymnasium.make_vec(
        "valuegym/Orchard-v0",
        num_envs=4,
        vectorization_mode="vector_entry_point",
        episode_length=5,
        autoreset_mode=mode,
    )
    env = GymWrapper(envs)
    check_env_specs(env, seed=0)
    rollout = env.rollout(12, break_when_any_done=False)  # through the autoresets
    assert rollout.batch_size == (4, 12)
    truncated = rollout["next", "truncated"].squeeze(-1)
    assert truncated[:, [4, 9]].all()
    assert truncated.sum() == 8
    values = slice(0, envs.unwrapped.rules.n_actions * 2 + 2)  # fresh after the reset
    assert (rollout["observation"][:, 5, values] == rollout["observation"][:, 0, values]).all()
