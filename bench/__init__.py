"""differnet-bench: reproduce DifferNet (WACV 2021) and compare defect detectors fairly."""

from bench.errors import BenchError

__all__ = ["BenchError"]
__version__ = "0.1.0"
