"""The speech part of a run's report: what LM agents said, measured against their value state.

Sections (as far as the run recorded them), designed before descriptive:

1. the declared design's estimands (:mod:`valuegym.analysis.design_report`), primary first;
2. the designed between-agent factors on every measure (exploratory family, Holm);
3. the counterfactual replay's channel contrasts (one family, Holm; the sampled entropy's
   temperature contrast labelled mechanical) and its checks: the reply shift between stated
   levels (manipulation) and the negative control (:mod:`valuegym.analysis.channels`);
4. descriptive, observational slopes of each measure on stress and mood, and a mixed model
   with crossed random intercepts (episode, agent);
5. mutual information; a few utterances.

Every interval is over episodes; below five episodes an estimate is a pilot and shows none.
:func:`add_speech_sections` adds the sections to a :class:`~valuegym.analysis.document.Report`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa

from valuegym.analysis.channels import (
    channel_contrasts,
    manipulation_check,
    placebo_check,
)
from valuegym.analysis.confounds import temperature_confounds
from valuegym.analysis.design_report import cap_share, design_estimates, run_rows
from valuegym.analysis.document import (
    Report,
    contrast_table,
    estimate_table,
    number,
    order_contrasts,
)
from valuegym.analysis.dose import add_dose_section
from valuegym.analysis.factors import factor_contrasts
from valuegym.analysis.models import fit_mixed_model, within_between
from valuegym.analysis.plots import plot_contrasts, plot_entropy_against_state
from valuegym.analysis.statistics import Estimate, mean_interval, unit_slopes
from valuegym.records import RunDesign, RunFolder
from valuegym.scenarios.design import REPLAY_MEASURES

__all__ = [
    "UNIT",
    "UTTERANCE_MEASURES",
    "add_speech_sections",
    "column_values",
    "per_episode",
]

#: Utterance columns studied against the value state, with their labels (none is mechanical
#: in the temperature: each is the model's own distribution at temperature 1, or meanings).
UTTERANCE_MEASURES: Final = {
    "mean_token_entropy": "mean token entropy at temperature 1",
    "mean_surprisal": "mean surprisal per token at temperature 1",
    "semantic_entropy": "semantic entropy (weighted)",
    "semantic_entropy_discrete": "semantic entropy (discrete)",
}
_STATES: Final = ("stress", "mood")
#: Fixed effects of the descriptive mixed model: within-agent deviations only (the between-agent
#: means are the designed factors' business, and length is a consequence of what is said).
_MODEL_TERMS: Final = ("stress_within", "mood_within", "log_temperature")
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


def _cap_note(rows: Sequence[dict[str, Any]], what: str) -> str:
    share = cap_share(rows)
    if not math.isfinite(share):
        return ""
    warning = (
        " (over 10%: these measure unfinished replies; raise max_new_tokens)"
        if (share > 0.10)
        else ""
    )
    return f"{share:.0%} of {what} stopped at the token cap{warning}."


def _design_section(folder: RunFolder, design: RunDesign, report: Report) -> None:
    if not design.declared:
        report.sections.append(
            (
                "Design",
                "The scenario declares no design (`design:` with its estimands), so nothing "
                "below is a designed test: every contrast is exploratory, corrected within "
                "its own family only.\n",
            )
        )
        return
    contrasts = design_estimates(folder, design)
    factors = "".join(
        f"- `{factor}`: "
        + "; ".join(f"{level} = {', '.join(entries)}" for level, entries in levels.items())
        + "\n"
        for factor, levels in design.factors.items()
    )
    lines = [
        f"Unit of replication: the {design.unit}; every interval is over {design.unit}s.",
        "",
    ]
    if factors:
        lines += ["Between-agent factors (levels and the agent entries at each):", "", factors]
    estimand_lines = "".join(
        f"- **{e['name']}**{' (primary)' if e.get('primary') else ''}: `{e['measure']}`, "
        f"{e['contrast']}"
        + (f" {e['levels'][0]} -> {e['levels'][1]}" if e.get("levels") else "")
        + (f" at {', '.join(f'{k}={v:g}' for k, v in e['at'].items())}" if e.get("at") else "")
        + f", from the {e['rows']} rows; smallest effect of interest {e['smallest_effect']:g}\n"
        for e in design.estimands
    )
    lines += ["Declared estimands:", "", estimand_lines]
    text = "\n".join(lines)
    if contrasts:
        text += "\n" + contrast_table(contrasts, family="declared estimands")
    else:
        text += "\nNo estimand's rows are recorded yet.\n"
    report.estimands = contrasts
    report.statistics["estimands"] = {c.name: c.to_dict() for c in contrasts}
    report.sections.append(("Design and estimands", text))


def _factor_section(folder: RunFolder, design: RunDesign, report: Report) -> None:
    """Every designed factor on every measure of the run's rows (an exploratory family)."""
    if not design.factors:
        return
    estimates: dict[str, Estimate] = {}
    for measure in (*UTTERANCE_MEASURES, "length", "return", "stress", "mood"):
        rows = run_rows(folder, measure)
        if not rows:
            continue
        for contrast in factor_contrasts(rows, design.factors, measure):
            if contrast.estimate.n_units:  # a measure the run did not take is left out
                estimates[f"{measure}: {contrast.channel} {contrast.levels}"] = contrast.estimate
    if not estimates:
        return
    contrasts = order_contrasts(estimates, ())
    report.statistics["factors"] = {c.name: c.to_dict() for c in contrasts}
    report.sections.append(
        (
            "Designed factors, every measure",
            "Each factor's high level minus its low level, from the run's own rows: per "
            "episode, the mean of each design cell (a combination of every factor's levels) "
            "first, then the cells of each level averaged with equal weight; the interval is "
            "over episodes. Agents that differ in a factor share each episode's chat, so the "
            "comparison is within episodes.\n\n"
            + contrast_table(contrasts, family="factor contrasts (exploratory)"),
        )
    )


