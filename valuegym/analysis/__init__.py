"""Statistics, figures and reports over recorded runs and sweeps."""

from valuegym.analysis.document import Report
from valuegym.analysis.report import build_report, write_report
from valuegym.analysis.speech_report import UTTERANCE_MEASURES
from valuegym.analysis.statistics import Estimate, gini, holm, mean_interval, unit_slopes

__all__ = [
    "UTTERANCE_MEASURES",
    "Estimate",
    "Report",
    "build_report",
    "gini",
    "holm",
    "mean_interval",
    "unit_slopes",
    "write_report",
]
