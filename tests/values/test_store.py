import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from valuegym.values import ValueParams, ValueProfile, ValueStore, kernels

# --- a plain-Python scalar reference, written from docs/design.md ("The value model"),
# independent of the kernels ---


def ref_utility(spec, stock, stress):
    rho = spec["eta"] * (1 + spec["stress_curvature"] * stress)
    x = stock / spec["scale"]
    if spec["curve"] == "saturating":
        return (1 - math.exp(-rho * x)) / rho
    if abs(rho - 1) < 1e-12:
        return math.log(1 + x)
    return ((1 + x) ** (1 - rho) - 1) / (1 - rho)


def ref_marginal(spec, stock, stress):
    rho = spec["eta"] * (1 + spec["stress_curvature"] * stress)
    x = stock / spec["scale"]
    if spec["curve"] == "saturating":
        return math.exp(-rho * x) / spec["scale"]
    return (1 + x) ** (-rho) / spec["scale"]


def ref_weight(spec, mood, stress):
    return spec["weight"] * math.exp(spec["mood_weight"] * mood + spec["stress_weight"] * stress)


def ref_drive(specs, h, mood, stress, power, root):
    total = sum(
        ref_weight(s, mood, stress) * abs(s["setpoint"] - x) ** power
        for s, x in zip(specs, h, strict=True)
        if s["curve"] == "homeostatic"
    )
    return total ** (1 / root)


class ScalarAgent:
    def __init__(self, mapping):
        self.specs = [dict(name=n, **v) for n, v in mapping["values"].items()]
        for s in self.specs:
            s.setdefault("eta", 1.0)
            s.setdefault("scale", 1.0)
            s.setdefault("setpoint", 1.0)
        self.a = mapping["affect"]
        self.h = mapping["homeostasis"]
        self.stock = [0.0] * len(self.specs)
        self.expected = [s["initial_expectation"] for s in self.specs]
        self.mood = self.a["mood_baseline"]
        self.stress = self.a["stress_baseline"]

    def step(self, consumption, load, rest, valence, dt, surprise=0.0):
        a, mood, stress = self.a, self.mood, self.stress
        power, root = self.h["power"], self.h["root"]
        total_gain = total_delta = 0.0
        consumed = False
        for k, spec in enumerate(self.specs):
            amount = consumption[k]
            if amount == 0:
                continue
            consumed = True
            if spec["curve"] == "homeostatic":
                before = ref_drive(self.specs, self.stock, mood, stress, power, root)
                self.stock[k] += amount
                gain = before - ref_drive(self.specs, self.stock, mood, stress, power, root)
            else:
                s = self.stock[k]
                gain = ref_weight(spec, mood, stress) * (
                    ref_utility(spec, s + amount, stress) - ref_utility(spec, s, stress)
                )
                self.stock[k] += amount
            delta = gain - self.expected[k]
            rate = min(
                1.0, a["learning_rate"] * (1 + a["surprise_gate"] * (abs(delta) + abs(surprise)))
            )
            self.expected[k] += rate * delta
            total_gain += gain
            total_delta += delta
        if consumed or valence != 0 or surprise != 0:
            target = math.tanh((total_delta + valence - surprise) / a["surprise_scale"])
            mood += a["mood_rate"] * (target - mood)
        keep = 0.5 ** (dt / a["mood_half_life"])
        mood = a["mood_baseline"] + (mood - a["mood_baseline"]) * keep
        self.mood = min(1.0, max(-1.0, mood))
        drive = (
            ref_drive(self.specs, self.stock, self.mood, stress, power, root)
            if any(s["curve"] == "homeostatic" for s in self.specs)
            else 0.0
        )
        total_load = load + a["drive_load"] * drive
        stress += (1 - stress) * (1 - math.exp(-a["stress_sensitivity"] * total_load))
        stress -= stress * (1 - math.exp(-a["rest_recovery"] * rest))
        keep = 0.5 ** (dt / a["stress_half_life"])
        stress = a["stress_baseline"] + (stress - a["stress_baseline"]) * keep
        self.stress = min(1.0, max(0.0, stress))
        for k, spec in enumerate(self.specs):
            self.stock[k] *= 0.5 ** (dt / spec["satiation_half_life"])
        return total_gain, total_delta

    def wanting(self):
        out = []
        for k, spec in enumerate(self.specs):
            w = ref_weight(spec, self.mood, self.stress)
            if spec["curve"] == "homeostatic":
                power, root = self.h["power"], self.h["root"]
                total = sum(
                    ref_weight(s, self.mood, self.stress) * abs(s["setpoint"] - x) ** power
                    for s, x in zip(self.specs, self.stock, strict=True)
                    if s["curve"] == "homeostatic"
                )
                d = spec["setpoint"] - self.stock[k]
                m = (
                    0.0
                    if total == 0 or d == 0
                    else (
                        math.copysign(
                            power / root * total ** (1 / root - 1) * abs(d) ** (power - 1), d
                        )
                    )
                )
            else:
                m = ref_marginal(spec, self.stock[k], self.stress)
            out.append(w * m)
        return out

    def temperature(self):
        return self.a["base_temperature"] * math.exp(
            self.a["temperature_stress"] * self.stress + self.a["temperature_mood"] * self.mood
        )


