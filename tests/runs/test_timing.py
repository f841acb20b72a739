import itertools

from valuegym.lm.wrappers import ProfilingModel
from valuegym.runs.timing import RunTiming


def test_measurement_seconds_leave_out_the_model_calls_inside_them(fake_model):
    ticks = itertools.count()
    clock = lambda: float(next(ticks))  # noqa: E731 - every reading is one second later
    model = ProfilingModel(fake_model, clock=clock)
    timing = RunTiming([model, object()], clock=clock)
    with timing.phase("information"), timing.measuring("information"):
        model.generate(["a", "b"], max_new_tokens=4)  # 1 s in the model
        model.score("a", ["yes"])  # 1 s in the model
    with timing.stepping_env():
        pass
    counted = timing.to_dict()
    assert list(counted) == ["information", "env", "total"]
    information = counted["information"]
    assert (information["calls"], information["generated_tokens"]) == (2, 8)
    assert information["model_seconds"] == 2.0
    # Six clock readings apart, two of them spent in the model.
    assert information["measure_seconds"] == 5.0 - 2.0
    assert counted["env"]["env_seconds"] == 1.0
    assert counted["total"]["generated_tokens"] == 8
    assert counted["total"]["model_seconds"] + counted["total"]["measure_seconds"] == 5.0


def test_retries_are_counted_per_phase_and_by_kind_in_the_total(fake_model):
    model = ProfilingModel(fake_model)
    timing = RunTiming([model])
    with timing.phase("speech"):
        model.generate(["a"], max_new_tokens=1)
    model.phases["speech"].add_retries({"overloaded": 2, "dropped": 1})
    with timing.phase("semantic"):
        model.generate(["a"], max_new_tokens=1)
    model.phases["semantic"].add_retries({"timeout": 1, "dropped": 0})
    counted = timing.to_dict()
    assert (counted["speech"]["retries"], counted["semantic"]["retries"]) == (3, 1)
    assert counted["total"]["retries"] == 4
    assert counted["total"]["retries_by_kind"] == {"dropped": 1, "overloaded": 2, "timeout": 1}
