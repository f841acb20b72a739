"""A planning baseline: model-predictive control over copies of the env's own state.

:class:`PlannerAgent` chooses each action by simulating the value dynamics ahead ("System 2"
beside the heuristics' "System 1"): for every action it restores a copy of the env's state
(the env's state contract, :class:`valuegym.envs.protocol.SupportsState`), takes that action,
then ``horizon - 1`` more steps with a rollout policy (greedy on wanting by default), and
picks the action whose simulated return (discounted by ``discount``) is best on average over
``rollouts`` rollouts. With ``depth`` d > 1 it tries every sequence of its own first d actions
(a search tree of ``n_actions ** d`` leaves, each finished by the rollout policy) and scores an
action by its best sequence. The env is left exactly as it was: the real episode changes only
through the actions chosen.

What the planner knows and assumes:

- the env's model and state, exactly: its values, and whatever the state holds (in Orchard the
  stock schedule drawn at reset, so the planner knows which fruit will be in stock; a
  privilege no observation gives);
- not the env's future random draws: each rollout reseeds the env's generator from the
  planner's own seed, the same seeds for every candidate action (common random numbers), so
  candidates differ by their action, not their luck. In an env whose steps draw nothing
  (Orchard after reset) one rollout is exact and more repeat it;
- in multi-agent envs, that the other agents keep their current policies: each co-player is
  simulated by the policy given for it in ``co_players`` (greedy on wanting for those not
  given), whatever the real co-players do. The planner maximises its own return only.

Example:
    >>> import gymnasium
    >>> import valuegym
    >>> from valuegym.agents.planner import PlannerAgent
    >>> env = gymnasium.make("valuegym/Orchard-v0")
    >>> observation, info = env.reset(seed=0)
    >>> planner = PlannerAgent(env, horizon=10, rollouts=1, seed=0)
    >>> planner.act(observation, info) in range(5)
    True
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, Final, cast

import numpy as np

from valuegym.agents.heuristic import Agent, GreedyAgent
from valuegym.envs.orchard import OrchardEnv
from valuegym.envs.protocol import supports_state

__all__ = ["MAX_SEQUENCES", "PlannerAgent"]

#: Most action sequences a planner tries per step (``n_actions ** depth``).
MAX_SEQUENCES: Final = 100_000


class PlannerAgent:
    """Model-predictive control: simulate every action ``horizon`` steps ahead, take the best.

    Args:
        env: The built env the agent acts in (Gymnasium or PettingZoo parallel; wrappers are
            fine): its unwrapped env must keep the state contract
            (:class:`~valuegym.envs.protocol.SupportsState`).
        agent: The env's name of the agent that plans (multi-agent envs; required there).
        horizon: Steps simulated per rollout, the candidate action's included, >= 1.
        depth: Leading steps whose actions are all tried (``n_actions ** depth`` sequences),
            in ``[1, horizon]``, at most :data:`MAX_SEQUENCES` sequences; 1 is plain
            model-predictive control over single actions.
        rollouts: Rollouts per candidate action, >= 1; more average over the env's randomness.
        discount: Weight of each later step's reward, in (0, 1].
        rollout_policy: The agent's own policy after its first ``depth`` simulated steps;
            greedy on wanting when ``None``.
        co_players: Policies simulating the other agents, by env agent name; greedy on
            wanting for each agent not named.
        batched: On Orchard with the default rollout policy, simulate every candidate action
            as one row of a batched state stepped by the native vector Orchard's transition
            (:class:`~valuegym.envs.orchard_rules.OrchardRules`): the same returns, bit for bit,
            at a fraction of the cost; the env is only read. ``False`` steps the env itself.
        seed: Seed of the rollouts' random numbers; :meth:`reset` with a seed reseeds it.

    Raises:
        ValueError: When the env does not keep the state contract, or an argument is invalid.
    """

    def __init__(
        self,
        env: Any,
        *,
        agent: str | None = None,
        horizon: int = 10,
        depth: int = 1,
        rollouts: int = 4,
        discount: float = 0.8,
        rollout_policy: Agent | None = None,
        co_players: Mapping[str, Agent] | None = None,
        batched: bool = True,
        seed: int | None = None,
    ):
        simulator = getattr(env, "unwrapped", env)
        if not supports_state(simulator):
            raise ValueError(
                f"env: {type(simulator).__name__} cannot copy and restore its state "
                "(get_state/set_state), which the planner needs"
            )
        for name, count in (("horizon", horizon), ("depth", depth), ("rollouts", rollouts)):
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValueError(f"{name}: must be an int >= 1 (got {count!r})")
        if depth > horizon:
            raise ValueError(f"depth: must be <= horizon ({horizon}) (got {depth})")
        if not 0.0 < discount <= 1.0:
            raise ValueError(f"discount: must be in (0, 1] (got {discount})")
        self.multi_agent = hasattr(simulator, "possible_agents")
        if self.multi_agent:
            if agent not in simulator.possible_agents:
                raise ValueError(
                    f"agent: must name one of {list(simulator.possible_agents)} (got {agent!r})"
                )
            self.n_actions = int(simulator.action_space(agent).n)
        else:
            self.n_actions = int(simulator.action_space.n)
        if self.n_actions**depth > MAX_SEQUENCES:
            raise ValueError(
                f"depth: {self.n_actions} actions ** {depth} is more than {MAX_SEQUENCES} "
                "sequences to try per step"
            )
        self.agent = agent
        self.horizon, self.depth = horizon, depth
        self.rollouts, self.discount = rollouts, float(discount)
        #: Every sequence of the first ``depth`` own actions, one row each (first action slowest).
        self.sequences = np.array(
            list(itertools.product(range(self.n_actions), repeat=depth)), dtype=np.int64
        ).reshape(-1, depth)
        self.rollout_policy: Agent = GreedyAgent() if rollout_policy is None else rollout_policy
        players = dict(co_players or {})
        if self.multi_agent:
            others = [a for a in simulator.possible_agents if a != agent]
            unknown = sorted(set(players) - set(others))
            if unknown:
                raise ValueError(f"co_players: {unknown} are not other agents of the env")
            players = {a: players.get(a, GreedyAgent()) for a in others}
        self.co_players: dict[str, Agent] = players
        self._policies = (self.rollout_policy, *players.values())
        self._simulator = simulator
        self._batch: _OrchardBatch | None = None
        if batched and rollout_policy is None and isinstance(simulator, OrchardEnv):
            self._batch = _OrchardBatch(simulator, self.sequences, horizon, self.discount)
        self._rng = np.random.default_rng(seed)
        #: Each candidate action's mean simulated return (its best sequence's) at the last
        #: :meth:`act`.
        self.last_returns: np.ndarray = np.zeros(self.n_actions)

    def reset(self, seed: int | None = None) -> None:
        """Reseed the rollouts' random numbers when ``seed`` is given."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)

    def act(self, observation: Any, info: dict[str, Any]) -> int:
        """The action with the best mean simulated return (the first on ties).

        The env must be in the state that gave ``observation`` and ``info`` (as when a runner
        asks for the next action); it is restored exactly before this returns.
        """
        simulator = self._simulator
        saved = simulator.get_state()
        if self._batch is not None:
            # Orchard's steps draw nothing after reset: every rollout is the same one.
            returns = self._batch.returns(saved)
        else:
            returns = self._rollout_returns(saved)
        # The sequences are in product order: the first action's rows are consecutive.
        self.last_returns = returns.reshape(self.n_actions, -1).max(axis=1)
        return int(np.argmax(self.last_returns))

    def _rollout_returns(self, saved: Any) -> np.ndarray:
        """Each sequence's mean return over the rollouts, stepping the env itself."""
        simulator = self._simulator
        # Everyone's view of the current state, for the first simulated step's co-player actions.
        views = simulator.observe_all() if self.multi_agent else None
        seeds = self._rng.integers(2**63, size=(self.rollouts, 2)).tolist()
        returns = np.zeros((len(self.sequences), self.rollouts))
        try:
            for rollout, (env_seed, policy_seed) in enumerate(seeds):
                for index, sequence in enumerate(self.sequences.tolist()):
                    simulator.set_state(saved)
                    generator = simulator.np_random
                    generator.bit_generator.state = type(generator.bit_generator)(env_seed).state
                    for offset, policy in enumerate(self._policies):
                        policy.reset(policy_seed + offset)
                    returns[index, rollout] = self._simulate(sequence, views)
        finally:
            simulator.set_state(saved)
        return returns.mean(axis=1)

    def _simulate(self, sequence: list[int], views: Any) -> float:
        """One rollout's discounted return: the ``sequence`` of actions, then the rollout policy."""
        total, weight, action = 0.0, 1.0, sequence[0]
        if not self.multi_agent:
            for step in range(1, self.horizon + 1):
                observation, reward, terminated, truncated, info = self._simulator.step(action)
                total += weight * float(reward)
                weight *= self.discount
                if terminated or truncated:
                    break
                if step < len(sequence):
                    action = sequence[step]
                else:
                    action = self.rollout_policy.act(observation, info)
            return total
        me = self.agent
        observations, infos = views
        for step in range(1, self.horizon + 1):
            actions = {
                agent: action
                if agent == me
                else self.co_players[agent].act(observations[agent], infos[agent])
                for agent in self._simulator.agents
            }
            observations, rewards, _, _, infos = self._simulator.step(actions)
            total += weight * float(rewards[me])
            weight *= self.discount
            if me not in self._simulator.agents:
                break
            if step < len(sequence):
                action = sequence[step]
            else:
                action = self.rollout_policy.act(observations[me], infos[me])
        return total


