"""The report: Tables 1-3, the multimodal run and Figures 5-8 beside the paper's numbers.

Rendered from the results store alone (no training)::

    from bench.report import build_report
    result = build_report(Path("results"), Path("reports"))  # report.md, report.html, ...

``tables`` builds each table as a pandas DataFrame (one function per table), ``figures`` draws
the figures, ``render`` writes Markdown, self-contained HTML, CSV, LaTeX, PNG and PDF.
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
