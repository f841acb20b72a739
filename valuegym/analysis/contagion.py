"""What listeners made of what was said, and the designed intervention's contagion contrasts.

Two report sections, for runs whose listeners appraise (``appraisals`` records) and whose
scenario replaced a message (``interventions`` records):

- **Appraisal**: per listener entry, how many messages it read, the share that repeated an
  earlier ask in meaning, their judged valence, surprisal and surprise input, and its stress
  over time (a figure, mean over episodes with a 95% t band over episodes). Every number is a
  mean of per-episode means, its interval over episodes.
- **Contagion**: each variant of the replaced message against the reference (the recorded
  message, or a named variant) within each episode: the listener's appraisal of it, its stress
  change on that step, its stress at its next turn and what it said then. One number per
  episode and contrast; intervals over episodes; the variants x measures form one family,
  Holm-corrected, each with its minimum detectable effect.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
from scipy import stats

from valuegym.analysis.document import Contrast, Report, contrast_table, number, order_contrasts
from valuegym.analysis.plots import plot_grouped_series
from valuegym.analysis.speech_report import UNIT, column_values, per_episode
from valuegym.analysis.statistics import Estimate, mean_interval
from valuegym.records import RunFolder

__all__ = ["CONTAGION_MEASURES", "add_appraisal_sections", "contagion_contrasts"]

#: What the contagion contrasts compare, per intervention row.
CONTAGION_MEASURES: Final = {
    "valence_input": "valence the listener took from the message",
    "surprise_input": "surprise the listener took from the message",
    "stress_change": "the listener's stress change on the message's step",
    "next_stress": "the listener's stress at its next turn",
    "next_mean_token_entropy": "mean token entropy of its next utterance",
    "next_length": "tokens of its next utterance",
}


def contagion_contrasts(
    rows: list[dict[str, Any]], reference: str, *, seed: int = 0
) -> list[Contrast]:
    """Each variant minus the reference, per episode, on every measure: one Holm family.

    Args:
        rows: ``interventions`` rows (all episodes).
        reference: The variant each is compared with (``"original"`` or a variant name).
        seed: Seed of the bootstrap over episodes.

    Returns:
        One contrast per (variant, measure) with a finite difference in some episode, named
        ``"<measure>: <variant> - <reference>"``.
    """
    by_episode: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        by_episode[int(row["episode"])][str(row["variant"])] = row
    variants = list(
        dict.fromkeys(str(row["variant"]) for row in rows if row["variant"] != reference)
    )
    estimates: dict[str, Estimate] = {}
    for measure in CONTAGION_MEASURES:
        for variant in variants:
            differences = [
                float(cells[variant][measure]) - float(cells[reference][measure])
                for cells in by_episode.values()
                if variant in cells and reference in cells
            ]
            if not np.isfinite(differences).any():
                continue
            name = f"{measure}: {variant} - {reference}"
            estimates[name] = mean_interval(differences, label=name, unit=UNIT, seed=seed)
    return order_contrasts(estimates, [])


def _listener_table(appraisals: pa.Table, seed: int) -> tuple[str, dict[str, Any]]:
    entries = column_values(appraisals, "entry").astype(str)
    episodes = column_values(appraisals, "episode")
    addressed = column_values(appraisals, "addressed").astype(bool)
    asks = column_values(appraisals, "act").astype(str) == "ask"
    columns = {
        "repeat share of asks": (column_values(appraisals, "repeat").astype(float), asks),
        "judged valence": (column_values(appraisals, "judged_valence").astype(float), None),
        "surprisal per word": (
            column_values(appraisals, "surprisal_per_word").astype(float),
            None,
        ),
        "surprise input": (column_values(appraisals, "surprise_input").astype(float), None),
        "stress change": (
            column_values(appraisals, "stress_after").astype(float)
            - column_values(appraisals, "stress_before").astype(float),
            None,
        ),
    }
    lines = [
        "| listener | messages | " + " | ".join(columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    statistics: dict[str, Any] = {}
    for entry in dict.fromkeys(entries.tolist()):
        mask = (entries == entry) & addressed
        cells = []
        statistics[entry] = {"messages": int(mask.sum())}
        for label, (values, extra) in columns.items():
            keep = mask if extra is None else mask & extra
            if not np.isfinite(values[keep]).any():
                cells.append("–")
                continue
            estimate = mean_interval(
                per_episode(episodes[keep], values[keep]), label=label, unit=UNIT, seed=seed
            )
            statistics[entry][label] = estimate.to_dict()
            interval = (
                ""
                if estimate.pilot or not math.isfinite(estimate.low)
                else f" [{number(estimate.low, 2)}, {number(estimate.high, 2)}]"
            )
            cells.append(f"{number(estimate.value, 2)}{interval}")
        lines.append(f"| {entry} | {int(mask.sum())} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n", statistics


def _stress_figure(
    steps: pa.Table, listeners: list[str], figure_dir: Path
) -> tuple[Path, dict[str, Any]]:
    """Each listener entry's stress per step: mean over episodes, with a band over episodes."""
    entries = column_values(steps, "entry").astype(str)
    episodes = column_values(steps, "episode")
    step = column_values(steps, "step")
    stress = column_values(steps, "stress").astype(float)
    axis = np.unique(step)
    series: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    final: dict[str, Any] = {}
    for entry in listeners:
        mask = entries == entry
        # One number per episode and step (the mean over the entry's agents), then over episodes.
        per_step = np.array(
            [
                [np.nanmean(stress[mask & (episodes == e) & (step == s)]) for s in axis]
                for e in np.unique(episodes[mask])
            ]
        )
        mean = np.nanmean(per_step, axis=0)
        n = per_step.shape[0]
        half = (
            stats.t.ppf(0.975, n - 1) * np.nanstd(per_step, axis=0, ddof=1) / math.sqrt(n)
            if n > 1
            else np.zeros_like(mean)
        )
        series[entry] = (mean, mean - half, mean + half)
        final[entry] = float(mean[-1])
    path = plot_grouped_series(
        axis, series, figure_dir / "listener_stress.png", value_label="stress"
    )
    return path, final


