"""A real `python bench.py run` in a subprocess: Ctrl-C exits 130 with one line saying how to
resume, and with stderr a pipe progress is logged as plain lines, never carriage returns."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.cli import INTERRUPTED

REPO = Path(__file__).resolve().parents[1]


def bench_run(synthetic_root: Path, results: Path, *args: str) -> list[str]:
    return [sys.executable, str(REPO / "bench.py"), "run", "--suite", "smoke",
            "--data-root", str(synthetic_root), "--results-dir", str(results),
            "--preset", "tiny", "--backbone", "random", *args]


def test_ctrl_c_exits_130_and_says_how_to_resume(synthetic_root, tmp_path):
    cmd = bench_run(synthetic_root, tmp_path, "--methods", "differnet", "--set", "epochs=100000",
                    "--no-progress")
    # A shell's background job ignores SIGINT and a child inherits that: give the run the
    # default disposition, as a terminal's foreground job has, whatever started pytest.
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    try:
        for line in proc.stderr:  # wait until a cell is training
            seen.append(line)
            if "bench.run.runner: run " in line:
                break
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=180)
    finally:
        proc.kill()  # a run that ignored the signal must not train on after the test
    stderr = "".join(seen) + rest
    assert proc.returncode == 130, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines[-1] == INTERRUPTED == "interrupted; rerun the same command to resume"
    assert sum("interrupted" in line for line in lines) == 1 and "Traceback" not in stderr


def test_progress_off_a_terminal_is_plain_log_lines(synthetic_root, tmp_path):
    # 1-NN's features go through bench.progress; DifferNet's and the image baselines' training
    # loops still call tqdm directly (being converted), so they are not run here.
    done = subprocess.run(bench_run(synthetic_root, tmp_path, "--methods", "knn", "--progress"),
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr
    assert any(line.startswith("INFO bench.progress: train features: 80/80")
               for line in done.stderr.splitlines()), done.stderr
