"""An installed wheel (no ``-e``) carries what the code reads at run time: the paper's tables,
the suites, the report's templates. Built and installed into a fresh venv, it renders a report
whose Table 2 shows the paper's numbers."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(*args: str | Path, cwd: Path) -> str:
    out = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    assert out.returncode == 0, f"{' '.join(map(str, args))} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def test_an_installed_wheel_renders_the_papers_table2(tmp_path):
    # A clean copy of the sources: an in-tree build's leftovers (build/) would hide what the
    # package data leaves out.
    source = tmp_path / "source"
    anywhere = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__",
                                      ".*cache")

    def ignore(folder: str, names: list[str]) -> set[str]:
        # Run outputs at the top only: bench/data/ is a package the wheel must carry.
        top = {"data", "results", "reports"} if Path(folder) == REPO else set()
        return set(anywhere(folder, names)) | (top & set(names))

    shutil.copytree(REPO, source, ignore=ignore)
    wheels = tmp_path / "wheels"
    # Offline: no build isolation (setuptools is installed), no dependencies fetched.
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", wheels, source, cwd=tmp_path)
    (wheel,) = wheels.glob("differnet_bench-*.whl")
    venv = tmp_path / "venv"
    # The venv sees the packages of the environment the tests run in (torch, pandas...), never
    # the system Python's: a plain path line in a .pth file adds that site-packages folder
    # without running its own .pth files, so the editable install's finder stays out and the
    # venv's bench is the wheel's.
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    (site_packages,) = venv.glob("lib/python*/site-packages")
    (site_packages / "_tested_environment.pth").write_text(
        "\n".join(dict.fromkeys(site.getsitepackages())) + "\n")
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
        "-q", wheel, cwd=tmp_path)
    code = (
        "import bench, pathlib, sys; from bench.report import build_report; "
        "print(bench.__file__); r = build_report(pathlib.Path('results'), pathlib.Path('out')); "
        "print(r.markdown)"
    )
    lines = run(python, "-c", code, cwd=tmp_path).splitlines()  # not the repository: no -e
    assert Path(lines[0]).is_relative_to(venv), lines[0]
    report = Path(tmp_path / lines[-1]).read_text()
    table2 = report[report.index("Table 2: Magnetic Tile Defects"):]
    table2 = table2[:table2.index("\n#")]
    for paper_number in ("75.5", "76.6", "57.2", "46.4", "58.7", "80.0", "97.7"):
        assert paper_number in table2
