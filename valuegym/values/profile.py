"""Value profiles: what an agent values, how its satiation wears off, how mood and stress move.

A profile is plain data in frozen dataclasses and loads from the mapping YAML gives::

    values:
      apple: {weight: 1.0, curve: log, scale: 1.0, satiation_half_life: 5.0}
      pear:  {weight: 0.8, curve: isoelastic, eta: 2.0}
      rest:  {weight: 0.5, curve: saturating, scale: 2.0, stress_weight: 1.0}
      energy: {curve: homeostatic, setpoint: 5.0, satiation_half_life: 20.0}
    affect: {stress_baseline: 0.2, temperature_stress: 1.0}
    homeostasis: {power: 4.0, root: 2.0}

Keys left out take the defaults documented on each field. :meth:`ValueProfile.to_mapping`
writes every field back, so ``ValueProfile.from_mapping(p.to_mapping()) == p``. Invalid input
raises :class:`ProfileError` (a ``ValueError``) listing every problem with its dotted path,
e.g. ``values.apple.weight: must be > 0 (got -1.0)``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from valuegym.values.curves import CURVE_NAMES

__all__ = [
    "AffectParams",
    "HomeostasisParams",
    "ProfileError",
    "ValueProfile",
    "ValueSpec",
]

Check = Callable[[float], str | None]


def _positive(x: float) -> str | None:
    return None if x > 0 else f"must be > 0 (got {x})"


def _non_negative(x: float) -> str | None:
    return None if x >= 0 else f"must be >= 0 (got {x})"


def _unit_interval(x: float) -> str | None:
    return None if 0 <= x <= 1 else f"must be in [0, 1] (got {x})"


def _signed_unit_interval(x: float) -> str | None:
    return None if -1 <= x <= 1 else f"must be in [-1, 1] (got {x})"


def _above_minus_one(x: float) -> str | None:
    return None if x > -1 else f"must be > -1 (got {x})"


def _at_least_one(x: float) -> str | None:
    return None if x >= 1 else f"must be >= 1 (got {x})"


def _number(default: float, doc: str, check: Check | None = None) -> Any:
    return field(default=default, metadata={"doc": doc, "check": check})


class ProfileError(ValueError):
    """Invalid value-profile input; ``problems`` holds ``(dotted path, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("\n".join(f"{path}: {message}" for path, message in problems))


@dataclass(frozen=True)
class ValueSpec:
    """One value (a need or a good) of an agent.

    ``curve`` picks the utility curve (see :mod:`valuegym.values.curves`); ``scale`` belongs to
    the separable curves, ``eta`` to ``isoelastic`` only, ``setpoint`` to ``homeostatic`` only.
    The modulation coefficients shift the effective weight
    ``w_eff = weight * exp(mood_weight * mood + stress_weight * stress)`` and the curvature,
    multiplied by ``1 + stress_curvature * stress``.
    """

    name: str
    weight: float = _number(1.0, "Base importance of the value, > 0.", _positive)
    curve: str = field(default="log", metadata={"doc": f"One of {CURVE_NAMES}."})
    scale: float = _number(1.0, "Stock scale c of a separable curve, > 0.", _positive)
    eta: float = _number(1.0, "Isoelastic curvature, > 0 (1 = log).", _positive)
    setpoint: float = _number(1.0, "Homeostatic set point h*, > 0.", _positive)
    satiation_half_life: float = _number(
        10.0, "Steps for the stock (satiation) to halve without consumption, > 0.", _positive
    )
    mood_weight: float = _number(0.0, "Log-weight change per unit of mood.")
    stress_weight: float = _number(0.0, "Log-weight change per unit of stress.")
    stress_curvature: float = _number(
        0.0,
        "Relative curvature increase at full stress, > -1 (repetition hurts more).",
        _above_minus_one,
    )
    initial_expectation: float = _number(0.0, "Expected utility of consuming it, at the start.")

    @property
    def curve_parameters(self) -> tuple[str, ...]:
        """The curve-specific fields that apply to this value's curve."""
        return _CURVE_PARAMETERS[self.curve]


@dataclass(frozen=True)
class AffectParams:
    """How one agent's mood, stress, learning and temperature move.

    Mood moves toward ``tanh((surprise + valence) / surprise_scale)`` by ``mood_rate`` on every
    step with an event and relaxes toward ``mood_baseline`` with ``mood_half_life``. Stress rises
    by ``(1 - stress) * (1 - exp(-stress_sensitivity * load))``, falls by
    ``stress * (1 - exp(-rest_recovery * rest))`` and relaxes toward ``stress_baseline`` with
    ``stress_half_life``; ``load`` includes ``drive_load`` times the homeostatic drive (unmet
    needs). Expected utility learns with rate ``min(1, learning_rate * (1 + surprise_gate *
    |delta|))`` (the surprise gate; capped at 1 so a large surprise cannot overshoot). The
    decision temperature is ``base_temperature * exp(temperature_stress * stress +
    temperature_mood * mood)``. Mood and stress start at their baselines.
    """

    mood_baseline: float = _number(
        0.0, "Mood the agent relaxes to, in [-1, 1].", _signed_unit_interval
    )
    mood_rate: float = _number(
        0.3, "Fraction of the way mood moves toward an event's valence, in [0, 1].", _unit_interval
    )
    surprise_scale: float = _number(1.0, "Surprise that moves mood by tanh(1), > 0.", _positive)
    mood_half_life: float = _number(
        20.0, "Steps for mood's distance to baseline to halve, > 0.", _positive
    )
    stress_baseline: float = _number(0.1, "Stress the agent relaxes to, in [0, 1].", _unit_interval)
    stress_sensitivity: float = _number(0.3, "Stress rise per unit of load, >= 0.", _non_negative)
    rest_recovery: float = _number(0.5, "Stress fall per unit of rest, >= 0.", _non_negative)
    stress_half_life: float = _number(
        30.0, "Steps for stress's distance to baseline to halve, > 0.", _positive
    )
    drive_load: float = _number(0.01, "Load per unit of homeostatic drive, >= 0.", _non_negative)
    learning_rate: float = _number(
        0.1, "Base rate of learning expected utility, in [0, 1].", _unit_interval
    )
    surprise_gate: float = _number(
        1.0, "How much |surprise| speeds learning (kappa), >= 0.", _non_negative
    )
    base_temperature: float = _number(
        1.0, "Temperature T0 at zero mood and stress, > 0.", _positive
    )
    temperature_stress: float = _number(0.7, "a_stress: log-temperature change per unit stress.")
    temperature_mood: float = _number(-0.3, "a_mood: log-temperature change per unit mood.")


@dataclass(frozen=True)
class HomeostasisParams:
    """Exponents of the homeostatic drive ``D(h) = (sum_k w_k |h*_k - h_k|^n)^(1/m)``."""

    power: float = _number(4.0, "The exponent n; must exceed root.")
    root: float = _number(2.0, "The root m, >= 1.", _at_least_one)


@dataclass(frozen=True)
class ValueProfile:
    """Everything one agent values and how its affect moves; one row of a value store.

    Args:
        values: The values in order; names are unique.
        affect: Mood, stress, learning and temperature parameters.
        homeostasis: Exponents of the homeostatic drive (used by ``homeostatic`` values).
    """

    values: tuple[ValueSpec, ...]
    affect: AffectParams = AffectParams()
    homeostasis: HomeostasisParams = HomeostasisParams()

    def __post_init__(self) -> None:
        problems = _check_profile(self.values, self.affect, self.homeostasis)
        if problems:
            raise ProfileError(problems)

    @property
    def value_names(self) -> tuple[str, ...]:
        """Names of the values, in order."""
        return tuple(spec.name for spec in self.values)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> ValueProfile:
        """Build a profile from plain data (as a YAML loader gives it).

        Args:
            mapping: With a ``values`` mapping of name to fields and optional ``affect`` and
                ``homeostasis`` mappings.

        Returns:
            The validated profile.

        Raises:
            ProfileError: Listing every problem with its dotted path.
        """
        if not isinstance(mapping, Mapping):
            raise ProfileError([("", f"must be a mapping (got {type(mapping).__name__})")])
        problems: list[tuple[str, str]] = [
            (str(key), _unknown_section(str(key)))
            for key in mapping
            if key not in ("values", "affect", "homeostasis")
        ]
        raw_values = mapping.get("values")
        specs: list[ValueSpec] = []
        if not isinstance(raw_values, Mapping) or not raw_values:
            problems.append(("values", "must be a non-empty mapping of value name to fields"))
        else:
            for name, raw in raw_values.items():
                spec = _build(ValueSpec, raw, f"values.{name}", problems, name=str(name))
                if spec is not None:
                    specs.append(spec)
        affect = _build(AffectParams, mapping.get("affect", {}), "affect", problems)
        homeostasis = _build(
            HomeostasisParams, mapping.get("homeostasis", {}), "homeostasis", problems
        )
        if affect is not None and homeostasis is not None and specs:
            problems.extend(_check_profile(tuple(specs), affect, homeostasis))
        if problems:
            raise ProfileError(problems)
        assert affect is not None
        assert homeostasis is not None
        return cls(values=tuple(specs), affect=affect, homeostasis=homeostasis)

    @classmethod
    def merged(
        cls,
        default: ValueProfile,
        *,
        values: Mapping[str, Any] | None = None,
        affect: Mapping[str, Any] | None = None,
        homeostasis: Mapping[str, Any] | None = None,
    ) -> ValueProfile:
        """An agent's own profile sections over an env's default profile.

        With ``values`` the agent brings its own values and the default is not used (its
        ``affect`` and ``homeostasis`` are the agent's, over the dataclass defaults); without,
        the agent keeps the env's values and its ``affect`` and ``homeostasis`` entries
        replace the default's entry by entry. Scenario validation and the population builder
        both merge through here.

        Args:
            default: The env's default profile.
            values: The agent's values (name to fields), or ``None`` for the env's.
            affect: The agent's affect entries.
            homeostasis: The agent's homeostasis entries.

        Returns:
            The validated profile.

        Raises:
            ProfileError: Listing every problem with its dotted path.
        """
        if values is not None:
            mapping = {"values": values, "affect": affect or {}, "homeostasis": homeostasis or {}}
        else:
            base = default.to_mapping()
            mapping = {
                "values": base["values"],
                "affect": {**base["affect"], **(affect or {})},
                "homeostasis": {**base["homeostasis"], **(homeostasis or {})},
            }
        return cls.from_mapping(mapping)

    def to_mapping(self) -> dict[str, Any]:
        """Plain data that :meth:`from_mapping` turns back into an equal profile."""
        values = {}
        for spec in self.values:
            entry: dict[str, Any] = {"weight": spec.weight, "curve": spec.curve}
            entry.update({key: getattr(spec, key) for key in spec.curve_parameters})
            for f in fields(ValueSpec):
                if f.name not in ("name", "weight", "curve", "scale", "eta", "setpoint"):
                    entry[f.name] = getattr(spec, f.name)
            values[spec.name] = entry
        return {
            "values": values,
            "affect": {f.name: getattr(self.affect, f.name) for f in fields(AffectParams)},
            "homeostasis": {
                f.name: getattr(self.homeostasis, f.name) for f in fields(HomeostasisParams)
            },
        }


T = TypeVar("T")


def _unknown_section(key: str) -> str:
    sections = ("values", "affect", "homeostasis")
    close = difflib.get_close_matches(key, sections, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key ({hint}expected values, affect, homeostasis)"


def _build(
    cls: type[T], raw: Any, path: str, problems: list[tuple[str, str]], **fixed: Any
) -> T | None:
    """Build ``cls`` from the well-typed entries of ``raw``, recording type problems by path.

    Range checks are left to :func:`_check_profile`, so one pass reports every problem.
    """
    if not isinstance(raw, Mapping):
        problems.append((path, f"must be a mapping (got {type(raw).__name__})"))
        return None
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = dict(fixed)
    for key, value in raw.items():
        key_path = f"{path}.{key}"
        if key not in known or key in fixed:
            settable = [name for name in known if name not in fixed]
            close = difflib.get_close_matches(str(key), settable, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(
                (key_path, f"unknown key ({hint}expected one of: {', '.join(settable)})")
            )
        elif key == "curve":
            if isinstance(value, str):
                kwargs[key] = value
            else:
                problems.append((key_path, f"must be a string (got {value!r})"))
        elif isinstance(value, bool) or not isinstance(value, int | float):
            problems.append((key_path, f"must be a number (got {value!r})"))
        elif not math.isfinite(value):
            problems.append((key_path, f"must be finite (got {value})"))
        else:
            kwargs[key] = float(value)
    if cls is ValueSpec and kwargs.get("curve", "log") in CURVE_NAMES:
        allowed = _CURVE_PARAMETERS[kwargs.get("curve", "log")]
        problems.extend(
            (f"{path}.{key}", f"not a parameter of curve {kwargs.get('curve', 'log')!r}")
            for key in _CURVE_SPECIFIC
            if key in raw and key not in allowed
        )
    return cls(**kwargs)


_CURVE_PARAMETERS: dict[str, tuple[str, ...]] = {
    "log": ("scale",),
    "isoelastic": ("scale", "eta"),
    "saturating": ("scale",),
    "homeostatic": ("setpoint",),
}
_CURVE_SPECIFIC = ("scale", "eta", "setpoint")


def _check_profile(
    values: tuple[ValueSpec, ...], affect: AffectParams, homeostasis: HomeostasisParams
) -> list[tuple[str, str]]:
    """Every range and consistency problem of a profile's parts, by dotted path."""
    problems: list[tuple[str, str]] = []
    if not values:
        problems.append(("values", "must name at least one value"))
    names = [spec.name for spec in values]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append((f"values.{name}", "duplicate value name"))
    for spec in values:
        path = f"values.{spec.name}"
        if not isinstance(spec.name, str) or not spec.name:
            problems.append((path, "value name must be a non-empty string"))
        if spec.curve not in CURVE_NAMES:
            problems.append(
                (
                    f"{path}.curve",
                    f"unknown curve {spec.curve!r} (expected one of {', '.join(CURVE_NAMES)})",
                )
            )
        else:
            problems.extend(
                (f"{path}.{key}", f"not a parameter of curve {spec.curve!r}")
                for key in _CURVE_SPECIFIC
                if key not in _CURVE_PARAMETERS[spec.curve]
                and getattr(spec, key) != _DEFAULT_SPEC_FIELDS[key]
            )
        problems.extend(_field_problems(spec, path, skip=("name", "curve")))
    problems.extend(_field_problems(affect, "affect"))
    problems.extend(_field_problems(homeostasis, "homeostasis"))
    if not homeostasis.power > homeostasis.root:
        problems.append(
            ("homeostasis.power", f"must be > root ({homeostasis.root}) (got {homeostasis.power})")
        )
    return problems


_DEFAULT_SPEC_FIELDS = {f.name: f.default for f in fields(ValueSpec)}


def _field_problems(obj: Any, path: str, skip: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    problems = []
    for f in fields(obj):
        if f.name in skip:
            continue
        value = getattr(obj, f.name)
        check = f.metadata.get("check")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            problems.append((f"{path}.{f.name}", f"must be a finite number (got {value!r})"))
        elif check is not None and (message := check(value)) is not None:
            problems.append((f"{path}.{f.name}", message))
    return problems
