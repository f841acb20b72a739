import copy
import pickle

import numpy as np
import pytest

from valuegym.envs.core import ValueCore
from valuegym.envs.profiles import default_profile, resolve_profile, resolve_profiles
from valuegym.envs.rendering import squash
from valuegym.values import AgentSnapshot, ValueStore


@pytest.fixture
def core() -> ValueCore:
    return ValueCore(ValueStore.from_profile(default_profile(["apple", "pear"]), n_agents=3))


def test_squash_is_bounded_monotone_and_odd():
    x = np.array([-1e9, -2.0, 0.0, 0.5, 3.0, 1e9])
    y = squash(x)
    assert np.all(np.diff(y) > 0)
    assert np.all(np.abs(y) < 1.0 + 1e-12)
    np.testing.assert_allclose(y[1:5], [-2 / 3, 0.0, 1 / 3, 0.75])


def test_default_profile_orders_goods_then_rest_with_weights():
    profile = default_profile({"apple": 1.0, "fig": 1.5})
    assert profile.value_names == ("apple", "fig", "rest")
    assert [spec.weight for spec in profile.values[:2]] == [1.0, 1.5]
    assert profile.values[2].curve == "saturating"
    assert default_profile(["a"], rest=False).value_names == ("a",)


@pytest.mark.parametrize(
    ("goods", "message"), [([], "at least one good"), (["rest"], "'rest' is added")]
)
def test_default_profile_rejects_bad_goods(goods, message):
    with pytest.raises(ValueError, match=message):
        default_profile(goods)


def test_resolve_profile_accepts_mapping_and_checks_required_values():
    default = default_profile(["apple"])
    assert resolve_profile(None, default) is default
    mapping = default_profile(["pear"]).to_mapping()
    assert resolve_profile(mapping, default).value_names == ("pear", "rest")
    with pytest.raises(ValueError, match=r"profile: missing values \['standing'\]"):
        resolve_profile(mapping, default, required=("standing",))
    with pytest.raises(ValueError, match="expected a ValueProfile or a mapping"):
        resolve_profile(42, default)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"goods: invalid value profile:\nvalues.x.weight"):
        resolve_profile({"values": {"x": {"weight": -1}}}, default, where="goods")


def test_step_returns_store_gains_and_refreshes_cached_wanting(core):
    reference = ValueStore.from_profile(default_profile(["apple", "pear"]), n_agents=3)
    consumption = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, 0, 0]])
    load, rest = np.array([0.3, 0.0, 0.3]), np.array([0.0, 1.0, 0.0])
    gains = core.step(consumption, load=load, rest=rest)
    expected = reference.step(consumption, load=load, rest=rest)
    np.testing.assert_array_equal(gains, expected.utility_gain)
    np.testing.assert_array_equal(core.wanting, reference.wanting())
    np.testing.assert_array_equal(core.temperature, reference.temperature())
    np.testing.assert_array_equal(core.stock, reference.stock)  # the views follow the store
    core.reset([0])
    assert core.stock[0].sum() == 0.0
    assert core.stock[1].sum() > 0.0
    np.testing.assert_array_equal(core.wanting, core.store.wanting())


def test_step_passes_the_surprise_input_to_the_store(core):
    reference = ValueStore.from_profile(default_profile(["apple", "pear"]), n_agents=3)
    consumption = np.array([[1.0, 0, 0], [0, 0, 0], [0, 0, 0]])
    surprise = np.array([1.5, 0.0, -0.5])
    gains = core.step(consumption, surprise=surprise)
    expected = reference.step(consumption, surprise=surprise)
    np.testing.assert_array_equal(gains, expected.utility_gain)
    np.testing.assert_array_equal(core.store.mood, reference.mood)
    np.testing.assert_array_equal(core.store.expected, reference.expected)
    np.testing.assert_array_equal(core.wanting, reference.wanting())
    # The apple beat its expectation (delta ~0.63) but the input outweighs it; baseline 0.
    assert core.store.mood[0] < core.store.mood[1] == 0.0 < core.store.mood[2]


