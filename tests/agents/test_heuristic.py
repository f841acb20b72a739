import gymnasium
import numpy as np
import pytest

import valuegym  # noqa: F401 - registers the ids
from valuegym.agents.heuristic import (
    Agent,
    GreedyAgent,
    RandomAgent,
    SoftmaxAgent,
    action_wanting_of,
)
from valuegym.agents.training import evaluate
from valuegym.envs import SINGLE_AGENT_ENV_IDS

SEEDS = range(6)


@pytest.mark.parametrize("env_id", SINGLE_AGENT_ENV_IDS)
def test_greedy_and_sharp_softmax_beat_random(env_id):
    n_actions = gymnasium.make(env_id).action_space.n
    random = evaluate(env_id, RandomAgent(n_actions, seed=0), SEEDS)
    greedy = evaluate(env_id, GreedyAgent(), SEEDS)
    softmax = evaluate(env_id, SoftmaxAgent(temperature_scale=0.1, seed=0), SEEDS)
    assert greedy.mean > 1.2 * random.mean
    assert min(greedy.returns) > max(random.returns)
    assert softmax.mean > random.mean + 2 * random.std


def test_agents_satisfy_the_protocol():
    for agent in (RandomAgent(3), GreedyAgent(), SoftmaxAgent()):
        assert isinstance(agent, Agent)


def test_greedy_takes_the_first_highest_wanting():
    info = {"action_wanting": np.array([0.2, 0.9, 0.9, 0.1]), "temperature": 1.0}
    assert GreedyAgent().act(None, info) == 1


def test_softmax_probabilities_are_the_softmax_at_the_scaled_temperature():
    agent = SoftmaxAgent(temperature_scale=0.5)
    info = {"action_wanting": np.array([0.0, np.log(2.0), np.log(4.0)]), "temperature": 2.0}
    # temperature 0.5 * 2 = 1: probabilities proportional to 1, 2, 4
    np.testing.assert_allclose(agent.probabilities(info), [1 / 7, 2 / 7, 4 / 7])
    hot = {**info, "temperature": 20.0}
    entropy = [-(p * np.log(p)).sum() for p in map(agent.probabilities, (info, hot))]
    assert entropy[1] > entropy[0]
    assert entropy[1] == pytest.approx(np.log(3), abs=0.01)


def test_softmax_samples_follow_its_probabilities_and_seed():
    info = {"action_wanting": np.array([0.0, np.log(2.0), np.log(4.0)]), "temperature": 1.0}
    agent = SoftmaxAgent(seed=3)
    draws = np.array([agent.act(None, info) for _ in range(7000)])
    frequencies = np.bincount(draws, minlength=3) / draws.size
    np.testing.assert_allclose(frequencies, [1 / 7, 2 / 7, 4 / 7], atol=0.02)
    agent.reset(seed=11)
    first = [agent.act(None, info) for _ in range(20)]
    agent.reset(seed=11)
    assert first == [agent.act(None, info) for _ in range(20)]


def test_random_agent_is_uniform_and_reproducible():
    agent = RandomAgent(gymnasium.spaces.Discrete(4), seed=1)
    draws = np.array([agent.act(None, {}) for _ in range(8000)])
    np.testing.assert_allclose(np.bincount(draws) / draws.size, [0.25] * 4, atol=0.02)
    agent.reset(seed=5)
    first = [agent.act(None, {}) for _ in range(10)]
    agent.reset(seed=5)
    assert first == [agent.act(None, {}) for _ in range(10)]


def test_missing_protocol_entries_raise_clear_errors():
    with pytest.raises(ValueError, match="no 'action_wanting' entry"):
        action_wanting_of({"temperature": 1.0})
    with pytest.raises(ValueError, match="no 'temperature' entry"):
        SoftmaxAgent().act(None, {"action_wanting": np.zeros(2)})
    with pytest.raises(ValueError, match="temperature_scale"):
        SoftmaxAgent(temperature_scale=0.0)
    with pytest.raises(ValueError, match="at least one action"):
        RandomAgent(0)
