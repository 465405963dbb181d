"""Triton kernels of blkit, installed as ``blkit.kernels``.

Importing this package imports Triton; callers guard the import (see blkit._backends.triton).

  tiles      tile indexing shared by the kernels (segments x positions, dense and bit-packed)
  bits       pack_bits, unpack_bits, xor_bits, popcount
  random     the Philox stream (uniform_kernel), bernoulli (dense and packed), binary_quantize
  diffusion  q_sample, posterior / sample_step (one kernel), diffusion_loss (target count + value/gradient)

Launch code (output allocation, tile shapes, num_warps) lives in blkit/_backends/triton/ops.py.
"""
