"""Figures for a paper draft, drawn with matplotlib's Agg canvas straight to PNG.

No pyplot: each function builds its own :class:`~matplotlib.figure.Figure`, so plotting is
free of global state and works without a display.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from valuegym.analysis.statistics import Estimate
from valuegym.records import write_bytes_atomic

__all__ = [
    "plot_contrasts",
    "plot_dose_response",
    "plot_entropy_against_state",
    "plot_group_means",
    "plot_grouped_series",
    "plot_parameter_effect",
    "plot_series",
    "plot_value_trajectories",
]

_SIZE: Final = (4.5, 3.2)  # inches: fits one column of a two-column paper
_DPI: Final = 200
_COLOURS: Final = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")


def _new_figure(size: tuple[float, float] = _SIZE, columns: int = 1) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=size, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = [figure.add_subplot(1, columns, index + 1) for index in range(columns)]
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=8)
    return figure, axes


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    write_bytes_atomic(buffer.getvalue(), path)
    return path


def _errors(estimates: Sequence[Estimate]) -> np.ndarray:
    """Error-bar lengths below and above each estimate (``nan`` where there is no interval).

    A pilot (fewer than five units) is drawn without an interval, as the report prints it.
    """
    return np.array(
        [
            [math.nan if e.pilot else e.value - e.low for e in estimates],
            [math.nan if e.pilot else e.high - e.value for e in estimates],
        ]
    )


def _slope_fan(ax: Axes, x: np.ndarray, y: np.ndarray, slope: Estimate, label: str) -> None:
    """The slope as a line through the data's centre, its interval as a shaded fan."""
    if not np.isfinite(slope.value):
        return
    centre_x, centre_y = float(np.nanmean(x)), float(np.nanmean(y))
    span = np.linspace(float(np.nanmin(x)), float(np.nanmax(x)), 50)
    ax.plot(
        span,
        centre_y + slope.value * (span - centre_x),
        color="black",
        linewidth=1.5,
        label=(
            f"{label} {slope.value:+.3f} (pilot: {slope.n_units} {slope.unit}, no interval)"
            if slope.pilot
            else f"{label} {slope.value:+.3f} [{slope.low:+.3f}, {slope.high:+.3f}]\n"
            f"({slope.confidence:.0%} CI, {slope.basis})"
        ),
    )
    if np.isfinite(slope.low) and not slope.pilot:
        edges = centre_y + np.outer([slope.low, slope.high], span - centre_x)
        ax.fill_between(
            span, edges.min(axis=0), edges.max(axis=0), color="black", alpha=0.12, linewidth=0
        )


def plot_entropy_against_state(
    state: np.ndarray,
    entropy: np.ndarray,
    slope: Estimate,
    path: Path,
    *,
    state_label: str,
    entropy_label: str,
    groups: np.ndarray | None = None,
) -> Path:
    """Scatter of an utterance measure against a value-state variable, with the report's slope.

    Args:
        state: The value-state variable per utterance (e.g. stress).
        entropy: The measure per utterance (e.g. mean token entropy, nats).
        slope: The slope the report prints, with its interval over units (drawn as a fan
            through the data's centre and written in the legend).
        path: The PNG to write.
        state_label: Axis label of the state.
        entropy_label: Axis label of the measure, with its unit.
        groups: Optional label per utterance (e.g. agent id) to colour points by.

    Returns:
        ``path``.
    """
    figure, (ax,) = _new_figure()
    labels = np.asarray(groups) if groups is not None else np.full(len(state), "")
    for index, label in enumerate(dict.fromkeys(labels.tolist())):
        chosen = labels == label
        ax.scatter(
            state[chosen],
            entropy[chosen],
            s=10,
            alpha=0.6,
            linewidths=0,
            color=_COLOURS[index % len(_COLOURS)],
            label=str(label) or None,
        )
    _slope_fan(ax, state, entropy, slope, "within-agent slope")
    ax.set_xlabel(state_label, fontsize=9)
    ax.set_ylabel(entropy_label, fontsize=9)
    ax.legend(fontsize=6, framealpha=0.85, edgecolor="none")
    return _save(figure, path)