def _entropy_section(utterances: pa.Table, figure_dir: Path, report: Report, seed: int) -> None:
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
    contrasts = order_contrasts(estimates, ())
    report.statistics["contrasts"] = {c.name: c.to_dict() for c in contrasts}
    report.statistics["utterances"] = utterances.num_rows
    reasons = (
        utterances.select(["finish_reason"]).to_pylist()
        if "finish_reason" in utterances.column_names
        else []
    )
    report.statistics["utterance_cap_share"] = cap_share(reasons)
    cap = _cap_note(reasons, "the utterances")
    report.sections.append(
        (
            "Descriptive: utterance measures against the value state",
            f"{utterances.num_rows} utterances in {np.unique(episodes).size} episodes from "
            f"{np.unique(agents).size} agents, measured in {unit}. {cap} Each `measure~state` "
            "is the slope of the measure on stress and mood together, fitted inside each "
            "episode after removing each agent's own mean, with the interval over episodes. "
            "**These slopes are observational, not designed contrasts:** what raises an "
            "agent's stress in a chat (repeated requests, say) also shapes what is said to "
            "it, so a slope can appear with no effect of the state on speech. Read the "
            "designed estimands and the replay's channel contrasts for causal questions.\n\n"
            + contrast_table(contrasts, family="descriptive slopes")
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


def _replay_counts(replay: list[dict[str, Any]]) -> str:
    """How many contexts were replayed per entry and episode (the stratification)."""
    contexts = {(r["episode"], r["step"], r["agent"]): r.get("entry", r["agent"]) for r in replay}
    per_entry = Counter(contexts.values())
    episodes = len({key[0] for key in contexts})
    return (
        f"{len(contexts)} recorded contexts from {episodes} episodes, keyed by (episode, step, "
        "agent); per agent entry: "
        + ", ".join(f"{entry} {count}" for entry, count in sorted(per_entry.items()))
    )


def _channel_section(folder: RunFolder, figure_dir: Path, report: Report) -> None:
    """The channels apart: paired within-context contrasts from a counterfactual replay."""
    replay = folder.read("replay").to_pylist()
    if not replay:
        return
    cells = len({row["cell"] for row in replay})
    parts = [
        f"{_replay_counts(replay)}. Each was regenerated under {cells} channel settings with "
        "the same random numbers in every setting, so each contrast is a difference *within* "
        "a context; the differences are averaged per episode and the interval is over "
        f"episodes. {_cap_note(replay, 'the replayed samples')} All the contrasts below form "
        "one family, Holm-corrected. The entropy of what is sampled rises with the "
        "temperature by construction: its temperature contrasts are marked *mechanical*; "
        "the per-token entropy at temperature 1 and the surprisal are not.\n"
    ]
    statistics: dict[str, Any] = {}
    estimates: dict[str, Estimate] = {}
    by_measure: dict[str, list[Any]] = {}
    for measure in REPLAY_MEASURES:
        contrasts = channel_contrasts(replay, measure)
        if not contrasts:
            continue
        by_measure[measure] = contrasts
        for c in contrasts:
            name = (
                f"{measure}: {c.channel} {c.levels}"
                + (f" at {c.at}" if c.at else "")
                + (" (mechanical)" if c.mechanical else "")
            )
            estimates[name] = c.estimate
    family = order_contrasts(estimates, ())
    for measure, contrasts in by_measure.items():
        rows = [c for c in family if c.name.startswith(f"{measure}: ")]
        statistics[measure] = [
            {**c.to_dict(), "name": c.name, "mechanical": m.mechanical}
            for c, m in zip(rows, contrasts, strict=True)
        ]
        parts.append(
            f"\n**{measure}** ({REPLAY_MEASURES[measure]}):\n\n"
            + contrast_table(
                rows,
                correction=f"Holm p: across all {len(family)} replay contrasts above and below "
                "(every measure), one family.",
            )
        )
    checks = []
    manipulation = manipulation_check(folder.read("manipulation").to_pylist())
    if manipulation is not None:
        checks.append(manipulation)
    placebo = placebo_check(replay, "mean_token_entropy")
    if placebo is not None:
        checks.append(placebo)
    if checks:
        statistics["checks"] = [c.to_dict() for c in checks]
        parts.append(
            "\n**Checks.** *Manipulation:* how far the stated stress moves the distribution of "
            "replies: the K samples under the lowest and the highest stated stress are each "
            "scored under both prompts, and the Jensen-Shannon divergence between the two "
            "reply distributions is estimated from those scores (0 exactly when the stated "
            "level changes nothing; copying a word of the prompt cannot make it positive "
            "without changing what is said). *Negative control:* in the placebo cells the "
            "prompt states a stress and mood drawn at random, independently of the agent's; "
            "the slope of the per-token entropy on the agent's actual stress there should hold "
            "zero whatever the prompt channel does.\n\n"
            + estimate_table([c.estimate for c in checks], label="check")
        )
    report.statistics["channels"] = statistics
    steered = any(c.channel == "steer_stress" for cs in by_measure.values() for c in cs)
    if steered:
        parts.append(
            "\nSteering cells add the stated coefficient times the stress direction inside the "
            "model; llama.cpp generates each steering level as its own batch, so its cells "
            "are compared across batch compositions (the same seeds in every cell).\n"
        )
    title = (
        "temperature, prompt, steering, interaction"
        if steered
        else ("temperature, prompt, interaction")
    )
    report.sections.append((f"Channels apart: {title}", "".join(parts)))
    shown = by_measure.get("mean_token_entropy", [])
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
                value_label="difference in mean token entropy at T = 1 (nats)",
            )
        )


