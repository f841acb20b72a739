"""Describing a scenario: the YAML schema, the safe loader, validation and the shipped catalog.

Running one is :mod:`valuegym.runs`.
"""

from valuegym.scenarios.loader import YamlLoadError, load_yaml_file, load_yaml_text
from valuegym.scenarios.schema import AGENT_KINDS, LM_BACKENDS, Scenario
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
    "Scenario",
    "ScenarioError",
    "YamlLoadError",
    "apply_overrides",
    "load_scenario",
    "load_yaml_file",
    "load_yaml_text",
    "scenario_with_overrides",
    "validate_scenario",
]
