"""The HTML report in a real browser: headless Chromium loads report.html and every embedded
figure decodes (naturalWidth > 0); a screenshot is taken.

Needs the Debian package ``chromium`` (skipped with a reason where it is missing). No
Selenium: a small script is added to a copy of the page that writes each image's state into
the DOM, and ``chromium --dump-dom`` prints it. The store is made of hand-made fixture records
(see test_report.py) plus a fixture gradient map and image, so no training runs here.
Set ``REPORT_SCREENSHOT=/path.png`` to keep the screenshot.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_report import fixture_record, fixture_records

from bench.report import build_report
from bench.store.results import ResultsStore

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CHECK = """<script>
window.addEventListener("load", function () {
  var out = Array.from(document.images).map(function (img) {
    return {alt: img.alt, complete: img.complete, width: img.naturalWidth,
            height: img.naturalHeight};
  });
  var pre = document.createElement("pre");
  pre.id = "img-check";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium(tmp_path: Path, *args: str) -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          check=False, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("browser")
    store = ResultsStore(base / "results")
    for record in fixture_records():
        store.write(record)
    # A localization run: one defective image of a fixture category, and its gradient map.
    root = base / "data"
    (root / "grid" / "test" / "crack").mkdir(parents=True)
    yy, xx = np.mgrid[0:64, 0:64]
    image = (96 + 60 * np.sin(xx / 3.0)).astype(np.uint8)
    image[30:34, 10:50] = 250
    Image.fromarray(np.stack([image] * 3, axis=-1)).save(root / "grid/test/crack/000.png")
    record = fixture_record("mvtec", "grid", "differnet", 0, test_files=["good/000.png",
                            "crack/000.png"], n_good=1, n_bad=1)
    record.cell_id += "-maps"
    record.seed = 5
    record.info["root"] = str(root)
    maps = np.stack([np.zeros((64, 64)), np.exp(-((yy - 32) ** 2 + (xx - 30) ** 2) / 60.0)])
    store.write_maps(record.cell_id, maps, record.test_files)
    store.write(record)
    out = base / "out"
    build_report(base / "results", out)
    return out / "report.html"


def test_every_figure_loads_in_chromium(report, tmp_path):
    page = report.read_text()
    assert page.count("<img") == 4
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("</body>", CHECK + "</body>"))
    dom = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", checked.as_uri())
    found = re.search(r'<pre id="img-check">(.*?)</pre>', dom, re.DOTALL)
    assert found, "the check script did not run"
    images = json.loads(html.unescape(found.group(1)))
    assert len(images) == 4
    for image in images:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
    assert "Figure 8" in " ".join(i["alt"] for i in images)


def test_screenshot(report, tmp_path):
    shot = Path(os.environ.get("REPORT_SCREENSHOT", tmp_path / "report_screenshot.png"))
    chromium(tmp_path, "--hide-scrollbars", "--window-size=1400,4000", f"--screenshot={shot}",
             report.as_uri())
    with Image.open(shot) as img:
        assert img.size == (1400, 4000)
        assert np.asarray(img.convert("L")).std() > 5  # not a blank page
    print(f"screenshot: {shot}")
