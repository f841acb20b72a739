"""Mixed-effects models of utterance measures, fitted with statsmodels' ``MixedLM``.

The model of a run's utterances is, in R's notation,
``entropy ~ stress + mood + log(T) + length + (1 | episode/agent)``: the value state and the
sampling temperature as fixed effects, a random intercept per episode (the shared chat) and per
agent within it (the persona). It is fitted only where the design supports it; otherwise the
result carries a plain message saying why (too few groups, a singular fit), never numbers that
would mislead. A term that is a linear function of the others in the run (``log(T)`` is one
when the temperature follows the value state) is left out and named.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
from scipy import stats

from valuegym.analysis.statistics import FEW_UNITS, Estimate

__all__ = ["MixedModelFit", "fit_mixed_model", "within_between"]

#: Random-intercept variance, relative to the residual variance, below which a fit is singular.
_SINGULAR: Final = 1e-3
#: How a term is written in the formula of the report.
_SHOWN: Final = {"log_temperature": "log(T)"}


@dataclass(frozen=True)
class MixedModelFit:
    """A fitted (or declined) mixed model.

    Attributes:
        formula: The model in R's notation, as the report prints it.
        estimates: One per fixed effect kept (intercept left out); empty when not fitted.
        message: Why the model was not fitted, or ``""`` when it was.
        left_out: Terms left out because the run's design cannot separate them.
        n_rows: Rows used.
        n_groups: Top-level groups (e.g. episodes).
    """

    formula: str
    estimates: tuple[Estimate, ...] = ()
    message: str = ""
    left_out: tuple[str, ...] = field(default=())
    n_rows: int = 0
    n_groups: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The fit as plain data for ``statistics.json``."""
        return {
            "formula": self.formula,
            "message": self.message,
            "left_out": list(self.left_out),
            "n_rows": self.n_rows,
            "n_groups": self.n_groups,
            "estimates": {e.label: e.to_dict() for e in self.estimates},
        }


def _formula(response: str, terms: Sequence[str], group: str, nested: str | None) -> str:
    random = f"(1 | {group}/{nested})" if nested else f"(1 | {group})"
    shown = [_SHOWN.get(term, term) for term in terms]
    return f"{response} ~ {' + '.join([*shown, random])}"


def _separable_terms(data: Mapping[str, np.ndarray], terms: Sequence[str]) -> list[str]:
    """Terms in order, each kept only if it is not a linear function of those kept before."""
    kept: list[str] = []
    columns = [np.ones(len(next(iter(data.values()))))]
    for term in terms:
        trial = np.column_stack([*columns, data[term]])
        if (
            np.linalg.matrix_rank(trial, tol=1e-8 * max(1.0, float(np.abs(trial).max())))
            == len(columns) + 1
        ):
            kept.append(term)
            columns.append(data[term])
    return kept


