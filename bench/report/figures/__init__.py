"""The report's figures, one module each, drawn from the results store with matplotlib and
seaborn: Figures 5-8 beside the paper's, and ROC curves for data the paper never used.

Each function writes ``<key>.png`` and ``<key>.pdf`` and returns a ``ReportFigure`` whose
caption names the preset, backbone and seeds behind it. Where nothing was recorded the figure
is a placeholder that says "not run" (so the report never shows an empty frame or a made-up
curve).
"""

from pathlib import Path

from bench.report.data import ReportData
from bench.report.figures.base import ReportFigure
from bench.report.figures.fig5_roc import figure5_roc
from bench.report.figures.fig6_histogram import figure6_histogram
from bench.report.figures.fig7_fewshot import figure7_fewshot
from bench.report.figures.fig8_localization import figure8_localization
from bench.report.figures.other_data_roc import other_data_figures, other_data_roc


def all_figures(data: ReportData, out_dir: Path) -> list[ReportFigure]:
    """In the report's order: data the paper never used, then Figures 5-8."""
    return [
        *other_data_figures(data, out_dir),
        figure5_roc(data, out_dir),
        figure6_histogram(data, out_dir),
        figure7_fewshot(data, out_dir),
        figure8_localization(data, out_dir),
    ]


__all__ = [
    "ReportFigure",
    "all_figures",
    "figure5_roc",
    "figure6_histogram",
    "figure7_fewshot",
    "figure8_localization",
    "other_data_figures",
    "other_data_roc",
]
