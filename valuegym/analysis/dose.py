"""The steering channel's dose-response, with its guards, from a replay's ``dose`` records.

Over the replay grid's ``steer_stress`` levels (the *strengths*, coefficients
``alpha (s - s0)`` of the stress direction), against strength 0, per episode:

* **the manipulation** (reply shift): the mean over a strength's replies of
  ``log p_steered(reply) - log p_unsteered(reply)``, both on the cell's own prompt: an estimate
  of the KL divergence of the steered from the unsteered reply distribution, in nats per reply.
  It is 0 at strength 0, and copying words of the prompt cannot make it positive, since both
  models read the same prompt;
* **the fluency cost**: the surprisal per token of the replies under the *unsteered* model
  (summed over the episode's replies, divided by their tokens) minus that of the strength-0
  replies; and the share of degenerate replies (:mod:`valuegym.measures.degenerate`);
* **each entropy measure** of the replay rows, minus its value at strength 0.

A strength's numbers average over the other channels' cells (the grid crosses every level, so
each strength sees the same mix). The episode is the unit: contexts of one episode share a
history, so every number is first averaged within its episode and the intervals are over
episodes. The tested contrasts (each strength against 0, for the shift, the cost and each
measure) form one family, Holm-corrected. The *default strength* is the largest strength such
that it and every smaller one keep the mean surprisal cost and the degenerate share within the
scenario's bounds; ``None`` when no strength above 0 does.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from valuegym.analysis.document import Report, contrast_table, number, order_contrasts
from valuegym.analysis.plots import plot_dose_response
from valuegym.analysis.statistics import Estimate, mean_interval
from valuegym.records import RunFolder
from valuegym.scenarios.design import REPLAY_MEASURES

__all__ = ["DoseLevel", "DoseResponse", "add_dose_section", "dose_response"]

_UNIT = "episodes"


@dataclass(frozen=True)
class DoseLevel:
    """One strength's numbers, each with its interval over episodes.

    Attributes:
        strength: The ``steer_stress`` coefficient.
        shift: Reply shift against the unsteered model (nats per reply).
        surprisal_cost: Surprisal per token under the unsteered model, minus strength 0's.
        degenerate: Share of degenerate replies.
        measures: Replay measure -> its difference from strength 0.
    """

    strength: float
    shift: Estimate
    surprisal_cost: Estimate
    degenerate: Estimate
    measures: Mapping[str, Estimate]

    def within(self, max_surprisal_cost: float, max_degenerate: float) -> bool:
        """Whether the mean cost and degenerate share stay within the bounds."""
        return bool(
            self.surprisal_cost.value <= max_surprisal_cost
            and self.degenerate.value <= max_degenerate
        )


@dataclass(frozen=True)
class DoseResponse:
    """The strengths in increasing size and the default strength they support.

    Attributes:
        levels: One per strength, strength 0 first.
        max_surprisal_cost: The bound on the surprisal cost (nats per token).
        max_degenerate: The bound on the degenerate share.
        chosen: The largest strength within the bounds (it and all smaller); ``None``: none.
    """

    levels: tuple[DoseLevel, ...]
    max_surprisal_cost: float
    max_degenerate: float
    chosen: float | None


def _by_episode(rows: Sequence[Mapping[str, Any]]) -> dict[float, dict[int, list[Any]]]:
    grouped: dict[float, dict[int, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        grouped[float(row["set_steer_stress"])][int(row["episode"])].append(row)
    return grouped


def _difference(
    values: Mapping[float, Mapping[int, float]], strength: float, label: str, seed: int
) -> Estimate:
    """Strength minus strength 0, per episode that has both, over episodes."""
    base = values[0.0]
    per_episode = [v - base[e] for e, v in sorted(values[strength].items()) if e in base]
    return mean_interval(per_episode, label=label, unit=_UNIT, seed=seed)


def dose_response(
    dose_rows: Sequence[Mapping[str, Any]],
    replay_rows: Sequence[Mapping[str, Any]],
    *,
    max_surprisal_cost: float = 0.5,
    max_degenerate: float = 0.05,
    seed: int = 0,
) -> DoseResponse | None:
    """The dose-response of a replay (``None`` without dose records or strength 0).

    Args:
        dose_rows: The ``dose`` records.
        replay_rows: The ``replay`` records (placebo rows are left out).
        max_surprisal_cost: The bound on the surprisal cost (nats per token).
        max_degenerate: The bound on the degenerate share.
        seed: Seed of the bootstrap over episodes.

    Returns:
        The strengths' numbers and the default strength.
    """
    dose = [row for row in dose_rows if math.isfinite(float(row["set_steer_stress"]))]
    grouped = _by_episode(dose)
    if 0.0 not in grouped or len(grouped) < 2:
        return None
    surprisal = {
        strength: {
            e: -sum(float(r["loglik_unsteered"]) for r in rs)
            / max(1, sum(int(r["length"]) for r in rs))
            for e, rs in episodes.items()
        }
        for strength, episodes in grouped.items()
    }
    replay = _by_episode(
        [r for r in replay_rows if not r["placebo"] and math.isfinite(r["set_steer_stress"])]
    )
    measures = {
        measure: {
            strength: {
                e: float(np.nanmean([float(r[measure]) for r in rs])) for e, rs in episodes.items()
            }
            for strength, episodes in replay.items()
        }
        for measure in REPLAY_MEASURES
    }
    levels = []
    for strength in sorted(grouped, key=lambda s: (abs(s), s)):
        episodes = grouped[strength]
        shifts = [
            float(np.mean([float(r["loglik_steered"]) - float(r["loglik_unsteered"]) for r in rs]))
            for _, rs in sorted(episodes.items())
        ]
        shares = [float(np.mean([bool(r["degenerate"]) for r in rs])) for _, rs in episodes.items()]
        levels.append(
            DoseLevel(
                strength,
                mean_interval(shifts, label=f"shift at {strength:g}", unit=_UNIT, seed=seed),
                _difference(surprisal, strength, f"surprisal cost at {strength:g}", seed),
                mean_interval(shares, label=f"degenerate at {strength:g}", unit=_UNIT, seed=seed),
                {
                    measure: _difference(values, strength, f"{measure} at {strength:g}", seed)
                    for measure, values in measures.items()
                    if strength in values and 0.0 in values
                },
            )
        )
    chosen = None
    for level in levels:
        if not level.within(max_surprisal_cost, max_degenerate):
            break
        chosen = level.strength if level.strength != 0.0 else chosen
    return DoseResponse(tuple(levels), max_surprisal_cost, max_degenerate, chosen)


def _verdict(result: DoseResponse) -> str:
    bounds = (
        f"a surprisal cost of at most {number(result.max_surprisal_cost, 2)} nats per token and "
        f"at most {100 * result.max_degenerate:g}% degenerate replies"
    )
    if result.chosen is None:
        return (
            f"**Default strength: none qualifies.** No strength above 0 keeps {bounds} (mean "
            "over episodes, it and every smaller strength)."
        )
    return (
        f"**Default strength: {result.chosen:g}**, the largest strength that keeps {bounds} "
        "(mean over episodes, it and every smaller strength). A coefficient is "
        "`strength * (s - center)`: an agent at the far end of the stress range "
        "(|s - center| = 0.5 with the default centre) reaches this coefficient at "
        f"`lm.steering.strength: {2 * result.chosen:g}`."
    )


def _bounds(folder: RunFolder) -> Mapping[str, Any] | None:
    """The replay grid's ``dose_response`` block, as ``replay.yaml`` keeps it."""
    spec_file = folder.root / "replay.yaml"
    if not spec_file.is_file():
        return None
    grid = yaml.safe_load(spec_file.read_text(encoding="utf-8")) or {}
    bounds = grid.get("dose_response")
    return bounds if isinstance(bounds, Mapping) else None