class _OrchardBatch:
    """Every candidate sequence simulated at once, one row of a batched Orchard each.

    The rows start from the real env's state (:meth:`OrchardEnv.get_state`, broadcast) and
    are stepped by the transition the single and the vector Orchard share, greedy on wanting
    after their sequence; they share the step count, so they end together.
    """

    def __init__(self, env: OrchardEnv, sequences: np.ndarray, horizon: int, discount: float):
        self.rules, self.horizon, self.discount = env.rules, horizon, discount
        n_rows, n_actions = len(sequences), env.rules.n_actions
        self.sequence_steps = [np.ascontiguousarray(column) for column in sequences.T]
        self.state = env.rules.initial_state(n_rows)
        self.active = np.ones(n_rows, dtype=bool)
        size = cast("tuple[int]", env.observation_space.shape)
        self.observations = np.empty((n_rows, *size), dtype=np.float32)
        self.rewards = np.empty(n_rows)
        self.action_wanting = np.empty((n_rows, n_actions))

    def returns(self, saved: Mapping[str, Any]) -> np.ndarray:
        """Each sequence's discounted return over the horizon from ``saved``."""
        rules, state = self.rules, self.state
        rules.set_state(state, saved)
        total, weight = np.zeros(len(self.active)), 1.0
        for step in range(self.horizon):
            if step < len(self.sequence_steps):
                actions = self.sequence_steps[step]
            else:
                actions = self.action_wanting.argmax(axis=1)
            rules.step(
                state, actions, self.active, self.observations, self.rewards, self.action_wanting
            )
            total += weight * self.rewards
            weight *= self.discount
            if state.truncated[0]:
                break
        return total
