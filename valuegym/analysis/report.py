"""Turn a run folder into statistics, a Markdown report and PNG figures.

What a report holds, as far as the run recorded it:

- utterance measures (mean token entropy, mean surprisal, semantic entropy) against stress and
  against mood: OLS slope with a bootstrap 95% interval, R², n; a figure for each state with
  mean token entropy and the fitted line;
- mutual information between value state and utterance, per episode and agent;
- episode returns per agent kind (mean and bootstrap 95% interval);
- value-state trajectories (mood and stress over time, per agent);
- for envs that report them: the shared resource over time, inequality (Gini of the agents'
  episode returns) and cooperation.

``report/statistics.json`` holds the same numbers for programs (sweeps aggregate it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa

from valuegym.analysis.plots import (
    plot_entropy_against_state,
    plot_group_means,
    plot_series,
    plot_value_trajectories,
)
from valuegym.analysis.statistics import GroupSummary, fit_slope, gini, mean_interval
from valuegym.records import RunFolder, write_bytes_atomic, write_json_atomic

__all__ = ["UTTERANCE_MEASURES", "Report", "build_report", "write_report"]

#: Utterance columns studied against the value state, with their labels.
UTTERANCE_MEASURES: Final = {
    "mean_token_entropy": "mean token entropy",
    "mean_surprisal": "mean surprisal per token",
    "semantic_entropy": "semantic entropy (weighted)",
    "semantic_entropy_discrete": "semantic entropy (discrete)",
}
_STATES: Final = ("stress", "mood")
#: Env metric columns (``env_<name>`` in the step records) drawn over time when present.
_RESOURCE_COLUMNS: Final = ("env_resource",)
_COOPERATION_COLUMN: Final = "env_cooperation_rate"
_GINI_COLUMN: Final = "env_gini"


@dataclass
class Report:
    """The numbers and figures of a run's report.

    Attributes:
        statistics: JSON-able numbers, grouped by section.
        markdown: The report text.
        figures: The PNG files written.
    """

    statistics: dict[str, Any] = field(default_factory=dict)
    markdown: str = ""
    figures: list[Path] = field(default_factory=list)


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False)


def _number(value: float, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _unit(utterances: pa.Table) -> str:
    if "unit" in utterances.column_names and utterances.num_rows:
        return str(utterances.column("unit")[0].as_py())
    return "nats"


def _entropy_section(utterances: pa.Table, figure_dir: Path, report: Report, seed: int) -> None:
    if utterances.num_rows == 0:
        return
    unit = _unit(utterances)
    rows, fits = [], {}
    groups = _column(utterances, "agent") if "agent" in utterances.column_names else None
    for measure, label in UTTERANCE_MEASURES.items():
        if measure not in utterances.column_names:
            continue
        values = _column(utterances, measure).astype(np.float64)
        if not np.any(np.isfinite(values)):
            continue
        for state in _STATES:
            fit = fit_slope(_column(utterances, state), values, seed=seed)
            fits[f"{measure}~{state}"] = fit.to_dict()
            rows.append(
                f"| {label} ({unit}) | {state} | {_number(fit.slope)} | "
                f"[{_number(fit.low)}, {_number(fit.high)}] | {_number(fit.r_squared, 2)} "
                f"| {fit.n} |"
            )
            if measure == "mean_token_entropy":
                report.figures.append(
                    plot_entropy_against_state(
                        _column(utterances, state),
                        values,
                        fit,
                        figure_dir / f"entropy_vs_{state}.png",
                        state_label=state,
                        entropy_label=f"{label} ({unit})",
                        groups=groups,
                    )
                )
    report.statistics["utterance_slopes"] = fits
    report.statistics["utterances"] = utterances.num_rows
    report.markdown += (
        "\n## Utterance entropy against the value state\n\n"
        f"{utterances.num_rows} utterances. OLS slope of each measure on the state variable, "
        "with a percentile bootstrap 95% interval (pairs resampled).\n\n"
        "| measure | state | slope | 95% interval | R² | n |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def _information_section(information: pa.Table, report: Report) -> None:
    if information.num_rows == 0 or "mutual_information" not in information.column_names:
        return
    values = _column(information, "mutual_information").astype(np.float64)
    summary = mean_interval(values, group="all")
    report.statistics["mutual_information"] = summary.to_dict()
    report.markdown += (
        "\n## Mutual information between value state and utterance\n\n"
        f"I(S;Y) = H(Y) − H(Y|S), estimated by cross-scoring samples under each state's prompt: "
        f"mean {_number(summary.mean)} [{_number(summary.low)}, {_number(summary.high)}] "
        f"over {summary.n} estimates.\n"
    )


def _episode_returns(steps: pa.Table) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Per (episode, agent): agent id, kind, episode number and summed reward."""
    episodes = _column(steps, "episode")
    agents = _column(steps, "agent").astype(str)
    kinds = _column(steps, "agent_kind").astype(str)
    rewards = _column(steps, "reward").astype(np.float64)
    keys = list(dict.fromkeys(zip(episodes.tolist(), agents.tolist(), strict=True)))
    index = {key: i for i, key in enumerate(keys)}
    rows = np.array([index[key] for key in zip(episodes.tolist(), agents.tolist(), strict=True)])
    totals = np.bincount(rows, weights=rewards, minlength=len(keys))
    kind_of = dict(zip(agents.tolist(), kinds.tolist(), strict=True))
    return (
        [agent for _, agent in keys],
        [kind_of[agent] for _, agent in keys],
        np.array([episode for episode, _ in keys]),
        totals,
    )


