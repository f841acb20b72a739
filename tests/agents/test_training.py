import json

import numpy as np
import pytest
import torch

import valuegym  # noqa: F401 - registers the ids
from valuegym.agents.heuristic import RandomAgent
from valuegym.agents.training import (
    Evaluation,
    PolicyAgent,
    TrainingConfig,
    checkpoint_metadata,
    evaluate,
    load,
    save,
    train,
)

ORCHARD = "valuegym/Orchard-v0"
TINY = TrainingConfig(total_timesteps=128, hyperparameters={"n_steps": 64, "batch_size": 64})


@pytest.fixture(autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # CI has two cores shared by everything
    yield
    torch.set_num_threads(threads)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="algorithm: unknown 'a2c'"):
        TrainingConfig(algorithm="a2c")
    with pytest.raises(ValueError, match="total_timesteps: must be an int >= 1"):
        TrainingConfig(total_timesteps=0)
    with pytest.raises(ValueError, match="hyperparameters: not accepted by ppo"):
        train(ORCHARD, TrainingConfig(total_timesteps=64, hyperparameters={"n_stepz": 64}))
    with pytest.raises(ValueError, match="not a registered Gymnasium environment"):
        train("valuegym/Nowhere-v0", TINY)


def test_evaluation_summary():
    result = Evaluation(seeds=(0, 1, 2), returns=(1.0, 2.0, 3.0))
    assert result.mean == 2.0
    assert result.std == pytest.approx(np.sqrt(2 / 3))


def test_save_load_round_trip_gives_the_same_policy(tmp_path):
    model = train(ORCHARD, TINY)
    path = save(model, tmp_path / "orchard", metadata=checkpoint_metadata(ORCHARD, TINY))
    assert path.name == "orchard.zip"
    sidecar = json.loads((tmp_path / "orchard.json").read_text())
    assert sidecar["algorithm"] == "ppo"
    assert sidecar["env_id"] == ORCHARD
    assert sidecar["config"]["total_timesteps"] == 128
    loaded = load(tmp_path / "orchard")
    observations = np.random.default_rng(0).uniform(0, 1, (20, 17)).astype(np.float32)
    np.testing.assert_array_equal(
        model.predict(observations, deterministic=True)[0],
        loaded.predict(observations, deterministic=True)[0],
    )
    seeds = [3, 4]
    assert (
        evaluate(ORCHARD, PolicyAgent(model), seeds).returns
        == evaluate(ORCHARD, PolicyAgent(loaded), seeds).returns
    )


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load(tmp_path / "missing")
    model = train(ORCHARD, TINY)
    path = save(model, tmp_path / "m.zip")
    (tmp_path / "m.json").write_text(json.dumps({"algorithm": "sac"}))
    with pytest.raises(ValueError, match="algorithm 'sac' is not one of"):
        load(path)


def test_dqn_trains_and_tensorboard_logs_when_asked(tmp_path):
    config = TrainingConfig(
        algorithm="dqn",
        total_timesteps=200,
        hyperparameters={"learning_starts": 50, "train_freq": 4},
    )
    model = train("valuegym/Inbox-v0", config, log_dir=tmp_path)
    assert type(model).__name__ == "DQN"
    events = list(tmp_path.rglob("events.out.tfevents.*"))
    assert len(events) == 1
    assert events[0].parent.name.startswith("valuegym_Inbox-v0")
    result = evaluate("valuegym/Inbox-v0", PolicyAgent(model), seeds=[0])
    assert len(result.returns) == 1


def test_same_config_trains_the_same_policy():
    a, b = train(ORCHARD, TINY), train(ORCHARD, TINY)
    for tensor_a, tensor_b in zip(
        a.policy.state_dict().values(), b.policy.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(tensor_a, tensor_b, rtol=0, atol=0)


@pytest.mark.slow
def test_ppo_learns_to_clearly_beat_random_on_orchard():
    config = TrainingConfig(
        total_timesteps=30_000,
        n_envs=4,
        seed=0,
        hyperparameters={
            "n_steps": 256,
            "batch_size": 256,
            "n_epochs": 4,
            "ent_coef": 0.01,
            "gamma": 0.9,
            "learning_rate": 1e-3,
        },
    )
    model = train(ORCHARD, config)
    seeds = range(100, 108)
    trained = evaluate(ORCHARD, PolicyAgent(model), seeds)
    random = evaluate(ORCHARD, RandomAgent(5, seed=0), seeds)
    # Random scores about 22 and greedy-on-wanting about 31.5; PPO reaches greedy's level.
    assert trained.mean > 1.2 * random.mean
    assert min(trained.returns) > max(random.returns)
