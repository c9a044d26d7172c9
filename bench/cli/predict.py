"""``bench.py predict``: score new images with a model saved by ``run --save-models``."""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.options import device, folder, output_file, verbose_flag

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def image_paths(inputs: tuple[Path, ...]) -> list[Path]:
    from bench.errors import BenchError

    paths: list[Path] = []
    for item in inputs:
        if item.is_dir():
            paths += sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif item.is_file():
            paths.append(item)
        else:
            raise BenchError(f"{item} does not exist; pass image files or folders of images.")
    if not paths:
        raise BenchError("no images found (.png, .jpg, .bmp, .tif) in "
                         f"{', '.join(map(str, inputs))}; pass image files or folders.")
    return paths


@click.command()
@click.option("--model", "model_path", required=True, type=click.Path(path_type=Path),
              help="A model file from run --save-models (<results-dir>/models/<cell>.pt), or a "
                   "folder written by export (runs without torch).")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), callback=output_file,
              help="Write the CSV here instead of printing it.")
@click.option("--maps", type=click.Path(path_type=Path), callback=folder,
              help="Also write each image's localization map as a PNG into this folder.")
@click.option("--device", default="cpu", show_default=True, callback=device)
@click.option("--progress/--no-progress", default=True, show_default=True)
@verbose_flag
def predict(model_path: Path, images: tuple[Path, ...], out: Path | None, maps: Path | None,
            device: str, progress: bool) -> None:
    """Score IMAGES (files or folders): a CSV of path, score (higher = more anomalous),
    anomalous (above the threshold saved with the model) and error."""
    paths = image_paths(images)
    if model_path.is_dir():  # a folder written by export
        model, table = predict_exported(model_path, paths, maps, device, progress)
    else:
        from bench.deploy.models import load_model
        from bench.deploy.models import predict as score_images

        model = load_model(model_path, device)
        table = score_images(model, paths, show_progress=progress)
    if model.threshold is None:
        click.echo("note: this model has no threshold (it was saved without a --validation "
                   "split), so 'anomalous' is empty.", err=True)
    if out is not None:
        table.to_csv(out, index=False)
        click.echo(f"wrote {len(table)} rows to {out}", err=True)
    else:
        click.echo(table.to_csv(index=False), nl=False)
    if maps is not None:
        from bench.deploy.models import write_maps

        written = write_maps(model, [Path(p) for p, e in zip(table["path"], table["error"])
                                     if not e], maps)
        click.echo(f"wrote {written} maps to {maps}", err=True)
    errors = [e for e in table["error"] if e]
    for message in errors:
        click.echo(f"error: {message}", err=True)
    if errors:  # the others were scored; say so in the exit code as run does for failed cells
        raise SystemExit(1)


def predict_exported(folder: Path, paths: list[Path], maps: Path | None, device: str,
                     progress: bool):
    """An exported model's table, through ONNX Runtime or OpenVINO (torch is never imported)."""
    from bench.deploy.export.runtime import load_exported
    from bench.deploy.prediction import score_table
    from bench.errors import BenchError

    if maps is not None:
        raise BenchError("an exported model gives scores only; drop --maps, or pass the .pt "
                         "model it was exported from.")
    if device != "cpu":
        raise BenchError(f"an exported model runs on the CPU (ONNX Runtime or OpenVINO); drop "
                         f"--device {device}.")
    model = load_exported(folder)
    batch = max(1, 64 // model.meta["transforms"]["n_test_transforms"])
    return model, score_table(paths, model.score, model.threshold, batch, progress)