def _returns_section(steps: pa.Table, figure_dir: Path, report: Report, seed: int) -> None:
    agents, kinds, episodes, totals = _episode_returns(steps)
    summaries = [
        mean_interval(totals[np.array(kinds) == kind], group=kind, seed=seed)
        for kind in dict.fromkeys(kinds)
    ]
    report.statistics["returns_by_kind"] = {s.group: s.to_dict() for s in summaries}
    report.figures.append(
        plot_group_means(
            summaries, figure_dir / "returns_by_kind.png", value_label="episode return"
        )
    )
    rows = "\n".join(
        f"| {s.group} | {_number(s.mean)} | [{_number(s.low)}, {_number(s.high)}] | {s.n} |"
        for s in summaries
    )
    report.markdown += (
        "\n## Returns per agent kind\n\n"
        "Summed reward (utility gain) per agent and episode; mean with bootstrap 95% interval.\n\n"
        "| kind | mean return | 95% interval | agent-episodes |\n|---|---|---|---|\n" + rows + "\n"
    )
    if len(set(agents)) > 1:
        _inequality(agents, episodes, totals, report)


def _inequality(
    agents: list[str], episodes: np.ndarray, totals: np.ndarray, report: Report
) -> None:
    per_episode = [
        gini(np.clip(totals[episodes == episode], 0.0, None)) for episode in np.unique(episodes)
    ]
    summary: GroupSummary = mean_interval(per_episode, group="gini")
    report.statistics["gini_of_returns"] = summary.to_dict()
    report.markdown += (
        f"\nInequality: Gini of the agents' episode returns (negative returns as 0) is "
        f"{_number(summary.mean)} [{_number(summary.low)}, {_number(summary.high)}] "
        f"over {summary.n} episodes ({len(set(agents))} agents).\n"
    )


def _mean_by_step(
    steps: pa.Table, column: str, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    step = _column(steps, "step")
    values = _column(steps, column).astype(np.float64)
    if mask is not None:
        step, values = step[mask], values[mask]
    unique = np.unique(step)
    means = np.array([np.nanmean(values[step == s]) for s in unique])
    lows = np.array([np.nanmin(values[step == s]) for s in unique])
    highs = np.array([np.nanmax(values[step == s]) for s in unique])
    return unique, means, lows, highs


def _trajectory_section(steps: pa.Table, figure_dir: Path, report: Report) -> None:
    agents = _column(steps, "agent").astype(str)
    series: dict[str, dict[str, np.ndarray]] = {"mood": {}, "stress": {}}
    step_axis = np.unique(_column(steps, "step"))
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
        f"| {agent} | {_number(final['mood'][agent], 2)} | {_number(final['stress'][agent], 2)} |"
        for agent in final["mood"]
    )
    report.markdown += (
        "\n## Value state over time\n\n"
        "Mood and stress per agent, mean over episodes; at the last step:\n\n"
        "| agent | mood | stress |\n|---|---|---|\n" + rows + "\n"
    )


