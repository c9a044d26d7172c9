"""Options shared by several commands, and the checks that run while they are parsed: a bad
``--device`` or a file where a folder belongs fails before any cell or data work."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from bench.errors import BenchError

log = logging.getLogger(__name__)


def setup_logging(verbose: bool) -> None:
    """Log lines on stderr. Off a terminal, ``bench.progress`` bars log plain lines through this
    handler at INFO (never carriage returns); on a terminal they are tqdm bars."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if verbose:
        _debug_on()


def _debug_on() -> None:
    from bench import __version__

    logging.getLogger().setLevel(logging.DEBUG)
    log.debug("differnet-bench %s, debug logging on: %s", __version__, " ".join(sys.argv[1:]))


def _verbose_after_command(_ctx, _param, value: bool) -> None:
    if value:  # the group has set logging up already
        _debug_on()


verbose_option = click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
# The same flag after the subcommand (`bench.py run -v ...`).
verbose_flag = click.option("-v", "--verbose", is_flag=True, expose_value=False,
                            callback=_verbose_after_command, help="Log debug messages.")


def csv_list(kind=str):
    """A callback parsing a comma-separated list of ``kind``."""

    def parse(_ctx, _param, value):
        if value is None:
            return None
        try:
            return [kind(v.strip()) for v in value.split(",") if v.strip()]
        except ValueError:
            raise click.BadParameter(f"expected a comma-separated list, got {value!r}") from None

    return parse


def shots_value(value: str):
    return None if value == "all" else int(value)


def _option_name(param: click.Parameter) -> str:
    return max(param.opts, key=len)


def folder(_ctx, param, value: Path | None) -> Path | None:
    """A folder that may not exist yet (it is created), but is not a file."""
    if value is not None and value.exists() and not value.is_dir():
        raise BenchError(f"{_option_name(param)} {value} is a file, not a folder; pass a folder "
                         "(it is created if missing) or move the file.")
    return value


def output_file(_ctx, param, value: Path | None) -> Path | None:
    """A file to write (replaced if it exists), not a folder."""
    if value is not None and value.is_dir():
        raise BenchError(f"{_option_name(param)} {value} is a folder; pass the name of a "
                         "file to write (in that folder or elsewhere).")
    return value


def device(_ctx, _param, value: str) -> str:
    """Check ``--device`` before anything is loaded: a device torch does not know, or one this
    machine lacks, is a one-line error rather than a failure in every cell."""
    if value == "cpu":
        return value
    import torch

    try:
        parsed = torch.device(value)
    except (RuntimeError, ValueError):
        raise BenchError(f"unknown device {value!r}; use cpu, cuda or cuda:N (N a GPU index).") from None
    if parsed.type == "cpu":
        return value
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise BenchError(f"--device {value}: torch sees no CUDA GPU on this machine; use "
                             "--device cpu, or install a CUDA build of torch.")
        if parsed.index is not None and parsed.index >= count:
            raise BenchError(f"--device {value}: this machine has {count} CUDA GPU(s), "
                             f"cuda:0 to cuda:{count - 1}; pick one of them.")
        return value
    if parsed.type == "mps" and torch.backends.mps.is_available():
        return value
    raise BenchError(f"--device {value}: not available here; use cpu or cuda[:N].")


def validation(_ctx, _param, value: str | None) -> str | None:
    """``--validation``: synthetic, or synthetic-<mix> (checked here, kept as given)."""
    if value is not None:
        from bench.data.validation import resolve_validation

        resolve_validation(value)
    return value


def results_dir_option(func):
    return click.option("--results-dir", type=click.Path(path_type=Path), default=Path("results"),
                        show_default=True, callback=folder,
                        help="Where result records are kept.")(func)


executor_options = [
    click.option("--executor", type=click.Choice(["local", "slurm", "submitit-local"]),
                 help="local (this machine; default), slurm (a SLURM job array through "
                      "submitit), submitit-local (the same jobs as processes here)."),
    click.option("--jobs", type=click.IntRange(min=1),
                 help="local: worker processes sharing the cells (each its own share of CPU "
                      "threads, or its own GPU when several are visible)."),
    click.option("--slurm-partition", help="SLURM partition."),
    click.option("--slurm-time", type=click.IntRange(min=1),
                 help="Minutes per cell's task; a task near its limit requeues and resumes."),
    click.option("--slurm-gpus", type=click.IntRange(min=0), help="GPUs per task."),
    click.option("--slurm-cpus", type=click.IntRange(min=1), help="CPUs per task."),
    click.option("--slurm-mem", type=click.IntRange(min=1), help="Memory per task, GB."),
    click.option("--slurm-array-parallelism", type=click.IntRange(min=1),
                 help="Array tasks running at once."),
    click.option("--slurm-sbatch", multiple=True,
                 help="An extra sbatch option as key=value, e.g. account=abc (repeatable)."),
    click.option("--lease-timeout", type=click.FloatRange(min=1),
                 help="Seconds after which a silent runner's claim on a cell (on another host) "
                      "is taken over [default: 600]."),
]