def random_profile(rng, names):
    values = {}
    for name in names:
        curve = rng.choice(["log", "isoelastic", "saturating", "homeostatic"])
        spec = {
            "weight": float(rng.uniform(0.2, 3)),
            "curve": str(curve),
            "satiation_half_life": float(rng.uniform(0.5, 30)),
            "mood_weight": float(rng.normal(0, 0.5)),
            "stress_weight": float(rng.normal(0, 0.5)),
            "stress_curvature": float(rng.uniform(-0.5, 2)),
            "initial_expectation": float(rng.uniform(0, 0.5)),
        }
        if curve == "homeostatic":
            spec["setpoint"] = float(rng.uniform(0.5, 5))
        else:
            spec["scale"] = float(rng.uniform(0.3, 4))
        if curve == "isoelastic":
            spec["eta"] = float(rng.uniform(0.2, 3))
        values[name] = spec
    affect = {
        "mood_baseline": float(rng.uniform(-0.5, 0.5)),
        "mood_rate": float(rng.uniform()),
        "surprise_scale": float(rng.uniform(0.3, 3)),
        "mood_half_life": float(rng.uniform(1, 40)),
        "stress_baseline": float(rng.uniform(0, 0.6)),
        "stress_sensitivity": float(rng.uniform(0, 1)),
        "rest_recovery": float(rng.uniform(0, 1)),
        "stress_half_life": float(rng.uniform(1, 40)),
        "drive_load": float(rng.uniform(0, 0.05)),
        "learning_rate": float(rng.uniform()),
        "surprise_gate": float(rng.uniform(0, 3)),
        "base_temperature": float(rng.uniform(0.2, 2)),
        "temperature_stress": float(rng.normal()),
        "temperature_mood": float(rng.normal()),
    }
    power = float(rng.uniform(2.5, 5))
    return {
        "values": values,
        "affect": affect,
        "homeostasis": {"power": power, "root": float(rng.uniform(1, power - 0.5))},
    }


