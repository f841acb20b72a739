"""Social outcome metrics of common-pool resource episodes (Perolat et al. 2017).

Each metric is a pure function of one episode's per-step rewards ``(steps, n_agents)`` (and,
for peace, of who was harmed when); :func:`episode_outcomes` computes all four for groups of
agents (the focal population, the background, everyone), and :func:`outcome_intervals` forms
their 95% intervals over episodes, which are the independent units (each episode has its own
seed), with :func:`valuegym.analysis.statistics.mean_interval`.

- **efficiency**: mean return per agent in the episode, ``(1/N) sum_i R_i``. Perolat et al.
  divide the summed return by the episode length instead; per agent and episode is the
  number Melting Pot reports as the focal return.
- **equality**: ``1 - Gini(R_1, ..., R_N)`` of the agents' returns; not defined (``nan``) when
  a return is negative (the Gini coefficient measures shares of a non-negative total).
- **sustainability**: the mean time step at which rewards were collected,
  ``(1/N) sum_i mean{t : r_t^i > 0}`` with steps numbered from 1; agents that collected
  nothing are left out (``nan`` when no agent collected anything). A population that depletes
  the resource early collects early and ends early: a lower number.
- **peace**: the share of agent-steps in which the agent was not harmed
  (``1 - mean_t,i [harmed_t^i > 0]``); Perolat et al. count agents not tagged out per step.
  Defined only where the env says what harm is (``info["harmed"]``,
  :data:`valuegym.envs.protocol.HARMED`); elsewhere ``nan``, reported as not defined.

Example:
    >>> rewards = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 2.0]])
    >>> efficiency(rewards), equality(rewards), sustainability(rewards)
    (2.0, 1.0, 2.5)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np

from valuegym.analysis.statistics import Estimate, mean_interval
from valuegym.numeric import gini

__all__ = [
    "METRICS",
    "efficiency",
    "episode_outcomes",
    "equality",
    "outcome_intervals",
    "peace",
    "sustainability",
]

#: The metrics, in the order tables show them.
METRICS: Final = ("efficiency", "equality", "sustainability", "peace")


def _rewards(rewards: np.ndarray) -> np.ndarray:
    array = np.asarray(rewards, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(f"rewards: expected (steps, n_agents) with n_agents >= 1 ({array.shape})")
    return array


def efficiency(rewards: np.ndarray) -> float:
    """Mean return per agent over the episode: ``(1/N) sum_i sum_t r_t^i``.

    Args:
        rewards: ``(steps, n_agents)`` rewards of one episode.

    Returns:
        The mean return (0 for an episode of no steps).
    """
    return float(_rewards(rewards).sum(axis=0).mean())


def equality(rewards: np.ndarray) -> float:
    """``1 - Gini`` of the agents' returns: 1 when equal, ``1/N`` when one agent has all.

    Args:
        rewards: ``(steps, n_agents)`` rewards of one episode.

    Returns:
        The equality; ``nan`` when a return is negative.
    """
    returns = _rewards(rewards).sum(axis=0)
    if np.any(returns < 0):
        return math.nan
    return 1.0 - gini(returns)


def sustainability(rewards: np.ndarray) -> float:
    """Mean over agents of the mean step (numbered from 1) at which each collected reward.

    Args:
        rewards: ``(steps, n_agents)`` rewards of one episode.

    Returns:
        The mean time of reward; ``nan`` when no agent collected a positive reward.
    """
    collected = _rewards(rewards) > 0
    counts = collected.sum(axis=0)
    if not counts.any():
        return math.nan
    steps = np.arange(1, collected.shape[0] + 1, dtype=np.float64)
    mean_times = (steps @ collected)[counts > 0] / counts[counts > 0]
    return float(mean_times.mean())


def peace(harmed: np.ndarray | None) -> float:
    """Share of agent-steps in which the agent was not harmed.

    Args:
        harmed: ``(steps, n_agents)`` harms received (counts or booleans), or ``None`` when
            the env defines no harm.

    Returns:
        The share in [0, 1]; ``nan`` without a harm definition or without steps.
    """
    if harmed is None:
        return math.nan
    array = np.asarray(harmed, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"harmed: expected (steps, n_agents) (got shape {array.shape})")
    if array.size == 0:
        return math.nan
    return float(1.0 - np.mean(array > 0))


def episode_outcomes(
    rewards: np.ndarray, harmed: np.ndarray | None, groups: Mapping[str, Sequence[int]]
) -> dict[str, dict[str, float]]:
    """The four metrics of one episode for each group of agents.

    Args:
        rewards: ``(steps, n_agents)`` rewards of the episode.
        harmed: ``(steps, n_agents)`` harms received, or ``None`` where the env defines none.
        groups: Group name -> the agents' columns (e.g. ``focal``, ``background``, ``all``).

    Returns:
        Group -> metric -> value (``nan`` where a metric is not defined).
    """
    array = _rewards(rewards)
    outcomes = {}
    for name, columns in groups.items():
        chosen = list(columns)
        if not chosen:
            raise ValueError(f"groups: {name!r} has no agents")
        part = array[:, chosen]
        outcomes[name] = {
            "efficiency": efficiency(part),
            "equality": equality(part),
            "sustainability": sustainability(part),
            "peace": peace(None if harmed is None else np.asarray(harmed)[:, chosen]),
        }
    return outcomes


def outcome_intervals(
    episodes: Sequence[Mapping[str, Mapping[str, float]]], *, confidence: float = 0.95
) -> dict[str, dict[str, Estimate]]:
    """Each group's metrics over episodes, with intervals (episodes are the units).

    Args:
        episodes: :func:`episode_outcomes` of each episode (same groups in each).
        confidence: Nominal coverage of the intervals.

    Returns:
        Group -> metric -> the mean over episodes where the metric is defined, with its
        interval (:func:`~valuegym.analysis.statistics.mean_interval`: t under 20 episodes,
        BCa bootstrap from 20); a metric defined in no episode has ``n_units`` 0 and ``nan``s.
    """
    if not episodes:
        raise ValueError("episodes: need at least one episode")
    return {
        group: {
            metric: mean_interval(
                [episode[group][metric] for episode in episodes],
                label=f"{group} {metric}",
                unit="episodes",
                confidence=confidence,
            )
            for metric in METRICS
        }
        for group in episodes[0]
    }