def executor_settings(defaults: dict, options: dict):
    """``ExecutorOptions`` from a suite's ``[executor]`` table and the command's options
    (which are removed from ``options``)."""
    from bench.run.executors import ExecutorOptions

    values = dict(defaults)
    names = {"executor": "kind", "jobs": "jobs", "slurm_partition": "partition",
             "slurm_time": "time_min", "slurm_gpus": "gpus", "slurm_cpus": "cpus",
             "slurm_mem": "mem_gb", "slurm_array_parallelism": "array_parallelism",
             "lease_timeout": "lease_timeout"}
    for option, name in names.items():
        value = options.pop(option, None)
        if value is not None:
            values[name] = value
    extra = options.pop("slurm_sbatch", ())
    if extra:
        values["sbatch"] = {**values.get("sbatch", {}), **_key_values(extra, "--slurm-sbatch")}
    try:
        return ExecutorOptions(**values)
    except TypeError as err:
        raise BenchError(f"the suite's [executor] table has an unknown key ({err}); its keys are "
                         "kind, jobs, partition, time_min, gpus, cpus, mem_gb, "
                         "array_parallelism, sbatch, lease_timeout.") from None


def _key_values(items, option: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BenchError(f"{option} expects key=value, got {item!r}; for example "
                             f"{option} account=abc.")
        out[key.strip().lstrip("-")] = value.strip()
    return out


def run_options(func):
    """The options of every command that runs cells (run, fewshot, ablation)."""
    return _apply(func, [*_cell_options(), *_output_options(), *executor_options, verbose_flag])


def select_options(func):
    """run's options without the ones select has no use for (it keeps no models and runs in
    this process): what a cell is, where data and results live."""
    return _apply(func, [*_cell_options(), verbose_flag])


def _apply(func, options: list):
    for option in reversed(options):
        func = option(func)
    return func


def _cell_options() -> list:
    return [
        click.option("--methods", callback=csv_list(), help="Comma-separated method names."),
        click.option("--categories", callback=csv_list(), help="Comma-separated categories."),
        click.option("--seeds", callback=csv_list(int), help="Comma-separated seeds, e.g. 0,1,2."),
        click.option("--preset", help="paper (default), cpu (best on a 2-core CPU), fast (a few "
                     "minutes on a CPU), tiny (tests), code; a method without it runs the one "
                     "it falls back to (cpu, tiny -> fast -> paper; code -> paper)."),
        click.option("--backbone", help="For every method on a backbone: alexnet, efficientnet_lite0 "
                     "(offline), wide_resnet50_2, efficientnet_b5 or random (tests); default: "
                     "each method's paper's."),
        click.option("--data-root", type=click.Path(path_type=Path), help="Folder of dataset categories."),
        results_dir_option,
        click.option("--cache-dir", type=click.Path(path_type=Path), callback=folder,
                     help="Decoded images and features shared between runs "
                          "[default: <results-dir>/.cache]."),
        click.option("--device", default="cpu", show_default=True, callback=device,
                     help="cpu, cuda or cuda:N."),
        click.option("--split-variant", "--mtd-split", "split_variant",
                     help="How the dataset's train/test split is drawn, for datasets that offer "
                          "several (MTD: authors, the authors' 761 training files [default], or "
                          "random, a seeded 80/20 split); `list` shows them."),
        click.option("--validation", callback=validation,
                     help="synthetic: hold out 20 % of the training images and pair them with "
                          "synthetic defects (the default recipe mix, v2; synthetic-v1 names "
                          "the first one): each cell also reports a validation AUROC, no test "
                          "image involved."),
        click.option("--set", "set_", multiple=True,
                     help="Override a config field: --set epochs=10 "
                          "(`list --fields METHOD` shows the fields)."),
        click.option("--progress/--no-progress", default=True, show_default=True),
        click.option("--localize", is_flag=True,
                     help="Also store localization maps of the test images (methods that have them)."),
    ]


def _output_options() -> list:
    return [
        click.option("--save-models", is_flag=True,
                     help="Keep each fitted model under <results-dir>/models/ for `predict` "
                          "(every method whose score of an image depends on that image alone)."),
        click.option("--threshold-fpr", type=click.FloatRange(0, 1, min_open=True, max_open=True),
                     default=0.05, show_default=True,
                     help="With --save-models and --validation: the saved decision threshold "
                          "lets this share of held-out normal images through as anomalous."),
        click.option("--check/--no-check", "check_data", default=True, show_default=True,
                     help="Check the data first (bench.py check: copies, leakage, test images "
                          "unlike the training normals, masks), stored per data fingerprint."),
        click.option("--strict", is_flag=True,
                     help="Stop before any cell (exit 2) when the data check finds an error."),
        click.option("--track", type=click.Choice(["mlflow", "none"]),
                     help="Also log every finished cell as a run of an experiment tracker "
                          "(mlflow: MLFLOW_TRACKING_URI, else <results-dir>/mlflow/); none "
                          "switches off a suite's [tracking] table."),
    ]


def parse_set(values: tuple[str, ...]) -> dict:
    """--set key=value pairs, values parsed as TOML scalars/arrays (e.g. epochs=10); a value
    TOML does not parse stays text (score=nll)."""
    import tomllib

    out = {}
    for item in values:
        if "=" not in item:
            raise BenchError(f"--set expects key=value, got {item!r}; for example --set epochs=10.")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = raw
    return out
