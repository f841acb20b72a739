"""YAML scenarios: the schema, the safe loader, the runner and the run folder's records."""

from valuegym.records import RunFolder
from valuegym.scenarios.loader import YamlLoadError, load_yaml_file, load_yaml_text
from valuegym.scenarios.runner import RunError, RunResult, default_run_dir, run_scenario
from valuegym.scenarios.schema import AGENT_KINDS, LM_BACKENDS, Scenario
from valuegym.scenarios.training import train_scenario
from valuegym.scenarios.validation import (
    ScenarioError,
    apply_overrides,
    load_scenario,
    scenario_with_overrides,
    validate_scenario,
)

__all__ = [
    "AGENT_KINDS",
    "LM_BACKENDS",
    "RunError",
    "RunFolder",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "YamlLoadError",
    "apply_overrides",
    "default_run_dir",
    "load_scenario",
    "load_yaml_file",
    "load_yaml_text",
    "run_scenario",
    "scenario_with_overrides",
    "train_scenario",
    "validate_scenario",
]
