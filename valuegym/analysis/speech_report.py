"""The speech part of a run's report: what LM agents said, measured against their value state.

Sections (as far as the run recorded them): utterance measures against stress and mood, with
intervals over episodes and the scenario's primary contrasts first; sample utterances; the
counterfactual replay's channel contrasts, placebo and manipulation checks
(:mod:`valuegym.analysis.channels`); a mixed model per measure; mutual information.
:func:`add_speech_sections` adds them to a :class:`~valuegym.analysis.document.Report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa

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
    estimate_table,
    number,
    order_contrasts,
)
from valuegym.analysis.models import fit_mixed_model, within_between
from valuegym.analysis.plots import plot_contrasts, plot_entropy_against_state
from valuegym.analysis.statistics import Estimate, mean_interval, unit_slopes
from valuegym.records import RunFolder

__all__ = [
    "UNIT",
    "UTTERANCE_MEASURES",
    "add_speech_sections",
    "column_values",
    "per_episode",
]

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
#: The independent unit of a run: every interval is over episodes.
UNIT: Final = "episodes"


def column_values(table: pa.Table, name: str) -> np.ndarray:
    """A record column as a numpy array."""
    return table.column(name).to_numpy(zero_copy_only=False)


def _unit(utterances: pa.Table) -> str:
    if "unit" in utterances.column_names and utterances.num_rows:
        return str(utterances.column("unit")[0].as_py())
    return "nats"


def per_episode(episodes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The mean of ``values`` in each episode: one number per independent unit."""
    return np.array([np.nanmean(values[episodes == e]) for e in np.unique(episodes)])


def _entropy_section(
    utterances: pa.Table, figure_dir: Path, report: Report, primary: list[str], seed: int
) -> None:
    if utterances.num_rows == 0:
        return
    unit = _unit(utterances)
    episodes, agents = (
        column_values(utterances, "episode"),
        column_values(utterances, "agent").astype(str),
    )
    states = {state: column_values(utterances, state).astype(np.float64) for state in _STATES}
    estimates: dict[str, Estimate] = {}
    measured = {}
    for measure, label in UTTERANCE_MEASURES.items():
        if measure not in utterances.column_names:
            continue
        values = column_values(utterances, measure).astype(np.float64)
        if not np.any(np.isfinite(values)):
            continue
        measured[measure] = values
        slopes = unit_slopes(states, values, episodes, within=agents)
        for state in _STATES:
            name = f"{measure}~{state}"
            estimates[name] = mean_interval(slopes[state], label=name, unit=UNIT, seed=seed)
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
    episodes = column_values(utterances, "episode")
    agents = column_values(utterances, "agent").astype(str)
    data: dict[str, np.ndarray] = {"episode": episodes, "agent": agents}
    for state in _STATES:
        within, between = within_between(
            column_values(utterances, state).astype(np.float64), episodes, agents
        )
        data[f"{state}_within"], data[f"{state}_between"] = within, between
    for column, term, transform in (
        ("sampling_temperature", "log_temperature", np.log),
        ("length", "length", np.asarray),
    ):
        data[term] = (
            transform(column_values(utterances, column).astype(np.float64))
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
    episodes = column_values(information, "episode")
    values = column_values(information, "mutual_information").astype(np.float64)
    estimate = mean_interval(per_episode(episodes, values), label="I(S;Y)", unit=UNIT, seed=seed)
    report.statistics["mutual_information"] = estimate.to_dict()
    own_error = ""
    if "standard_error" in information.column_names:
        errors = column_values(information, "standard_error").astype(np.float64)
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


def add_speech_sections(
    folder: RunFolder, figure_dir: Path, report: Report, primary: Sequence[str], seed: int
) -> None:
    """Add the speech sections of a run to its report (nothing when no agent spoke).

    Args:
        folder: The run folder.
        figure_dir: Where figures go.
        report: The report to add to.
        primary: The contrasts the scenario declared primary.
        seed: Seed of the bootstrap over units.
    """
    utterances = folder.read("utterances")
    _entropy_section(utterances, figure_dir, report, list(primary), seed)
    _samples_section(utterances, report)
    _channel_section(folder, figure_dir, report)
    _information_section(folder.read("information"), report, seed)
