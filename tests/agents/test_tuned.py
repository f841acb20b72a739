import pytest
from stable_baselines3.common.vec_env import VecNormalize

import valuegym  # noqa: F401 - registers the ids
from valuegym.agents.training import TrainingConfig, make_training_env
from valuegym.agents.tuned import (
    TunedSettings,
    _validated,
    fit_rollout,
    tuned_env_ids,
    tuned_settings,
    with_overrides,
)
from valuegym.envs.registration import MULTI_AGENT_ENV_IDS, SINGLE_AGENT_ENV_IDS

TRAINABLE = (
    "valuegym/Commons-v0",
    "valuegym/Conversation-v0",
    "valuegym/Conversation-v1",
    "valuegym/Inbox-v0",
    "valuegym/Orchard-v0",
)


def test_every_trainable_env_ships_ppo_settings_and_single_agent_envs_dqn_too():
    assert set(TRAINABLE) <= set(tuned_env_ids())
    assert set(tuned_env_ids()) <= {*SINGLE_AGENT_ENV_IDS, *MULTI_AGENT_ENV_IDS}
    for env_id in tuned_env_ids():
        settings = tuned_settings(env_id)
        assert settings.algorithm == "ppo"
        assert settings.total_timesteps >= 10_000
        assert not settings.normalize or "norm_obs" not in settings.normalize
        copies = settings.n_envs * (5 if env_id in MULTI_AGENT_ENV_IDS else 1)
        rollout = settings.hyperparameters["n_steps"] * copies
        assert rollout % settings.hyperparameters["batch_size"] == 0  # no ragged mini-batch
    for env_id in SINGLE_AGENT_ENV_IDS:
        assert tuned_settings(env_id, "dqn").algorithm == "dqn"


def test_missing_settings_name_the_env_and_what_is_tuned():
    with pytest.raises(KeyError, match=r"Nowhere-v0: no tuned settings .*Orchard-v0"):
        tuned_settings("valuegym/Nowhere-v0")
    with pytest.raises(KeyError, match="no tuned dqn settings"):
        tuned_settings("valuegym/Commons-v0", "dqn")


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ([], "must be a mapping"),
        ({"n_envs": 1, "total_timesteps": 10, "lr": 1}, r"unknown keys \['lr'\]"),
        ({"n_envs": 0, "total_timesteps": 10}, r"ppo\.n_envs: must be an int >= 1"),
        ({"n_envs": 1, "total_timesteps": True}, "total_timesteps: must be an int >= 1"),
        ({"n_envs": 1, "total_timesteps": 9, "normalize": {"norm_obs": True}}, "normalize"),
        (
            {"n_envs": 1, "total_timesteps": 9, "hyperparameters": {"n_stepz": 8}},
            r"\['n_stepz'\] are not ppo arguments",
        ),
    ],
)
def test_malformed_settings_fail_with_one_line_naming_the_field(block, message):
    with pytest.raises(ValueError, match=message) as caught:
        _validated("X.yaml: ppo", "ppo", block)
    assert "\n" not in str(caught.value)


def test_overrides_win_and_are_validated():
    settings = tuned_settings("valuegym/Orchard-v0")
    changed = with_overrides(settings, {"learning_rate": 1e-3})
    assert changed.hyperparameters["learning_rate"] == 1e-3
    assert changed.hyperparameters["n_steps"] == settings.hyperparameters["n_steps"]
    with pytest.raises(ValueError, match=r"hyperparameter: \['lr'\] are not ppo arguments"):
        with_overrides(settings, {"lr": 1e-3})
    dqn = TunedSettings("dqn", {}, 1, 10, {})
    with pytest.raises(ValueError, match="not dqn arguments"):
        with_overrides(dqn, {"ent_coef": 0.01})


@pytest.mark.parametrize(
    ("given", "copies", "budget", "n_steps", "batch_size"),
    [
        ({"n_steps": 128, "batch_size": 256}, 8, 50_000, 128, 256),
        ({"n_steps": 128, "batch_size": 256}, 8, 200, 25, 200),
        ({}, 5, 48, 9, 45),
        ({"n_steps": 100, "batch_size": 64}, 3, 10_000, 100, 60),
        ({"n_steps": 64}, 1, 3, 8, 8),
    ],
)
def test_rollout_fits_the_budget_and_batches_divide_it(given, copies, budget, n_steps, batch_size):
    fitted = fit_rollout(given, copies, budget)
    assert (fitted["n_steps"], fitted["batch_size"]) == (n_steps, batch_size)
    assert fitted["n_steps"] * copies % fitted["batch_size"] == 0


def test_reward_normalisation_wraps_the_training_env_and_leaves_observations_alone():
    config = TrainingConfig(normalize={"norm_reward": True, "gamma": 0.9})
    env = make_training_env("valuegym/Orchard-v0", config)
    assert isinstance(env, VecNormalize)
    assert not env.norm_obs
    assert env.norm_reward
    assert env.gamma == 0.9
    assert not isinstance(make_training_env("valuegym/Orchard-v0", TrainingConfig()), VecNormalize)
