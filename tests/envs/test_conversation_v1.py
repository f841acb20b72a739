"""Conversation-v1: the listeners' appraisal input and repetition within a window."""

import numpy as np
import pettingzoo
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import data_equivalence

import valuegym  # noqa: F401 - registers the environments
from valuegym.envs.conversation import ConversationEnv
from valuegym.envs.conversation_rules import ASK, SHARE, SILENT
from valuegym.envs.conversation_v1 import ConversationV1Env
from valuegym.values import ValueStore


def action(env: ConversationEnv, act: int, offset: int = 1) -> int:
    """The discrete action of ``act`` addressed to the ``offset``-th agent after the speaker."""
    if act == SILENT:
        return 0
    return 1 + (act - 1) * (env.rules.n_agents - 1) + (offset - 1)


def hand_store(env: ConversationEnv) -> tuple[ValueStore, int]:
    """A fresh value store with the env's profiles, and the column of ``social``."""
    store = ValueStore.from_profiles(env.rules.profiles)
    return store, store.value_names.index("social")


def test_registered_with_its_own_name_and_text_action_space():
    env = pettingzoo.make("parallel", "valuegym/Conversation-v1", n_agents=3, mode="text")
    assert isinstance(env, ConversationV1Env)
    assert env.metadata["name"] == "conversation_v1"
    assert env.rules.repetition_window == 8
    space = env.action_space("agent_0")
    assert isinstance(space, spaces.Dict)
    assert set(space.spaces) == {"act", "utterance", "appraisal"}
    appraisal = space["appraisal"]
    bounds = {"repeats": (0.0, 8.0), "valence": (-1.0, 1.0), "surprise": (-10.0, 10.0)}
    assert set(appraisal.spaces) == set(bounds)
    for key, (low, high) in bounds.items():
        box = appraisal[key]
        assert box.shape == (3,)
        assert box.dtype == np.float64
        assert (box.low == low).all()
        assert (box.high == high).all()
    numeric = ConversationV1Env(n_agents=3)
    assert numeric.action_space("agent_0") == ConversationEnv(n_agents=3).action_space("agent_0")


def test_given_repeats_set_the_ask_load():
    env = ConversationV1Env(n_agents=2, mode="text", ask_load=0.25, repetition_load=1.5)
    env.reset(seed=0)
    appraisal = {"repeats": [7.0, 2.0]}  # the speaker's own is ignored
    _, _, _, _, infos = env.step(
        {"agent_0": {"act": action(env, ASK), "utterance": "Notes?", "appraisal": appraisal}}
    )
    assert infos["agent_1"]["ask_repetition"] == 2.0
    assert infos["agent_0"]["ask_repetition"] == 0.0
    store, social = hand_store(env)
    consumption = np.zeros((2, store.n_values))
    consumption[:, social] = 0.5, 1.0  # contact / 2 for the asker, contact for the asked
    load = np.array([0.0, 0.25 * (1 + 1.5 * 2.0)])  # ask_load (1 + repetition_load r) = 1.0
    store.step(consumption, load=load, rest=np.zeros(2), valence=np.zeros(2))
    np.testing.assert_array_equal(env._core.store.stress, store.stress)
    assert infos["agent_1"]["stress"] == store.stress[1] > 0.0


def test_given_valence_adds_to_each_listeners_valence_input():
    env = ConversationV1Env(n_agents=3, mode="text")
    env.reset(seed=0)
    appraisal = {"valence": [0.9, -0.5, 0.25]}  # agent_0 speaks: its own 0.9 is ignored
    _, _, _, _, infos = env.step(
        {"agent_0": {"act": action(env, SHARE), "utterance": "Hi.", "appraisal": appraisal}}
    )
    store, social = hand_store(env)
    consumption = np.zeros((3, store.n_values))
    consumption[:2, social] = 1.0  # share: contact for the speaker and its addressee
    plain = ValueStore.from_profiles(env.rules.profiles)
    plain.step(consumption, load=np.zeros(3), rest=np.zeros(3), valence=np.zeros(3))
    store.step(consumption, load=np.zeros(3), rest=np.zeros(3), valence=[0.0, -0.5, 0.25])
    np.testing.assert_array_equal(env._core.store.mood, store.mood)
    assert store.mood[0] == plain.mood[0]
    assert store.mood[1] < plain.mood[1]
    assert store.mood[2] > plain.mood[2] == 0.0  # not addressed: only its valence moves it
    assert [infos[a]["appraised_valence"] for a in env.possible_agents] == [0.0, -0.5, 0.25]
    assert [infos[a]["appraised_surprise"] for a in env.possible_agents] == [0.0, 0.0, 0.0]


