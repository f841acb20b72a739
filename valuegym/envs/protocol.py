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
- every agent's ``info`` (from ``reset`` and ``step``) is an :class:`AgentInfo`: the agent's
  value state as a :class:`ValueInfo` (``stocks`` and ``wanting`` as float arrays by value
  index, ``mood``, ``stress``, ``temperature``, ``most_wanted`` as a value index) and
  ``action_wanting`` (what each action is worth to the value store now). Every entry but
  ``info[MESSAGES]`` (below) is a number or a numeric array, with no nested mappings and no
  strings, so every RL stack converts it (TorchRL turns each entry into a tensor,
  Gymnasium's vector envs batch it);
  names live on the env (``value_names``, ``action_names``) and
  :meth:`valuegym.values.AgentSnapshot.from_info` gives the readable form back;
- an env with a text channel says so through the keys named here: the observation of a text
  mode is a ``Dict`` with the numeric ``observation`` and the :data:`CHAT` transcript; an
  env that delivers messages lists them in ``info[MESSAGES]`` as :class:`TextMessage`; a
  turn-based env gives whose turn is next in ``info[TURN]``, as an index into
  ``possible_agents``;
- an env whose actions can harm or exclude another agent (Commons's sanction) counts, in
  every agent's ``info[HARMED]``, the harms that agent received this step; an env without
  such actions leaves the key out (social outcome metrics then report peace as not defined).

:func:`check_value_env` checks all of this on a built env.

An env may also keep the optional **state contract**, :class:`SupportsState`, on its unwrapped
instance (Orchard, Inbox and Commons do): ``get_state()`` returns a deep, independent copy of
everything a step reads, the generator's state and the value store's included, and
``set_state(state)`` restores it, so that the steps that follow are bit for bit those that
followed when the copy was taken, however often it is restored. The state is opaque (its
layout is the env's business) and lives in memory only: it is no record and is not versioned.
A multi-agent env that keeps it also has ``observe_all()``, every agent's observation and
info in the current state (what the last ``reset`` or ``step`` returned), so that a planner
restoring a state can ask what its co-players see. Wrappers are not part of the state: step
the unwrapped env between ``get_state`` and ``set_state`` (Gymnasium's ``TimeLimit`` counts
the wrapped env's steps). PettingZoo's AEC env of Commons is the parallel env behind
``parallel_to_aec``; its state is the parallel env's at the start of a cycle.
:func:`check_state_roundtrip` checks the contract on a built env, and
:class:`valuegym.agents.planner.PlannerAgent` depends on it.

Example:
    >>> import gymnasium
    >>> import valuegym
    >>> from valuegym.values import AgentSnapshot
    >>> env = gymnasium.make("valuegym/Orchard-v0", out_of_stock_probability=0.0)
    >>> check_value_env(env)
    >>> _, info = env.reset(seed=0)
    >>> info["most_wanted"], env.unwrapped.value_names[info["most_wanted"]]
    (3, 'fig')
    >>> AgentSnapshot.from_info(info, 0, env.unwrapped.value_names).most_wanted
    'fig'
    >>> orchard = env.unwrapped  # the state contract: copy, step, restore, step again
    >>> state = orchard.get_state()
    >>> first = [orchard.step(action)[1] for action in (3, 3, 0)]
    >>> orchard.set_state(state)
    >>> [orchard.step(action)[1] for action in (3, 3, 0)] == first
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, NotRequired, Protocol, TypedDict, runtime_checkable

import numpy as np

__all__ = [
    "CHAT",
    "HARMED",
    "MESSAGES",
    "TURN",
    "VALUE_KEYS",
    "AgentInfo",
    "SupportsState",
    "TextMessage",
    "ValueInfo",
    "check_state_roundtrip",
    "check_value_env",
    "supports_state",
]

#: Observation key of the chat transcript (text as a string) in a text-mode observation.
CHAT: Final = "chat"
#: Info key of the messages delivered to an agent (a list of :class:`TextMessage`).
MESSAGES: Final = "messages"
#: Info key naming the agent whose turn is next, in turn-based envs (every agent's info).
TURN: Final = "next_speaker"
#: Info key counting the harms (sanctions, exclusions) an agent received this step, in envs
#: whose actions can harm another agent (every agent's info, 0 at reset).
HARMED: Final = "harmed"


class ValueInfo(TypedDict):
    """An agent's value state in its ``info``, by value index (names in ``env.value_names``).

    ``AgentSnapshot.from_info(info, row, value_names)`` reads it back by name.

    Attributes:
        stocks: ``(n_values,)`` float64 stocks (satiation levels).
        wanting: ``(n_values,)`` float64 wanting: effective weight x marginal utility.
        mood: Valence in [-1, 1].
        stress: Load in [0, 1].
        temperature: Decision and sampling temperature.
        most_wanted: Index of the value with the highest wanting (the first on ties).
    """

    stocks: np.ndarray
    wanting: np.ndarray
    mood: float
    stress: float
    temperature: float
    most_wanted: int


class TextMessage(TypedDict):
    """A message an env delivers to an agent."""

    sender: str
    text: str


class AgentInfo(ValueInfo):
    """The entries every valuegym env puts in each agent's ``info``; envs add their own.

    Attributes:
        action_wanting: ``(n_actions,)`` what each action is worth to the value store now.
        messages: Messages delivered to the agent (envs with a text channel).
        next_speaker: Index in ``possible_agents`` of the agent to act next (turn-based envs).
        harmed: Harms the agent received this step (envs whose actions can harm others).
    """

    action_wanting: np.ndarray
    messages: NotRequired[list[TextMessage]]
    next_speaker: NotRequired[int]
    harmed: NotRequired[float]


#: The keys of :class:`ValueInfo`: the value state in every agent's info.
VALUE_KEYS: Final = tuple(ValueInfo.__annotations__)


def _check_info(
    info: Any, agent: str, where: str, value_names: Sequence[str], n: int, n_agents: int
) -> None:
    if not isinstance(info, Mapping):
        raise AssertionError(f"{where}: info of {agent} is not a mapping")
    missing = [key for key in (*VALUE_KEYS, "action_wanting") if key not in info]
    if missing:
        raise AssertionError(f"{where}: info of {agent} misses {missing}")
    for key in ("stocks", "wanting"):
        array = info[key]
        if not (isinstance(array, np.ndarray) and array.shape == (len(value_names),)):
            raise AssertionError(
                f"{where}: info[{key!r}] of {agent} must be an array of {len(value_names)} "
                f"numbers, one per value of value_names (got {array!r})"
            )
    most_wanted = info["most_wanted"]
    if not (isinstance(most_wanted, int | np.integer) and 0 <= most_wanted < len(value_names)):
        raise AssertionError(f"{where}: most_wanted {most_wanted!r} is not a value index")
    if not (-1.0 <= info["mood"] <= 1.0 and 0.0 <= info["stress"] <= 1.0):
        raise AssertionError(f"{where}: mood or stress of {agent} out of range")
    if not info["temperature"] >= 0.0:
        raise AssertionError(f"{where}: temperature of {agent} negative")
    wanting = np.asarray(info["action_wanting"], dtype=np.float64)
    if wanting.shape != (n,) or not np.all(np.isfinite(wanting)):
        raise AssertionError(
            f"{where}: action_wanting of {agent} must be {n} finite numbers (got {wanting.shape})"
        )
    for key, value in info.items():
        if key == MESSAGES:
            continue
        if isinstance(value, Mapping | str) or value is None:
            raise AssertionError(
                f"{where}: info[{key!r}] of {agent} is a {type(value).__name__}; entries must "
                "be numbers or numeric arrays (names belong on the env)"
            )
    for message in info.get(MESSAGES, ()):
        if not (isinstance(message.get("sender"), str) and isinstance(message.get("text"), str)):
            raise AssertionError(f"{where}: a message of {agent} lacks sender or text strings")
    turn = info.get(TURN)
    if turn is not None and not (isinstance(turn, int | np.integer) and 0 <= turn < n_agents):
        raise AssertionError(f"{where}: {TURN} {turn!r} is not an index of possible_agents")


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
    n_agents = len(env.possible_agents) if multi_agent else 1
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
            _check_info(info, agent, where, value_names, n_actions, n_agents)
            observation = observations[agent]
            if isinstance(observation, Mapping) and not isinstance(observation.get(CHAT), str):
                raise AssertionError(f"{where}: a Dict observation of {agent} lacks {CHAT!r} text")
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


@runtime_checkable
class SupportsState(Protocol):
    """An env whose state can be copied and restored (the module docstring's state contract)."""

    def get_state(self) -> Any:
        """A deep, independent copy of everything a step reads (the generator's state too)."""

    def set_state(self, state: Any) -> None:
        """Restore a :meth:`get_state` copy: the next steps are those that followed it."""


def supports_state(env: Any) -> bool:
    """Whether an env (its unwrapped instance) keeps the state contract (:class:`SupportsState`)."""
    return isinstance(getattr(env, "unwrapped", env), SupportsState)


def _same(first: Any, second: Any) -> bool:
    if isinstance(first, Mapping):
        return (
            isinstance(second, Mapping)
            and first.keys() == second.keys()
            and all(_same(first[key], second[key]) for key in first)
        )
    if isinstance(first, list | tuple):
        return (
            isinstance(second, list | tuple)
            and len(first) == len(second)
            and all(_same(a, b) for a, b in zip(first, second, strict=True))
        )
    if isinstance(first, np.ndarray) or isinstance(second, np.ndarray):
        return bool(np.array_equal(first, second, equal_nan=True))
    return bool(first == second or (first != first and second != second))


def check_state_roundtrip(env: Any, *, seed: int = 0, warmup: int = 3, steps: int = 5) -> None:
    """Check an env's state contract (:class:`SupportsState`, see the module docstring).

    Resets the env, takes ``warmup`` seeded random steps, saves the state, takes ``steps``
    more, then restores the state twice and takes the same actions each time: the
    observations, rewards, ends and infos must be identical (the second restore proves that
    stepping did not change the saved copy). A multi-agent env's ``observe_all()`` must give
    back what the step before the save returned.

    Args:
        env: A built Gymnasium env or PettingZoo ParallelEnv (wrappers are fine; the check
            steps the unwrapped env).
        seed: Seed of the reset and the random actions.
        warmup: Steps before the state is saved.
        steps: Steps compared after each restore.

    Raises:
        AssertionError: Naming what differed.
    """
    unwrapped: Any = getattr(env, "unwrapped", env)
    if not supports_state(unwrapped):
        raise AssertionError(f"{type(unwrapped).__name__}: no get_state and set_state")
    multi_agent = hasattr(unwrapped, "possible_agents")
    rng = np.random.default_rng(seed)
    if multi_agent:
        if not callable(getattr(unwrapped, "observe_all", None)):
            raise AssertionError(f"{type(unwrapped).__name__}: multi-agent, no observe_all()")
        agents = unwrapped.possible_agents
        n_actions = {a: _discrete_size(unwrapped.action_space(a)) for a in agents}
    else:
        n_actions = {"agent": _discrete_size(unwrapped.action_space)}
    seen = unwrapped.reset(seed=seed)

    def draw() -> Any:
        if multi_agent:
            return {a: int(rng.integers(n_actions[a])) for a in unwrapped.agents}
        return int(rng.integers(n_actions["agent"]))

    def ended(result: tuple[Any, ...]) -> bool:
        if multi_agent:
            return not unwrapped.agents
        return bool(result[2] or result[3])

    for _ in range(warmup):
        seen = unwrapped.step(draw())
        if ended(seen):
            raise AssertionError("the episode ended during the warm-up; use fewer steps")
    state = unwrapped.get_state()
    actions, first = [], []
    for _ in range(steps):
        actions.append(draw())
        first.append(unwrapped.step(actions[-1]))
        if ended(first[-1]):
            break
    for attempt in ("first", "second"):
        unwrapped.set_state(state)
        if multi_agent and not _same(unwrapped.observe_all(), (seen[0], seen[-1])):
            raise AssertionError(f"{attempt} restore: observe_all() differs from the saved step")
        for index, (action, expected) in enumerate(zip(actions, first, strict=True)):
            again = unwrapped.step(action)
            if not _same(again, expected):
                raise AssertionError(
                    f"{attempt} restore, step {index + 1} after the save: the result differs"
                )
