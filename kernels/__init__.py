"""Triton kernels of blkit, installed as ``blkit.kernels``.

Importing this package imports Triton; callers guard the import (see blkit.backends.triton).
"""
