"""Utility curves: how much an agent gets from what it has had, and what one more unit is worth.

Every curve is concave and increasing in the stock ``s >= 0`` (how much of a value the agent
has had recently), so the marginal utility ``u'(s)`` is positive and decreasing: after five
apples the sixth is worth less.

=============  ==============================================  =====================================
curve          utility ``u(s)``                                marginal utility ``u'(s)``
=============  ==============================================  =====================================
``log``        ``log(1 + s/c)``                                ``(1/c) (1 + s/c)^-1``
``isoelastic`` ``((1 + s/c)^(1-eta) - 1) / (1 - eta)``          ``(1/c) (1 + s/c)^-eta``
``saturating`` ``1 - exp(-s/c)``                               ``(1/c) exp(-s/c)``
=============  ==============================================  =====================================

``c > 0`` is the curve's scale and ``eta > 0`` its curvature (CRRA; ``eta = 1`` is the log
case). Stress can steepen a curve (repetition hurts more): a steepening factor ``g >= 0``
multiplies the curvature, ``(1 + s/c)^-(eta g)`` and ``exp(-g s/c)``, while the first unit keeps
its marginal utility ``1/c``.

The homeostatic drive of Keramati & Gutkin (2014) is not separable across values: with internal
state ``h``, set point ``h*`` and exponents ``n > m >= 1``,
``D(h) = (sum_k w_k |h*_k - h_k|^n)^(1/m)`` and the reward of an outcome ``o`` is the drive
reduction ``D(h) - D(h + o)``. Its "marginal utility" is ``-dD/dh_k``, positive below the set
point and shrinking as ``h_k`` approaches it. (With all weights 1 this is exactly their drive;
the weights let mood and stress shift homeostatic needs like any other value.)

The scalar functions here are compiled with numba and are the only implementation of this
maths: the array methods of :class:`UtilityCurve` and :class:`HomeostaticDrive` and the value
store's kernels all call them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numba
import numpy as np

__all__ = [
    "CURVE_NAMES",
    "HomeostaticDrive",
    "UtilityCurve",
]

#: Curve names accepted in value profiles.
CURVE_NAMES: Final = ("log", "isoelastic", "saturating", "homeostatic")

# Integer codes of the two separable families inside the compiled kernels ("log" is the
# isoelastic family with eta = 1) and of the homeostatic drive.
ISOELASTIC: Final = 0
SATURATING: Final = 1
HOMEOSTATIC: Final = 2


@numba.njit(cache=True, error_model="numpy")
def curve_utility(family: int, scale: float, curvature: float, stock: float) -> float:
    """Utility of a separable curve at ``stock`` (``curvature`` = eta times steepening)."""
    x = stock / scale
    if family == SATURATING:
        return -math.expm1(-curvature * x) / curvature
    log_growth = math.log1p(x)
    if curvature == 1.0:
        return log_growth
    return math.expm1((1.0 - curvature) * log_growth) / (1.0 - curvature)


@numba.njit(cache=True, error_model="numpy")
def curve_gain(family: int, scale: float, curvature: float, stock: float, amount: float) -> float:
    """``u(stock + amount) - u(stock)`` of a separable curve, without the cancellation.

    The log curve's gain is ``log1p(amount / (scale + stock))`` and the saturating curve's
    ``exp(-g s/c) (1 - exp(-g a/c)) / g``: one or two functions where the difference of two
    utilities takes two or four, and exact where that difference loses digits.
    """
    if family == SATURATING:
        return (
            -math.exp(-curvature * stock / scale)
            * math.expm1(-curvature * amount / scale)
            / (curvature)
        )
    if curvature == 1.0:
        return math.log1p(amount / (scale + stock))
    return curve_utility(family, scale, curvature, stock + amount) - curve_utility(
        family, scale, curvature, stock
    )


@numba.njit(cache=True, error_model="numpy")
def curve_marginal_utility(family: int, scale: float, curvature: float, stock: float) -> float:
    """Analytic derivative of :func:`curve_utility` with respect to ``stock``."""
    if family == SATURATING:
        return math.exp(-curvature * stock / scale) / scale
    if curvature == 1.0:  # the log curve: spares an exp and a log
        return 1.0 / (scale + stock)
    return math.exp(-curvature * math.log1p(stock / scale)) / scale


@numba.njit(cache=True, error_model="numpy")
def drive_term(weight: float, setpoint: float, state: float, power: float) -> float:
    """One variable's term ``w |h* - h|^n`` of the homeostatic drive sum."""
    return weight * abs(setpoint - state) ** power


