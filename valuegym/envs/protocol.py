"""The contract every valuegym env keeps, written down and checked.

PettingZoo ships its API as a checker (``pettingzoo.test.api_test``); valuegym does the same
for what it adds on top of the Gymnasium and PettingZoo APIs, so the scenario runner, the
agents and a user's own env depend on this module instead of on any one env's internals.

An env keeps the contract when:

- its class has a ``default_profile(**arguments)`` classmethod: the value profile an agent
  gets when the caller gives none, for the given constructor arguments, without building the
  env (scenario validation merges agents' profiles over it);
- the built env has ``action_names``: one short text per discrete action, in action order
  (LM agents are offered these as options), and ``value_names``: its agents' values in order;
- every agent's ``info`` (from ``reset`` and ``step``) is an :class:`AgentInfo`: ``values`` (a
  :class:`ValueInfo`, the agent's value state by value name), ``action_wanting`` (what each
  action is worth to the value store now) and ``temperature``;
- an env with a text channel says so through the keys named here: the observation of a text
  mode is a ``Dict`` with the numeric ``observation`` and the :data:`CHAT` transcript; an
  env that delivers messages lists them in ``info[MESSAGES]`` as :class:`TextMessage`; a
  turn-based env names whose turn is next in ``info[TURN]``.

:func:`check_value_env` checks all of this on a built env.

Example:
    >>> import gymnasium
    >>> import valuegym
    >>> check_value_env(gymnasium.make("valuegym/Orchard-v0"))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, NotRequired, TypedDict

import numpy as np

__all__ = [
    "CHAT",
    "MESSAGES",
    "TURN",
    "AgentInfo",
    "TextMessage",
    "ValueInfo",
    "check_value_env",
]

#: Observation key of the chat transcript (text as a string) in a text-mode observation.
CHAT: Final = "chat"
#: Info key of the messages delivered to an agent (a list of :class:`TextMessage`).
MESSAGES: Final = "messages"
#: Info key naming the agent whose turn is next, in turn-based envs (every agent's info).
TURN: Final = "next_speaker"


class ValueInfo(TypedDict):
    """An agent's value state in ``info["values"]``; see :class:`valuegym.values.AgentSnapshot`.

    ``AgentSnapshot.from_info`` reads it back; ``AgentSnapshot.to_dict`` writes a superset.
    """

    stocks: dict[str, float]
    wanting: dict[str, float]
    mood: float
    stress: float
    temperature: float
    most_wanted: str


class TextMessage(TypedDict):
    """A message an env delivers to an agent."""

    sender: str
    text: str


class AgentInfo(TypedDict):
    """The entries every valuegym env puts in each agent's ``info``; envs add their own."""

    values: ValueInfo
    action_wanting: np.ndarray
    temperature: float
    messages: NotRequired[list[TextMessage]]
    next_speaker: NotRequired[str]


_VALUE_KEYS: Final = frozenset(ValueInfo.__annotations__)


def _check_info(info: Any, agent: str, where: str, value_names: Sequence[str], n: int) -> None:
    if not isinstance(info, Mapping):
        raise AssertionError(f"{where}: info of {agent} is not a mapping")
    for key in ("values", "action_wanting", "temperature"):
        if key not in info:
            raise AssertionError(f"{where}: info of {agent} has no {key!r}")
    values = info["values"]
    missing = _VALUE_KEYS - set(values)
    if missing:
        raise AssertionError(f"{where}: info['values'] of {agent} misses {sorted(missing)}")
    for key in ("stocks", "wanting"):
        if tuple(values[key]) != tuple(value_names):
            raise AssertionError(
                f"{where}: info['values'][{key!r}] of {agent} is not by value name "
                f"{list(value_names)} (got {list(values[key])})"
            )
    if values["most_wanted"] not in value_names:
        raise AssertionError(f"{where}: most_wanted {values['most_wanted']!r} is not a value")
    if not (-1.0 <= values["mood"] <= 1.0 and 0.0 <= values["stress"] <= 1.0):
        raise AssertionError(f"{where}: mood or stress of {agent} out of range")
    if not values["temperature"] >= 0.0 or values["temperature"] != info["temperature"]:
        raise AssertionError(f"{where}: temperature of {agent} negative or not the value state's")
    wanting = np.asarray(info["action_wanting"], dtype=np.float64)
    if wanting.shape != (n,) or not np.all(np.isfinite(wanting)):
        raise AssertionError(
            f"{where}: action_wanting of {agent} must be {n} finite numbers (got {wanting.shape})"
        )
    for message in info.get(MESSAGES, ()):
        if not (isinstance(message.get("sender"), str) and isinstance(message.get("text"), str)):
            raise AssertionError(f"{where}: a message of {agent} lacks sender or text strings")