def test_observation_layout_and_bounds(core):
    core.step(np.array([[5.0, 0, 0], [0, 1.0, 0], [0, 0, 0]]), load=np.full(3, 2.0))
    out = np.full((3, core.observation_size), np.nan, dtype=np.float32)
    core.write_observation(out)
    n = core.n_values
    np.testing.assert_allclose(out[:, :n], squash(np.asarray(core.stock)), rtol=1e-6)
    np.testing.assert_allclose(out[:, n : 2 * n], squash(core.wanting), rtol=1e-6)
    np.testing.assert_allclose(out[:, 2 * n], core.mood, rtol=1e-6)
    np.testing.assert_allclose(out[:, 2 * n + 1], core.stress, rtol=1e-6)
    low, high = core.observation_bounds()
    assert low.dtype == np.float32
    assert np.all(out >= low)
    assert np.all(out <= high)


def test_values_info_equals_snapshot_entries(core):
    core.step(np.array([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 1.0]]), valence=np.array([1.0, -1, 0]))
    for row in range(3):
        snapshot = core.store.snapshot(row)
        info = core.values_info(row)
        assert set(info) == {"stocks", "wanting", "mood", "stress", "temperature", "most_wanted"}
        assert AgentSnapshot.from_info(info, row, core.value_names).to_dict() == {
            **snapshot.to_dict(),
            "effective_weight": {},
            "expected": {},
        }
        assert core.value_names[info["most_wanted"]] == snapshot.most_wanted
        assert type(info["most_wanted"]) is int


def test_index_names_the_missing_value(core):
    assert core.index("pear") == 1
    with pytest.raises(ValueError, match="no value 'plum'"):
        core.index("plum")


def test_render_text_and_picture_show_the_state(core):
    assert core.render(None) is None
    before = core.render("rgb_array", 0)
    text = core.render("ansi", 0, "header", ["extra line"])
    assert text.splitlines()[0] == "header"
    assert text.endswith("extra line\n")
    assert "apple" in text
    assert "stress 0.10" in text
    core.step(np.array([[3.0, 0, 0]] * 3), load=np.full(3, 3.0))
    after = core.render("rgb_array", 0)
    assert before.shape == after.shape
    assert before.dtype == np.uint8
    assert before.shape[2] == 3
    assert not np.array_equal(before, after)


def test_check_render_mode_names_the_allowed_modes():
    ValueCore.check_render_mode(None)
    ValueCore.check_render_mode("ansi")
    with pytest.raises(ValueError, match="render_mode: expected one of"):
        ValueCore.check_render_mode("window")


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda c: pickle.loads(pickle.dumps(c))])
def test_copied_core_stays_bound_to_its_own_store(core, clone):
    twin = clone(core)
    twin.step(np.array([[1.0, 0, 0]] * 3))
    np.testing.assert_array_equal(twin.stock, twin.store.stock)
    assert twin.stock[0, 0] > 0.0
    assert core.stock[0, 0] == 0.0


def test_resolve_profiles_shares_one_or_takes_one_per_row():
    default = default_profile(["apple"])
    assert resolve_profiles(None, 3, default) == (default,) * 3
    pear = default_profile(["pear"])
    mixed = resolve_profiles([None, pear.to_mapping()], 2, default)
    assert [p.value_names for p in mixed] == [("apple", "rest"), ("pear", "rest")]
    with pytest.raises(ValueError, match="got 1 profiles for 2 agents"):
        resolve_profiles([pear], 2, default)
    with pytest.raises(ValueError, match=r"profile\[1\]: missing values \['fig'\]"):
        resolve_profiles([default_profile(["fig"]), pear], 2, default, required=("fig",))
    with pytest.raises(ValueError, match="expected a profile, a mapping or a sequence"):
        resolve_profiles("apple", 2, default)  # type: ignore[arg-type]