@numba.njit(cache=True, error_model="numpy")
def drive_marginal_utility(deviation: float, total: float, power: float, root: float) -> float:
    """``-dD/dh_k / w_k`` for deviation ``h*_k - h_k`` when ``sum w |h* - h|^n = total``."""
    if total == 0.0 or deviation == 0.0:
        return 0.0
    magnitude = (power / root) * total ** (1.0 / root - 1.0) * abs(deviation) ** (power - 1.0)
    return magnitude if deviation > 0.0 else -magnitude


@numba.njit(cache=True, error_model="numpy")
def _drive_rows(
    states: np.ndarray, setpoint: np.ndarray, weights: np.ndarray, power: float, root: float
) -> np.ndarray:
    drives = np.empty(states.shape[0])
    for i in range(states.shape[0]):
        total = 0.0
        for k in range(states.shape[1]):
            total += drive_term(weights[k], setpoint[k], states[i, k], power)
        drives[i] = total ** (1.0 / root)
    return drives


@numba.njit(cache=True, error_model="numpy")
def _drive_marginal_rows(
    states: np.ndarray, setpoint: np.ndarray, weights: np.ndarray, power: float, root: float
) -> np.ndarray:
    result = np.empty_like(states)
    for i in range(states.shape[0]):
        total = 0.0
        for k in range(states.shape[1]):
            total += drive_term(weights[k], setpoint[k], states[i, k], power)
        for k in range(states.shape[1]):
            result[i, k] = weights[k] * drive_marginal_utility(
                setpoint[k] - states[i, k], total, power, root
            )
    return result


def _utility_scalar(family: int, scale: float, curvature: float, stock: float) -> float:
    return curve_utility(family, scale, curvature, stock)


def _gain_scalar(family: int, scale: float, curvature: float, stock: float, amount: float) -> float:
    return curve_gain(family, scale, curvature, stock, amount)


def _marginal_scalar(family: int, scale: float, curvature: float, stock: float) -> float:
    return curve_marginal_utility(family, scale, curvature, stock)


_CURVE_ARGUMENTS: Final = "int64, float64, float64, float64"


@functools.cache
def _ufunc(scalar: Callable[..., float]) -> np.ufunc:
    """``scalar`` as a compiled numpy ufunc, made on first use.

    A ufunc with its signature given is compiled (or loaded from numba's cache) when it is
    made: ~70 ms each, which every ``import valuegym`` (a sweep worker, a CLI call) paid at
    import for ufuncs only the curve objects' array methods use.
    """
    arguments = f"{_CURVE_ARGUMENTS}, float64" if scalar is _gain_scalar else _CURVE_ARGUMENTS
    return numba.vectorize([f"float64({arguments})"], cache=True)(scalar)


