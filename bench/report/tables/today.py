"""Today's methods beside the paper's: PatchCore, PaDiM and CS-Flow (and DifferNet for
reference) on MTD, MVTec AD and each dataset of the user's, our numbers (image and pixel AUROC,
PRO: mean ± 95 % CI over seeds) beside the numbers their papers publish, each with its backbone.

Which methods are "today's" comes from the records (``info["method_family"]``, set by the
runner from the method's registration) and from the published numbers, so the table renders
without importing any method."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.paper import MTD, MVTEC, PAPER_DATASETS, published_today
from bench.report.data import NOT_RUN, ReportData, dataset_title, ok_rows
from bench.report.paper_refs import DIFFERNET
from bench.report.provenance import provenance
from bench.report.summary import ci95
from bench.report.tables.base import Table

TODAY = "today"
MEAN = "mean"
CAPTION = (
    "Image-level AUROC, pixel-level AUROC and PRO (up to 30 % FPR) in %: ours as mean over seeds "
    "± half-width of the t-based 95 % CI (image and pixel on the same records; pixel and PRO "
    "only for runs with `--localize` on data with masks), beside the numbers each method's paper "
    "publishes. '†': the published number was measured with another backbone than ours (named in "
    "the last column); '‡': transcribed from the paper but not checked against a second copy. "
    "'not run': no record; '–': nothing published. The 'mean' row averages the categories."
)


def today_methods(data: ReportData) -> list[str]:
    """Methods recorded as today's family, and those with published numbers, in the published
    order (PatchCore, PaDiM, CS-Flow first)."""
    published = list(dict.fromkeys(published_today()["method"]))
    recorded = {r.method for r in data.records.values()
                if r.info.get("method_family") == TODAY}
    return published + sorted(recorded - set(published))


def _stat(values: pd.Series) -> tuple[float, float, int]:
    v = 100 * values.dropna().astype(float)
    return (float(v.mean()) if len(v) else math.nan, ci95(v) if len(v) > 1 else math.nan, len(v))


def _text(mean: float, ci: float) -> str:
    if math.isnan(mean):
        return NOT_RUN
    return f"{mean:.1f}" if math.isnan(ci) else f"{mean:.1f} ± {ci:.1f}"


def _published(method: str, dataset: str, category: str, ours_backbone: str | None) -> dict:
    table = published_today()
    row = table[(table["method"] == method) & (table["dataset"] == dataset)
                & (table["category"] == category)]
    if row.empty:
        return {"pub_image": math.nan, "pub_pixel": math.nan, "pub_pro": math.nan,
                "pub_backbone": "", "pub_checked": True, "pub_source": ""}
    r = row.iloc[0]
    return {"pub_image": r["image_auroc"], "pub_pixel": r["pixel_auroc"], "pub_pro": r["pro"],
            "pub_backbone": r["backbone"], "pub_checked": str(r["checked"]) == "yes",
            "pub_source": f"{r['source']}; {r['setting']}"}


def _pub_text(value: float, other_backbone: bool, checked: bool) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.1f}" + ("†" if other_backbone else "") + ("" if checked else "‡")


def today_table(data: ReportData, dataset: str) -> Table:
    methods = [DIFFERNET, *today_methods(data)]
    rows = ok_rows(data.select(dataset=dataset, shots=None, variant=None))
    rows = rows[rows["method"].isin(methods)] if not rows.empty else rows
    categories = sorted(set(rows["category"])) if not rows.empty else []
    if dataset == MVTEC:  # the published categories, whether run or not
        published = published_today()
        categories = sorted(set(categories) | set(published.loc[
            (published["dataset"] == dataset) & (published["category"] != MEAN), "category"]))
    elif dataset == MTD and not categories:
        categories = [MTD]
    shown = ([MEAN] if len(categories) > 1 else []) + categories
    long = []
    for method in methods:
        mine = rows[rows["method"] == method] if not rows.empty else rows
        backbone = next((b for b in mine["backbone"] if isinstance(b, str)), None) \
            if not mine.empty else None
        for category in shown:
            if category == MEAN:
                # Per seed, the mean over the categories run; then mean and CI over seeds.
                per_seed = mine.groupby("seed")[["auroc", "pixel_auroc", "pro"]].mean()
                cells, n_cats = per_seed, mine["category"].nunique()
            else:
                cells, n_cats = mine[mine["category"] == category], 1
            stats = {k: _stat(cells[k]) if len(cells) else (math.nan, math.nan, 0)
                     for k in ("auroc", "pixel_auroc", "pro")}
            pub = _published(method, dataset, category, backbone)
            long.append({
                "dataset": dataset, "method": method, "category": category,
                "image": stats["auroc"][0], "image_ci": stats["auroc"][1],
                "pixel": stats["pixel_auroc"][0], "pixel_ci": stats["pixel_auroc"][1],
                "pro": stats["pro"][0], "pro_ci": stats["pro"][1],
                "n_seeds": stats["auroc"][2], "n_categories": n_cats,
                "preset": ",".join(sorted(set(mine["preset"]))) if len(mine) else "",
                "backbone": backbone or "", **pub,
            })
    frame = pd.DataFrame(long)
    other = [bool(r.pub_backbone) and bool(r.backbone) and r.pub_backbone != r.backbone
             for r in frame.itertuples()]
    display = pd.DataFrame({
        "method": [data.label(m) for m in frame["method"]],
        "category": frame["category"],
        "image, ours": [_text(m, c) for m, c in zip(frame["image"], frame["image_ci"])],
        "image, published": [_pub_text(v, o, c) for v, o, c in
                             zip(frame["pub_image"], other, frame["pub_checked"])],
        "pixel, ours": [_text(m, c) for m, c in zip(frame["pixel"], frame["pixel_ci"])],
        "pixel, published": [_pub_text(v, o, c) for v, o, c in
                             zip(frame["pub_pixel"], other, frame["pub_checked"])],
        "PRO, ours": [_text(m, c) for m, c in zip(frame["pro"], frame["pro_ci"])],
        "PRO, published": [_pub_text(v, o, c) for v, o, c in
                           zip(frame["pub_pro"], other, frame["pub_checked"])],
        "seeds": [str(n) if n else "–" for n in frame["n_seeds"]],
        "backbone (ours / published)": [
            f"{b or '–'} / {p or '–'}" for b, p in zip(frame["backbone"], frame["pub_backbone"])],
    })
    notes = sorted({s for s in frame["pub_source"] if s})
    title = PAPER_DATASETS.get(dataset, dataset_title(dataset))
    used = rows if not rows.empty else data.frame.iloc[0:0]
    return Table(f"table_today_{dataset}", f"Today's methods on {title}", frame, display,
                 CAPTION, provenance(data, used), notes=[f"Published: {n}." for n in notes])


def today_tables(data: ReportData) -> list[Table]:
    """A table per dataset with records of today's methods (MTD, MVTec AD, then the others);
    the paper's datasets without any are named in one line, not shown as rows of 'not run'."""
    mine = set(today_methods(data))
    ran = [d for d in (MTD, MVTEC, *data.other_datasets())
           if np.any(data.select(dataset=d, shots=None, variant=None)["method"].isin(mine))]
    tables = [today_table(data, d) for d in ran]
    not_run = [PAPER_DATASETS[d] for d in (MTD, MVTEC) if d not in ran]
    if not not_run:
        return tables
    line = (f"Today's methods were not run on {' or '.join(not_run)} (no record); their "
            "published numbers are in bench/paper_tables/published_today.csv.")
    if tables:
        tables[0].notes.append(line)
        return tables
    display = pd.DataFrame({"dataset": [", ".join(not_run)], "today's methods": [NOT_RUN]})
    return [Table("table_today", "Today's methods", pd.DataFrame(columns=["dataset", "method"]),
                  display, line, provenance(data, data.frame.iloc[0:0]))]
