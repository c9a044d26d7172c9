"""The report: results on data the paper never used, Tables 1-3, the multimodal run and
Figures 5-8 beside the paper's numbers, and an appendix of every configuration recorded.

Rendered from the results store alone (no training, no torch)::

    from bench.report import build_report
    result = build_report(Path("results"), Path("reports"))  # report.md, report.html, ...

``data`` reads the store and picks each cell's configuration, ``cells`` turns a cell's rows into
its numbers and text (the row assembly every table shares), ``tables/`` and ``figures/`` hold one
module per table and figure, ``render`` fills the jinja2 templates under ``templates/``.
"""

from bench.report.data import NOT_RUN, ReportData
from bench.report.figures import ReportFigure, all_figures
from bench.report.render import ReportResult, build_report
from bench.report.tables import Table, all_tables, multimodal, table1, table2, table3

__all__ = [
    "NOT_RUN",
    "ReportData",
    "ReportFigure",
    "ReportResult",
    "Table",
    "all_figures",
    "all_tables",
    "build_report",
    "multimodal",
    "table1",
    "table2",
    "table3",
]