@dataclass(frozen=True)
class UtilityCurve:
    """A separable concave utility curve.

    Args:
        kind: ``"log"``, ``"isoelastic"`` or ``"saturating"``.
        scale: The stock scale ``c > 0``: the first unit's marginal utility is ``1/c``.
        eta: Curvature of the isoelastic curve, ``> 0`` (``1`` is the log case). Must be 1
            for the other kinds, which have no such parameter.
    """

    kind: str = "log"
    scale: float = 1.0
    eta: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("log", "isoelastic", "saturating"):
            raise ValueError(
                f"curve: unknown separable curve {self.kind!r} "
                "(expected 'log', 'isoelastic' or 'saturating')"
            )
        if not self.scale > 0 or not math.isfinite(self.scale):
            raise ValueError(f"scale: must be > 0 (got {self.scale})")
        if not self.eta > 0 or not math.isfinite(self.eta):
            raise ValueError(f"eta: must be > 0 (got {self.eta})")
        if self.kind != "isoelastic" and self.eta != 1.0:
            raise ValueError(f"eta: not a parameter of curve {self.kind!r}")

    @property
    def family(self) -> int:
        """Integer code of the curve family inside the compiled kernels."""
        return SATURATING if self.kind == "saturating" else ISOELASTIC

    def utility(self, stock: np.ndarray | float, steepening: float = 1.0) -> np.ndarray:
        """Utility ``u(s)``, elementwise.

        Args:
            stock: Stock level(s) ``s >= 0``.
            steepening: Factor ``g > 0`` on the curvature (stress raises it above 1).

        Returns:
            ``u(s)`` with the shape of ``stock``.
        """
        return _ufunc(_utility_scalar)(self.family, self.scale, self.eta * steepening, stock)

    def marginal_utility(self, stock: np.ndarray | float, steepening: float = 1.0) -> np.ndarray:
        """Marginal utility ``u'(s)``, elementwise (analytic).

        Args:
            stock: Stock level(s) ``s >= 0``.
            steepening: Factor ``g > 0`` on the curvature.

        Returns:
            ``u'(s)`` with the shape of ``stock``.
        """
        return _ufunc(_marginal_scalar)(self.family, self.scale, self.eta * steepening, stock)

    def gain(self, stock: np.ndarray | float, amount: np.ndarray | float) -> np.ndarray:
        """Utility gained by consuming ``amount`` at ``stock``: ``u(s + a) - u(s)``."""
        return _ufunc(_gain_scalar)(self.family, self.scale, self.eta, stock, amount)


@dataclass(frozen=True)
class HomeostaticDrive:
    """The homeostatic drive ``D(h) = (sum_k w_k |h*_k - h_k|^n)^(1/m)`` (Keramati & Gutkin 2014).

    Args:
        setpoint: The set point ``h*`` per homeostatic variable.
        power: The exponent ``n``; must exceed ``root``.
        root: The root ``m >= 1``.
        weights: Per-variable weights ``w_k > 0``; all 1 by default (the original drive).
    """

    setpoint: Sequence[float]
    power: float = 4.0
    root: float = 2.0
    weights: Sequence[float] | None = None

    def __post_init__(self) -> None:
        _check_drive_exponents(self.power, self.root)
        if self.weights is not None and len(self.weights) != len(self.setpoint):
            raise ValueError(
                f"weights: length {len(self.weights)} does not match setpoint length "
                f"{len(self.setpoint)}"
            )

    def _rows(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        setpoint = np.asarray(self.setpoint, dtype=np.float64)
        weights = (
            np.ones_like(setpoint)
            if self.weights is None
            else np.asarray(self.weights, dtype=np.float64)
        )
        state = np.asarray(state, dtype=np.float64)
        if state.shape[-1] != setpoint.shape[0]:
            raise ValueError(
                f"state: last axis has {state.shape[-1]} entries, setpoint has {setpoint.shape[0]}"
            )
        return np.ascontiguousarray(state.reshape(-1, setpoint.shape[0])), setpoint, weights

    def drive(self, state: np.ndarray) -> np.ndarray:
        """``D(h)`` for internal states ``h`` of shape ``(..., n_variables)``."""
        rows, setpoint, weights = self._rows(state)
        drives = _drive_rows(rows, setpoint, weights, self.power, self.root)
        return drives.reshape(np.shape(state)[:-1])

    def reward(self, state: np.ndarray, outcome: np.ndarray) -> np.ndarray:
        """Drive reduction ``D(h) - D(h + outcome)``: the reward of an outcome."""
        return self.drive(state) - self.drive(np.add(state, outcome))

    def marginal_utility(self, state: np.ndarray) -> np.ndarray:
        """``-dD/dh_k`` for each variable: positive below the set point, negative above."""
        rows, setpoint, weights = self._rows(state)
        marginal = _drive_marginal_rows(rows, setpoint, weights, self.power, self.root)
        return marginal.reshape(np.shape(state))


def _check_drive_exponents(power: float, root: float) -> None:
    if not root >= 1 or not math.isfinite(root):
        raise ValueError(f"homeostasis.root: must be >= 1 (got {root})")
    if not power > root or not math.isfinite(power):
        raise ValueError(f"homeostasis.power: must be > root ({root}) (got {power})")