def add_dose_section(folder: RunFolder, figure_dir: Path, report: Report, seed: int = 0) -> None:
    """Add the dose-response section and figure (nothing without ``dose`` records).

    The bounds are the replay grid's ``dose_response`` block (``replay.yaml``).

    Args:
        folder: The run folder.
        figure_dir: Where the figure goes.
        report: The report to add to.
        seed: Seed of the bootstrap over episodes.
    """
    rows = folder.read("dose").to_pylist()
    bounds = _bounds(folder)
    if not rows or bounds is None:
        return
    result = dose_response(
        rows,
        folder.read("replay").to_pylist(),
        max_surprisal_cost=float(bounds["max_surprisal_cost"]),
        max_degenerate=float(bounds["max_degenerate"]),
        seed=seed,
    )
    if result is None:
        return
    steered = [level for level in result.levels if level.strength != 0.0]
    estimates: dict[str, Estimate] = {}
    for level in steered:
        estimates[f"reply shift at {level.strength:g} (nats/reply)"] = level.shift
        estimates[f"surprisal cost at {level.strength:g} (nats/token)"] = level.surprisal_cost
        for measure, estimate in level.measures.items():
            estimates[f"{measure} at {level.strength:g} minus 0"] = estimate
    family = order_contrasts(estimates, ())
    degenerate = "\n".join(
        f"| {level.strength:g} | {number(level.degenerate.value)} | "
        f"{number(level.surprisal_cost.value)} | "
        f"{'yes' if level.within(result.max_surprisal_cost, result.max_degenerate) else 'no'} |"
        for level in result.levels
    )
    contexts = len({row["context_id"] for row in rows})
    body = (
        f"Every non-placebo replay sample ({len(rows)} from {contexts} contexts in "
        f"{len({row['episode'] for row in rows})} episodes) is scored on its cell's prompt "
        "under the unsteered model and under its cell's steering. *Reply shift*: the mean of "
        "log p(steered) - log p(unsteered) over a strength's replies, an estimate of the KL "
        "divergence of the steered replies from the unsteered model's (0 at strength 0; "
        "copying prompt words cannot move it, as both models read the same prompt). *Surprisal "
        "cost*: the surprisal per token of a strength's replies under the unsteered model "
        "minus that of the strength-0 replies. *Degenerate*: empty, or at least half of the "
        "reply's word 3-grams repeat an earlier one. A strength's numbers average over the "
        "grid's other cells; each is averaged within its episode first, the interval is over "
        "episodes.\n\n| strength | degenerate share | surprisal cost (nats/token) | within "
        f"bounds |\n|---|---|---|---|\n{degenerate}\n\n{_verdict(result)}\n\n"
        + contrast_table(family, family="dose-response contrasts (each strength against 0)")
    )
    report.sections.append(("Steering dose-response", body))
    report.statistics["dose_response"] = {
        "chosen": result.chosen,
        "max_surprisal_cost": result.max_surprisal_cost,
        "max_degenerate": result.max_degenerate,
        "levels": [
            {
                "strength": level.strength,
                "shift": level.shift.to_dict(),
                "surprisal_cost": level.surprisal_cost.to_dict(),
                "degenerate": level.degenerate.to_dict(),
                "measures": {m: e.to_dict() for m, e in level.measures.items()},
            }
            for level in result.levels
        ],
        "contrasts": [{**c.to_dict(), "name": c.name} for c in family],
    }
    shown = ("mean_token_entropy", "mean_sampled_entropy", "sequence_entropy")
    report.figures.append(
        plot_dose_response(
            [level.strength for level in result.levels],
            {
                "reply shift (nats/reply)": [level.shift for level in result.levels],
                "surprisal cost (nats/token)": [level.surprisal_cost for level in result.levels],
                "degenerate share": [level.degenerate for level in result.levels],
                **{
                    f"{measure} minus 0": [level.measures[measure] for level in result.levels]
                    for measure in shown
                    if all(measure in level.measures for level in result.levels)
                },
            },
            figure_dir / "dose_response.png",
            bounds={
                "surprisal cost (nats/token)": result.max_surprisal_cost,
                "degenerate share": result.max_degenerate,
            },
        )
    )
