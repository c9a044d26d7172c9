"""Running cells: suites planned into cells (``suites``), what a cell needs before it runs and
whether it is already recorded on the same data (``cells``), one cell and the run loop
(``runner``), where cells run (``executors``), model selection on validation data
(``selection``), experiment tracking (``tracking``), a cell's peak memory (``usage``) and the
pixel metrics of its maps (``pixel_metrics``)."""
