"""Saved models for deployment: ``graph`` writes a model saved by ``run --save-models`` as one
ONNX or OpenVINO graph from image to score (torch), ``runtime`` runs it (no torch)."""
