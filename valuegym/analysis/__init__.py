"""Statistics, figures and reports over recorded runs."""

from valuegym.analysis.report import UTTERANCE_MEASURES, Report, build_report, write_report
from valuegym.analysis.statistics import GroupSummary, SlopeFit, fit_slope, gini, mean_interval

__all__ = [
    "UTTERANCE_MEASURES",
    "GroupSummary",
    "Report",
    "SlopeFit",
    "build_report",
    "fit_slope",
    "gini",
    "mean_interval",
    "write_report",
]
