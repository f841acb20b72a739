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
import yaml

from valuegym.analysis.channels import (
    REPLAY_MEASURES,
    channel_contrasts,
    manipulation_check,
    placebo_check,
    temperature_confounds,
)
from valuegym.analysis.document import (
    Report,
    contrast_table,
    declared_primary,
    estimate_table,
    number,
    order_contrasts,
)
from valuegym.analysis.models import fit_mixed_model, within_between
from valuegym.analysis.plots import (
    plot_contrasts,
    plot_entropy_against_state,
    plot_group_means,
    plot_series,
    plot_value_trajectories,
)
from valuegym.analysis.statistics import Estimate, gini, mean_interval, unit_slopes
from valuegym.manifest import manifest_markdown, read_manifest
from valuegym.records import RunFolder

__all__ = ["UTTERANCE_MEASURES", "build_report", "write_report"]

#: Utterance columns studied against the value state, with their labels.
UTTERANCE_MEASURES: Final = {
    "mean_token_entropy": "mean token entropy",
    "mean_surprisal": "mean surprisal per token",
    "semantic_entropy": "semantic entropy (weighted)",
    "semantic_entropy_discrete": "semantic entropy (discrete)",
}
_STATES: Final = ("stress", "mood")
#: Fixed effects of the mixed model, in order of interest (see valuegym.analysis.models).
_MODEL_TERMS: Final = (
    "stress_within",
    "mood_within",
    "stress_between",
    "mood_between",
    "log_temperature",
    "length",
)
_UNIT: Final = "episodes"
#: Env metric columns (``env_<name>`` in the step records) drawn over time when present.
_RESOURCE_COLUMNS: Final = ("env_resource",)
_COOPERATION_COLUMN: Final = "env_cooperation_rate"
_GINI_COLUMN: Final = "env_gini"


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False)


def _unit(utterances: pa.Table) -> str:
    if "unit" in utterances.column_names and utterances.num_rows:
        return str(utterances.column("unit")[0].as_py())
    return "nats"


