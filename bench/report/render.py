"""Write the report: ``report.md``, a self-contained ``report.html`` (figures embedded as
base64 PNG), ``figures/*.png|pdf`` and ``tables/*.csv|tex``. Reads the results store only."""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.report.data import FAILED, NOT_RUN, Provenance, ReportData
from bench.report.figures import ReportFigure, all_figures
from bench.report.tables import Table, all_tables


@dataclass
class ReportResult:
    markdown: Path
    html: Path
    tables: list[Table] = field(default_factory=list)
    figures: list[ReportFigure] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0


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
    header = _header(data, results_dir)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    md_path.write_text(render_markdown(header, tables, figures, out_dir))
    html_path.write_text(render_html(header, tables, figures))
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


INTRO = (
    "Our results beside the paper's (Rudolph, Wandt, Rosenhahn: *Same Same But DifferNet*, "
    "WACV 2021). Every number comes from the results store; nothing is trained while rendering, "
    "and a cell without a record reads **not run**. AUROC is in %. Each table and figure says "
    "which preset, backbone and seeds it rests on and flags everything that is not the paper's "
    "configuration. Where a cell was run under several configurations, the one closest to the "
    "paper's is shown; all of them are listed in the appendix. The CSV files under `tables/` "
    "hold the full-precision numbers."
)


# -- Markdown ------------------------------------------------------------------------------


def _flat_columns(frame: pd.DataFrame) -> list[str]:
    if isinstance(frame.columns, pd.MultiIndex):
        return [" ".join(str(p) for p in c if p) for c in frame.columns]
    return [str(c) for c in frame.columns]


def _with_index(frame: pd.DataFrame) -> pd.DataFrame:
    """The display frame with a meaningful index turned into leading columns."""
    if isinstance(frame.index, pd.MultiIndex) or frame.index.name:
        flat = frame.copy()
        flat.columns = _flat_columns(frame)
        return flat.reset_index()
    return frame


def markdown_table(frame: pd.DataFrame) -> str:
    frame = _with_index(frame)
    columns = _flat_columns(frame)

    def cell(value) -> str:
        text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(c) or " " for c in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def _provenance_md(prov: Provenance | None) -> str:
    if prov is None:
        return ""
    lines = [f"> **Behind it.** {prov.text()}"]
    if prov.n_cells:
        mark = "⚠ " if prov.flags else ""
        lines.append(f"> {mark}{prov.flag_text()}")
    return "\n>\n".join(lines)


def render_markdown(
    header: dict[str, str], tables: list[Table], figures: list[ReportFigure], out_dir: Path
) -> str:
    parts = [
        "# DifferNet benchmark report",
        "",
        f"Rendered {header['when']} from `{header['source']}`: {header['counts']}.",
        "",
        INTRO,
        "",
    ]
    for item in _ordered(tables, figures):
        if isinstance(item, Table):
            parts += [f"## {item.title}", "", item.caption, "", _provenance_md(item.provenance), ""]
            parts += [f"> Note: {n}" for n in item.notes] + ([""] if item.notes else [])
            parts += [
                markdown_table(item.display),
                "",
                f"Files: `tables/{item.key}.csv` (numbers), `tables/{item.key}.tex`.",
                "",
            ]
        else:
            rel_png = item.png.relative_to(out_dir)
            rel_pdf = item.pdf.relative_to(out_dir)
            parts += [
                f"## {item.title}",
                "",
                f"![{item.title}]({rel_png.as_posix()})",
                "",
                item.caption,
                "",
                _provenance_md(item.provenance),
                "",
            ]
            parts += [f"> Note: {n}" for n in item.notes] + ([""] if item.notes else [])
            parts += [f"Files: `{rel_png.as_posix()}`, `{rel_pdf.as_posix()}`.", ""]
    return "\n".join(parts)


def _ordered(tables: list[Table], figures: list[ReportFigure]) -> list[Table | ReportFigure]:
    """Tables 1-3 and the multimodal table, Figures 5-8, then the appendix."""
    main = [t for t in tables if not t.key.startswith("appendix")]
    rest = [t for t in tables if t.key.startswith("appendix")]
    return [*main, *figures, *rest]


# -- HTML ----------------------------------------------------------------------------------

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 2em auto; max-width: 1500px; padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 2.2em; border-bottom: 1px solid #bbb; padding-bottom: .15em; }
p.caption { max-width: 70em; }
.prov { background: #f4f6f8; border-left: 4px solid #6a8caf; padding: .5em .9em; margin: .8em 0;
        font-size: .92em; }