def plot_value_trajectories(
    steps: np.ndarray,
    series: Mapping[str, Mapping[str, np.ndarray]],
    path: Path,
) -> Path:
    """Mood and stress (or any state variables) over time, one line per agent.

    Args:
        steps: The step numbers, shape ``(n_steps,)``.
        series: Variable name (a panel, e.g. ``"stress"``) -> agent id -> values over the
            steps (mean over episodes), each shaped like ``steps``.
        path: The PNG to write.

    Returns:
        ``path``.
    """
    figure, axes = _new_figure(size=(3.2 * len(series), 3.0), columns=len(series))
    for ax, (variable, per_agent) in zip(axes, series.items(), strict=True):
        for index, (agent, values) in enumerate(per_agent.items()):
            ax.plot(
                steps, values, linewidth=1.2, color=_COLOURS[index % len(_COLOURS)], label=agent
            )
        ax.set_xlabel("step", fontsize=9)
        ax.set_ylabel(variable, fontsize=9)
    if len(series) and len(next(iter(series.values()))) <= len(_COLOURS):
        axes[-1].legend(fontsize=7, frameon=False)
    return _save(figure, path)


def plot_group_means(estimates: Sequence[Estimate], path: Path, *, value_label: str) -> Path:
    """Means with the report's intervals as points with error bars, one per group.

    Args:
        estimates: One per group (e.g. agent kind), labelled by the group.
        path: The PNG to write.
        value_label: Axis label of the quantity (e.g. "episode return").

    Returns:
        ``path``.
    """
    figure, (ax,) = _new_figure()
    positions = np.arange(len(estimates))
    values = np.array([e.value for e in estimates])
    ax.errorbar(positions, values, yerr=_errors(estimates), fmt="o", color=_COLOURS[0], capsize=4)
    ax.set_xticks(positions, [e.label for e in estimates], fontsize=8)
    ax.set_xlim(-0.6, len(estimates) - 0.4)
    ax.set_ylabel(value_label, fontsize=9)
    if estimates:
        ax.set_title(f"95% intervals: {estimates[0].basis}", fontsize=7)
    return _save(figure, path)


def plot_contrasts(
    estimates: Sequence[Estimate], labels: Sequence[str], path: Path, *, value_label: str
) -> Path:
    """Paired contrasts as horizontal intervals around zero, one row each, labelled on the left.

    Args:
        estimates: One per contrast, with the report's intervals.
        labels: Short row labels (may hold a line break).
        path: The PNG to write.
        value_label: Axis label of the difference (e.g. "difference in sequence entropy").

    Returns:
        ``path``.
    """
    figure, (ax,) = _new_figure((6.4, 0.55 * len(estimates) + 1.2))
    positions = np.arange(len(estimates))[::-1]
    values = np.array([e.value for e in estimates])
    ax.axvline(0.0, color="0.6", linewidth=0.8)
    ax.errorbar(values, positions, xerr=_errors(estimates), fmt="o", color=_COLOURS[0], capsize=3)
    ax.set_yticks(positions, list(labels), fontsize=7)
    ax.set_xlabel(value_label, fontsize=9)
    if estimates:
        shown = (
            f"pilot over {estimates[0].n_units} {estimates[0].unit}: no intervals"
            if estimates[0].pilot
            else f"95% intervals, {estimates[0].basis}"
        )
        ax.set_title(f"within-context contrasts, per episode\n{shown}", fontsize=8)
    return _save(figure, path)


def plot_series(
    steps: np.ndarray,
    mean: np.ndarray,
    path: Path,
    *,
    value_label: str,
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
) -> Path:
    """One quantity over time (e.g. the shared resource), with an optional band.

    Args:
        steps: Step numbers.
        mean: The quantity per step (mean over episodes).
        path: The PNG to write.
        value_label: Axis label of the quantity.
        low: Lower edge of the band (e.g. the minimum over episodes).
        high: Upper edge of the band.

    Returns:
        ``path``.
    """
    figure, (ax,) = _new_figure()
    ax.plot(steps, mean, color=_COLOURS[0], linewidth=1.5)
    if low is not None and high is not None:
        ax.fill_between(steps, low, high, color=_COLOURS[0], alpha=0.2, linewidth=0)
    ax.set_xlabel("step", fontsize=9)
    ax.set_ylabel(value_label, fontsize=9)
    return _save(figure, path)


