"""Mixed-effects models of utterance measures, fitted with statsmodels' ``MixedLM``.

The model of a run's utterances is, in R's notation,
``entropy ~ stress_within + mood_within + log(T) + (1 | episode) + (1 | agent)``: the value
state (within each agent, see :func:`within_between`) and the sampling temperature as fixed
effects, a random intercept per episode (the shared chat) and one per agent (the persona).
The two are *crossed*: the same personas speak in every episode. Statsmodels fits crossed
intercepts as two variance components of one group that holds every row.

A variance component estimated at (nearly) 0 (under a thousandth of the residual variance, or
no likelier there than at 0) makes the fit singular; the model is then refitted
without it (ordinary least squares when neither is left) and the fit says so in
:attr:`MixedModelFit.fallback`. A term that is a linear function of the others in the run
(``log(T)`` is one when the temperature follows the value state) is left out and named. The
model is not fitted (a message says why) with fewer than
:data:`~valuegym.analysis.statistics.FEW_UNITS` episodes.

Degrees of freedom of the Wald intervals: the episode is the unit of replication, so the t
quantile is on ``episodes - 1`` degrees of freedom, whichever random intercepts remain. When
the episode intercept is dropped as singular (only the agent's left, or none), its variance
was *estimated* at 0 from a handful of episodes; that is not evidence that episodes are
independent rows, so the rule stays ``episodes - 1`` rather than the rows' residual degrees of
freedom (too liberal when the effect varies by episode) or ``agents - 1`` (a handful of
personas; the within-agent terms are not estimated between them).
``tests/analysis/test_simulation.py`` checks the coverage this gives with 6 episodes: about
95% for a within-agent slope that varies by episode (a t on the rows' degrees of freedom gives
about 90%), and about 99% (conservative) where the model is right, the episode intercept
dropped or not.
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
#: Restricted log-likelihood (nats) a variance component at 0 may lose and still count as 0.
_LIKELIHOOD_TOLERANCE: Final = 1e-3
#: How a term is written in the formula of the report.
_SHOWN: Final = {"log_temperature": "log(T)"}


@dataclass(frozen=True)
class MixedModelFit:
    """A fitted (or declined) mixed model.

    Attributes:
        formula: The model fitted, in R's notation, as the report prints it.
        estimates: One per fixed effect kept (intercept left out); empty when not fitted.
        message: Why the model was not fitted, or ``""`` when it was.
        left_out: Terms left out because the run's design cannot separate them.
        n_rows: Rows used.
        n_groups: Episodes (the units the intervals' degrees of freedom count).
        fallback: What was dropped from the model asked for and why (a variance component
            estimated at 0), or ``""`` when the model asked for was fitted.
        variances: Random-intercept variance per grouping factor fitted, and ``"residual"``.
    """

    formula: str
    estimates: tuple[Estimate, ...] = ()
    message: str = ""
    left_out: tuple[str, ...] = field(default=())
    n_rows: int = 0
    n_groups: int = 0
    fallback: str = ""
    variances: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The fit as plain data for ``statistics.json``."""
        return {
            "formula": self.formula,
            "message": self.message,
            "fallback": self.fallback,
            "left_out": list(self.left_out),
            "n_rows": self.n_rows,
            "n_groups": self.n_groups,
            "variances": dict(self.variances),
            "estimates": {e.label: e.to_dict() for e in self.estimates},
        }


def _formula(response: str, terms: Sequence[str], grouping: Sequence[str]) -> str:
    shown = [_SHOWN.get(term, term) for term in terms] or ["1"]
    return f"{response} ~ {' + '.join([*shown, *(f'(1 | {g})' for g in grouping)])}"


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


@dataclass(frozen=True)
class _Result:
    params: np.ndarray  # intercept first, then the terms
    errors: np.ndarray
    variances: dict[str, float]  # grouping factor -> variance, and "residual"
    singular: tuple[str, ...]  # grouping factors whose variance is (nearly) 0


def _fit(response: np.ndarray, design: np.ndarray, factors: Mapping[str, np.ndarray]) -> _Result:
    """REML fit with a crossed random intercept per factor; ordinary least squares without.

    Args:
        response: The measure per row.
        design: Fixed-effect columns, the intercept first.
        factors: Grouping factor -> group index (0, 1, ...) of each row.
    """
    if not factors:
        params, *_ = np.linalg.lstsq(design, response, rcond=None)
        residual = response - design @ params
        scale = float(residual @ residual) / (design.shape[0] - design.shape[1])
        errors = np.sqrt(scale * np.diag(np.linalg.inv(design.T @ design)))
        return _Result(params, errors, {"residual": scale}, ())
    from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec

    names = list(factors)
    # Crossed intercepts: one group holding every row, a variance component per factor, each
    # with one indicator column per level (the model is built from arrays: formulas cost
    # more than the fit).
    indicators = [np.eye(int(factors[n].max()) + 1)[factors[n]] for n in names]
    components = VCSpec(
        names,
        [
            [[f"{n}[{k}]" for k in range(m.shape[1])]]
            for n, m in zip(names, indicators, strict=True)
        ],
        [[m] for m in indicators],
    )
    model = MixedLM(
        response,
        design,
        groups=np.zeros(response.size),
        exog_re=np.zeros((response.size, 0)),
        exog_vc=components,
    )
    result = model.fit(reml=True, method=["bfgs", "lbfgs", "powell"])
    if not result.converged:
        raise ValueError("the likelihood optimisation did not converge")
    scale = float(result.scale)
    variances = {name: float(v) for name, v in zip(names, result.vcomp, strict=True)}
    # Near the boundary the optimiser can stop short of it: a component is (nearly) 0 when its
    # variance is under a thousandth of the residual one, or when the restricted likelihood
    # with it there is as high as at the estimate (the maximum is really on the boundary).
    # The probe sits a tenth of the threshold up: at exactly 0 the likelihood is ill-conditioned.
    fitted = result.params_object
    best = float(model.loglike(fitted, profile_fe=True))
    singular = []
    for index, name in enumerate(names):
        at_zero = fitted.copy()
        vcomp = np.array(at_zero.vcomp, dtype=np.float64)
        vcomp[index] = _SINGULAR / 10  # relative to the residual variance
        at_zero.vcomp = vcomp
        if variances[name] <= _SINGULAR * scale or (
            float(model.loglike(at_zero, profile_fe=True)) >= best - _LIKELIHOOD_TOLERANCE
        ):
            singular.append(name)
    variances["residual"] = scale
    n_fixed = design.shape[1]
    return _Result(
        np.asarray(result.fe_params)[:n_fixed],
        np.asarray(result.bse_fe)[:n_fixed],
        variances,
        tuple(singular),
    )


def fit_mixed_model(
    data: Mapping[str, np.ndarray],
    response: str,
    terms: Sequence[str],
    *,
    group: str,
    crossed: str | None = None,
    unit: str = "episodes",
    confidence: float = 0.95,
) -> MixedModelFit:
    """Fit ``response ~ terms + (1 | group) + (1 | crossed)`` by REML.

    A random intercept whose variance is estimated at (nearly) 0 is dropped and the model
    refitted (see :attr:`MixedModelFit.fallback`). Intervals are Wald intervals with a t
    quantile on ``groups - 1`` degrees of freedom, ``groups`` counting the values of
    ``group`` (the unit of replication), whichever intercepts remain (see the module).

    Args:
        data: Column name -> values per row; must hold ``response``, ``terms``, ``group`` and
            ``crossed``.
        response: The measure modelled.
        terms: Fixed-effect columns, in order of interest (later ones are left out first when
            the design cannot separate them).
        group: Column of the unit of replication, with a random intercept (``"episode"``).
        crossed: Optional column of a random intercept crossed with ``group`` (``"agent"``:
            the same agents recur in every episode).
        unit: Plural name of the ``group`` units, for the report.
        confidence: Nominal coverage of the intervals.

    Returns:
        The fit, or a declined fit whose ``message`` says why.
    """
    columns = [response, *terms]
    finite = np.all([np.isfinite(np.asarray(data[c], dtype=np.float64)) for c in columns], axis=0)
    used = {c: np.asarray(data[c], dtype=np.float64)[finite] for c in columns}
    grouping = [group, *([crossed] if crossed else [])]
    kept = _separable_terms(used, terms)
    left_out = tuple(_SHOWN.get(t, t) for t in terms if t not in kept)
    n_groups = int(np.unique(np.asarray(data[group])[finite]).size)
    declined = MixedModelFit(
        _formula(response, kept, grouping), (), "", left_out, int(finite.sum()), n_groups
    )
    if n_groups < FEW_UNITS:
        return _decline(
            declined,
            f"not fitted: {n_groups} {unit}; a random intercept per {group} needs at least "
            f"{FEW_UNITS} to estimate its variance.",
        )
    if not kept:
        return _decline(declined, "not fitted: no term varies in this run.")
    design = np.column_stack([np.ones(int(finite.sum())), *(used[t] for t in kept)])
    factors = {
        name: np.unique(np.asarray(data[name])[finite], return_inverse=True)[1].ravel()
        for name in grouping
    }
    # Imported here: statsmodels takes about a second to import, and only runs with enough
    # episodes get this far.
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, SingularMatrixWarning

    dropped: list[str] = []
    with warnings.catch_warnings():
        # Boundary and retry warnings are judged below from the result itself.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", SingularMatrixWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        while True:
            try:
                result = _fit(used[response], design, {g: factors[g] for g in grouping})
            except (np.linalg.LinAlgError, ValueError) as error:
                return _decline(declined, f"not fitted: {error}.")
            if not result.singular:
                break
            dropped.extend(result.singular)
            grouping = [g for g in grouping if g not in result.singular]
    if not np.all(np.isfinite(result.errors)) or np.any(result.errors <= 0):
        return _decline(
            declined, "not fitted: the terms are too nearly collinear for standard errors."
        )
    fallback = ""
    if dropped:
        asked = [group, *([crossed] if crossed else [])]
        names = " and ".join(sorted(dropped, key=asked.index))
        fallback = (
            f"the random-intercept variance of {names} was estimated at (nearly) 0 (a singular "
            "fit): refitted without "
            + ("it" if grouping else "random intercepts, by ordinary least squares")
            + f"; intervals keep {n_groups} - 1 degrees of freedom."
        )
    degrees = n_groups - 1
    quantile = float(stats.t.ppf(0.5 + confidence / 2, degrees))
    estimates = []
    for index, term in enumerate(kept, start=1):
        value, spread = float(result.params[index]), float(result.errors[index])
        estimates.append(
            Estimate(
                _SHOWN.get(term, term),
                value,
                value - quantile * spread,
                value + quantile * spread,
                float(2 * stats.t.sf(abs(value) / spread, degrees)),
                n_groups,
                unit,
                "mixed model (Wald, t)" if grouping else "least squares (Wald, t)",
                confidence,
            )
        )
    return replace(
        declined,
        formula=_formula(response, kept, grouping),
        estimates=tuple(estimates),
        fallback=fallback,
        variances=result.variances,
    )


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
