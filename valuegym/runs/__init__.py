"""Running a scenario: its population, the step loop and speech, replay, sweeps and training.

A scenario is described by :mod:`valuegym.scenarios`; its records by :mod:`valuegym.records`.
"""

from valuegym.records import RunFolder
from valuegym.runs.errors import RunError
from valuegym.runs.runner import RunResult, default_run_dir, run_scenario
from valuegym.runs.train import train_scenario

__all__ = [
    "RunError",
    "RunFolder",
    "RunResult",
    "default_run_dir",
    "run_scenario",
    "train_scenario",
]
