"""Turn YAML (or plain data) into a validated :class:`~valuegym.scenarios.schema.Scenario`.

Validation reports *every* problem at once, each as ``(dotted path, message)``: the schema's
structural problems (from pydantic, with its locations turned into dotted paths and its
messages into short ones), the value profiles' problems (from
:meth:`valuegym.values.ValueProfile.from_mapping`, prefixed with the agent's path), missing
files, what agent entries need of the env and of each other
(:mod:`valuegym.scenarios.agent_checks`), and sweep overrides that would not validate. Nothing
is built or run while validating.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from valuegym.envs.registration import (
    MULTI_AGENT_ENV_IDS,
    SINGLE_AGENT_ENV_IDS,
    env_class,
    env_parameters,
)
from valuegym.lm.models import EMBEDDED_MODELS
from valuegym.scenarios.agent_checks import agent_problems
from valuegym.scenarios.appraisal_checks import appraisal_problems
from valuegym.scenarios.catalog import resolve_scenario_path, shipped_scenarios
from valuegym.scenarios.design_checks import design_problems
from valuegym.scenarios.evaluation_checks import evaluation_problems, resolve_evaluation_files
from valuegym.scenarios.loader import YamlLoadError, load_yaml_file
from valuegym.scenarios.problems import Problem, ScenarioError, pydantic_problems, type_name
from valuegym.scenarios.schema import Scenario
from valuegym.values import ProfileError, ValueProfile

__all__ = [
    "ScenarioError",
    "apply_overrides",
    "load_scenario",
    "scenario_with_overrides",
    "validate_scenario",
]


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file safely and validate it; profile files are read relative to it.

    Args:
        path: The YAML scenario, or the name of a shipped scenario (e.g. ``quickstart``)
            when no such file exists.

    Returns:
        The validated scenario, profile files inlined and checkpoint paths made absolute.

    Raises:
        ScenarioError: With every problem found, including unreadable or unsafe YAML.
    """
    path = resolve_scenario_path(path)
    try:
        data = load_yaml_file(path)
    except YamlLoadError as error:
        message = str(error).removeprefix(f"{path}: ")
        if not path.exists():
            names = [shipped.stem for shipped in shipped_scenarios()]
            close = difflib.get_close_matches(path.stem, names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            message = (
                f"no such file, and no shipped scenario of that name ({hint}shipped: "
                f"{', '.join(names)}; `valuegym list` shows them)"
            )
        raise ScenarioError([("", message)], str(path)) from None
    try:
        return validate_scenario(data, base_dir=path.parent)
    except ScenarioError as error:
        raise ScenarioError(error.problems, str(path)) from None


def validate_scenario(data: Any, *, base_dir: str | Path = ".") -> Scenario:
    """Validate plain data as a scenario.

    Args:
        data: What the YAML loader returned.
        base_dir: Folder that relative ``profile`` and ``checkpoint`` paths start from.

    Returns:
        The validated scenario, profile files inlined and checkpoint paths made absolute.

    Raises:
        ScenarioError: With every problem found.
    """
    if data is None:
        raise ScenarioError(
            [("", "the scenario is empty; it must be a mapping with at least name, env and agents")]
        )
    if not isinstance(data, Mapping):
        raise ScenarioError(
            [
                (
                    "",
                    f"the scenario must be a mapping of keys (name, env, agents, "
                    f"...), not a {type_name(data)}",
                )
            ]
        )
    problems: list[Problem] = []
    data = _resolve_files(data, Path(base_dir), problems)
    data = resolve_evaluation_files(data, Path(base_dir), problems)
    if "analysis" in data:
        problems.append(
            (
                "analysis",
                "analysis.primary was replaced by the scenario's design: declare "
                "design.estimands and mark one primary: true (docs/design.md, section Analysis)",
            )
        )
        data = {key: value for key, value in data.items() if key != "analysis"}
    scenario: Scenario | None = None
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        problems.extend(pydantic_problems(error))
    profiles, profile_problems = _resolve_profiles(data)
    problems.extend(profile_problems)
    problems.extend(_env_argument_problems(data, scenario))
    if scenario is not None and scenario.sweep is not None:
        problems.extend(_sweep_problems(scenario))
    if scenario is not None:
        problems.extend(agent_problems(scenario))
        problems.extend(design_problems(scenario))
        problems.extend(appraisal_problems(scenario))
        problems.extend(evaluation_problems(scenario))
    if problems:
        raise ScenarioError(_unique(problems))
    assert scenario is not None
    scenario.resolve_profiles(profiles)
    return scenario


def apply_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``data`` with each dotted path set to its value.

    Integer segments index lists (the item must exist); other segments are mapping keys
    (created when missing, so the schema reports an unknown one).

    Args:
        data: Scenario data, e.g. :meth:`Scenario.to_mapping`.
        overrides: Dotted path (``agents.0.affect.stress_baseline``) -> new value.

    Returns:
        The changed copy.

    Raises:
        ScenarioError: When a path runs through a scalar or past the end of a list.
    """
    result: dict[str, Any] = copy.deepcopy(dict(data))
    problems: list[Problem] = []
    for path, value in overrides.items():
        node: Any = result
        segments = path.split(".")
        for depth, segment in enumerate(segments):
            here = ".".join(segments[: depth + 1])
            last = depth == len(segments) - 1
            if isinstance(node, list):
                if not segment.isdigit() or int(segment) >= len(node):
                    problems.append(
                        (here, f"no such item (the list has {len(node)} items, numbered from 0)")
                    )
                    break
                if last:
                    node[int(segment)] = copy.deepcopy(value)
                else:
                    node = node[int(segment)]
            elif isinstance(node, dict):
                if last:
                    node[segment] = copy.deepcopy(value)
                else:
                    node = node.setdefault(segment, {})
            else:
                problems.append(
                    (
                        here,
                        f"cannot set: {'.'.join(segments[:depth]) or 'scenario'} "
                        f"is a {type_name(node)}, not a mapping or list",
                    )
                )
                break
    if problems:
        raise ScenarioError(problems)
    return result


def scenario_with_overrides(scenario: Scenario, overrides: Mapping[str, Any]) -> Scenario:
    """The scenario with dotted-path overrides applied and the result validated (a sweep cell).

    Args:
        scenario: A validated scenario (profile files already inlined).
        overrides: Dotted path -> value, e.g. ``{"agents.0.affect.stress_baseline": 0.5}``.

    Returns:
        The new scenario, without a sweep.

    Raises:
        ScenarioError: When a path or value does not validate, with its dotted path.
    """
    data = scenario.to_mapping()
    data.pop("sweep", None)
    if scenario.design is not None and scenario.design.unit == "seed":
        # A cell is one run of the sweep's design; the sweep report reads that design.
        data.pop("design", None)
    return validate_scenario(apply_overrides(data, overrides))


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def _resolve_files(data: Mapping[str, Any], base_dir: Path, problems: list[Problem]) -> Any:
    """Inline each agent's ``profile`` file and make ``checkpoint`` paths absolute."""
    agents = data.get("agents")
    if not isinstance(agents, list):
        return data
    resolved_agents = []
    for index, agent in enumerate(agents):
        if not isinstance(agent, Mapping):
            resolved_agents.append(agent)
            continue
        agent = dict(agent)
        checkpoint = agent.get("checkpoint")
        if isinstance(checkpoint, str) and checkpoint:
            checkpoint_path = (base_dir / checkpoint).resolve()
            if not checkpoint_path.is_file():
                problems.append(
                    (f"agents.{index}.checkpoint", f"file not found: {checkpoint_path}")
                )
            agent["checkpoint"] = str(checkpoint_path)
        lm = agent.get("lm")
        if isinstance(lm, Mapping):
            problems.extend(_model_file_problems(lm, base_dir, f"agents.{index}.lm.model"))
            lm = _resolve_directions(lm, base_dir, f"agents.{index}.lm.steering", problems)
            agent["lm"] = lm
        profile_file = agent.get("profile")
        if isinstance(profile_file, str) and profile_file and "values" not in agent:
            agent = _inline_profile(agent, base_dir / profile_file, f"agents.{index}", problems)
        resolved_agents.append(agent)
    return {**data, "agents": resolved_agents}


def _resolve_directions(
    lm: Mapping[str, Any], base_dir: Path, where: str, problems: list[Problem]
) -> Mapping[str, Any]:
    """Make ``steering.directions`` absolute; a folder without built directions is a problem."""
    steering = lm.get("steering")
    if not isinstance(steering, Mapping) or not isinstance(steering.get("directions"), str):
        return lm
    if steering["directions"] == "default":  # the shipped pairs', built into the cache on use
        return lm
    folder = (base_dir / Path(steering["directions"]).expanduser()).resolve()
    if not (folder / "directions.json").is_file():
        problems.append(
            (
                f"{where}.directions",
                f"no directions in {folder} (directions.json missing); build them with "
                "`valuegym steer build --output FOLDER`",
            )
        )
    return {**lm, "steering": {**steering, "directions": str(folder)}}


def _model_file_problems(lm: Mapping[str, Any], base_dir: Path, where: str) -> list[Problem]:
    """A local model file that is not there (a server's model names are the server's).

    A path-like ``model`` (``.gguf``, or starting ``/``, ``./``, ``../``, ``~``) must exist, from
    the current folder or the scenario's; a llama.cpp model must be embedded or a GGUF file.
    """
    model, backend = lm.get("model"), lm.get("backend")
    if not isinstance(model, str) or backend == "openai" or model in EMBEDDED_MODELS:
        return []
    path_like = model.endswith(".gguf") or model.startswith(("/", "./", "../", "~"))
    if not path_like and backend != "llamacpp":
        return []  # a Hugging Face id, resolved (or refused) when the model loads
    candidates = [Path(model).expanduser(), base_dir / Path(model).expanduser()]
    if any(candidate.exists() for candidate in candidates):
        return []
    if backend == "llamacpp" and not path_like:
        return [
            (
                where,
                f"{model!r} is neither an embedded model ({', '.join(sorted(EMBEDDED_MODELS))}) "
                "nor a .gguf file; llamacpp loads GGUF files",
            )
        ]
    return [(where, f"file not found: {model} (from {Path.cwd()} or {base_dir.resolve()})")]


def _inline_profile(
    agent: dict[str, Any], profile_path: Path, path: str, problems: list[Problem]
) -> dict[str, Any]:
    where = f"{path}.profile"
    try:
        profile_data = load_yaml_file(profile_path)
    except YamlLoadError as error:
        problems.append((where, str(error)))
        return agent
    try:
        ValueProfile.from_mapping(profile_data)
    except ProfileError as error:
        problems.extend(
            (where, f"{profile_path}: {key}: {message}" if key else f"{profile_path}: {message}")
            for key, message in error.problems
        )
        return agent
    resolved = {key: value for key, value in agent.items() if key != "profile"}
    resolved["values"] = profile_data["values"]
    for section in ("affect", "homeostasis"):
        own = agent.get(section, {})
        if isinstance(own, Mapping):
            resolved[section] = {**profile_data.get(section, {}), **own}
    return resolved


#: Stands in for the env's default profile when the env id is not known (only the agents'
#: affect and homeostasis are then checked).
_PLACEHOLDER_PROFILE: Final = ValueProfile.from_mapping({"values": {"placeholder": {}}})


def _env_default_profile(data: Mapping[str, Any]) -> ValueProfile | None:
    """The env's default profile for the scenario's env arguments; ``None`` if it has none."""
    env = data.get("env")
    if (
        not isinstance(env, Mapping)
        or env.get("id") not in SINGLE_AGENT_ENV_IDS + MULTI_AGENT_ENV_IDS
    ):
        return None
    arguments = env.get("args", {})
    try:
        return env_class(env["id"]).default_profile(**dict(arguments))
    except (TypeError, ValueError):
        return None  # the env arguments' own problems are reported by the schema and env checks


def _resolve_profiles(
    data: Mapping[str, Any],
) -> tuple[list[ValueProfile | None], list[Problem]]:
    """Each agent entry's value profile, and every profile problem with the agent's path.

    An entry's ``values``, ``affect`` and ``homeostasis`` are merged over the env's default
    profile (:meth:`ValueProfile.merged`) once, here; the validated scenario carries the result
    (:meth:`~valuegym.scenarios.schema.Scenario.resolve_profiles`) and the population uses it.

    Returns:
        Per entry its profile (``None`` when it sets none of the three and takes the env's
        default), and the problems.
    """
    agents = data.get("agents")
    if not isinstance(agents, list):
        return [], []
    env_default = _env_default_profile(data)
    default = env_default or _PLACEHOLDER_PROFILE
    resolved: list[ValueProfile | None] = []
    problems: list[Problem] = []
    names_by_agent: dict[int, tuple[str, ...]] = {}
    for index, agent in enumerate(agents):
        resolved.append(None)
        if not isinstance(agent, Mapping) or ("profile" in agent and "values" not in agent):
            continue  # a profile file that failed to load was reported already
        sections = {key: agent[key] for key in ("values", "affect", "homeostasis") if key in agent}
        if not all(isinstance(value, Mapping) for value in sections.values()):
            continue  # the schema reports a section that is not a mapping
        uses_env_default = "values" not in sections
        try:
            profile = ValueProfile.merged(default, **sections)
        except ProfileError as error:
            problems.extend(
                (f"agents.{index}.{key}" if key else f"agents.{index}", message)
                for key, message in error.problems
                # The env's values are not the agent's to fix.
                if not (uses_env_default and key.startswith("values"))
            )
            continue
        if any(sections.values()) and env_default is not None:
            resolved[index] = profile
        if not uses_env_default:
            names_by_agent[index] = profile.value_names
    if names_by_agent:
        first_index, first_names = next(iter(names_by_agent.items()))
        for index, names in names_by_agent.items():
            if names != first_names:
                problems.append(
                    (
                        f"agents.{index}.values",
                        f"value names {list(names)} differ from agents.{first_index}'s "
                        f"{list(first_names)}; every agent in one env has the same values",
                    )
                )
    return resolved, problems


def _env_argument_problems(data: Mapping[str, Any], scenario: Scenario | None) -> list[Problem]:
    """Env arguments the env does not take, or that the scenario sets elsewhere.

    Read from the raw data, so they are reported in the same pass as the schema's problems.
    """
    env = data.get("env")
    if not isinstance(env, Mapping) or not isinstance(env.get("args", {}), Mapping):
        return []
    env_id, arguments = env.get("id"), env.get("args", {})
    if env_id not in SINGLE_AGENT_ENV_IDS + MULTI_AGENT_ENV_IDS:
        return []  # the schema reports an unknown env id
    problems: list[Problem] = []
    parameters = env_parameters(env_id)
    for name in arguments:
        if name == "profile":
            problems.append(
                (
                    "env.args.profile",
                    "give value profiles on the agents (values, "
                    "affect or a profile file), not as an env argument",
                )
            )
        elif parameters is not None and name not in parameters:
            known = ", ".join(p for p in parameters if p not in ("profile", "render_mode"))
            close = difflib.get_close_matches(str(name), parameters, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(
                (
                    f"env.args.{name}",
                    f"not an argument of {env_id} ({hint}expected one of: {known})",
                )
            )
    if scenario is None:
        return problems
    n_agents = scenario.env.args.get("n_agents")
    if scenario.env.is_multi_agent and n_agents is not None and n_agents != scenario.n_agents:
        problems.append(
            (
                "env.args.n_agents",
                f"{n_agents!r}, but the scenario has {scenario.n_agents} agents (leave it out)",
            )
        )
    return problems


def _sweep_problems(scenario: Scenario) -> list[Problem]:
    """Each grid value applied alone to the scenario must validate."""
    assert scenario.sweep is not None
    problems: list[Problem] = []
    for path, values in scenario.sweep.grid.items():
        for item, value in enumerate(values):
            try:
                scenario_with_overrides(scenario, {path: value})
            except ScenarioError as error:
                for inner_path, message in error.problems:
                    detail = message if inner_path == path else f"{inner_path}: {message}"
                    problems.append((f"sweep.grid.{path}.{item}", f"value {value!r}: {detail}"))
    return problems