.prov.flagged { border-left-color: #d08a00; background: #fdf6e8; }
.note { color: #7a4b00; font-size: .92em; }
.scroll { overflow-x: auto; }
table.tbl { border-collapse: collapse; font-size: .8em; margin: .6em 0; }
table.tbl th, table.tbl td { border: 1px solid #d0d0d0; padding: .2em .4em; text-align: right;
                             white-space: nowrap; }
table.tbl th { background: #eef1f4; text-align: center; }
table.tbl tbody th, table.tbl td:first-child { text-align: left; }
table.tbl tr:nth-child(even) td { background: #fafafa; }
td.missing { color: #999; font-style: italic; }
td.failed { color: #b00020; font-weight: bold; }
figure { margin: 1em 0; }
figure img { max-width: min(100%, 1100px); border: 1px solid #ddd; }
.files { font-size: .85em; color: #555; }
code { background: #f0f0f0; padding: 0 .25em; border-radius: 3px; }
"""


def _inline(text: str) -> str:
    """Escape, then the two bits of Markdown the captions use: `code` and *emphasis*."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", out)


def _provenance_html(prov: Provenance | None) -> str:
    if prov is None:
        return ""
    flagged = " flagged" if prov.flags else ""
    body = f"<strong>Behind it.</strong> {_inline(prov.text())}"
    if prov.n_cells:
        body += "<br>" + ("⚠ " if prov.flags else "") + _inline(prov.flag_text())
    return f'<div class="prov{flagged}">{body}</div>'


def html_table(frame: pd.DataFrame) -> str:
    show_index = isinstance(frame.index, pd.MultiIndex) or bool(frame.index.name)
    if show_index:  # the row labels speak for themselves: no extra header row for their names
        frame = frame.rename_axis(index=[None] * frame.index.nlevels)
    text = frame.to_html(escape=True, index=show_index, border=0, classes="tbl", na_rep="")
    text = text.replace(f"<td>{NOT_RUN}</td>", f'<td class="missing">{NOT_RUN}</td>')
    return text.replace(f"<td>{FAILED}</td>", f'<td class="failed">{FAILED}</td>')


def render_html(header: dict[str, str], tables: list[Table], figures: list[ReportFigure]) -> str:
    body = [
        "<h1>DifferNet benchmark report</h1>",
        (
            f"<p>Rendered {html.escape(header['when'])} from <code>{html.escape(header['source'])}</code>: "
            f"{html.escape(header['counts'])}.</p>"
        ),
        f"<p>{_inline(INTRO)}</p>",
        "<nav><strong>Contents:</strong> "
        + " · ".join(
            f'<a href="#{item.key}">{html.escape(item.title.split(":")[0])}</a>'
            for item in _ordered(tables, figures)
        )
        + "</nav>",
    ]
    for item in _ordered(tables, figures):
        body.append(f'<section id="{item.key}"><h2>{html.escape(item.title)}</h2>')
        if isinstance(item, Table):
            body.append(f'<p class="caption">{_inline(item.caption)}</p>')
            body.append(_provenance_html(item.provenance))
            body += [f'<p class="note">Note: {_inline(n)}</p>' for n in item.notes]
            body.append(f'<div class="scroll">{html_table(item.display)}</div>')
            body.append(
                f'<p class="files">Files: tables/{item.key}.csv (numbers), '
                f"tables/{item.key}.tex</p>"
            )
        else:
            data = base64.b64encode(item.png.read_bytes()).decode("ascii")
            body.append(
                f'<figure><img src="data:image/png;base64,{data}" '
                f'alt="{html.escape(item.title)}"><figcaption class="caption">'
                f"{_inline(item.caption)}</figcaption></figure>"
            )
            body.append(_provenance_html(item.provenance))
            body += [f'<p class="note">Note: {_inline(n)}</p>' for n in item.notes]
            body.append(
                f'<p class="files">Files: figures/{item.png.name}, figures/{item.pdf.name}</p>'
            )
        body.append("</section>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>DifferNet benchmark report</title>"
        f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


# -- LaTeX ---------------------------------------------------------------------------------

_LATEX_TEXT = {
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    "–": "--",
    "−": "-",
    "≈": r"$\approx$",
    "⚠": "",
    "·": r"$\cdot$",
}


def _latex_text(text: str) -> str:
    for old, new in _LATEX_TEXT.items():
        text = text.replace(old, new)
    return text


def to_latex(table: Table) -> str:
    """The displayed table as a LaTeX ``table`` (booktabs), caption and provenance included."""
    frame = _with_index(table.display)
    labels = table.display.index.nlevels if frame is not table.display else 1
    body = frame.to_latex(
        index=False, escape=True, column_format="l" * labels + "r" * (frame.shape[1] - labels)
    )
    caption = table.caption.replace("*", "").replace("`", "")
    if table.provenance is not None:
        caption += " " + table.provenance.text() + " " + table.provenance.flag_text()
    caption = _latex_escape(caption)
    return _latex_text(
        "% Generated by bench.py report; needs \\usepackage{booktabs}.\n"
        "\\begin{table}[t]\n\\centering\n\\small\n"
        + body
        + f"\\caption{{{caption}}}\n\\label{{tab:{table.key}}}\n\\end{{table}}\n"
    )


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _latex_escape(text: str) -> str:
    return re.sub(r"[\\&%$#_{}~^]", lambda m: _LATEX_SPECIAL[m.group()], text)