def add_appraisal_sections(folder: RunFolder, figure_dir: Path, report: Report, seed: int) -> None:
    """Add the appraisal and contagion sections (nothing when no listener appraised).

    Args:
        folder: The run folder.
        figure_dir: Where figures go.
        report: The report to add to.
        seed: Seed of the bootstrap over units.
    """
    appraisals = folder.read("appraisals")
    if appraisals.num_rows == 0:
        return
    table, statistics = _listener_table(appraisals, seed)
    listeners = list(
        dict.fromkeys(
            column_values(appraisals, "entry")[column_values(appraisals, "addressed").astype(bool)]
            .astype(str)
            .tolist()
        )
    )
    figure, final = _stress_figure(folder.read("steps"), listeners, figure_dir)
    report.figures.append(figure)
    report.statistics["appraisal"] = {"by_listener": statistics, "final_stress": final}
    report.sections.append(
        (
            "Appraisal",
            "What each listener entry read when a message was addressed to it: the share of "
            "asks that repeated an earlier ask in its window in meaning (its clusterer), the "
            "judged valence, its surprisal per word and the surprise input it took, and its "
            "stress change on that step. Means of per-episode means; intervals over "
            f"episodes (none below 5).\n\n{table}\nStress over time per listener "
            "entry: listener_stress.png (mean over episodes, 95% t band over episodes).\n",
        )
    )
    interventions = folder.read("interventions")
    if interventions.num_rows == 0:
        return
    rows = interventions.to_pylist()
    reference = str(rows[0]["reference"])
    contrasts = contagion_contrasts(rows, reference, seed=seed)
    report.statistics["contagion"] = {c.name: c.to_dict() for c in contrasts}
    variants = list(dict.fromkeys(str(row["variant"]) for row in rows))
    texts = "\n".join(f"- **{variant}**: " + _example(rows, variant) for variant in variants)
    report.sections.append(
        (
            "Contagion (designed intervention)",
            f"In each episode one message to the listener was replaced and the episode "
            "re-simulated from its start with the same random numbers up to the listener's "
            f"next turn. Variants (first episode's text):\n\n{texts}\n\n"
            f"Each contrast is the variant minus **{reference}**, within each episode; the "
            "interval is over episodes.\n\n"
            + contrast_table(contrasts, family="variant x measure contrasts"),
        )
    )


def _example(rows: list[dict[str, Any]], variant: str) -> str:
    first = min((r for r in rows if r["variant"] == variant), key=lambda r: r["episode"])
    return f'"{first["text"]}" (reply: "{first["next_text"]}")'