def plot_grouped_series(
    steps: np.ndarray,
    series: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    path: Path,
    *,
    value_label: str,
) -> Path:
    """One quantity over time for several groups, each a line with its band.

    Args:
        steps: Step numbers.
        series: Group label -> (mean, band low, band high) per step.
        path: The PNG to write.
        value_label: Axis label of the quantity.

    Returns:
        ``path``.
    """
    figure, (ax,) = _new_figure()
    for index, (label, (mean, low, high)) in enumerate(series.items()):
        colour = _COLOURS[index % len(_COLOURS)]
        ax.plot(steps, mean, color=colour, linewidth=1.5, label=label)
        ax.fill_between(steps, low, high, color=colour, alpha=0.2, linewidth=0)
    ax.set_xlabel("step", fontsize=9)
    ax.set_ylabel(value_label, fontsize=9)
    if len(series) <= len(_COLOURS):
        ax.legend(fontsize=7, frameon=False)
    return _save(figure, path)


def plot_parameter_effect(
    values: Sequence[object],
    estimates: Sequence[Estimate],
    path: Path,
    *,
    parameter_label: str,
    value_label: str,
    slope: Estimate | None = None,
) -> Path:
    """A measure against a swept parameter: level means with intervals, and the trend.

    Numeric parameter values are placed on a numeric axis (with the slope across levels, when
    given, as a line and a fan); others are categories.

    Args:
        values: The parameter's values, one per estimate.
        estimates: The measure's mean and interval at each value (over seeds).
        path: The PNG to write.
        parameter_label: Axis label of the parameter (e.g. its dotted path).
        value_label: Axis label of the measure.
        slope: The slope across levels with its interval over seeds, for numeric parameters.

    Returns:
        ``path``.
    """
    figure, (ax,) = _new_figure()
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    positions = np.asarray(values, dtype=float) if numeric else np.arange(len(values))
    means = np.array([e.value for e in estimates])
    ax.errorbar(
        positions,
        means,
        yerr=_errors(estimates),
        fmt="o",
        color=_COLOURS[0],
        capsize=4,
        label=f"level means (95% CI, {estimates[0].basis})" if estimates else None,
    )
    if numeric and slope is not None:
        _slope_fan(ax, positions, means, slope, "slope")
    else:
        ax.set_xticks(positions, [str(v) for v in values], fontsize=8)
    ax.set_xlabel(parameter_label, fontsize=9)
    ax.set_ylabel(value_label, fontsize=9)
    ax.legend(fontsize=6, framealpha=0.85, edgecolor="none")
    return _save(figure, path)


def plot_dose_response(
    strengths: Sequence[float],
    panels: Mapping[str, Sequence[Estimate]],
    path: Path,
    *,
    bounds: Mapping[str, float] | None = None,
) -> Path:
    """Quantities over steering strengths, one panel each, with intervals and bounds.

    Args:
        strengths: The strengths (x positions), one per estimate of every panel.
        panels: Panel title -> one estimate per strength.
        path: The PNG to write.
        bounds: Panel title -> a bound drawn as a dashed line.

    Returns:
        ``path``.
    """
    columns = min(3, max(1, len(panels)))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(3.0 * columns, 2.4 * rows), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    x = np.asarray(strengths, dtype=np.float64)
    for index, (title, estimates) in enumerate(panels.items()):
        ax = figure.add_subplot(rows, columns, index + 1)
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=7)
        values = np.array([e.value for e in estimates])
        ax.errorbar(x, values, yerr=_errors(estimates), fmt="o-", color=_COLOURS[0], capsize=3)
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        if bounds and title in bounds:
            ax.axhline(bounds[title], color=_COLOURS[1], linestyle="--", linewidth=1.0)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("steer_stress strength", fontsize=7)
    if panels:
        first = next(iter(panels.values()))[-1]  # strength 0 has no spread by construction
        shown = (
            f"pilot over {first.n_units} {first.unit}: no intervals"
            if first.pilot
            else f"95% intervals, {first.basis}"
        )
        figure.suptitle(f"steering dose-response ({shown})", fontsize=8)
    return _save(figure, path)
