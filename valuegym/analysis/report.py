"""Turn a run folder into statistics, a Markdown report and PNG figures.

What a report holds, as far as the run recorded it:

- utterance measures (mean token entropy, mean surprisal, semantic entropy) against stress and
  mood: the slope on both at once, fitted inside each episode with each agent's mean removed,
  and a t (or BCa) interval over the episodes, the independent units; the scenario's declared
  primary contrasts first, the rest Holm-corrected as a family; a figure per state showing the
  same slope and interval;
- a mixed model per measure, ``measure ~ stress + mood + log(T) + length + (1 | episode/agent)``
  (statsmodels' MixedLM), where the run has enough episodes, else a plain message why not;
- mutual information between value state and utterance, with an interval over episodes;
- episode returns per agent kind, inequality (Gini of the agents' returns) and, for envs that
  report them, the shared resource over time, the env's Gini and cooperation, each with an
  interval over episodes;
- value-state trajectories (mood and stress over time, per agent).

``report/statistics.json`` holds the same numbers for programs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa

from valuegym.analysis.contagion import add_appraisal_sections
from valuegym.analysis.document import Report, estimate_table, number
from valuegym.analysis.plots import plot_group_means, plot_series, plot_value_trajectories
from valuegym.analysis.speech_report import UNIT, add_speech_sections, column_values, per_episode
from valuegym.analysis.statistics import gini, mean_interval
from valuegym.manifest import manifest_markdown, read_manifest
from valuegym.records import RunFolder
from valuegym.records.schema import metric_column, metric_names

__all__ = ["build_report", "write_report"]

#: Env metric columns (``env_<name>`` in the step records) drawn over time when present.
_RESOURCE_COLUMNS: Final = (metric_column("resource"),)
_COOPERATION_COLUMN: Final = metric_column("cooperation_rate")
_GINI_COLUMN: Final = metric_column("gini")


def _episode_returns(steps: pa.Table) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per (episode, agent): the agent's scenario entry, the episode and the summed reward.

    The entry is named ``"<entry> (<kind>)"``: agents of one entry (``count: n``) form one group,
    so two entries that differ in one factor (e.g. stress) are compared as two groups.
    """
    episodes = column_values(steps, "episode")
    agents = column_values(steps, "agent").astype(str)
    labels = np.char.add(
        np.char.add(column_values(steps, "entry").astype(str), " ("),
        np.char.add(column_values(steps, "agent_kind").astype(str), ")"),
    )
    rewards = column_values(steps, "reward").astype(np.float64)
    keys = list(dict.fromkeys(zip(episodes.tolist(), agents.tolist(), strict=True)))
    index = {key: i for i, key in enumerate(keys)}
    rows = np.array([index[key] for key in zip(episodes.tolist(), agents.tolist(), strict=True)])
    totals = np.bincount(rows, weights=rewards, minlength=len(keys))
    entry_of = dict(zip(agents.tolist(), labels.tolist(), strict=True))
    return (
        [entry_of[agent] for _, agent in keys],
        np.array([episode for episode, _ in keys]),
        totals,
    )


def _returns_section(steps: pa.Table, figure_dir: Path, report: Report, seed: int) -> None:
    kinds, episodes, totals = _episode_returns(steps)
    kind_array = np.array(kinds)
    n_agents = len(np.unique(column_values(steps, "agent")))
    # Agents of one episode act on one another: their mean return is the episode's number.
    estimates = [
        mean_interval(
            [
                totals[(episodes == e) & (kind_array == kind)].mean()
                for e in np.unique(episodes[kind_array == kind])
            ],
            label=kind,
            unit=UNIT,
            seed=seed,
        )
        for kind in dict.fromkeys(kinds)
    ]
    report.statistics["returns_by_kind"] = {e.label: e.to_dict() for e in estimates}
    report.figures.append(
        plot_group_means(
            estimates, figure_dir / "returns_by_kind.png", value_label="episode return"
        )
    )
    body = (
        "Summed reward (utility gain) per agent and episode, averaged over each scenario "
        "entry's agents in each episode.\n\n" + estimate_table(estimates, label="agents (kind)")
    )
    if n_agents > 1:
        inequality = mean_interval(
            [
                gini(np.clip(totals[episodes == episode], 0.0, None))
                for episode in np.unique(episodes)
            ],
            label="Gini of returns",
            unit=UNIT,
            seed=seed,
        )
        report.statistics["gini_of_returns"] = inequality.to_dict()
        body += (
            f"\nInequality: Gini of the {n_agents} agents' episode returns (negative "
            "returns as 0), one per episode.\n\n" + estimate_table([inequality], label="quantity")
        )
    report.sections.append(("Returns per agent kind", body))


