"""Scripted speakers in a run: their acts reach the env with their lines (text mode)."""

from pathlib import Path

import numpy as np

from valuegym.envs.conversation import ConversationEnv
from valuegym.envs.conversation_rules import ASK
from valuegym.runs.runner import run_scenario
from valuegym.scenarios.validation import validate_scenario

SAME = "Could you send me the notes?"


def hammered(askers: list[dict]) -> dict:
    """Askers (agents 0 and 1) ask helper (agent 2, greedy) on each of their turns."""
    return {
        "name": "hammered",
        "seed": 2,
        "env": {"id": "valuegym/Conversation-v0", "args": {"mode": "text"}},
        "agents": [*askers, {"id": "helper", "kind": "greedy"}],
        "episodes": 1,
        "max_steps": 9,
    }


def script(lines: list[str]) -> dict:
    return {"act": "ask", "to": "helper", "lines": lines, "order": "cycle"}


REPEATED = hammered([{"id": "askers", "kind": "scripted", "count": 2, "script": script([SAME])}])
DISTINCT = hammered(
    [
        {"id": "ann", "kind": "scripted", "script": script(["Where is the printer?", SAME])},
        {"id": "bob", "kind": "scripted", "script": script(["Is lunch at noon?", "Any news?"])},
    ]
)


def helper_repetition(run_dir: Path, data: dict) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """The helper's ``ask_repetition`` after each step, and each asker's (agent, action)."""
    result = run_scenario(validate_scenario(data), run_dir, progress=False)
    steps = result.folder.read("steps")
    assert result.folder.read("utterances").num_rows == 0  # scripted lines are not LM speech
    agents = steps.column("agent").to_pylist()
    actions = steps.column("action").to_pylist()
    repetition = steps.column("env_ask_repetition").to_pylist()
    helper = np.array([r for agent, r in zip(agents, repetition, strict=True) if agent == "helper"])
    acted = [(a, act) for a, act in zip(agents, actions, strict=True) if a != "helper" and act >= 0]
    return helper, acted


def test_scripted_askers_address_the_helper_and_repeated_lines_count_as_repeats(tmp_path):
    rules = ConversationEnv(n_agents=3).rules
    repeated, acted = helper_repetition(tmp_path / "repeated", REPEATED)
    # Turns 0, 1, 2, 3, ...: askers_0, askers_1, helper, askers_0, ... (3 turns each in 9).
    assert [agent for agent, _ in acted] == ["askers_0", "askers_1"] * 3
    for agent, action in acted:
        own = int(agent[-1])
        act, offset = rules.decode(action)
        assert (act, (own + offset) % 3) == (ASK, 2)
    # Every ask after the first repeats the one before it; the helper's turns add none.
    assert repeated.tolist() == [0, 1, 1, 2, 3, 3, 4, 5, 5]
    distinct, _ = helper_repetition(tmp_path / "distinct", DISTINCT)
    assert distinct.tolist() == [0] * 9
