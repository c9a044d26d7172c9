"""``bench.py export``: a saved model as an ONNX or OpenVINO graph for deployment."""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.options import folder, verbose_flag


@click.command()
@click.option("--model", "model_path", required=True, type=click.Path(path_type=Path),
              help="A model file from run --save-models (<results-dir>/models/<cell>.pt).")
@click.option("--format", "fmt", type=click.Choice(["onnx", "openvino"]), default="onnx",
              show_default=True, help="onnx (ONNX Runtime) or openvino (OpenVINO IR).")
@click.option("--out", type=click.Path(path_type=Path), required=True, callback=folder,
              help="Folder for the graph, model.json and the run's test transforms.")
@verbose_flag
def export(model_path: Path, fmt: str, out: Path) -> None:
    """Write a saved model as one graph from image to score (DifferNet, ocsvm, knn), with a
    model.json giving its input size, normalisation and threshold; `predict --model OUT` runs
    it without torch."""
    from bench.deploy.export.graph import export_model

    export_model(model_path, fmt, out)
    click.echo(f"wrote {fmt} model to {out} (python bench.py predict --model {out} IMAGES)")
