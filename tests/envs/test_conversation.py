import itertools

import numpy as np
import pettingzoo
import pytest

import valuegym  # noqa: F401 - registers the environments
from valuegym.envs.conversation import ConversationEnv
from valuegym.envs.conversation_rules import (
    ACTS,
    ASK,
    COMPLAIN,
    HELP,
    JOKE,
    SHARE,
    SILENT,
    clean_utterance,
)


def action(env: ConversationEnv, act: int, offset: int = 1) -> int:
    """The discrete action of ``act`` addressed to the ``offset``-th agent after the speaker."""
    if act == SILENT:
        return 0
    return 1 + (act - 1) * (env.rules.n_agents - 1) + (offset - 1)


def test_action_layout_is_act_times_relative_addressee():
    env = ConversationEnv(n_agents=4)
    assert env.action_space("agent_0").n == 1 + 5 * 3
    decoded = [env.rules.decode(a) for a in range(env.rules.n_actions)]
    assert decoded[0] == (SILENT, 0)
    assert decoded[1:4] == [(ASK, 1), (ASK, 2), (ASK, 3)]
    assert decoded[-1] == (COMPLAIN, 3)
    assert all(
        decoded[action(env, act, offset)] == (act, offset)
        for act in range(1, len(ACTS))
        for offset in (1, 2, 3)
    )


def test_turns_go_round_and_only_the_speaker_acts():
    env = ConversationEnv(n_agents=3)
    env.reset(seed=0)
    speakers = []
    for _ in range(4):
        _, _, _, _, infos = env.step(dict.fromkeys(env.agents, action(env, SHARE)))
        speakers.append(infos["agent_0"]["speaker"])
    assert speakers == [0, 1, 2, 0]
    # The others' actions are ignored: the same speaker action gives the same outcome.
    first, second = ConversationEnv(n_agents=3), ConversationEnv(n_agents=3)
    first.reset(seed=0)
    second.reset(seed=0)
    one = first.step({"agent_0": action(first, JOKE), "agent_1": 5, "agent_2": 9})
    two = second.step({"agent_0": action(second, JOKE)})
    assert one[1] == two[1]
    np.testing.assert_array_equal(one[0]["agent_1"], two[0]["agent_1"])


def test_text_mode_utterance_appears_in_the_others_observations():
    env = ConversationEnv(n_agents=3, mode="text")
    observations, _ = env.reset(seed=0)
    assert observations["agent_1"]["chat"] == ""
    observations, _, _, _, infos = env.step(
        {"agent_0": {"act": action(env, SHARE, 2), "utterance": "The river is high today."}}
    )
    for agent in ("agent_1", "agent_2"):
        assert observations[agent]["chat"] == (
            "agent_0 -> agent_2 (share): The river is high today."
        )
        assert env.observation_space(agent).contains(observations[agent])
    assert infos["agent_1"]["addressee"] == 2
    assert infos["agent_1"]["act"] == SHARE
    size = env._core.observation_size
    assert observations["agent_2"]["observation"][size + 1 + len(ACTS)] == 1.0  # addressed
    assert observations["agent_1"]["observation"][size + 1 + len(ACTS)] == 0.0


def test_chat_history_is_bounded_and_in_order():
    env = ConversationEnv(n_agents=2, mode="text", history_length=3)
    env.reset(seed=0)
    for turn in range(5):
        observations, *_ = env.step(
            {
                agent: {"act": action(env, SHARE), "utterance": f"line {turn}"}
                for agent in env.agents
            }
        )
    lines = observations["agent_0"]["chat"].split("\n")
    assert lines == [
        "agent_0 -> agent_1 (share): line 2",
        "agent_1 -> agent_0 (share): line 3",
        "agent_0 -> agent_1 (share): line 4",
    ]


def test_utterances_are_cleaned_to_the_text_space():
    assert clean_utterance("Café\nnaïve ☃ ok", 100) == "Cafe naive ? ok"
    assert clean_utterance("x" * 50, 10) == "x" * 10
    env = ConversationEnv(n_agents=2, mode="text", max_utterance_length=5)
    env.reset(seed=0)
    observations, *_ = env.step({"agent_0": {"act": 0, "utterance": "éééééééé"}})
    assert observations["agent_1"]["chat"] == "agent_0 (silent): eeeee"


def stress_after_asks(utterances: list[str]) -> list[float]:
    """agent_0 asks agent_1 each utterance in turn while agent_1 stays silent."""
    env = ConversationEnv(n_agents=2, mode="text")
    env.reset(seed=0)
    stress = []
    for utterance in utterances:
        env.step({"agent_0": {"act": action(env, ASK), "utterance": utterance}})
        stress.append(env._core.stress[1])
        env.step({"agent_1": {"act": 0, "utterance": ""}})
    return stress


