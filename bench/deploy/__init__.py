"""Trained models outside the grid: saved models and ``predict`` (``models``), the table
``predict`` prints (``prediction``), and one ONNX / OpenVINO graph from image to score
(``export``)."""
