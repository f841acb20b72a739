import itertools

import gymnasium
import numpy as np
import pytest

import valuegym  # noqa: F401 - registers the ids
from valuegym.envs.inbox import ACTIONS, DEFAULT_CONTACTS, DEFAULT_TOPICS, InboxEnv

REPLY_MOST_WANTED, REPLY_OLDEST, DEFER, IGNORE, REST = range(len(ACTIONS))


def episode(env: InboxEnv, policy, seed: int) -> tuple[float, list[dict]]:
    _, info = env.reset(seed=seed)
    total, infos, done = 0.0, [info], False
    while not done:
        _, reward, terminated, truncated, info = env.step(policy(info))
        total += reward
        infos.append(info)
        done = terminated or truncated
    return total, infos


def test_messages_are_plain_records_from_templates():
    env = InboxEnv()
    _, infos = episode(env, lambda info: REST, seed=0)
    messages = [m for info in infos for m in info["messages"]]
    assert len(messages) > 20
    for message in messages:
        assert set(message) == {"id", "sender", "topic", "text", "arrived"}
        assert message["sender"] in DEFAULT_CONTACTS
        assert message["topic"] in DEFAULT_TOPICS
        assert "{" not in message["text"]
        assert message["text"].endswith("?")
    assert len({m["text"] for m in messages}) > 10


def test_same_seed_gives_same_messages_and_other_seeds_differ():
    def texts(seed):
        return [
            [m["text"] for m in info["messages"]]
            for info in episode(InboxEnv(), lambda info: REPLY_OLDEST, seed)[1]
        ]

    assert texts(4) == texts(4)
    assert texts(4) != texts(5)


def test_bursts_ask_the_same_question_from_different_contacts():
    env = InboxEnv(arrival_rate=0.0, burst_probability=1.0, burst_size=5)
    _, info = env.reset(seed=0)
    messages = info["messages"]
    assert len(messages) == 5
    assert len({m["text"] for m in messages}) == 1
    assert len({m["sender"] for m in messages}) == 5


def test_the_tenth_identical_question_is_worth_less_than_the_first():
    env = InboxEnv(
        topics=["meeting"], arrival_rate=0.0, burst_probability=1.0, burst_size=8, capacity=40
    )
    env.reset(seed=0)
    rewards = [env.step(REPLY_OLDEST)[1] for _ in range(10)]
    assert all(later < earlier for earlier, later in itertools.pairwise(rewards))
    assert rewards[9] < 0.5 * rewards[0]


def test_ignoring_lowers_regard_and_mood_and_later_standing_gains():
    env = InboxEnv(
        topics=["lunch"],
        arrival_rate=0.0,
        burst_probability=1.0,
        burst_size=len(DEFAULT_CONTACTS),
        capacity=40,
    )
    _, info = env.reset(seed=0)
    sender = info["messages"][0]["sender"]
    _, reward, _, _, info = env.step(IGNORE)
    assert reward == 0.0
    assert info["regard"][env.contacts.index(sender)] == pytest.approx(0.7)
    assert info["mood"] < 0.0
    assert np.mean(info["regard"]) < 1.0


def test_backlog_and_repetition_raise_stress_rest_lowers_it():
    env = InboxEnv(arrival_rate=1.5, burst_probability=0.2)
    _, deferring = episode(env, lambda info: DEFER, seed=1)
    _, replying = episode(env, lambda info: int(np.argmax(info["action_wanting"])), seed=1)
    stress_deferring = np.mean([info["stress"] for info in deferring])
    stress_replying = np.mean([info["stress"] for info in replying])
    assert stress_deferring > stress_replying + 0.1
    env.reset(seed=1)
    for _ in range(10):
        *_, info = env.step(DEFER)
    stressed = info["stress"]
    *_, info = env.step(REST)
    assert info["stress"] < stressed


def test_action_wanting_follows_the_protocol():
    env = InboxEnv()
    _, info = env.reset(seed=5)
    wanting = dict(zip(env.value_names, info["wanting"], strict=True))
    oldest = info["messages"][0]
    expected_oldest = (
        wanting[oldest["topic"]]
        + info["regard"][env.contacts.index(oldest["sender"])] * wanting["standing"]
    )
    assert info["action_wanting"][REPLY_OLDEST] == pytest.approx(expected_oldest)
    assert info["action_wanting"][REPLY_MOST_WANTED] >= info["action_wanting"][REPLY_OLDEST]
    assert info["action_wanting"][DEFER] == info["action_wanting"][IGNORE] == 0.0
    assert info["action_wanting"][REST] == pytest.approx(wanting["rest"])
    assert type(info["temperature"]) is float


def test_replying_to_an_empty_inbox_does_nothing():
    env = InboxEnv(arrival_rate=0.0, burst_probability=0.0)
    _, info = env.reset(seed=0)
    assert info["messages"] == []
    assert np.all(info["action_wanting"][:4] == 0.0)
    for action in (REPLY_MOST_WANTED, REPLY_OLDEST, DEFER, IGNORE):
        _, reward, *_ = env.step(action)
        assert reward == 0.0


def test_observation_stays_in_bounds_under_heavy_load():
    env = InboxEnv(arrival_rate=4.0, burst_probability=0.5)
    observation, _ = env.reset(seed=2)
    for step in range(50):
        observation, *_ = env.step(step % 5)
        assert env.observation_space.contains(observation)
    assert observation[env._core.observation_size] == 1.0  # a full inbox


def test_custom_topics_use_generic_templates():
    env = InboxEnv(topics=["garden"], contacts=["Zoe"], arrival_rate=2.0)
    _, info = env.reset(seed=0)
    assert info["messages"]
    assert all("garden" in m["text"] for m in info["messages"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"topics": []}, "at least one"),
        ({"arrival_rate": -1.0}, "arrival_rate: must be >= 0"),
        ({"burst_probability": 2.0}, r"burst_probability: must be in \[0, 1\]"),
        ({"capacity": 0}, "capacity: must be an int >= 1"),
        ({"profile": {"values": {"meeting": {}}}}, r"missing values"),
    ],
)
def test_bad_arguments_raise_one_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InboxEnv(**kwargs)


def test_render_lists_pending_messages():
    env = gymnasium.make("valuegym/Inbox-v0", render_mode="ansi")
    _, info = env.reset(seed=5)
    text = env.render()
    assert info["messages"][0]["text"] in text
    assert "regard 1.00" in text
