"""Write the report: ``report.md`` and a self-contained ``report.html`` (figures embedded as
base64 PNG data URIs), both from the jinja2 templates under ``templates/``;
``figures/*.png|pdf`` and ``tables/*.csv|tex``. Reads the results store only."""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from markupsafe import Markup

from bench.report.data import ReportData, dataset_title
from bench.report.figures import ReportFigure, all_figures
from bench.report.latex import to_latex
from bench.report.provenance import Provenance
from bench.report.tables import Table, all_tables
from bench.report.views import TableView, table_view


@dataclass
class ReportResult:
    markdown: Path
    html: Path
    tables: list[Table] = field(default_factory=list)
    figures: list[ReportFigure] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Item:
    """One section of the report: a table (with its view) or a figure."""

    kind: str  # "table" or "figure"
    key: str
    title: str
    caption: str
    provenance: Provenance | None
    notes: list[str]
    view: TableView | None = None
    png: Path | None = None  # relative to the report's folder
    pdf: Path | None = None

    @property
    def nav(self) -> str:
        return self.title.split(":")[0]


def build_report(results_dir: Path, out_dir: Path) -> ReportResult:
    """Render every table and figure from the records under ``results_dir`` into ``out_dir``."""
    start = time.perf_counter()
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    data = ReportData.load(results_dir)
    tables = all_tables(data)
    figures = all_figures(data, out_dir / "figures")
    files = [p for f in figures for p in (f.png, f.pdf)]
    (out_dir / "tables").mkdir(parents=True, exist_ok=True)
    for table in tables:
        csv, tex = out_dir / "tables" / f"{table.key}.csv", out_dir / "tables" / f"{table.key}.tex"
        table.data.to_csv(csv, index=False)
        tex.write_text(to_latex(table))
        files += [csv, tex]
    context = {
        **_header(data, results_dir),
        "other_data": [dataset_title(d) for d in data.other_datasets()],
        "items": [_item(x, out_dir) for x in ordered(tables, figures)],
    }
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    md_path.write_text(ENV.get_template("report.md.j2").render(context))
    html_path.write_text(ENV.get_template("report.html.j2").render(context, base=out_dir))
    files += [md_path, html_path]
    return ReportResult(md_path, html_path, tables, figures, files, time.perf_counter() - start)


def _header(data: ReportData, results_dir: Path) -> dict[str, str]:
    frame = data.frame
    n_ok = int((frame["status"] == "ok").sum())
    return {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "source": str(results_dir),
        "counts": f"{len(frame)} records ({n_ok} ok, {len(frame) - n_ok} failed)",
    }


def ordered(tables: list[Table], figures: list[ReportFigure]) -> list[Table | ReportFigure]:
    """Data the paper never used first (per dataset its table, then its figure); then Tables
    1-3 and the multimodal table, Figures 5-8; the appendix last."""
    datasets = list(dict.fromkeys(x.dataset for x in [*tables, *figures] if x.dataset))
    other = sorted((x for x in [*tables, *figures] if x.dataset),
                   key=lambda x: datasets.index(x.dataset))
    main = [t for t in tables if not t.dataset and not t.key.startswith("appendix")]
    rest = [t for t in tables if t.key.startswith("appendix")]
    return [*other, *main, *[f for f in figures if not f.dataset], *rest]


def _item(x: Table | ReportFigure, out_dir: Path) -> Item:
    if isinstance(x, Table):
        return Item("table", x.key, x.title, x.caption, x.provenance, x.notes,
                    view=table_view(x.display))
    return Item("figure", x.key, x.title, x.caption, x.provenance, x.notes,
                png=x.png.relative_to(out_dir), pdf=x.pdf.relative_to(out_dir))


# -- Template filters -----------------------------------------------------------------------


def inline(text: str) -> Markup:
    """Escape, then the bits of Markdown the captions use: `code`, **strong** and *emphasis*."""
    out = html.escape(str(text))
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    return Markup(re.sub(r"\*([^*]+)\*", r"<em>\1</em>", out))


def md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


@jinja2.pass_context
def data_uri(context, png: Path) -> str:
    """A PNG as a data URI, so the HTML needs no file beside it."""
    encoded = base64.b64encode((Path(context["base"]) / png).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{encoded}"


ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("bench.report", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
ENV.filters.update(inline=inline, md_cell=md_cell, data_uri=data_uri)