def test_given_surprise_is_the_value_stores_surprise_input():
    env = ConversationV1Env(n_agents=3, mode="text")
    env.reset(seed=0)
    appraisal = {"surprise": [5.0, 1.5, -2.0]}
    _, _, _, _, infos = env.step(
        {"agent_0": {"act": action(env, SHARE), "utterance": "Hi.", "appraisal": appraisal}}
    )
    store, social = hand_store(env)
    consumption = np.zeros((3, store.n_values))
    consumption[:2, social] = 1.0
    inputs = {"load": np.zeros(3), "rest": np.zeros(3), "valence": np.zeros(3)}
    unsurprised = ValueStore.from_profiles(env.rules.profiles)
    unsurprised.step(consumption, **inputs)
    store.step(consumption, **inputs, surprise=np.array([0.0, 1.5, -2.0]))
    np.testing.assert_array_equal(env._core.store.mood, store.mood)
    np.testing.assert_array_equal(env._core.store.expected, store.expected)
    assert env._core.store.mood[0] == unsurprised.mood[0]  # the speaker's 5.0 is ignored
    assert env._core.store.mood[1] < unsurprised.mood[1]
    assert env._core.store.mood[2] > unsurprised.mood[2]
    assert [infos[a]["appraised_surprise"] for a in env.possible_agents] == [0.0, 1.5, -2.0]


def ask_repetitions(env: ConversationV1Env, utterances: list[str]) -> list[float]:
    """agent_0 asks agent_1 each utterance in turn while agent_1 stays silent."""
    env.reset(seed=0)
    repetition = []
    for utterance in utterances:
        ask = action(env, ASK)
        env.step({"agent_0": {"act": ask, "utterance": utterance} if utterance else ask})
        _, _, _, _, infos = env.step({"agent_1": {"act": 0, "utterance": ""} if utterance else 0})
        repetition.append(infos["agent_1"]["ask_repetition"])
    return repetition


@pytest.mark.parametrize(
    ("asks", "repeats"),
    [
        (["A?", "A?", "A?"], [0.0, 1.0, 2.0]),
        (["A?", "B?", "A?"], [0.0, 0.0, 1.0]),
        (["A?", "A?", "A?", "A?"], [0.0, 1.0, 2.0, 2.0]),  # at most the window's 2
        (["A?", "B?", "B?", "A?"], [0.0, 0.0, 1.0, 0.0]),  # the first A? left the window
        (["Where is it?", "where  IS it?"], [0.0, 1.0]),  # case and spacing do not count
    ],
)
def test_without_appraisal_identical_asks_in_the_window_are_repeats(asks, repeats):
    env = ConversationV1Env(n_agents=2, mode="text", repetition_window=2)
    assert ask_repetitions(env, asks) == repeats


def test_numeric_mode_counts_every_ask_in_the_window():
    env = ConversationV1Env(n_agents=2, repetition_window=3)
    assert ask_repetitions(env, [""] * 5) == [0.0, 1.0, 2.0, 3.0, 3.0]
    _, infos = env.reset(seed=0)
    assert infos["agent_1"]["ask_repetition"] == 0.0
    assert ask_repetitions(env, [""]) == [0.0]  # reset empties the windows


