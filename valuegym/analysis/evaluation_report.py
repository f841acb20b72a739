"""The social outcomes of a held-out co-player evaluation: table, JSON and bar chart.

:func:`summarize` turns the episodes of :func:`valuegym.runs.evaluate.run_evaluation` into the
metrics of :mod:`valuegym.analysis.social`, per background population, for the focal agents,
the background agents and everyone, with 95% intervals over episodes;
:func:`format_table` prints them, :func:`write_evaluation` writes ``evaluation.json`` and
``social_outcomes.png`` into the output folder, atomically.

The headline is the focal return (the focal agents' efficiency, Melting Pot's focal
per-capita return); equality, sustainability and peace are read over all agents, whose joint
behaviour they describe.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from valuegym.analysis.social import METRICS, episode_outcomes, outcome_intervals
from valuegym.analysis.statistics import Estimate
from valuegym.records import write_bytes_atomic, write_json_atomic
from valuegym.runs.evaluate import EvaluationRun

__all__ = [
    "COLUMNS",
    "EvaluationSummary",
    "format_table",
    "plot_outcomes",
    "summarize",
    "write_evaluation",
]

#: Table columns: (title, group, metric).
COLUMNS: Final = (
    ("focal return", "focal", "efficiency"),
    ("background return", "background", "efficiency"),
    ("efficiency", "all", "efficiency"),
    ("equality", "all", "equality"),
    ("sustainability", "all", "sustainability"),
    ("peace", "all", "peace"),
)

#: Names of the evaluation's output files.
RESULTS_FILE: Final = "evaluation.json"
PLOT_FILE: Final = "social_outcomes.png"


@dataclass(frozen=True)
class EvaluationSummary:
    """The social outcomes of an evaluation.

    Attributes:
        run: The evaluation's episodes and seating.
        per_episode: Background -> one :func:`episode_outcomes` mapping per episode.
        estimates: Background -> group -> metric -> mean with its interval over episodes.
    """

    run: EvaluationRun
    per_episode: dict[str, list[dict[str, dict[str, float]]]]
    estimates: dict[str, dict[str, dict[str, Estimate]]]


def summarize(run: EvaluationRun) -> EvaluationSummary:
    """The metrics of every episode and their intervals, per background population.

    Args:
        run: What :func:`~valuegym.runs.evaluate.run_evaluation` returned.

    Returns:
        The summary.
    """
    groups = {
        "focal": list(run.focal_rows),
        "background": list(run.background_rows),
        "all": list(range(len(run.agent_ids))),
    }
    per_episode: dict[str, list[dict[str, dict[str, float]]]] = {}
    for episode in run.episodes:
        per_episode.setdefault(episode.background, []).append(
            episode_outcomes(episode.rewards, episode.harmed, groups)
        )
    estimates = {name: outcome_intervals(episodes) for name, episodes in per_episode.items()}
    return EvaluationSummary(run, per_episode, estimates)


def _cell(estimate: Estimate) -> str:
    if estimate.n_units == 0:
        return "not defined"
    if math.isnan(estimate.low):
        return f"{estimate.value:.2f}"
    return f"{estimate.value:.2f} [{estimate.low:.2f}, {estimate.high:.2f}]"


def format_table(summary: EvaluationSummary) -> str:
    """The outcomes as a text table, one row per background population.

    Args:
        summary: What :func:`summarize` returned.

    Returns:
        The table with a heading line naming the focal population, the episodes and the
        interval, and a note when peace is not defined for the env.
    """
    run = summary.run
    focal = ", ".join(run.agent_ids[row] for row in run.focal_rows)
    lines = [
        f"focal {run.focal} on {focal} vs held-out backgrounds; mean over {len(run.seeds)} "
        "episodes (each its own seed) [95% interval over episodes]"
    ]
    rows = [["background", *(title for title, _, _ in COLUMNS)]]
    for name, groups in summary.estimates.items():
        labels = sorted(set(run.backgrounds[name]))
        rows.append(
            [
                f"{name} ({', '.join(labels)})",
                *(_cell(groups[group][metric]) for _, group, metric in COLUMNS),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    if not run.harm_defined:
        lines.append(
            f"peace: not defined for {run.scenario.env.id} (its actions cannot harm another agent)"
        )
    return "\n".join(line.rstrip() for line in lines)


def plot_outcomes(summary: EvaluationSummary) -> bytes:
    """A bar chart per table column, one bar per background, with 95% intervals, as PNG.

    Args:
        summary: What :func:`summarize` returned.

    Returns:
        The PNG bytes.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = list(summary.estimates)
    figure, axes = plt.subplots(1, len(COLUMNS), figsize=(3.0 * len(COLUMNS), 3.6))
    for axis, (title, group, metric) in zip(axes, COLUMNS, strict=True):
        estimates = [summary.estimates[name][group][metric] for name in names]
        values = [e.value if e.n_units else 0.0 for e in estimates]
        errors = [
            [max(0.0, e.value - e.low) if math.isfinite(e.low) else 0.0 for e in estimates],
            [max(0.0, e.high - e.value) if math.isfinite(e.high) else 0.0 for e in estimates],
        ]
        axis.bar(range(len(names)), values, yerr=errors, capsize=4, color="tab:blue")
        axis.set_xticks(range(len(names)), names, rotation=30, ha="right")
        axis.set_title(title if any(e.n_units for e in estimates) else f"{title}\n(not defined)")
    figure.suptitle(
        f"{summary.run.scenario.name}: focal {summary.run.focal} vs held-out backgrounds "
        "(95% intervals over episodes)",
        fontsize=10,
    )
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def _results(summary: EvaluationSummary) -> dict[str, Any]:
    run = summary.run
    episodes = {
        name: [
            {
                "seed": episode.seed,
                "steps": int(episode.rewards.shape[0]),
                "returns": dict(zip(run.agent_ids, episode.returns.tolist(), strict=True)),
                "outcomes": episode_outcome,
            }
            for episode, episode_outcome in zip(
                [e for e in run.episodes if e.background == name], outcomes, strict=True
            )
        ]
        for name, outcomes in summary.per_episode.items()
    }
    return {
        "scenario": run.scenario.name,
        "env": run.scenario.env.id,
        "focal": {"policy": run.focal, "agents": [run.agent_ids[r] for r in run.focal_rows]},
        "backgrounds": {
            name: dict(zip([run.agent_ids[r] for r in run.background_rows], labels, strict=True))
            for name, labels in run.backgrounds.items()
        },
        "seeds": list(run.seeds),
        "unit": "episode",
        "interval": "95%: t over episodes under 20 episodes, BCa bootstrap over episodes from 20",
        "metrics": {
            "efficiency": "mean return per agent in the episode",
            "equality": "1 - Gini of the agents' returns",
            "sustainability": "mean step (from 1) at which agents collected positive reward",
            "peace": "share of agent-steps without harm received (null: the env defines none)",
        },
        "peace_defined": run.harm_defined,
        "outcomes": {
            name: {
                group: {metric: groups[group][metric].to_dict() for metric in METRICS}
                for group in groups
            }
            for name, groups in summary.estimates.items()
        },
        "episodes": episodes,
    }


def write_evaluation(summary: EvaluationSummary, output: str | Path) -> tuple[Path, Path]:
    """Write ``evaluation.json`` and ``social_outcomes.png`` into the output folder, atomically.

    Args:
        summary: What :func:`summarize` returned.
        output: The evaluation's output folder (it exists: the run wrote its manifest there).

    Returns:
        The paths of the JSON and of the PNG.
    """
    folder = Path(output)
    results, plot = folder / RESULTS_FILE, folder / PLOT_FILE
    write_json_atomic(_nan_to_none(_results(summary)), results)
    write_bytes_atomic(plot_outcomes(summary), plot)
    return results, plot


def _nan_to_none(data: Any) -> Any:
    """JSON has no NaN: a metric that is not defined is written as null."""
    if isinstance(data, float) and math.isnan(data):
        return None
    if isinstance(data, dict):
        return {key: _nan_to_none(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_nan_to_none(value) for value in data]
    return data