def _env_section(steps: pa.Table, figure_dir: Path, report: Report) -> None:
    for column in _RESOURCE_COLUMNS:
        if column in steps.column_names:
            step_axis, means, lows, highs = _mean_by_step(steps, column)
            name = column.removeprefix("env_")
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
            report.markdown += (
                f"\n## {name.capitalize()} over time\n\nMean {_number(float(np.nanmean(means)))}, "
                f"at the last step {_number(float(means[-1]))} (band: min–max over episodes).\n"
            )
    if _GINI_COLUMN in steps.column_names:
        episodes, step = _column(steps, "episode"), _column(steps, "step")
        values = _column(steps, _GINI_COLUMN).astype(np.float64)
        final = [
            values[(episodes == e) & (step == step[episodes == e].max())][0]
            for e in np.unique(episodes)
        ]
        summary = mean_interval(final, group="gini")
        report.statistics["gini_of_harvest"] = summary.to_dict()
        report.markdown += (
            f"\nInequality reported by the env (Gini at the end of an episode): "
            f"{_number(summary.mean)} [{_number(summary.low)}, {_number(summary.high)}] over "
            f"{summary.n} episodes.\n"
        )
    if _COOPERATION_COLUMN in steps.column_names:
        values = _column(steps, _COOPERATION_COLUMN).astype(np.float64)
        summary = mean_interval(values, group="cooperation")
        report.statistics["cooperation"] = summary.to_dict()
        report.markdown += (
            f"\nCooperation (share of cooperative acts): {_number(summary.mean)} "
            f"[{_number(summary.low)}, {_number(summary.high)}].\n"
        )


def build_report(run_dir: str | Path, *, seed: int = 0) -> Report:
    """Compute a run's statistics and draw its figures into ``<run>/report/``.

    Args:
        run_dir: A run folder with at least one finished episode.
        seed: Seed of the bootstrap resampling.

    Returns:
        The report (not yet written as Markdown; see :func:`write_report`).

    Raises:
        FileNotFoundError: When the folder holds no finished episode.
    """
    folder = RunFolder(Path(run_dir))
    episodes = folder.finished_episodes()
    if not episodes:
        raise FileNotFoundError(
            f"{folder.root}: no finished episode records in "
            f"{folder.records_dir}; is this a run folder?"
        )
    steps = folder.read("steps")
    report = Report()
    title = folder.root.name
    lines = []
    if folder.is_complete:
        summary = folder.read_summary()
        title = summary.get("scenario", title)
        if summary.get("description"):
            lines.append(str(summary["description"]).strip())
        kinds = ", ".join(f"{agent['id']} ({agent['kind']})" for agent in summary["agents"])
        lines.append(f"Env `{summary['env']}`; agents: {kinds}; seed {summary['seed']}.")
        status = "finished"
    else:
        status = "did not finish (partial report over the finished episodes)"
    lines.append(
        f"Run folder `{folder.root}`: {len(episodes)} episode(s), {steps.num_rows} "
        f"agent-steps; the run {status}."
    )
    report.markdown = f"# Run report: {title}\n\n" + "\n\n".join(lines) + "\n"
    report.statistics["episodes"] = len(episodes)
    report.statistics["complete"] = folder.is_complete
    figure_dir = folder.report_dir
    _entropy_section(folder.read("utterances"), figure_dir, report, seed)
    _information_section(folder.read("information"), report)
    if steps.num_rows:
        _returns_section(steps, figure_dir, report, seed)
        _trajectory_section(steps, figure_dir, report)
        _env_section(steps, figure_dir, report)
    report.markdown += "\n## Figures\n\n" + "".join(
        f"![{path.stem.replace('_', ' ')}]({path.name})\n\n" for path in report.figures
    )
    return report


def write_report(run_dir: str | Path, *, seed: int = 0) -> Path:
    """Build the report and write ``report.md``, ``statistics.json`` and the figures.

    Args:
        run_dir: A run folder.
        seed: Seed of the bootstrap resampling.

    Returns:
        The path of ``report.md``.
    """
    folder = RunFolder(Path(run_dir))
    report = build_report(folder.root, seed=seed)
    write_json_atomic(report.statistics, folder.report_dir / "statistics.json")
    markdown_path = folder.report_dir / "report.md"
    write_bytes_atomic(report.markdown.encode("utf-8"), markdown_path)
    return markdown_path