def test_an_appraised_ask_enters_the_window_too():
    env = ConversationV1Env(n_agents=2, mode="text")
    env.reset(seed=0)
    ask = {"act": action(env, ASK), "utterance": "A?"}
    env.step({"agent_0": {**ask, "appraisal": {"repeats": [0.0, 5.0]}}})
    _, _, _, _, infos = env.step({"agent_1": {"act": 0, "utterance": ""}})
    assert infos["agent_1"]["ask_repetition"] == 5.0
    env.step({"agent_0": ask})
    _, _, _, _, infos = env.step({"agent_1": {"act": 0, "utterance": ""}})
    assert infos["agent_1"]["ask_repetition"] == 1.0


def test_without_appraisal_it_steps_as_v0_where_their_counts_agree():
    # Identical asks in a row, fewer than the window: v0's count and v1's are the same.
    v0 = ConversationEnv(n_agents=3, mode="text")
    v1 = ConversationV1Env(n_agents=3, mode="text")
    turns = [(ASK, 1, "Notes?"), (SILENT, 0, ""), (ASK, 2, "Notes?")] * 3
    v0.reset(seed=0)
    _, infos = v1.reset(seed=0)
    assert infos["agent_0"]["appraised_valence"] == infos["agent_0"]["appraised_surprise"] == 0.0
    for act, offset, utterance in turns:
        turn = {"act": action(v0, act, offset), "utterance": utterance}
        one = v0.step(dict.fromkeys(v0.agents, turn))
        two = v1.step(dict.fromkeys(v1.agents, turn))
        assert one[1] == two[1]
        for agent in v0.possible_agents:
            np.testing.assert_array_equal(
                one[0][agent]["observation"], two[0][agent]["observation"]
            )
            appraised = {"appraised_valence": 0.0, "appraised_surprise": 0.0}
            assert data_equivalence(two[4][agent], {**one[4][agent], **appraised})
    assert two[4]["agent_1"]["ask_repetition"] == 5.0  # agent_1 was asked six times


@pytest.mark.parametrize(
    ("appraisal", "message"),
    [
        ([0.0, 1.0], r": must be a dict"),
        ({"valance": [0.0, 0.0]}, r": unknown keys \['valance'\]"),
        ({"repeats": [0.0, 1.0, 2.0]}, r"\['repeats'\]: must be 2 numbers"),
        ({"valence": "kind"}, r"\['valence'\]: must be 2 numbers"),
        ({"surprise": [0.0, np.nan]}, r"\['surprise'\]: must be finite"),
        ({"valence": [0.0, np.inf]}, r"\['valence'\]: must be finite"),
        ({"valence": [0.0, 1.5]}, r"\['valence'\]: must be in \[-1, 1\]"),
        ({"repeats": [0.0, -1.0]}, r"\['repeats'\]: must be in \[0, 8\]"),
        ({"repeats": [0.0, 9.0]}, r"\['repeats'\]: must be in \[0, 8\]"),
        ({"surprise": [0.0, 10.5]}, r"\['surprise'\]: must be in \[-10, 10\]"),
    ],
)
def test_bad_appraisals_are_named_and_change_nothing(appraisal, message):
    env = ConversationV1Env(n_agents=2, mode="text")
    env.reset(seed=0)
    ask = {"act": action(env, ASK), "utterance": "A?", "appraisal": appraisal}
    with pytest.raises(ValueError, match=r"actions\['agent_0'\]\['appraisal'\]" + message):
        env.step({"agent_0": ask})
    _, _, _, _, infos = env.step({"agent_0": {"act": action(env, ASK), "utterance": "A?"}})
    assert infos["agent_1"]["speaker"] == 0  # the failed step changed nothing
    assert infos["agent_1"]["ask_repetition"] == 0.0


def test_bad_repetition_window_is_named():
    with pytest.raises(ValueError, match="repetition_window"):
        ConversationV1Env(repetition_window=0)
    with pytest.raises(ValueError, match="repetition_window"):
        ConversationV1Env(repetition_window=2.5)
