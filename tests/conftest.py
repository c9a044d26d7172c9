"""Shared fixtures: small synthetic datasets, generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.data.synthetic import make_synthetic

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MTD_ZIP = SHARED / "datasets" / "mtd" / "Magnetic-tile-defect-datasets.-master.zip"


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """Two synthetic categories, 20 training and 8 + 16 test images each, 64 pixels."""
    return make_synthetic(tmp_path_factory.mktemp("synthetic"), n_train=20, n_test_good=8,
                          n_test_defect=8, size=64)
