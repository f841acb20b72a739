"""Agents: heuristic baselines, scripted speakers, SB3-trained policies and LM-driven agents.

The heuristic and LM agents import at once; the training API (stable-baselines3, torch,
SuperSuit) is imported on first use of one of its names, so ``import valuegym.agents`` stays
light for code that only needs the baselines.
"""

from __future__ import annotations

import importlib
from typing import Any

from valuegym.agents.heuristic import (
    Agent,
    GreedyAgent,
    RandomAgent,
    SoftmaxAgent,
    action_wanting_of,
)
from valuegym.agents.lm_agent import LMAgent, Utterance
from valuegym.agents.prompts import PromptTemplate
from valuegym.agents.scripted import ScriptedSpeaker

#: Names imported from their module on first access (PEP 562).
_LAZY = {
    **dict.fromkeys(
        (
            "ALGORITHMS",
            "Evaluation",
            "PolicyAgent",
            "TrainingConfig",
            "build_model",
            "checkpoint_metadata",
            "evaluate",
            "load",
            "make_training_env",
            "save",
            "train",
        ),
        "valuegym.agents.training",
    ),
    **dict.fromkeys(
        (
            "PopulationEvaluation",
            "SharedVecEnv",
            "evaluate_population",
            "make_shared_env",
            "mixed_population",
            "train_shared",
        ),
        "valuegym.agents.parameter_sharing",
    ),
    "GymnasiumVecEnv": "valuegym.agents.vector",
}

__all__ = [
    "Agent",
    "GreedyAgent",
    "LMAgent",
    "PromptTemplate",
    "RandomAgent",
    "ScriptedSpeaker",
    "SoftmaxAgent",
    "Utterance",
    "action_wanting_of",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
