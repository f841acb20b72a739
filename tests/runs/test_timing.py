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
