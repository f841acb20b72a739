import copy
import re

import pytest

from valuegym.values import AffectParams, ProfileError, ValueProfile, ValueSpec

FULL = {
    "values": {
        "apple": {
            "weight": 1.0,
            "curve": "log",
            "scale": 1.0,
            "satiation_half_life": 5.0,
            "mood_weight": 0.0,
            "stress_weight": 0.0,
            "stress_curvature": 0.0,
            "initial_expectation": 0.0,
        },
        "pear": {
            "weight": 0.8,
            "curve": "isoelastic",
            "scale": 2.0,
            "eta": 2.5,
            "satiation_half_life": 7.0,
            "mood_weight": 0.1,
            "stress_weight": -0.5,
            "stress_curvature": 1.0,
            "initial_expectation": 0.3,
        },
        "rest": {
            "weight": 0.5,
            "curve": "saturating",
            "scale": 2.0,
            "satiation_half_life": 3.0,
            "mood_weight": 0.0,
            "stress_weight": 1.5,
            "stress_curvature": 0.0,
            "initial_expectation": 0.0,
        },
        "energy": {
            "weight": 1.0,
            "curve": "homeostatic",
            "setpoint": 5.0,
            "satiation_half_life": 20.0,
            "mood_weight": 0.0,
            "stress_weight": 0.0,
            "stress_curvature": 0.5,
            "initial_expectation": 0.0,
        },
    },
    "affect": {
        "mood_baseline": 0.1,
        "mood_rate": 0.4,
        "surprise_scale": 2.0,
        "mood_half_life": 15.0,
        "stress_baseline": 0.3,
        "stress_sensitivity": 0.2,
        "rest_recovery": 0.6,
        "stress_half_life": 25.0,
        "drive_load": 0.05,
        "learning_rate": 0.2,
        "surprise_gate": 0.5,
        "base_temperature": 0.8,
        "temperature_stress": 1.2,
        "temperature_mood": -0.4,
    },
    "homeostasis": {"power": 3.0, "root": 1.5},
}


def test_full_mapping_round_trips_exactly():
    profile = ValueProfile.from_mapping(copy.deepcopy(FULL))
    assert profile.to_mapping() == FULL
    assert list(profile.to_mapping()["values"]) == ["apple", "pear", "rest", "energy"]
    assert ValueProfile.from_mapping(profile.to_mapping()) == profile


def test_partial_mapping_takes_documented_defaults_and_round_trips():
    profile = ValueProfile.from_mapping({"values": {"apple": {}, "nap": {"curve": "saturating"}}})
    assert profile.value_names == ("apple", "nap")
    assert profile.values[0] == ValueSpec(name="apple")
    assert profile.affect == AffectParams()
    assert ValueProfile.from_mapping(profile.to_mapping()) == profile


def test_ints_are_accepted_as_numbers():
    profile = ValueProfile.from_mapping({"values": {"apple": {"weight": 2}}})
    assert profile.values[0].weight == 2.0


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        (("values", "apple", "weight", -1.0), "values.apple.weight: must be > 0"),
        (("values", "pear", "eta", 0.0), "values.pear.eta: must be > 0"),
        (
            ("values", "apple", "satiation_half_life", 0.0),
            "values.apple.satiation_half_life: must be > 0",
        ),
        (("values", "apple", "curve", "cubic"), "values.apple.curve: unknown curve 'cubic'"),
        (("values", "apple", "eta", 2.0), "values.apple.eta: not a parameter of curve 'log'"),
        (("values", "apple", "colour", 2.0), "values.apple.colour: unknown key"),
        (("values", "apple", "weight", "heavy"), "values.apple.weight: must be a number"),
        (("values", "apple", "weight", True), "values.apple.weight: must be a number"),
        (("values", "apple", "weight", float("nan")), "values.apple.weight: must be finite"),
        (("affect", None, "stress_baseline", 1.5), "affect.stress_baseline: must be in [0, 1]"),
        (("affect", None, "mood_baseline", -2.0), "affect.mood_baseline: must be in [-1, 1]"),
        (("affect", None, "mood_half_life", -3.0), "affect.mood_half_life: must be > 0"),
        (("homeostasis", None, "power", 1.0), "homeostasis.power: must be > root"),
    ],
)
def test_bad_parameters_raise_value_error_naming_the_field(patch, path):
    mapping = copy.deepcopy(FULL)
    section, name, key, value = patch
    target = mapping[section][name] if name else mapping[section]
    target[key] = value
    with pytest.raises(ValueError, match=re.escape(path)):
        ValueProfile.from_mapping(mapping)


def test_every_problem_is_reported_at_once():
    mapping = copy.deepcopy(FULL)
    mapping["values"]["apple"]["weight"] = -1
    mapping["values"]["pear"]["eta"] = "steep"
    mapping["affect"]["stress_baseline"] = 7
    mapping["extra"] = 1
    with pytest.raises(ProfileError) as caught:
        ValueProfile.from_mapping(mapping)
    paths = [path for path, _ in caught.value.problems]
    assert sorted(paths) == sorted(
        ["extra", "values.apple.weight", "values.pear.eta", "affect.stress_baseline"]
    )


def test_structural_problems():
    with pytest.raises(ProfileError, match="values: must be a non-empty mapping"):
        ValueProfile.from_mapping({"values": {}})
    with pytest.raises(ProfileError, match="must be a mapping"):
        ValueProfile.from_mapping(["apple"])  # type: ignore[arg-type]
    with pytest.raises(ProfileError, match=re.escape("values.apple: must be a mapping")):
        ValueProfile.from_mapping({"values": {"apple": 3}})


def test_direct_construction_is_validated_too():
    with pytest.raises(ProfileError, match=re.escape("values.apple.weight")):
        ValueProfile(values=(ValueSpec("apple", weight=-1.0),))
    with pytest.raises(ProfileError, match=re.escape("values.apple: duplicate value name")):
        ValueProfile(values=(ValueSpec("apple"), ValueSpec("apple")))
    with pytest.raises(ProfileError, match=re.escape("values.apple.setpoint: not a parameter")):
        ValueProfile(values=(ValueSpec("apple", setpoint=3.0),))


def test_profiles_are_frozen():
    profile = ValueProfile.from_mapping(FULL)
    with pytest.raises(AttributeError):
        profile.affect = AffectParams()  # type: ignore[misc]