def _discrete_size(space: Any) -> int:
    act = space["act"] if hasattr(space, "spaces") and "act" in space.spaces else space
    if not hasattr(act, "n"):
        raise AssertionError(f"action space {space} has no discrete act")
    return int(act.n)


def check_value_env(env: Any, *, steps: int = 5, seed: int = 0) -> None:
    """Check that an env keeps valuegym's contract (see the module docstring).

    Resets the env and takes ``steps`` seeded random steps, checking every agent's info.

    Args:
        env: A built Gymnasium env or PettingZoo ParallelEnv (wrappers are fine).
        steps: Steps to take after the reset.
        seed: Seed of the reset and the random actions.

    Raises:
        AssertionError: Naming the first broken part of the contract.
    """
    unwrapped = getattr(env, "unwrapped", env)
    if not callable(getattr(type(unwrapped), "default_profile", None)):
        raise AssertionError(f"{type(unwrapped).__name__}: no default_profile classmethod")
    value_names = tuple(getattr(unwrapped, "value_names", ()))
    action_names = tuple(getattr(unwrapped, "action_names", ()))
    if not value_names:
        raise AssertionError(f"{type(unwrapped).__name__}: no value_names")
    if not action_names or not all(isinstance(name, str) for name in action_names):
        raise AssertionError(f"{type(unwrapped).__name__}: no action_names (one text per action)")
    multi_agent = hasattr(env, "possible_agents")
    rng = np.random.default_rng(seed)
    if multi_agent:
        observations, infos = env.reset(seed=seed)
    else:
        observation, info = env.reset(seed=seed)
        observations, infos = {"agent": observation}, {"agent": info}
    for step in range(steps + 1):
        where = "reset" if step == 0 else f"step {step}"
        for agent, info in infos.items():
            space = env.action_space(agent) if multi_agent else env.action_space
            n_actions = _discrete_size(space)
            if n_actions != len(action_names):
                raise AssertionError(
                    f"action_names: {len(action_names)} names for {n_actions} actions"
                )
            _check_info(info, agent, where, value_names, n_actions)
            observation = observations[agent]
            if isinstance(observation, Mapping) and not isinstance(observation.get(CHAT), str):
                raise AssertionError(f"{where}: a Dict observation of {agent} lacks {CHAT!r} text")
            turn = info.get(TURN)
            if turn is not None and turn not in getattr(env, "possible_agents", ("agent",)):
                raise AssertionError(f"{where}: {TURN} {turn!r} is not an agent")
        if step == steps or not observations:
            break
        if multi_agent:
            actions = {agent: env.action_space(agent).sample() for agent in env.agents}
            observations, _, terminations, truncations, infos = env.step(actions)
            observations = {
                a: o for a, o in observations.items() if not (terminations[a] or truncations[a])
            }
            infos = {a: i for a, i in infos.items() if a in observations}
        else:
            env.action_space.seed(int(rng.integers(2**31)))
            observation, _, terminated, truncated, info = env.step(env.action_space.sample())
            if terminated or truncated:
                break
            observations, infos = {"agent": observation}, {"agent": info}