@pytest.mark.parametrize("seed", range(8))
def test_vectorised_store_equals_scalar_reference(seed):
    rng = np.random.default_rng(seed)
    names = [f"v{k}" for k in range(int(rng.integers(1, 6)))]
    n_agents = int(rng.integers(1, 9))
    mappings = [random_profile(rng, names) for _ in range(n_agents)]
    store = ValueStore.from_profiles([ValueProfile.from_mapping(m) for m in mappings])
    reference = [ScalarAgent(ValueProfile.from_mapping(m).to_mapping()) for m in mappings]
    for step in range(40):
        consumption = rng.exponential(1.0, (n_agents, len(names))) * (
            rng.random((n_agents, len(names))) < 0.4
        )
        load = rng.exponential(1.0, n_agents) * (rng.random(n_agents) < 0.5)
        rest = rng.exponential(1.0, n_agents) * (rng.random(n_agents) < 0.3)
        valence = rng.normal(0, 1, n_agents) * (rng.random(n_agents) < 0.3)
        surprise = rng.normal(0, 1, n_agents) * (rng.random(n_agents) < 0.4)
        dt = float(rng.choice([1.0, 0.5, 2.0]))
        outcome = store.step(
            consumption,
            load=load,
            rest=rest,
            valence=valence,
            surprise=surprise,
            dt=dt,
            with_wanting=bool(step % 2),
        )
        if step % 2:  # the fused pass gives what the separate calls give
            np.testing.assert_array_equal(outcome.wanting, store.wanting())
            np.testing.assert_array_equal(outcome.temperature, store.temperature())
        else:
            assert outcome.wanting is None
        for i, agent in enumerate(reference):
            gain, delta = agent.step(consumption[i], load[i], rest[i], valence[i], dt, surprise[i])
            assert outcome.utility_gain[i] == pytest.approx(gain, rel=1e-9, abs=1e-12)
            assert outcome.surprise[i] == pytest.approx(delta, rel=1e-9, abs=1e-12)
        np.testing.assert_allclose(store.stock, [a.stock for a in reference], rtol=1e-10)
        np.testing.assert_allclose(
            store.expected, [a.expected for a in reference], rtol=1e-9, atol=1e-12
        )
        np.testing.assert_allclose(store.mood, [a.mood for a in reference], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(
            store.stress, [a.stress for a in reference], rtol=1e-9, atol=1e-12
        )
        np.testing.assert_allclose(
            store.wanting(), [a.wanting() for a in reference], rtol=1e-8, atol=1e-12
        )
        np.testing.assert_allclose(
            store.temperature(), [a.temperature() for a in reference], rtol=1e-10
        )


def test_parallel_kernel_equals_serial(monkeypatch):
    rng = np.random.default_rng(3)
    names = ["a", "b", "c"]
    profiles = [ValueProfile.from_mapping(random_profile(rng, names)) for _ in range(4)]
    # 1 200 rows: several of the parallel kernel's blocks of rows, the last one partial.
    big = ValueStore.from_profiles(profiles * 300)
    small = ValueStore.from_profiles(profiles)
    monkeypatch.setattr(kernels, "PARALLEL_THRESHOLD", big.n_agents)
    for _ in range(5):
        consumption = rng.exponential(1.0, (4, 3)) * (rng.random((4, 3)) < 0.5)
        load = rng.exponential(1.0, 4)
        tiled = np.tile(consumption, (big.n_agents // 4, 1))
        out_big = big.step(tiled, load=np.tile(load, big.n_agents // 4), with_wanting=True)
        out_small = small.step(consumption, load=load, with_wanting=True)
        np.testing.assert_array_equal(out_big.utility_gain[-4:], out_small.utility_gain)
        np.testing.assert_array_equal(out_big.wanting[-4:], out_small.wanting)
        np.testing.assert_array_equal(out_big.temperature[-4:], out_small.temperature)
        np.testing.assert_array_equal(big.stock[-4:], small.stock)
        np.testing.assert_array_equal(big.stress[-4:], small.stress)


def simple_store(n_agents=1, **affect):
    profile = ValueProfile.from_mapping(
        {
            "values": {
                "apple": {"satiation_half_life": 4.0},
                "pear": {"curve": "saturating"},
                "rest": {"curve": "saturating", "scale": 2.0, "stress_weight": 1.5},
            },
            "affect": affect,
        }
    )
    return ValueStore.from_profile(profile, n_agents)


def test_consuming_gives_log_gain_and_repeats_are_worth_less():
    store = simple_store()
    gains = [float(store.step([[1.0, 0, 0]]).utility_gain[0]) for _ in range(5)]
    assert gains[0] == pytest.approx(math.log(2.0))
    assert all(b < a for a, b in itertools.pairwise(gains))


def test_satiation_halves_in_one_half_life():
    store = simple_store()
    store.step([[8.0, 0, 0]], dt=1e-9)
    start = store.stock[0, 0]
    for _ in range(8):
        store.step([[0.0, 0, 0]], dt=0.5)  # 8 x 0.5 = 4 = the half-life
    assert store.stock[0, 0] == pytest.approx(start / 2, rel=1e-6)


def test_satiation_wearing_off_restores_wanting():
    store = simple_store()
    for _ in range(4):
        store.step([[1.0, 0, 0]])
    sated = store.wanting()[0, 0]
    assert store.snapshot(0).most_wanted == "pear"  # after four apples, variety
    for _ in range(40):  # ten half-lives
        store.step([[0.0, 0, 0]])
    assert store.wanting()[0, 0] > 2 * sated
    assert store.wanting()[0, 0] == pytest.approx(1.0, abs=0.05)  # back near a fresh appetite


def test_stress_rises_with_load_falls_with_rest_and_shifts_wanting_to_rest():
    store = simple_store(stress_baseline=0.1)
    calm_rest = store.wanting()[0, 2]
    calm_temperature = float(store.temperature()[0])
    for _ in range(10):
        store.step(np.zeros((1, 3)), load=[3.0])
    assert store.stress[0] > 0.9
    assert store.wanting()[0, 2] > 3 * calm_rest  # stress raises the weight of rest
    assert store.temperature()[0] > calm_temperature
    stressed = store.stress[0]
    store.step(np.zeros((1, 3)), rest=[2.0])
    assert store.stress[0] < stressed * 0.5


def test_mood_follows_signed_surprise_and_relaxes_to_baseline():
    store = simple_store(mood_baseline=0.0, mood_half_life=5.0)
    store.step([[2.0, 0, 0]])  # better than expected (expectation starts at 0)
    assert store.mood[0] > 0.1
    store.step(np.zeros((1, 3)), valence=[-5.0])
    assert store.mood[0] < 0
    for _ in range(100):
        store.step(np.zeros((1, 3)))
    assert abs(store.mood[0]) < 1e-5


def test_surprise_gated_learning_converges_to_the_reliable_gain():
    store = simple_store(learning_rate=0.3)
    first = abs(float(store.step([[0.0, 1.0, 0]], dt=1000.0).surprise[0]))
    for _ in range(60):
        out = store.step([[0.0, 1.0, 0]], dt=1000.0)  # satiation gone each step: same gain
    assert first > 0.5
    assert abs(float(out.surprise[0])) < 1e-3
    assert store.expected[0, 1] == pytest.approx(1 - math.exp(-1), rel=1e-3)


def test_zero_surprise_input_changes_nothing():
    rng = np.random.default_rng(11)
    names = ["a", "b", "c"]
    profiles = [ValueProfile.from_mapping(random_profile(rng, names)) for _ in range(5)]
    left_out, zeros = ValueStore.from_profiles(profiles), ValueStore.from_profiles(profiles)
    for _ in range(20):
        consumption = rng.exponential(1.0, (5, 3)) * (rng.random((5, 3)) < 0.5)
        valence = rng.normal(0, 1, 5) * (rng.random(5) < 0.5)
        a = left_out.step(consumption, valence=valence)
        b = zeros.step(consumption, valence=valence, surprise=np.array([0.0, -0.0, 0, 0, 0]))
        np.testing.assert_array_equal(a.utility_gain, b.utility_gain)
        np.testing.assert_array_equal(a.surprise, b.surprise)
    assert left_out.get_state() == zeros.get_state()


def test_surprise_input_lowers_mood_toward_tanh_of_minus_x_with_nothing_consumed():
    store = simple_store(mood_baseline=0.0, mood_rate=0.5, surprise_scale=2.0, mood_half_life=10.0)
    outcome = store.step(np.zeros((1, 3)), surprise=[1.0])
    # 0.5 * (tanh(-1 / 2) - 0) = -0.2310585786, relaxed by 0.5 ** (1 / 10) = 0.9330329915
    assert store.mood[0] == pytest.approx(-0.2155852768, abs=1e-10)
    assert outcome.surprise[0] == 0.0  # the outcome's surprise is consumption's alone
    assert outcome.utility_gain[0] == 0.0
    store.step(np.zeros((1, 3)), surprise=[-1.0])  # less surprising than expected: up
    assert store.mood[0] > -0.2155852768 * 0.9330329915


@pytest.mark.parametrize("x", [2.0, -2.0])
def test_surprise_input_raises_the_learning_rate_of_the_same_steps_consumption(x):
    plain = simple_store(learning_rate=0.1, surprise_gate=1.0)
    surprised = simple_store(learning_rate=0.1, surprise_gate=1.0)
    apple = [[1.0, 0.0, 0.0]]
    out_plain = plain.step(apple)
    out_surprised = surprised.step(apple, surprise=[x])
    delta = math.log(2.0)  # gain log(1 + 1) against an expectation of 0
    assert out_surprised.utility_gain[0] == out_plain.utility_gain[0] == pytest.approx(delta)
    assert out_surprised.surprise[0] == out_plain.surprise[0]
    assert plain.expected[0, 0] == pytest.approx(0.1 * (1 + delta) * delta, rel=1e-12)
    assert surprised.expected[0, 0] == pytest.approx(0.1 * (1 + delta + 2.0) * delta, rel=1e-12)
    assert surprised.expected[0, 0] / plain.expected[0, 0] == pytest.approx(
        (3 + delta) / (1 + delta), rel=1e-12
    )
    assert surprised.expected[0, 1] == plain.expected[0, 1] == 0.0  # not consumed: not learnt


def test_surprise_input_learning_rate_is_capped_at_one():
    store = simple_store(learning_rate=0.1, surprise_gate=1.0)
    store.step([[1.0, 0.0, 0.0]], surprise=[100.0])
    assert store.expected[0, 0] == pytest.approx(math.log(2.0), rel=1e-15)


@pytest.mark.parametrize(
    ("surprise", "message"),
    [
        ([math.nan, 0.0], "surprise: must be finite"),
        ([0.0, math.inf], "surprise: must be finite"),
        ([1.0, 0.0, 0.0], r"surprise: expected shape \(2,\)"),
    ],
)
def test_bad_surprise_input_is_refused_before_anything_changes(surprise, message):
    store = simple_store(2)
    before = store.get_state()
    with pytest.raises(ValueError, match=message):
        store.step([[1.0, 0, 0], [0, 1.0, 0]], surprise=surprise)
    assert store.get_state() == before


bounded_inputs = st.lists(
    st.tuples(
        st.floats(0, 50),
        st.floats(0, 20),
        st.floats(0, 20),
        st.floats(-50, 50),
        st.floats(0.01, 10),
    ),
    min_size=1,
    max_size=30,
)


@given(inputs=bounded_inputs, mood_base=st.floats(-1, 1), stress_base=st.floats(0, 1))
@settings(max_examples=80, deadline=None)
def test_mood_and_stress_stay_in_range_under_any_input(inputs, mood_base, stress_base):
    store = simple_store(
        mood_baseline=mood_base,
        stress_baseline=stress_base,
        mood_rate=1.0,
        stress_sensitivity=5.0,
        rest_recovery=5.0,
    )
    for amount, load, rest, valence, dt in inputs:
        store.step([[amount, amount / 2, 0.0]], load=[load], rest=[rest], valence=[valence], dt=dt)
        assert -1.0 <= store.mood[0] <= 1.0
        assert 0.0 <= store.stress[0] <= 1.0
        assert np.all(store.stock >= 0)
        assert np.all(store.wanting() > 0)


def test_homeostatic_value_reward_is_the_drive_reduction():
    profile = ValueProfile.from_mapping(
        {
            "values": {
                "energy": {"curve": "homeostatic", "setpoint": 4.0},
                "water": {"curve": "homeostatic", "setpoint": 2.0},
            },
            "homeostasis": {"power": 4.0, "root": 2.0},
        }
    )
    store = ValueStore.from_profile(profile)
    before = math.sqrt(4.0**4 + 2.0**4)
    after = math.sqrt(1.0**4 + 2.0**4)
    gain = float(store.step([[3.0, 0.0]]).utility_gain[0])
    assert gain == pytest.approx(before - after)
    assert store.wanting()[0, 1] > 0


def test_bad_step_input_is_refused():
    store = simple_store(2)
    with pytest.raises(ValueError, match=r"consumption: expected shape \(2, 3\)"):
        store.step(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="consumption: amounts must be >= 0"):
        store.step([[-1.0, 0, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match="load and rest"):
        store.step(np.zeros((2, 3)), load=[-1.0, 0.0])
    with pytest.raises(ValueError, match="dt: must be > 0"):
        store.step(np.zeros((2, 3)), dt=0.0)


def test_stores_need_matching_value_names():
    a = ValueProfile.from_mapping({"values": {"apple": {}}})
    b = ValueProfile.from_mapping({"values": {"pear": {}}})
    with pytest.raises(ValueError, match=r"profiles.1.values"):
        ValueParams.from_profiles([a, b])
    with pytest.raises(ValueError, match="n_agents"):
        ValueStore.from_profile(a, 0)


def test_snapshot_is_read_only_and_by_name():
    store = simple_store(3)
    store.step([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 0]], load=[0, 0, 5.0])
    snap = store.snapshot(2)
    assert snap.value_names == ("apple", "pear", "rest")
    assert snap.stress == pytest.approx(float(store.stress[2]))
    assert snap.wanting["rest"] == pytest.approx(float(store.wanting()[2, 2]))
    assert snap.most_wanted == "rest"
    with pytest.raises(TypeError):
        snap.stocks["apple"] = 3.0  # type: ignore[index]
    with pytest.raises(ValueError, match="read-only"):
        store.stock[0, 0] = 1.0
    data = snap.to_dict()
    assert set(data) >= {"stocks", "wanting", "mood", "stress", "temperature"}
    assert store.snapshot(0).stocks["apple"] > 0


def test_state_round_trips_and_reset_restores_baselines():
    store = simple_store(2, stress_baseline=0.2)
    store.step([[1.0, 0, 0], [0, 1.0, 0]], load=[1.0, 0.0])
    copy = ValueStore.from_state(store.get_state())
    np.testing.assert_array_equal(copy.stock, store.stock)
    np.testing.assert_array_equal(copy.stress, store.stress)
    assert copy.params.profiles == store.params.profiles
    store.reset([0])
    assert store.stress[0] == 0.2
    assert store.stock[0].sum() == 0
    assert store.stock[1].sum() > 0


def test_same_inputs_give_same_state():
    runs = []
    for _ in range(2):
        store = simple_store(4)
        rng = np.random.default_rng(7)
        for _ in range(20):
            store.step(rng.exponential(1, (4, 3)), load=rng.exponential(1, 4))
        runs.append(store.get_state())
    assert runs[0] == runs[1]


def test_wanting_out_is_filled_in_place_and_equals_a_fresh_step():
    rng = np.random.default_rng(5)
    names = ["a", "b", "c"]
    profiles = [ValueProfile.from_mapping(random_profile(rng, names)) for _ in range(4)]
    ours, fresh = ValueStore.from_profiles(profiles), ValueStore.from_profiles(profiles)
    wanting, temperature = np.empty((4, 3)), np.empty(4)
    for _ in range(5):
        consumption = rng.exponential(1.0, (4, 3)) * (rng.random((4, 3)) < 0.5)
        outcome = ours.step(consumption, load=np.ones(4), wanting_out=(wanting, temperature))
        reference = fresh.step(consumption, load=np.ones(4), with_wanting=True)
        assert outcome.wanting is wanting
        assert outcome.temperature is temperature
        np.testing.assert_array_equal(wanting, reference.wanting)
        np.testing.assert_array_equal(temperature, reference.temperature)
        np.testing.assert_array_equal(outcome.utility_gain, reference.utility_gain)
    zeros = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"wanting_out\[0\]: expected a writable float64"):
        ours.step(zeros, wanting_out=(np.empty((4, 3), dtype=np.float32), temperature))
    read_only = np.empty(4)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match=r"wanting_out\[1\]"):
        ours.step(zeros, wanting_out=(wanting, read_only))


def test_kernel_arrays_are_the_stores_own():
    store = simple_store(n_agents=2)
    arrays = store.kernel_arrays()
    assert np.shares_memory(arrays.stock, store.stock)
    assert np.shares_memory(arrays.stress, store.stress)
    assert arrays.value_table is store.params.value_table
    consumption = np.zeros((2, store.n_values))
    consumption[0, 0] = 1.0
    gain, surprise = np.empty(2), np.empty(2)
    wanting, temperature = np.empty((2, store.n_values)), np.empty(2)
    zeros = np.zeros(2)
    kernels.step_all(
        False, *arrays[:4], consumption, zeros, zeros, zeros, zeros, 1.0, *arrays[4:],
        gain, surprise, True, np.empty_like(wanting), np.empty_like(wanting), wanting, temperature,
    )  # fmt: skip
    assert store.stock[0, 0] > 0.0
    assert gain[0] == pytest.approx(math.log(2.0))
    np.testing.assert_array_equal(wanting, store.wanting())
    np.testing.assert_array_equal(temperature, store.temperature())
