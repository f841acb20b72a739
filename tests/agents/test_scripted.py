from collections import Counter

import pytest

from valuegym.agents.scripted import ScriptedSpeaker
from valuegym.envs.conversation import ConversationEnv
from valuegym.envs.conversation_rules import ACTS, SILENT

LINES = ("Could you send me the notes?", "Can I get your notes?", "Notes, please?")


@pytest.mark.parametrize("n_agents", [2, 3, 4, 6])
def test_each_act_to_each_other_agent_decodes_to_that_act_and_agent(n_agents):
    rules = ConversationEnv(n_agents=n_agents).rules
    seen = set()
    for act in ACTS[1:]:
        for own in range(n_agents):
            for to in range(n_agents):
                if to == own:
                    continue
                action = ScriptedSpeaker(act, to, own, n_agents, ["hi"]).act(None, {})
                decoded_act, offset = rules.decode(action)
                assert (ACTS[decoded_act], (own + offset) % n_agents) == (act, to)
                assert 1 <= action < rules.n_actions
                seen.add((own, action))
    # Every speaker reaches every addressed action exactly once.
    assert len(seen) == n_agents * (rules.n_actions - 1)


def test_silent_is_action_zero_and_addresses_no_one():
    speaker = ScriptedSpeaker("silent", None, 1, 3, ["..."])
    assert speaker.act(None, {}) == 0
    assert ConversationEnv(n_agents=3).rules.decode(0) == (SILENT, 0)


def test_cycle_says_the_lines_in_order_from_the_first_each_episode():
    speaker = ScriptedSpeaker("ask", 0, 1, 2, LINES, order="cycle")
    speaker.reset(seed=7)
    assert speaker.utterance == ""
    said = []
    for _ in range(7):
        speaker.act(None, {})
        said.append(speaker.utterance)
    assert said == [*LINES, *LINES, LINES[0]]
    speaker.reset(seed=8)
    speaker.act(None, {})
    assert speaker.utterance == LINES[0]


def draws(seed: int, n: int = 30) -> list[str]:
    speaker = ScriptedSpeaker("ask", 2, 0, 3, LINES, order="random")
    speaker.reset(seed=seed)
    lines = []
    for _ in range(n):
        action = speaker.act(None, {})
        assert action == 2  # the act never changes, only the line
        lines.append(speaker.utterance)
    return lines


def test_random_order_is_reproducible_per_seed_and_differs_across_seeds():
    assert draws(3) == draws(3)
    assert draws(3) != draws(4)
    assert set(draws(3)) <= set(LINES)


def test_random_order_draws_each_line_uniformly():
    counts = Counter(draws(0, n=3000))
    # Each share has standard deviation sqrt(1/3 * 2/3 / 3000) ~ 0.0086; 0.04 is over 4.
    assert set(counts) == set(LINES)
    assert all(abs(count / 3000 - 1 / 3) < 0.04 for count in counts.values())


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("ask", 1, 1, 3, LINES), "to_index: another agent's index"),
        (("ask", None, 1, 3, LINES), "to_index: another agent's index"),
        (("ask", 3, 1, 3, LINES), "to_index: another agent's index"),
        (("silent", 0, 1, 3, LINES), "to_index: silent addresses no one"),
        (("shout", 0, 1, 3, LINES), "act: expected one of silent, ask"),
        (("ask", 0, 1, 3, []), "lines: at least one line"),
        (("ask", 0, 1, 3, ["fine", "  "]), "none blank"),
        (("ask", 0, 1, 1, LINES), "n_agents: a conversation needs at least 2"),
        (("ask", 0, 5, 3, LINES), "own_index: must be in"),
        (("ask", 0, 1, 3, LINES, "shuffle"), "order: expected one of random, cycle"),
    ],
)
def test_arguments_out_of_range_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        ScriptedSpeaker(*arguments)
