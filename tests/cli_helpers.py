"""What the command-line tests share: the CLI invoked in-process, the options of a tiny run, and
the check that a mistake ends in one line and exit code 2."""

from __future__ import annotations

from click.testing import CliRunner

from bench.cli import cli

TINY = ["--preset", "tiny", "--backbone", "random", "--no-progress"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_line_error(result) -> str:
    """The one ``error:`` line of a command that exited with 2, without a traceback."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]