def fit_mixed_model(
    data: Mapping[str, np.ndarray],
    response: str,
    terms: Sequence[str],
    *,
    group: str,
    nested: str | None = None,
    unit: str = "episodes",
    confidence: float = 0.95,
) -> MixedModelFit:
    """Fit ``response ~ terms + (1 | group/nested)`` by REML, where the design supports it.

    Intervals are Wald intervals with a t quantile on ``groups - 1`` degrees of freedom: the
    groups, not the rows, are the independent units, so the interval widens when they are few.

    Args:
        data: Column name -> values per row; must hold ``response``, ``terms``, ``group`` and
            ``nested``.
        response: The measure modelled.
        terms: Fixed-effect columns, in order of interest (later ones are left out first when
            the design cannot separate them).
        group: Column of the top-level random intercept (e.g. ``"episode"``).
        nested: Optional column of a random intercept nested in ``group`` (e.g. ``"agent"``).
        unit: Plural name of the ``group`` units, for the report.
        confidence: Nominal coverage of the intervals.

    Returns:
        The fit, or a declined fit whose ``message`` says why.
    """
    columns = [response, *terms]
    finite = np.all([np.isfinite(np.asarray(data[c], dtype=np.float64)) for c in columns], axis=0)
    used = {c: np.asarray(data[c], dtype=np.float64)[finite] for c in columns}
    groups = np.asarray(data[group])[finite]
    kept = _separable_terms(used, terms)
    left_out = tuple(_SHOWN.get(t, t) for t in terms if t not in kept)
    n_groups = int(np.unique(groups).size)
    declined = MixedModelFit(
        _formula(response, kept, group, nested), (), "", left_out, int(finite.sum()), n_groups
    )
    if n_groups < FEW_UNITS:
        return _decline(
            declined,
            f"not fitted: {n_groups} {unit}; a random intercept per {group} needs at least "
            f"{FEW_UNITS} to estimate its variance.",
        )
    if not kept:
        return _decline(declined, "not fitted: no term varies in this run.")
    # Imported here: statsmodels takes about a second to import, and only runs with enough
    # episodes get this far.
    import pandas as pd
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    frame = pd.DataFrame({**used, group: groups})
    variance_components = None
    if nested is not None:
        frame[nested] = np.asarray(data[nested])[finite].astype(str)
        variance_components = {nested: f"0 + C({nested})"}
    model = smf.mixedlm(
        f"{response} ~ {' + '.join(kept)}",
        frame,
        groups=frame[group],
        re_formula="1",
        vc_formula=variance_components,
    )
    with warnings.catch_warnings():
        # Boundary and retry warnings are judged below from the result itself.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            result = model.fit(reml=True, method=["lbfgs", "powell"])
            errors = np.asarray(result.bse_fe, dtype=np.float64)
        except (np.linalg.LinAlgError, ValueError) as error:
            return _decline(declined, f"not fitted: {error}.")
    if not result.converged:
        return _decline(declined, "not fitted: the likelihood optimisation did not converge.")
    if not np.all(np.isfinite(errors)):
        return _decline(
            declined, "not fitted: the terms are too nearly collinear for standard errors."
        )
    variances = [float(np.ravel(result.cov_re)[0]), *np.atleast_1d(result.vcomp).tolist()]
    # The optimiser stops near, not on, the boundary: a variance under a thousandth of the
    # residual one (a standard deviation under 3% of it) counts as 0.
    if min(variances) <= _SINGULAR * float(result.scale):
        return _decline(
            declined,
            "singular fit: a random-intercept variance is estimated at (nearly) 0, so the "
            "model cannot tell its groups apart; its numbers are not reported.",
        )
    quantile = float(stats.t.ppf(0.5 + confidence / 2, n_groups - 1))
    estimates = []
    for term in kept:
        value, spread = float(result.fe_params[term]), float(errors[kept.index(term) + 1])
        p_value = float(2 * stats.t.sf(abs(value) / spread, n_groups - 1))
        estimates.append(
            Estimate(
                _SHOWN.get(term, term),
                value,
                value - quantile * spread,
                value + quantile * spread,
                p_value,
                n_groups,
                unit,
                "mixed model (Wald, t)",
                confidence,
            )
        )
    return replace(declined, estimates=tuple(estimates))


def within_between(
    values: np.ndarray, episodes: np.ndarray, agents: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Split a predictor into its deviation from each agent's mean in the episode, and that mean.

    A random intercept assumes the persona is unrelated to the predictors; a calm and a
    swamped persona break that. Giving the model the agent's mean as a term of its own
    (Mundlak 1978) keeps the within-agent coefficient free of the persona.

    Args:
        values: The predictor per row (e.g. stress).
        episodes: The episode of each row.
        agents: The agent of each row.

    Returns:
        ``(within, between)``, each shaped like ``values``; they add up to ``values``.
    """
    keys = np.unique(np.stack([episodes.astype(str), agents]), axis=1, return_inverse=True)[1]
    keys = np.ravel(keys)
    means = np.bincount(keys, values) / np.bincount(keys)
    return values - means[keys], means[keys]


def _decline(fit: MixedModelFit, message: str) -> MixedModelFit:
    return replace(fit, estimates=(), message=message)
