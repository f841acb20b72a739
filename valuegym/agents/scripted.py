"""Scripted speakers: Conversation agents that take one act, to one agent, in given lines.

A :class:`ScriptedSpeaker` makes a listener's input controllable: several of them asking one
agent for the same thing in different words, or in the same words, or for different things.
Its action is Conversation's (``valuegym/Conversation-v*``,
:class:`~valuegym.envs.conversation.ConversationEnv`): 0 is ``silent``, and act ``a`` (1 to 5)
addressed to the ``o``-th agent after the speaker is ``1 + (a - 1) (n_agents - 1) + (o - 1)``.
In text mode the runner sends :attr:`ScriptedSpeaker.utterance` with it.

Example:
    >>> speaker = ScriptedSpeaker("ask", 2, 0, 3, ["Notes, please?"], order="cycle")
    >>> speaker.reset(seed=0)
    >>> speaker.act(None, {}), speaker.utterance  # ask (a = 1) the 2nd agent after agent 0
    (2, 'Notes, please?')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from valuegym.envs.conversation_rules import ACTS, SILENT

__all__ = ["ORDERS", "ScriptedSpeaker"]

#: How a scripted speaker picks its next line.
ORDERS: Final = ("random", "cycle")


class ScriptedSpeaker:
    """A Conversation agent that takes one act, to one agent, saying one of its lines each turn.

    Args:
        act: The act's name, one of Conversation's ``ACTS``.
        to_index: The addressee's agent index (env agent order); ``None`` for ``silent``.
        own_index: This agent's index.
        n_agents: Agents in the conversation (>= 2).
        lines: What it says, one line per turn (at least one, none blank).
        order: ``"random"``: a line drawn uniformly each turn from the generator that
            :meth:`reset` seeds; ``"cycle"``: the lines in order from the first, again and again.
        seed: Seed of the generator; :meth:`reset` with a seed reseeds it.

    Raises:
        ValueError: Naming the argument that is out of range.
    """

    def __init__(
        self,
        act: str,
        to_index: int | None,
        own_index: int,
        n_agents: int,
        lines: Sequence[str],
        order: str = "random",
        *,
        seed: int | None = None,
    ) -> None:
        if act not in ACTS:
            raise ValueError(f"act: expected one of {', '.join(ACTS)} (got {act!r})")
        if n_agents < 2:
            raise ValueError(f"n_agents: a conversation needs at least 2 agents (got {n_agents})")
        if not 0 <= own_index < n_agents:
            raise ValueError(f"own_index: must be in [0, {n_agents}) (got {own_index})")
        if not lines or not all(line.strip() for line in lines):
            raise ValueError("lines: at least one line, none blank")
        if order not in ORDERS:
            raise ValueError(f"order: expected one of {', '.join(ORDERS)} (got {order!r})")
        act_index = ACTS.index(act)
        if act_index == SILENT:
            if to_index is not None:
                raise ValueError(f"to_index: silent addresses no one (got {to_index})")
            self.action = 0
        else:
            if to_index is None or not 0 <= to_index < n_agents or to_index == own_index:
                raise ValueError(
                    f"to_index: another agent's index in [0, {n_agents}) for {act!r} "
                    f"(got {to_index}; this agent is {own_index})"
                )
            offset = (to_index - own_index) % n_agents
            self.action = 1 + (act_index - 1) * (n_agents - 1) + (offset - 1)
        self.lines = tuple(lines)
        self.order = order
        self.utterance = ""
        self._rng = np.random.default_rng(seed)
        self._turns = 0

    def reset(self, seed: int | None = None) -> None:
        """Start an episode: from the first line again; reseed when ``seed`` is given."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._turns = 0
        self.utterance = ""

    def act(self, observation: Any, info: dict[str, Any]) -> int:
        """The scripted action; :attr:`utterance` becomes this turn's line. Ignores its inputs."""
        if self.order == "cycle":
            line = self.lines[self._turns % len(self.lines)]
        else:
            line = self.lines[int(self._rng.integers(len(self.lines)))]
        self._turns += 1
        self.utterance = line
        return self.action
