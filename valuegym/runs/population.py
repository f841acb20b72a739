"""Build a scenario's env and agents: the population the runner steps.

The env is made through Gymnasium (single agent) or PettingZoo's Parallel API (multi-agent)
with the scenario's arguments, the agents' value profiles (one per agent, in population order)
and, where the env has such an argument, the episode length set to ``max_steps``. The i-th
agent of the scenario (counts expanded) is the env's i-th agent.

Agents:

- ``random``, ``greedy``, ``softmax``: :mod:`valuegym.agents.heuristic`;
- ``ppo``: a saved SB3 model (:func:`valuegym.agents.training.load`) acting deterministically;
- ``planner``: :class:`~valuegym.agents.planner.PlannerAgent` on the built env (which must
  keep the state contract), with the entry's ``planner`` settings; it simulates each
  co-player by a fresh agent of the co-player's kind where that is ``greedy``, ``softmax`` or
  ``random``, and greedy on wanting for the others (planners, ``ppo``, ``lm``, ``scripted``);
- ``scripted``: :class:`~valuegym.agents.scripted.ScriptedSpeaker`, addressing the env's agent
  at its ``to`` agent's position;
- ``lm``: :class:`~valuegym.agents.lm_agent.LMAgent`; agents that share a model and sampling
  settings share one ``LMAgent`` (one batched ``generate`` per step), and each distinct model
  is loaded once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import gymnasium
import pettingzoo

from valuegym.agents.prompts import DEFAULT_PERSONA
from valuegym.envs.registration import env_class, env_parameters
from valuegym.lm.sampling import Truncation
from valuegym.records.schema import EntryDesign
from valuegym.scenarios.schema import AgentSpec, LMSpec, Scenario
from valuegym.values import ValueProfile

__all__ = [
    "EPISODE_LENGTH_ARGUMENTS",
    "LMGroup",
    "Member",
    "Population",
    "PopulationError",
    "build_population",
    "env_arguments",
    "load_lm_model",
    "make_lm_agent",
]

#: Env constructor arguments that mean "steps per episode"; set from ``max_steps``.
EPISODE_LENGTH_ARGUMENTS: Final = ("episode_length", "max_cycles")


class PopulationError(RuntimeError):
    """The env or an agent could not be built; the message names the scenario key."""


@dataclass
class Member:
    """One agent of the population.

    Attributes:
        agent_id: The scenario's name for it (records use this).
        env_agent: The env's name for it (PettingZoo agent name; ``"agent"`` in Gymnasium).
        row: Its position in the population.
        spec: Its scenario entry.
        entry: Its scenario entry as the records name it.
        policy: ``act(observation, info) -> int`` and ``reset(seed)`` (``None`` for LM agents).
        lm_group: Index into :attr:`Population.lm_groups` (LM agents only).
    """

    agent_id: str
    env_agent: str
    row: int
    spec: AgentSpec
    entry: EntryDesign
    policy: Any = None
    lm_group: int | None = None


@dataclass
class LMGroup:
    """LM agents that share one :class:`~valuegym.agents.lm_agent.LMAgent`.

    Attributes:
        agent: The LM agent (model, personas by row, sampling settings).
        rows: Population rows of its members.
    """

    agent: Any
    rows: list[int] = field(default_factory=list)


@dataclass
class Population:
    """The env and everyone in it.

    Attributes:
        env: A Gymnasium env or a PettingZoo ParallelEnv.
        multi_agent: Whether ``env`` is a PettingZoo env.
        members: Every agent, in population order.
        lm_groups: The LM agents' groups.
        action_names: Text of each discrete action (LM prompts), when the env names them.
        models: The loaded language models, to close at the end.
        text_actions: Whether an action is ``{"act": int, "utterance": str}`` (text mode).
        appraiser: How listeners appraise what is said
            (:class:`~valuegym.agents.appraisal.Appraiser`; built by the runner), or ``None``.
    """

    env: Any
    multi_agent: bool
    members: list[Member]
    lm_groups: list[LMGroup]
    action_names: tuple[str, ...] | None
    models: list[Any]
    text_actions: bool = False
    appraiser: Any = None

    def close(self) -> None:
        """Close the env and free the language models."""
        self.env.close()
        for model in self.models:
            model.close()


def _profiles(scenario: Scenario) -> list[ValueProfile] | None:
    """One profile per agent, as validation resolved them; ``None`` when all use the default."""
    resolved = scenario.value_profiles
    if all(profile is None for profile in resolved):
        return None
    default: ValueProfile = env_class(scenario.env.id).default_profile(**scenario.env.args)
    return [resolved[entry.index] or default for entry in scenario.entries() for _ in entry.agents]


def _base_arguments(scenario: Scenario) -> dict[str, Any]:
    arguments = dict(scenario.env.args)
    parameters = env_parameters(scenario.env.id) or ()
    for name in EPISODE_LENGTH_ARGUMENTS:
        if name in parameters and name not in arguments:
            arguments[name] = scenario.max_steps
    if scenario.env.is_multi_agent and "n_agents" in parameters:
        arguments["n_agents"] = scenario.n_agents
    return arguments


def _make_env(scenario: Scenario, arguments: Mapping[str, Any]) -> Any:
    try:
        if scenario.env.is_multi_agent:
            return pettingzoo.make("parallel", scenario.env.id, **arguments)
        return gymnasium.make(scenario.env.id, disable_env_checker=True, **arguments)
    except (TypeError, ValueError) as error:
        raise PopulationError(
            f"env: {scenario.env.id} cannot be built with these arguments: {error}"
        ) from None


def env_arguments(scenario: Scenario) -> dict[str, Any]:
    """The keyword arguments that build the scenario's env, value profiles included.

    ``max_steps`` becomes the env's episode length (``episode_length`` or ``max_cycles``) and
    the population size its ``n_agents``, unless ``env.args`` sets them; a Gymnasium env's
    episode length is also its ``max_episode_steps`` (``gymnasium.make``'s ``TimeLimit``,
    which SB3's ``make_vec_env`` passes on too); agents' values and
    affect become ``profile`` (one profile, or one per agent in multi-agent envs), with the
    env's default values for agents that name none.

    Args:
        scenario: The validated scenario.

    Returns:
        Arguments for ``gymnasium.make`` or ``pettingzoo.make``.

    Raises:
        PopulationError: When the env cannot be built or a profile is invalid.
    """
    arguments = _base_arguments(scenario)
    profiles = _profiles(scenario)
    if profiles is not None:
        arguments["profile"] = profiles if scenario.env.is_multi_agent else profiles[0]
    if not scenario.env.is_multi_agent and "episode_length" in arguments:
        # gymnasium.make's TimeLimit (the registered horizon unless told) must end episodes
        # where the env's own horizon does; Gymnasium does not tell the env.
        arguments["max_episode_steps"] = arguments["episode_length"]
    return arguments


def _planner(spec: AgentSpec, env: Any, member: Member, members: Sequence[Member]) -> Any:
    from valuegym.agents.heuristic import GreedyAgent
    from valuegym.agents.planner import PlannerAgent

    co_players = {}
    for other in members:
        if other is member:
            continue
        simple = other.spec.kind in ("greedy", "softmax", "random")
        # A fresh copy: simulating a co-player must not draw from the real one's generator.
        space = env.action_space(other.env_agent) if simple else None
        co_players[other.env_agent] = _policy(other.spec, space) if simple else GreedyAgent()
    planning = spec.planning
    return PlannerAgent(
        env,
        agent=member.env_agent if hasattr(env, "possible_agents") else None,
        horizon=planning.horizon,
        depth=planning.depth,
        rollouts=planning.rollouts,
        discount=planning.discount,
        co_players=co_players,
    )


def _policy(spec: AgentSpec, action_space: Any) -> Any:
    from valuegym.agents import heuristic

    if spec.kind == "random":
        return heuristic.RandomAgent(action_space)
    if spec.kind == "greedy":
        return heuristic.GreedyAgent()
    if spec.kind == "softmax":
        return heuristic.SoftmaxAgent()
    from valuegym.agents.training import PolicyAgent, load

    assert spec.checkpoint is not None
    return PolicyAgent(load(spec.checkpoint))


def _scripted_speaker(scenario: Scenario, spec: AgentSpec, row: int) -> Any:
    from valuegym.agents.scripted import ScriptedSpeaker

    assert spec.script is not None
    ids = [agent_id for agent_id, _ in scenario.expanded_agents()]
    script = spec.script
    to_index = ids.index(script.to) if script.to is not None else None
    return ScriptedSpeaker(script.act, to_index, row, len(ids), script.lines, script.order)


def build_population(
    scenario: Scenario, *, load_model: Callable[..., Any] | None = None
) -> Population:
    """Build the env and the agents of a scenario.

    Args:
        scenario: The validated scenario.
        load_model: Loads a language model from ``(backend, model, **options)``; default
            :func:`valuegym.lm.load_language_model`.

    Returns:
        The population, env not yet reset.

    Raises:
        PopulationError: When the env, a profile, a checkpoint or a language model fails,
            naming the scenario key.
    """
    env = _make_env(scenario, env_arguments(scenario))
    multi_agent = scenario.env.is_multi_agent
    env_agents = list(env.possible_agents) if multi_agent else ["agent"]
    if len(env_agents) != scenario.n_agents:
        raise PopulationError(
            f"agents: {scenario.env.id} has {len(env_agents)} agents, the "
            f"scenario {scenario.n_agents}"
        )
    members: list[Member] = []
    models: list[Any] = []
    group_settings: list[tuple[Any, Any]] = []  # (model, LM spec) of each group
    group_rows: list[list[int]] = []
    group_of: dict[tuple[Any, ...], int] = {}
    model_of: dict[tuple[Any, ...], Any] = {}
    named = [(entry, agent_id) for entry in scenario.entries() for agent_id in entry.agents]
    for row, ((entry, agent_id), env_agent) in enumerate(zip(named, env_agents, strict=True)):
        spec = scenario.agents[entry.index]
        member = Member(agent_id, env_agent, row, spec, entry)
        where = f"agents.{entry.index}"
        if spec.kind == "lm":
            lm = spec.language_model
            model_key = (lm.backend, lm.model, lm.base_url)
            if model_key not in model_of:
                model_of[model_key] = load_lm_model(lm, where, load_model)
                models.append(model_of[model_key])
            group_key = (*model_key, lm)
            if group_key not in group_of:
                group_of[group_key] = len(group_settings)
                group_settings.append((model_of[model_key], lm))
                group_rows.append([])
            member.lm_group = group_of[group_key]
            group_rows[member.lm_group].append(row)
        elif spec.kind == "scripted":
            member.policy = _scripted_speaker(scenario, spec, row)
        else:
            space = env.action_space(env_agent) if multi_agent else env.action_space
            if isinstance(space, gymnasium.spaces.Dict) and "act" in space.spaces:
                space = space["act"]  # text mode: the discrete act beside the utterance
            try:
                if spec.kind != "planner":  # built once every co-player is known
                    member.policy = _policy(spec, space)
            except (OSError, ValueError) as error:
                raise PopulationError(f"{where}.checkpoint: cannot load: {error}") from None
        members.append(member)
    for member in members:
        if member.spec.kind == "planner":
            try:
                member.policy = _planner(member.spec, env, member, members)
            except ValueError as error:
                raise PopulationError(
                    f"agents.{member.entry.index}.kind: cannot plan: {error}"
                ) from None
    # Personas are indexed by population row, so every row gets one (unused for non-members).
    personas = [member.spec.persona or DEFAULT_PERSONA for member in members]
    groups = [
        LMGroup(make_lm_agent(model, lm, personas), rows)
        for (model, lm), rows in zip(group_settings, group_rows, strict=True)
    ]
    first_space = env.action_space(env_agents[0]) if multi_agent else env.action_space
    text_actions = (
        isinstance(first_space, gymnasium.spaces.Dict) and "utterance" in first_space.spaces
    )
    action_names = tuple(env.unwrapped.action_names)
    return Population(env, multi_agent, members, groups, action_names, models, text_actions)


def load_lm_model(
    lm: LMSpec,
    where: str,
    load_model: Callable[..., Any] | None = None,
    *,
    batched_scoring: bool = False,
) -> Any:
    """Load an LM agent's model, or raise a :class:`PopulationError` naming the scenario key.

    Args:
        lm: The agent's LM settings.
        where: The agent's scenario path (``agents.2``), for the message.
        load_model: Loads a model from ``(backend, model, **options)``; default
            :func:`valuegym.lm.load_language_model`.
        batched_scoring: Load a ``llamacpp`` model with ``exact_scoring=False`` (its
            ``score`` decodes all continuations of a call together; generation is the same).
            Other backends have one way to score and are loaded as they are.

    Returns:
        The loaded model, wrapped in a :class:`~valuegym.lm.wrappers.ProfilingModel` (its
        calls are counted per phase for the run's profile, :mod:`valuegym.runs.timing`).
    """
    from valuegym.lm import LanguageModelError, default_backend, load_language_model
    from valuegym.lm.wrappers import ProfilingModel

    loader = load_model if load_model is not None else load_language_model
    options: dict[str, Any] = {"base_url": lm.base_url} if lm.base_url is not None else {}
    if batched_scoring and (lm.backend or default_backend()) == "llamacpp":
        options["exact_scoring"] = False
    try:
        return ProfilingModel(loader(lm.backend, lm.model, **options))
    except (LanguageModelError, ValueError, OSError) as error:
        raise PopulationError(f"{where}.lm: cannot load model {lm.model!r}: {error}") from None


def steering_channel(lm: LMSpec) -> Any:
    """The LM agent's steering channel, its directions checked against its model; or ``None``.

    Raises:
        PopulationError: Directions that cannot be read, or that were built for another
            model file (one line naming both hashes).
    """
    if lm.steering is None:
        return None
    from valuegym.agents.steering_channel import SteeringChannel
    from valuegym.lm.direction_cache import DEFAULT_DIRECTIONS, default_directions
    from valuegym.lm.directions import SteeringDirections
    from valuegym.lm.models import file_sha256, resolve_gguf_path

    spec = lm.steering
    try:
        model_file = resolve_gguf_path(lm.model)
    except (ValueError, OSError) as error:
        raise PopulationError(
            f"lm.steering: directions apply to a local GGUF model file ({error})"
        ) from None
    folder = spec.directions
    if folder == DEFAULT_DIRECTIONS:
        try:
            folder = str(default_directions(model_file, announce=_announce))
        except (ImportError, OSError, ValueError) as error:
            raise PopulationError(
                f"lm.steering.directions: {' '.join(str(error).split())}"
            ) from None
    try:
        directions = SteeringDirections.load(folder, model_sha256=file_sha256(model_file))
    except (OSError, ValueError) as error:
        raise PopulationError(f"lm.steering.directions: {' '.join(str(error).split())}") from None
    built = tuple(int(layer) for layer in directions.provenance.get("layers", ()))
    layers = tuple(spec.layers) if spec.layers is not None else built[len(built) // 2 :][:1]
    missing = [layer for layer in layers if built and layer not in built]
    if missing:
        raise PopulationError(
            f"lm.steering.layers: {missing} were not built in {spec.directions} (built: "
            f"{list(built)}); rebuild with --layers or steer those"
        )
    return SteeringChannel(
        directions=directions,
        settings=spec.settings(),
        strength=spec.strength,
        center=dict(spec.center),
        layers=layers,
    )


def _announce(line: str) -> None:
    """A progress line of a long one-off step (building cached directions), on stderr."""
    print(f"valuegym: {line}", file=sys.stderr, flush=True)


def make_lm_agent(model: Any, lm: LMSpec, personas: Sequence[str]) -> Any:
    """The :class:`~valuegym.agents.lm_agent.LMAgent` of an LM spec, with its channels.

    Args:
        model: The loaded language model.
        lm: The LM settings shared by the agent's members.
        personas: One persona per population row.

    Returns:
        The agent.
    """
    from valuegym.agents.lm_agent import LMAgent

    return LMAgent(
        model,
        personas,
        steering=steering_channel(lm),
        template=lm.prompt_template(),
        act_selection=lm.act_by,
        speech_temperature=lm.fixed(lm.speech_temperature),
        act_temperature=lm.fixed(lm.act_temperature),
        prompt_state=lm.prompt_channel(),
        truncation=Truncation(top_p=lm.top_p, top_k=lm.top_k, min_p=lm.min_p),
        max_new_tokens=lm.max_new_tokens,
    )