def test_repeated_identical_asks_raise_the_addressees_stress():
    same = stress_after_asks(["Where is the key?"] * 6)
    different = stress_after_asks([f"Where is key number {i}?" for i in range(6)])
    assert same[0] == pytest.approx(different[0])
    assert all(later > earlier for earlier, later in itertools.pairwise(same))
    assert same[-1] > different[-1] + 0.2
    # Case and spacing do not make an ask different.
    assert stress_after_asks(["Where is the key?", "where  is THE key?"])[-1] == pytest.approx(
        same[1]
    )


def test_numeric_asks_count_as_identical():
    env = ConversationEnv(n_agents=2)
    env.reset(seed=0)
    repetition = []
    for _ in range(4):
        env.step({"agent_0": action(env, ASK)})
        _, _, _, _, infos = env.step({"agent_1": 0})
        repetition.append(infos["agent_1"]["ask_repetition"])
    assert repetition == [0.0, 1.0, 2.0, 3.0]


def test_helping_costs_the_helper_and_satisfies_the_helped():
    env = ConversationEnv(n_agents=3)
    env.reset(seed=0)
    stress_before = env._core.stress.copy()
    _, rewards, _, _, infos = env.step({"agent_0": action(env, HELP, 1)})
    assert env._core.stress[0] > stress_before[0]
    assert infos["agent_0"]["stocks"][env.value_names.index("standing")] > 0.0
    assert infos["agent_1"]["stocks"][env.value_names.index("social")] > 0.0
    assert infos["agent_1"]["mood"] > infos["agent_2"]["mood"]
    assert rewards["agent_1"] > 0.0
    assert rewards["agent_2"] == 0.0  # not addressed: observes only


def test_being_addressed_has_diminishing_returns():
    env = ConversationEnv(n_agents=2)
    env.reset(seed=0)
    gains = []
    for _ in range(4):
        _, rewards, *_ = env.step({"agent_0": action(env, SHARE)})
        gains.append(rewards["agent_1"])
        env.step({"agent_1": 0})
    assert all(later < earlier for earlier, later in itertools.pairwise(gains))


def test_silence_rests_and_complaining_burdens_the_addressee():
    env = ConversationEnv(n_agents=2, ask_load=2.0)
    env.reset(seed=0)
    env.step({"agent_0": action(env, ASK)})  # stress agent_1 first
    stressed = env._core.stress[1]
    env.step({"agent_1": 0})
    assert env._core.stress[1] < stressed
    mood, stress = env._core.mood[1], env._core.stress[1]
    env.step({"agent_0": action(env, COMPLAIN)})
    assert env._core.mood[1] < mood
    assert env._core.stress[1] > stress


def test_action_wanting_is_zero_off_turn_and_follows_the_acts_on_turn():
    env = ConversationEnv(n_agents=3)
    _, infos = env.reset(seed=0)
    assert not infos["agent_1"]["action_wanting"].any()
    wanting = dict(zip(env.value_names, infos["agent_0"]["wanting"], strict=True))
    action_wanting = infos["agent_0"]["action_wanting"]
    assert action_wanting.shape == (env.rules.n_actions,)
    assert action_wanting[0] == pytest.approx(wanting["rest"])
    assert action_wanting[action(env, HELP, 2)] == pytest.approx(wanting["standing"])
    assert action_wanting[action(env, SHARE, 1)] == pytest.approx(wanting["social"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_agents": 1}, "n_agents"),
        ({"mode": "audio"}, "mode"),
        ({"history_length": 0}, "history_length"),
        ({"ask_load": -1.0}, "ask_load"),
        ({"profile": {"values": {"social": {}}}}, "profile"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConversationEnv(**kwargs)


def test_bad_actions_are_named():
    numeric = ConversationEnv(n_agents=2)
    numeric.reset(seed=0)
    with pytest.raises(ValueError, match="speaker 'agent_0'"):
        numeric.step({"agent_1": 0})
    with pytest.raises(ValueError, match=r"\[0, 5\]"):
        numeric.step({"agent_0": 6})
    text = ConversationEnv(n_agents=2, mode="text")
    text.reset(seed=0)
    with pytest.raises(ValueError, match="dict with 'act'"):
        text.step({"agent_0": 1})
    with pytest.raises(ValueError, match="utterance"):
        text.step({"agent_0": {"act": 1, "utterance": 3}})


def test_truncates_after_max_cycles():
    env = pettingzoo.make("parallel", "valuegym/Conversation-v0", n_agents=2, max_cycles=3)
    env.reset(seed=0)
    truncations = {}
    for _ in range(3):
        _, _, terminations, truncations, _ = env.step({"agent_0": 0, "agent_1": 0})
        assert not any(terminations.values())
    assert all(truncations.values())
    assert env.agents == []


def test_render_shows_the_chat():
    env = ConversationEnv(n_agents=2, mode="text", render_mode="ansi")
    env.reset(seed=0)
    env.step({"agent_0": {"act": action(env, JOKE), "utterance": "Knock knock."}})
    text = env.render()
    assert text.startswith("turn 1/100  next: agent_1\n")
    assert text.endswith("chat:\nagent_0 -> agent_1 (joke): Knock knock.\n")
