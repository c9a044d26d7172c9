"""The command line: parse, call into ``bench``, print.

Errors a user can fix print one line and exit 2, whether they are found while parsing (a bad
``--device``, a file where a folder belongs) or later; failed cells make ``run`` exit 1 after
the others have run, and so does a full disk, which stops the run (one line naming the folder);
Ctrl-C exits 130 and says how to resume.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bench import __version__
from bench.cli.agreement import agreement_command
from bench.cli.check import check_command
from bench.cli.commands import download, list_, localize, report
from bench.cli.compare import compare
from bench.cli.export import export
from bench.cli.options import setup_logging, verbose_option
from bench.cli.predict import predict
from bench.cli.results import results
from bench.cli.run import ablation, fewshot, run
from bench.cli.select import select_command
from bench.cli.verify import verify
from bench.errors import BenchError
from bench.store.atomic import DISK_ERRNOS, DiskFullError

INTERRUPTED = "interrupted; rerun the same command to resume"


class CommandLineError(click.ClickException):
    """What click prints and exits with for a BenchError or an interrupt: one line."""

    def __init__(self, message: str, exit_code: int, prefix: str = "error: "):
        super().__init__(message)
        self.exit_code, self.prefix = exit_code, prefix

    def show(self, file=None) -> None:
        click.echo(f"{self.prefix}{self.message}", err=True)


class BenchGroup(click.Group):
    """Turns the errors of any subcommand, including its option callbacks, into one line."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DiskFullError as err:  # an ordinary failure of a run: the same command resumes
            raise CommandLineError(str(err), 1) from None
        except OSError as err:
            # A full, over-quota or read-only folder met by a write outside bench.store.atomic (a
            # folder made, a file moved): the same one line, not a traceback.
            if err.errno not in DISK_ERRNOS or not err.filename:
                raise
            full = DiskFullError(Path(err.filename).parent, None, err)
            raise CommandLineError(str(full), 1) from None
        except BenchError as err:
            raise CommandLineError(str(err), 2) from None
        except KeyboardInterrupt:
            # Finished cells are recorded and a download resumes, so running again continues.
            if sys.stderr.isatty():
                click.echo(err=True)  # past the terminal's ^C
            raise CommandLineError(INTERRUPTED, 130, prefix="") from None


@click.group(cls=BenchGroup)
@click.version_option(__version__, "--version", prog_name="differnet-bench",
                      message="%(prog)s %(version)s")
@verbose_option
def cli(verbose: bool) -> None:
    """differnet-bench: reproduce DifferNet (WACV 2021) and compare defect detectors."""
    setup_logging(verbose)


for command in (download, check_command, run, fewshot, ablation, select_command, agreement_command,
                results,
                compare, list_, report, localize, predict, export, verify):
    cli.add_command(command)


def main() -> None:
    cli()


__all__ = ["cli", "main"]
