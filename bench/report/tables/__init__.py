"""The report's tables, one module each, every one built from ``ReportData`` alone.

Each builder returns a ``Table`` (``base.py``). Nothing here trains or invents a number: a
missing cell stays "not run". Tables on data the paper never used come first.
"""

from bench.report.data import ReportData
from bench.report.tables.appendix import appendix
from bench.report.tables.base import Table
from bench.report.tables.data_checks import data_checks_table, data_checks_tables
from bench.report.tables.localization import localization
from bench.report.tables.multimodal import multimodal
from bench.report.tables.other_data import other_data_table, other_data_tables
from bench.report.tables.paired import paired_table
from bench.report.tables.table1_mvtec import table1
from bench.report.tables.table2_mtd import table2
from bench.report.tables.table3_ablation import table3
from bench.report.tables.today import today_table, today_tables
from bench.report.tables.trust import trust_table


def all_tables(data: ReportData) -> list[Table]:
    """In the report's order: data the paper never used, the data checks (when the store holds
    any), Tables 1-3, multimodal, today's methods beside their papers, DifferNet paired with
    the best other method, how far to trust the validation (agreement studies), localization,
    appendix."""
    return [*other_data_tables(data), *data_checks_tables(data), table1(data), table2(data),
            table3(data), multimodal(data), *today_tables(data), paired_table(data),
            trust_table(data),
            localization(data), appendix(data)]


__all__ = [
    "Table",
    "all_tables",
    "appendix",
    "data_checks_table",
    "data_checks_tables",
    "localization",
    "multimodal",
    "other_data_table",
    "other_data_tables",
    "paired_table",
    "table1",
    "table2",
    "table3",
    "today_table",
    "today_tables",
    "trust_table",
]