def _in_span(columns: np.ndarray, vector: np.ndarray) -> bool:
    """Whether ``vector`` is (numerically) a linear combination of ``columns``."""
    finite = np.all(np.isfinite(columns), axis=1) & np.isfinite(vector)
    if finite.sum() <= columns.shape[1]:
        return True
    fitted, *_ = np.linalg.lstsq(columns[finite], vector[finite], rcond=None)
    residual = vector[finite] - columns[finite] @ fitted
    return bool(np.abs(residual).max() <= 1e-8 * max(1.0, float(np.abs(vector[finite]).max())))


def _model_section(utterances: pa.Table, measured: dict[str, np.ndarray], report: Report) -> None:
    episodes = column_values(utterances, "episode")
    agents = column_values(utterances, "agent").astype(str)
    data: dict[str, np.ndarray] = {"episode": episodes, "agent": agents}
    for state in _STATES:
        within, _ = within_between(
            column_values(utterances, state).astype(np.float64), episodes, agents
        )
        data[f"{state}_within"] = within
    data["log_temperature"] = (
        np.log(column_values(utterances, "sampling_temperature").astype(np.float64))
        if "sampling_temperature" in utterances.column_names
        else np.zeros(utterances.num_rows)
    )
    terms: tuple[str, ...] = _MODEL_TERMS
    states = np.column_stack(
        [np.ones(utterances.num_rows)]
        + [column_values(utterances, state).astype(np.float64) for state in _STATES]
    )
    follows_state = _in_span(states, data["log_temperature"])
    if follows_state:
        # The temperature is a function of the state: its within-agent part would share the
        # state's, so the model could not tell a state's effect from the temperature's.
        terms = tuple(term for term in terms if term != "log_temperature")
    parts, fits = [], {}
    for measure, values in measured.items():
        fit = fit_mixed_model(
            {**data, measure: values}, measure, terms, group="episode", crossed="agent"
        )
        fits[measure] = {**fit.to_dict(), "temperature_follows_state": follows_state}
        text = f"`{fit.formula}` ({fit.n_rows} utterances)"
        if follows_state:
            text += (
                "; log(T) left out: the speech temperature is a function of stress and mood "
                "here, so the state terms carry both channels"
            )
        if fit.left_out:
            text += (
                f"; left out: {', '.join(fit.left_out)} (a linear function of the other terms "
                "in this run, or constant)"
            )
        if fit.fallback:
            text += f". {fit.fallback[:1].upper()}{fit.fallback[1:]}"
        parts.append(
            text.rstrip(".")
            + ".\n\n"
            + (estimate_table(fit.estimates, label="term") if fit.estimates else fit.message + "\n")
        )
    report.statistics["mixed_models"] = fits
    report.sections.append(
        (
            "Descriptive: mixed models",
            "Crossed random intercepts per episode (the shared chat) and per agent (the "
            "persona, which recurs in every episode), fitted by REML with statsmodels' MixedLM. "
            "`_within` is a state's deviation from the agent's mean in the episode, so the "
            "coefficients cannot pick up a persona; no term that speech itself produces "
            "(such as its length) is a covariate. Like the slopes above these are "
            "observational. Wald intervals use a t quantile on episodes − 1 degrees of "
            "freedom.\n\n" + "\n".join(parts),
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
    folder: RunFolder, figure_dir: Path, report: Report, design: RunDesign, seed: int
) -> None:
    """Add the speech sections of a run to its report (nothing when no agent spoke).

    Args:
        folder: The run folder.
        figure_dir: Where figures go.
        report: The report to add to.
        design: The run's ``design.json``.
        seed: Seed of the bootstrap over units.
    """
    _design_section(folder, design, report)
    _factor_section(folder, design, report)
    utterances = folder.read("utterances")
    _channel_section(folder, figure_dir, report)
    add_dose_section(folder, figure_dir, report, seed)
    _entropy_section(utterances, figure_dir, report, seed)
    _information_section(folder.read("information"), report, seed)
    _samples_section(utterances, report)