def _per_episode(episodes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The mean of ``values`` in each episode: one number per independent unit."""
    return np.array([np.nanmean(values[episodes == e]) for e in np.unique(episodes)])


def _entropy_section(
    utterances: pa.Table, figure_dir: Path, report: Report, primary: list[str], seed: int
) -> None:
    if utterances.num_rows == 0:
        return
    unit = _unit(utterances)
    episodes, agents = _column(utterances, "episode"), _column(utterances, "agent").astype(str)
    states = {state: _column(utterances, state).astype(np.float64) for state in _STATES}
    estimates: dict[str, Estimate] = {}
    measured = {}
    for measure, label in UTTERANCE_MEASURES.items():
        if measure not in utterances.column_names:
            continue
        values = _column(utterances, measure).astype(np.float64)
        if not np.any(np.isfinite(values)):
            continue
        measured[measure] = values
        slopes = unit_slopes(states, values, episodes, within=agents)
        for state in _STATES:
            name = f"{measure}~{state}"
            estimates[name] = mean_interval(slopes[state], label=name, unit=_UNIT, seed=seed)
            if measure == "mean_token_entropy":
                report.figures.append(
                    plot_entropy_against_state(
                        states[state],
                        values,
                        estimates[name],
                        figure_dir / f"entropy_vs_{state}.png",
                        state_label=state,
                        entropy_label=f"{label} ({unit})",
                        groups=agents,
                    )
                )
    contrasts = order_contrasts(estimates, primary)
    report.statistics["contrasts"] = {c.name: c.to_dict() for c in contrasts}
    report.statistics["utterances"] = utterances.num_rows
    report.sections.append(
        (
            "Utterance measures against the value state",
            f"{utterances.num_rows} utterances in {np.unique(episodes).size} episodes from "
            f"{np.unique(agents).size} agents, measured in {unit}. Each contrast "
            "`measure~state` is the slope of the measure on stress and mood together, "
            "fitted inside each episode after removing each agent's own mean (so a persona's "
            "level cannot pose as an effect of its stress); utterances of one episode share "
            "its chat, so the episodes are the "
            "independent units and each interval is over their slopes.\n\n"
            + contrast_table(contrasts)
            + "".join(
                f"\n**Warning:** {warning}.\n"
                for warning in temperature_confounds(utterances.to_pylist())
            ),
        )
    )
    if measured:
        _model_section(utterances, measured, report)


def _samples_section(utterances: pa.Table, report: Report, count: int = 5) -> None:
    """A few utterances, spread evenly over the run, so a reader sees what was measured."""
    if utterances.num_rows == 0 or "text" not in utterances.column_names:
        return
    rows = utterances.to_pylist()
    picked = [rows[i] for i in np.linspace(0, len(rows) - 1, min(count, len(rows))).astype(int)]
    lines = [
        "| episode | step | agent | stress | T | utterance |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['episode']} | {r['step']} | {r['agent']} | {r['stress']:.2f} | "
            f"{r['sampling_temperature']:.2f} | {str(r['text']).replace('|', '/')} |"
            for r in picked
        ),
    ]
    report.sections.append(("What was said", "\n".join(lines) + "\n"))


def _channel_section(folder: RunFolder, figure_dir: Path, report: Report) -> None:
    """The channels apart: paired within-context contrasts from a counterfactual replay."""
    replay = folder.read("replay").to_pylist()
    if not replay:
        return
    contexts = len({row["context_id"] for row in replay})
    cells = len({row["cell"] for row in replay})
    parts = [
        f"{contexts} recorded contexts were regenerated under {cells} channel settings "
        "(`valuegym replay` or `measure.counterfactual`), with the same random numbers in "
        "every setting, so each contrast is a difference *within* a context. The unit of each "
        "interval is named beside it: episodes when there are enough, else contexts (contexts "
        "of one episode share its history, so read those intervals as optimistic).\n"
    ]
    statistics: dict[str, Any] = {}
    all_contrasts = []
    for measure, label in REPLAY_MEASURES.items():
        contrasts = channel_contrasts(replay, measure)
        if not contrasts:
            continue
        all_contrasts.extend(contrasts)
        statistics[measure] = [c.to_dict() for c in contrasts]
        parts.append(
            f"\n**{measure}** ({label}):\n\n"
            + estimate_table([c.estimate for c in contrasts], label="contrast")
        )
    checks = []
    manipulation = manipulation_check(folder.read("manipulation").to_pylist())
    if manipulation is not None:
        checks.append(manipulation)
    placebo = placebo_check(replay)
    if placebo is not None:
        checks.append(placebo)
    if checks:
        statistics["checks"] = [c.to_dict() for c in checks]
        parts.append(
            "\n**Checks.** The manipulation check scores a self-report of stress under each "
            "stated level: positive when the state text reaches the model. The placebo states "
            "another context's state: its slope on the context's own stress should hold zero.\n\n"
            + estimate_table([c.estimate for c in checks], label="check")
        )
    report.statistics["channels"] = statistics
    report.sections.append(("Channels apart: temperature, prompt, interaction", "".join(parts)))
    shown = [c for c in all_contrasts if c.measure == "sequence_entropy"]
    if shown:
        report.figures.append(
            plot_contrasts(
                [c.estimate for c in shown],
                [
                    f"{c.channel.replace('_', ' ')} {c.levels}"
                    + (f"\n{c.at.replace('_', ' ')}" if c.at and c.channel != "interaction" else "")
                    for c in shown
                ],
                figure_dir / "channel_contrasts.png",
                value_label="difference in the entropy of what is said (nats)",
            )
        )


def _model_section(utterances: pa.Table, measured: dict[str, np.ndarray], report: Report) -> None:
    episodes = _column(utterances, "episode")
    agents = _column(utterances, "agent").astype(str)
    data: dict[str, np.ndarray] = {"episode": episodes, "agent": agents}
    for state in _STATES:
        within, between = within_between(
            _column(utterances, state).astype(np.float64), episodes, agents
        )
        data[f"{state}_within"], data[f"{state}_between"] = within, between
    for column, term, transform in (
        ("sampling_temperature", "log_temperature", np.log),
        ("length", "length", np.asarray),
    ):
        data[term] = (
            transform(_column(utterances, column).astype(np.float64))
            if column in utterances.column_names
            else np.zeros(utterances.num_rows)
        )
    parts, fits = [], {}
    for measure, values in measured.items():
        fit = fit_mixed_model(
            {**data, measure: values}, measure, _MODEL_TERMS, group="episode", nested="agent"
        )
        fits[measure] = fit.to_dict()
        text = f"`{fit.formula}` ({fit.n_rows} utterances)"
        if fit.left_out:
            text += (
                f"; left out: {', '.join(fit.left_out)} (a linear function of the other terms "
                "in this run, or constant)"
            )
        parts.append(
            text
            + ":\n\n"
            + (estimate_table(fit.estimates, label="term") if fit.estimates else fit.message + "\n")
        )
    report.statistics["mixed_models"] = fits
    report.sections.append(
        (
            "Mixed models",
            "Random intercepts per episode (the shared chat) and per agent within it (the "
            "persona), fitted by REML with statsmodels' MixedLM. `_within` is a state's "
            "deviation from the agent's mean in the episode and `_between` that mean, so the "
            "within-agent coefficients cannot pick up a persona. Wald intervals use a t "
            "quantile on episodes − 1 degrees of freedom.\n\n" + "\n".join(parts),
        )
    )


def _information_section(information: pa.Table, report: Report, seed: int) -> None:
    if information.num_rows == 0 or "mutual_information" not in information.column_names:
        return
    episodes = _column(information, "episode")
    values = _column(information, "mutual_information").astype(np.float64)
    estimate = mean_interval(_per_episode(episodes, values), label="I(S;Y)", unit=_UNIT, seed=seed)
    report.statistics["mutual_information"] = estimate.to_dict()
    own_error = ""
    if "standard_error" in information.column_names:
        errors = _column(information, "standard_error").astype(np.float64)
        own_error = (
            f" Each estimate's own standard error (mean {number(float(np.nanmean(errors)))}) "
            "is part of the spread between episodes, so the interval over episodes carries it."
        )
    report.sections.append(
        (
            "Mutual information between value state and utterance",
            "I(S;Y) = H(Y) − H(Y|S), estimated by cross-scoring samples under each state's "
            f"prompt, averaged per episode.{own_error}\n\n"
            + estimate_table([estimate], label="quantity"),
        )
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


def _agent_groups(scenario_file: Path) -> dict[str, str]:
    """Each recorded agent's scenario entry, ``"<entry id> (<kind>)"``, from the resolved scenario.

    An entry with ``count: n`` names its agents ``<id>_0 .. <id>_<n-1>``; they form one group,
    so two entries that differ in one factor (e.g. stress) are compared as two groups.
    """
    if not scenario_file.is_file():
        return {}
    data = yaml.safe_load(scenario_file.read_text(encoding="utf-8")) or {}
    groups: dict[str, str] = {}
    for index, entry in enumerate(data.get("agents") or []):
        name = entry.get("id") or f"agent{index}"
        label = f"{name} ({entry.get('kind')})"
        count = int(entry.get("count", 1))
        for member in [name] if count == 1 else [f"{name}_{i}" for i in range(count)]:
            groups[member] = label
    return groups


def _returns_section(
    steps: pa.Table, figure_dir: Path, report: Report, seed: int, groups: dict[str, str]
) -> None:
    agents, kinds, episodes, totals = _episode_returns(steps)
    kinds = [groups.get(agent, kind) for agent, kind in zip(agents, kinds, strict=True)]
    kind_array = np.array(kinds)
    # Agents of one episode act on one another: their mean return is the episode's number.
    estimates = [
        mean_interval(
            [
                totals[(episodes == e) & (kind_array == kind)].mean()
                for e in np.unique(episodes[kind_array == kind])
            ],
            label=kind,
            unit=_UNIT,
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
    if len(set(agents)) > 1:
        inequality = mean_interval(
            [
                gini(np.clip(totals[episodes == episode], 0.0, None))
                for episode in np.unique(episodes)
            ],
            label="Gini of returns",
            unit=_UNIT,
            seed=seed,
        )
        report.statistics["gini_of_returns"] = inequality.to_dict()
        body += (
            f"\nInequality: Gini of the {len(set(agents))} agents' episode returns (negative "
            "returns as 0), one per episode.\n\n" + estimate_table([inequality], label="quantity")
        )
    report.sections.append(("Returns per agent kind", body))


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
    episodes = _column(steps, "episode")
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
        step = _column(steps, "step")
        values = _column(steps, _GINI_COLUMN).astype(np.float64)
        final = [
            values[(episodes == e) & (step == step[episodes == e].max())][0]
            for e in np.unique(episodes)
        ]
        estimates.append(mean_interval(final, label="Gini at episode end", unit=_UNIT, seed=seed))
        report.statistics["gini_of_harvest"] = estimates[-1].to_dict()
    if _COOPERATION_COLUMN in steps.column_names:
        values = _column(steps, _COOPERATION_COLUMN).astype(np.float64)
        estimates.append(
            mean_interval(
                _per_episode(episodes, values), label="cooperation", unit=_UNIT, seed=seed
            )
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


def _profile_section(profile: dict[str, dict[str, Any]], seconds: float, report: Report) -> None:
    """Where the run's time and tokens went, per phase (from the summary's ``profile``).

    Phases come most seconds first, the total last.
    """
    phases = sorted(
        (item for item in profile.items() if item[0] != "total"),
        key=lambda item: (
            -(item[1]["model_seconds"] + item[1]["measure_seconds"] + item[1]["env_seconds"])
        ),
    )
    if "total" in profile:
        phases.append(("total", profile["total"]))
    rows = [
        f"| {label} | {p['calls']} | {p['generated_tokens']} | {p['prompt_tokens_read']} | "
        f"{number(p['model_seconds'], 2)} | {number(p['measure_seconds'], 2)} | "
        f"{number(p['env_seconds'], 2)} |"
        for label, p in phases
    ]
    report.sections.append(
        (
            "Profile",
            "| phase | model calls | tokens generated | prompt tokens read | s in model | "
            "s in measurement | s in env |\n|---|---|---|---|---|---|---|\n"
            + "\n".join(rows)
            + f"\n\nWall time of the run: {number(seconds, 2)} s (loading, prompts, records "
            "and the rest are the difference). Tokens whose prompt cache was shared are not "
            "read again and not counted; resumed episodes are not in the profile.\n",
        )
    )
    report.statistics["profile"] = profile


def build_report(run_dir: str | Path, *, seed: int = 0) -> Report:
    """Compute a run's statistics and draw its figures into ``<run>/report/``.

    Args:
        run_dir: A run folder with at least one finished episode.
        seed: Seed of the bootstrap over units (used where a run has many episodes).

    Returns:
        The report (not yet written; see :func:`write_report`).

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
    primary = declared_primary(folder.scenario_file)
    _entropy_section(folder.read("utterances"), figure_dir, report, primary, seed)
    _samples_section(folder.read("utterances"), report)
    _channel_section(folder, figure_dir, report)
    _information_section(folder.read("information"), report, seed)
    if steps.num_rows:
        _returns_section(steps, figure_dir, report, seed, _agent_groups(folder.scenario_file))
        _trajectory_section(steps, figure_dir, report)
        _env_section(steps, figure_dir, report, seed)
    if summary.get("profile"):
        _profile_section(summary["profile"], float(summary.get("seconds", math.nan)), report)
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