def _mean_by_step(
    steps: pa.Table, column: str, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    step = column_values(steps, "step")
    values = column_values(steps, column).astype(np.float64)
    if mask is not None:
        step, values = step[mask], values[mask]
    unique = np.unique(step)
    means = np.array([np.nanmean(values[step == s]) for s in unique])
    lows = np.array([np.nanmin(values[step == s]) for s in unique])
    highs = np.array([np.nanmax(values[step == s]) for s in unique])
    return unique, means, lows, highs


def _trajectory_section(steps: pa.Table, figure_dir: Path, report: Report) -> None:
    agents = column_values(steps, "agent").astype(str)
    series: dict[str, dict[str, np.ndarray]] = {"mood": {}, "stress": {}}
    step_axis = np.unique(column_values(steps, "step"))
    for agent in dict.fromkeys(agents.tolist()):
        for variable in series:
            steps_of_agent, means, _, _ = _mean_by_step(steps, variable, agents == agent)
            series[variable][agent] = np.interp(step_axis, steps_of_agent, means)
    report.figures.append(
        plot_value_trajectories(step_axis, series, figure_dir / "value_trajectories.png")
    )
    final = {
        variable: {agent: float(values[-1]) for agent, values in per_agent.items()}
        for variable, per_agent in series.items()
    }
    report.statistics["final_state"] = final
    rows = "\n".join(
        f"| {agent} | {number(final['mood'][agent], 2)} | {number(final['stress'][agent], 2)} |"
        for agent in final["mood"]
    )
    report.sections.append(
        (
            "Value state over time",
            "Mood and stress per agent, mean over episodes; at the last step:\n\n"
            "| agent | mood | stress |\n|---|---|---|\n" + rows + "\n",
        )
    )


def _env_section(steps: pa.Table, figure_dir: Path, report: Report, seed: int) -> None:
    episodes = column_values(steps, "episode")
    for column in _RESOURCE_COLUMNS:
        if column in steps.column_names:
            step_axis, means, lows, highs = _mean_by_step(steps, column)
            [name] = metric_names([column])
            report.figures.append(
                plot_series(
                    step_axis,
                    means,
                    figure_dir / f"{name}.png",
                    value_label=name,
                    low=lows,
                    high=highs,
                )
            )
            report.statistics[name] = {"mean": float(np.nanmean(means)), "final": float(means[-1])}
            report.sections.append(
                (
                    f"{name.capitalize()} over time",
                    f"Mean {number(float(np.nanmean(means)))}, at the last step "
                    f"{number(float(means[-1]))} (band: min–max over episodes, not an "
                    "interval).\n",
                )
            )
    estimates = []
    if _GINI_COLUMN in steps.column_names:
        step = column_values(steps, "step")
        values = column_values(steps, _GINI_COLUMN).astype(np.float64)
        final = [
            values[(episodes == e) & (step == step[episodes == e].max())][0]
            for e in np.unique(episodes)
        ]
        estimates.append(mean_interval(final, label="Gini at episode end", unit=UNIT, seed=seed))
        report.statistics["gini_of_harvest"] = estimates[-1].to_dict()
    if _COOPERATION_COLUMN in steps.column_names:
        values = column_values(steps, _COOPERATION_COLUMN).astype(np.float64)
        estimates.append(
            mean_interval(per_episode(episodes, values), label="cooperation", unit=UNIT, seed=seed)
        )
        report.statistics["cooperation"] = estimates[-1].to_dict()
    if estimates:
        report.sections.append(
            (
                "Inequality and cooperation reported by the env",
                "The env's Gini of consumption at the end of each episode, and its share of "
                "cooperative acts averaged per episode.\n\n"
                + estimate_table(estimates, label="quantity"),
            )
        )


def _timing_section(timing: dict[str, dict[str, Any]], seconds: float, report: Report) -> None:
    """Where the run's time and tokens went, per phase (from the summary's ``timing``).

    Phases come most seconds first, the total last.
    """
    phases = sorted(
        (item for item in timing.items() if item[0] != "total"),
        key=lambda item: (
            -(item[1]["model_seconds"] + item[1]["measure_seconds"] + item[1]["env_seconds"])
        ),
    )
    if "total" in timing:
        phases.append(("total", timing["total"]))
    rows = [
        f"| {label} | {p['calls']} | {p['generated_tokens']} | {p['prompt_tokens_read']} | "
        f"{number(p['model_seconds'], 2)} | {number(p['measure_seconds'], 2)} | "
        f"{number(p['env_seconds'], 2)} |"
        for label, p in phases
    ]
    report.sections.append(
        (
            "Timing",
            "| phase | model calls | tokens generated | prompt tokens read | s in model | "
            "s in measurement | s in env |\n|---|---|---|---|---|---|---|\n"
            + "\n".join(rows)
            + f"\n\nWall time of the run: {number(seconds, 2)} s (loading, prompts, records "
            "and the rest are the difference). Tokens whose prompt cache was shared are not "
            "read again and not counted; resumed episodes are not in the timing.\n",
        )
    )
    report.statistics["timing"] = timing


def build_report(run_dir: str | Path, *, seed: int = 0) -> Report:
    """Compute a run's statistics and draw its figures into ``<run>/report/``.

    Args:
        run_dir: A run folder with at least one finished episode.
        seed: Seed of the bootstrap over units (used where a run has many episodes).

    Returns:
        The report (not yet written; see :func:`write_report`).

    Raises:
        FileNotFoundError: When the folder holds no finished episode.
        RecordSchemaError: When its records follow another record schema version (a folder
            written by an older valuegym).
    """
    folder = RunFolder(Path(run_dir))
    episodes = folder.finished_episodes()
    if not episodes:
        raise FileNotFoundError(
            f"{folder.root}: no finished episode records in "
            f"{folder.records_dir}; is this a run folder?"
        )
    design = folder.read_design()
    steps = folder.read("steps")
    report = Report(title=f"Run report: {folder.root.name}")
    summary: dict[str, Any] = {}
    if folder.is_complete:
        summary = folder.read_summary()
        report.title = f"Run report: {summary.get('scenario', folder.root.name)}"
        if summary.get("description"):
            report.opening.append(str(summary["description"]).strip())
        kinds = ", ".join(f"{agent['id']} ({agent['kind']})" for agent in summary["agents"])
        report.opening.append(f"Env `{summary['env']}`; agents: {kinds}; seed {summary['seed']}.")
        status = "finished"
    else:
        status = "did not finish (partial report over the finished episodes)"
    report.opening.append(
        f"Run folder `{folder.root}`: {len(episodes)} episode(s), {steps.num_rows} "
        f"agent-steps; the run {status}. Every interval is a 95% interval over independent "
        "units (named beside it), never over rows that share an episode."
    )
    report.statistics["episodes"] = len(episodes)
    report.statistics["complete"] = folder.is_complete
    figure_dir = folder.report_dir
    add_speech_sections(folder, figure_dir, report, design, seed)
    add_appraisal_sections(folder, figure_dir, report, seed)
    if steps.num_rows:
        _returns_section(steps, figure_dir, report, seed)
        _trajectory_section(steps, figure_dir, report)
        _env_section(steps, figure_dir, report, seed)
    if summary.get("timing"):
        _timing_section(summary["timing"], float(summary.get("seconds", math.nan)), report)
    report.sections.append(("Manifest", manifest_markdown(read_manifest(folder.root))))
    return report


def write_report(run_dir: str | Path, *, seed: int = 0) -> Path:
    """Build the report and write ``report.md``, ``statistics.json`` and the figures.

    Args:
        run_dir: A run folder.
        seed: Seed of the bootstrap over units.

    Returns:
        The path of ``report.md``.
    """
    folder = RunFolder(Path(run_dir))
    return build_report(folder.root, seed=seed).write(folder.report_dir)
