"""Benchmark suite of blkit (``blkit bench``): ops and end-to-end cases against the authors' program."""
from .runner import run

__all__ = ["run"]
