"""Default value profiles of the envs' goods and rest, and resolving a ``profile`` argument."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from valuegym.values import ValueProfile

__all__ = [
    "GOOD_DEFAULTS",
    "REST_DEFAULTS",
    "default_profile",
    "resolve_profile",
    "resolve_profiles",
]

#: Value-spec fields of a consumable good: concave log utility whose satiation wears off within
#: a few steps, enjoyed more in a good mood and less under stress.
GOOD_DEFAULTS: Final[Mapping[str, Any]] = {
    "curve": "log",
    "scale": 1.0,
    "satiation_half_life": 4.0,
    "mood_weight": 0.3,
    "stress_weight": -1.0,
}

#: Value-spec fields of rest: a small saturating value whose weight grows steeply with stress.
REST_DEFAULTS: Final[Mapping[str, Any]] = {
    "weight": 0.25,
    "curve": "saturating",
    "scale": 1.0,
    "satiation_half_life": 3.0,
    "stress_weight": 2.5,
}


def default_profile(
    goods: Sequence[str] | Mapping[str, float],
    *,
    rest: bool = True,
    affect: Mapping[str, float] | None = None,
) -> ValueProfile:
    """A profile of consumable goods (with :data:`GOOD_DEFAULTS`) and, optionally, rest.

    Args:
        goods: Names of the goods, or a mapping of name to base weight (default weight 1).
        rest: Whether to add a ``rest`` value with :data:`REST_DEFAULTS`, last.
        affect: Overrides of :class:`~valuegym.values.AffectParams` fields.

    Returns:
        The validated profile; its values are the goods in order, then ``rest``.

    Raises:
        valuegym.values.ProfileError: When a weight or affect field is invalid.
        ValueError: When there are no goods or a good is called ``rest``.
    """
    weights = dict(goods) if isinstance(goods, Mapping) else dict.fromkeys(goods, 1.0)
    if not weights:
        raise ValueError("goods: need at least one good")
    if rest and "rest" in weights:
        raise ValueError("goods: 'rest' is added by default_profile; name the goods otherwise")
    values: dict[str, Any] = {name: {**GOOD_DEFAULTS, "weight": w} for name, w in weights.items()}
    if rest:
        values["rest"] = dict(REST_DEFAULTS)
    return ValueProfile.from_mapping({"values": values, "affect": dict(affect or {})})


def resolve_profile(
    profile: ValueProfile | Mapping[str, Any] | None,
    default: ValueProfile,
    *,
    required: Sequence[str] = (),
    where: str = "profile",
) -> ValueProfile:
    """The profile an env argument names: a profile, its plain-data mapping, or the default.

    Args:
        profile: The env's ``profile`` argument.
        default: Used when ``profile`` is ``None``.
        required: Value names the env needs.
        where: Name of the argument, for error messages.

    Returns:
        The profile.

    Raises:
        ValueError: When the profile is of the wrong type, invalid, or misses a required value.
    """
    if profile is None:
        return default
    if isinstance(profile, Mapping):
        try:
            profile = ValueProfile.from_mapping(profile)
        except ValueError as error:
            raise ValueError(f"{where}: invalid value profile:\n{error}") from error
    if not isinstance(profile, ValueProfile):
        raise ValueError(
            f"{where}: expected a ValueProfile or a mapping (got {type(profile).__name__})"
        )
    missing = [name for name in required if name not in profile.value_names]
    if missing:
        raise ValueError(f"{where}: missing values {missing} (has {list(profile.value_names)})")
    return profile


def resolve_profiles(
    profile: ValueProfile | Mapping[str, Any] | Sequence[ValueProfile | Mapping[str, Any]] | None,
    n_rows: int,
    default: ValueProfile,
    *,
    required: Sequence[str] = (),
    where: str = "profile",
) -> tuple[ValueProfile, ...]:
    """One profile per row: one profile shared by every row, or a sequence of one per row.

    Multi-agent envs take their ``profile`` argument through this, so a population can mix
    profiles; each entry is resolved by :func:`resolve_profile`.

    Args:
        profile: A profile, its mapping, ``None`` (the default), or a sequence of those.
        n_rows: Number of rows (agents).
        default: Used for ``None`` entries.
        required: Value names the env needs.
        where: Name of the argument, for error messages.

    Returns:
        ``n_rows`` profiles.

    Raises:
        ValueError: On a sequence of the wrong length or an invalid entry (named by index).
    """
    if profile is None or isinstance(profile, ValueProfile | Mapping):
        return (resolve_profile(profile, default, required=required, where=where),) * n_rows
    if isinstance(profile, str) or not isinstance(profile, Sequence):
        raise ValueError(
            f"{where}: expected a profile, a mapping or a sequence of them "
            f"(got {type(profile).__name__})"
        )
    if len(profile) != n_rows:
        raise ValueError(f"{where}: got {len(profile)} profiles for {n_rows} agents")
    return tuple(
        resolve_profile(entry, default, required=required, where=f"{where}[{index}]")
        for index, entry in enumerate(profile)
    )
