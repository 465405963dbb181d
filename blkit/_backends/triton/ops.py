"""Registrations of the Triton kernels (blkit.kernels); one launch per op call.

The API layer has validated and made every tensor contiguous. Here each op allocates its outputs, picks a
tile shape and launches its kernel; nothing reads tensor values on the host (no synchronisation), so every op
can be captured in a CUDA graph. Seed and offset stay in the device tensor ``rng``.

Launch configuration (defaults for an H100, not yet timed on one, see TILES): Philox and the step math
need registers, so the random and diffusion kernels take 1024 elements per program with 8 warps (4 per
thread, 128-bit fp32 loads, 30-60 registers per thread with ptxas for sm_90: high occupancy); the byte-wise
bit kernels take more elements per thread. CPU tensors run through the Triton interpreter
(TRITON_INTERPRET=1), which executes one program at a time with numpy: there the tiles are as large as
65536 elements so that a launch is a handful of vectorised programs.
"""
import math

import torch
import triton

from ..._registry import register
from ...kernels import bits as bit_kernels
from ...kernels import diffusion as diffusion_kernels
from ...kernels import random as random_kernels

NAME = "triton"

# (elements per program, num_warps) per kernel family on a GPU; the interpreter uses INTERPRETER_TILE.
TILES = {
    "xor": (4096, 8),  # xor_bits: 16 bytes per thread
    "bits": (2048, 8),  # pack_bits, unpack_bits, popcount
    "random": (1024, 8),  # bernoulli (dense and packed), binary_quantize
    "step": (1024, 8),  # posterior, sample_step, q_sample
    "loss": (1024, 8),  # diffusion_loss (and its per-sample target count)
}
INTERPRETER_TILE = 1 << 16
POPCOUNT_MAX_BD = 64  # bytes of the reduced dim per loop iteration (GPU)


def _config(kind: str, device: torch.device):
    if device.type == "cpu":  # the Triton interpreter
        return INTERPRETER_TILE, 1
    return TILES[kind]


def _pow2(n: int) -> int:
    return triton.next_power_of_2(max(int(n), 1))


def _tiling(nseg: int, units: int, tile: int):
    """(SB, BLOCK, chunks, grid) for nseg segments of ``units`` positions with about ``tile`` per program.

    Tile dims are powers of two."""
    block = min(_pow2(units), tile)
    sb = max(1, min(tile // block, _pow2(nseg)))
    chunks = triton.cdiv(units, block)
    return sb, block, chunks, triton.cdiv(nseg, sb) * chunks


def _as_bytes(x: torch.Tensor) -> torch.Tensor:
    """bool tensors are passed to kernels as uint8 (same storage)."""
    return x.view(torch.uint8) if x.dtype == torch.bool else x


def _numel(shape) -> int:
    return math.prod(shape)


# --- bits ---------------------------------------------------------------------------------------------------------
@register("pack_bits", NAME)
def pack_bits(bits):
    num_bits = bits.shape[-1]
    width = (num_bits + 7) // 8
    out = torch.empty((*bits.shape[:-1], width), dtype=torch.uint8, device=bits.device)
    rows = _numel(bits.shape[:-1])
    if rows and width:
        tile, warps = _config("bits", bits.device)
        sb, block, chunks, grid = _tiling(rows, width, tile // 8)
        bit_kernels.pack_kernel[(grid,)](_as_bytes(bits), out, rows, num_bits, width, chunks, SB=sb, BLOCK=block,
                                         num_warps=warps)
    return out


@register("unpack_bits", NAME)
def unpack_bits(packed, num_bits, dtype):
    out = torch.empty((*packed.shape[:-1], num_bits), dtype=dtype, device=packed.device)
    rows = _numel(packed.shape[:-1])
    if rows and num_bits:
        tile, warps = _config("bits", packed.device)
        sb, block, chunks, grid = _tiling(rows, num_bits, tile)
        bit_kernels.unpack_kernel[(grid,)](packed, _as_bytes(out), rows, num_bits, packed.shape[-1], chunks,
                                           SB=sb, BLOCK=block, num_warps=warps)
    return out


@register("xor_bits", NAME)
def xor_bits(a, b):
    bitwise = a.dtype in (torch.bool, torch.uint8)
    out = torch.empty(a.shape, dtype=a.dtype if bitwise else torch.uint8, device=a.device)
    n = a.numel()
    if n:
        tile, warps = _config("xor", a.device)
        block = min(_pow2(n), tile)
        bit_kernels.xor_kernel[(triton.cdiv(n, block),)](_as_bytes(a), _as_bytes(b), _as_bytes(out), n,
                                                         BITWISE=bitwise, BLOCK=block, num_warps=warps)
    return out


@register("popcount", NAME)
def popcount(packed, dim):
    shape = list(packed.shape)
    reduced = shape.pop(dim)
    out = torch.empty(shape, dtype=torch.int64, device=packed.device)
    outer, inner = _numel(packed.shape[:dim]), _numel(packed.shape[dim + 1:])
    q = outer * inner
    if q:
        tile, warps = _config("bits", packed.device)
        bd = min(_pow2(reduced), tile if packed.device.type == "cpu" else POPCOUNT_MAX_BD)
        bq = min(tile // bd, _pow2(q))
        bit_kernels.popcount_kernel[(triton.cdiv(q, bq),)](_as_bytes(packed), out, q, reduced, inner,
                                                           INNER_ONE=inner == 1, BD=bd, BQ=bq, num_warps=warps)
    return out


# --- random -------------------------------------------------------------------------------------------------------
@register("bernoulli", NAME)
def bernoulli(probs, rng, packed):
    n = probs.numel()
    if packed:
        num_bits = probs.shape[-1]
        width = (num_bits + 7) // 8
        out = torch.empty((*probs.shape[:-1], width), dtype=torch.uint8, device=probs.device)
        rows = _numel(probs.shape[:-1])
        if n:
            tile, warps = _config("random", probs.device)
            sb, block, chunks, grid = _tiling(rows, width, tile // 8)
            random_kernels.bernoulli_packed_kernel[(grid,)](probs, out, rng, rows, num_bits, width, chunks, SB=sb,
                                                            BLOCK=block, num_warps=warps)
        return out
    out = torch.empty(probs.shape, dtype=torch.uint8, device=probs.device)
    if n:
        tile, warps = _config("random", probs.device)
        block = min(_pow2(n), tile)
        random_kernels.bernoulli_kernel[(triton.cdiv(n, block),)](probs, out, rng, n, BLOCK=block, num_warps=warps)
    return out


@register("binary_quantize", NAME)
def binary_quantize(probs, rng, deterministic):
    out = torch.empty(probs.shape, dtype=probs.dtype, device=probs.device)
    n = probs.numel()
    if n:
        tile, warps = _config("random", probs.device)
        block = min(_pow2(n), tile)
        random_kernels.quantize_kernel[(triton.cdiv(n, block),)](probs, out, rng, n, DETERMINISTIC=deterministic,
                                                                 BLOCK=block, num_warps=warps)
    return out


# --- diffusion ----------------------------------------------------------------------------------------------------
def _segments(shape, per_sample: bool, packed: bool):
    """How a kernel walks a [B, ..., C] tensor: (nseg, S, SW, COEF mode).

    per_sample: each sample needs its own coefficients (or counts) -> one segment per sample (COEF 1); a 1-D
    packed input (samples are single elements, bytes span samples) is one segment with per-element rows
    (COEF 2). Otherwise the whole tensor is one segment (COEF 0).
    """
    n = _numel(shape)
    channels = shape[-1]
    width = (channels + 7) // 8
    if per_sample and not (packed and len(shape) == 1):
        nseg = shape[0]
        seg = n // nseg
        return nseg, seg, seg // channels * width, 1
    return 1, n, n // channels * width, 2 if per_sample else 0


@register("q_sample", NAME)
def q_sample(x0, coef, rng, packed):
    batch, channels = x0.shape[0], x0.shape[-1]
    width = (channels + 7) // 8
    shape = (*x0.shape[:-1], width) if packed else x0.shape
    x_t = torch.empty(shape, dtype=torch.uint8, device=x0.device)
    residual = torch.empty(shape, dtype=torch.uint8, device=x0.device)
    flips = torch.zeros((batch,), dtype=torch.int64, device=x0.device)
    if x0.numel():
        nseg, seg, seg_bytes, mode = _segments(x0.shape, True, packed)
        element_flips = mode == 2
        if mode == 2 and coef.shape[0] == 1:
            mode = 0
        elif mode == 1 and coef.shape[0] == 1:
            mode = 0
        tile, warps = _config("step", x0.device)
        if packed:
            sb, block, chunks, grid = _tiling(nseg, seg_bytes, tile // 8)
        else:
            sb, block, chunks, grid = _tiling(nseg, seg, tile)
        diffusion_kernels.q_sample_kernel[(grid,)](
            _as_bytes(x0), coef, rng, x_t, residual, flips, nseg, seg, channels, width, seg_bytes, chunks,
            PACKED=packed, COEF=mode, ELEMENT_FLIPS=element_flips, SB=sb, BLOCK=block, num_warps=warps)
    return x_t, residual, flips


def _step(logits, x_t, coef, rng, temperature, p_flip, uncond_logits, guidance_scale, mask, known, packed, sample):
    channels = logits.shape[-1]
    width = (channels + 7) // 8
    if sample:
        out = torch.empty(x_t.shape, dtype=torch.uint8, device=logits.device)
    else:
        out = torch.empty(logits.shape, dtype=torch.float32, device=logits.device)
    if not logits.numel():
        return out
    nseg, seg, seg_bytes, mode = _segments(logits.shape, coef.shape[0] > 1, packed)
    tile, warps = _config("step", logits.device)
    if packed:
        sb, block, chunks, grid = _tiling(nseg, seg_bytes, tile // 8)
    else:
        sb, block, chunks, grid = _tiling(nseg, seg, tile)
    guided = uncond_logits is not None
    masked = mask is not None
    diffusion_kernels.step_kernel[(grid,)](
        logits, uncond_logits if guided else logits, _as_bytes(x_t), _as_bytes(mask) if masked else x_t,
        _as_bytes(known) if masked else x_t, coef, rng if sample else coef, out,
        nseg, seg, channels, width, seg_bytes, chunks, float(temperature), 1.0 + float(guidance_scale),
        float(guidance_scale),
        SAMPLE=sample, PACKED=packed, P_FLIP=p_flip, GUIDED=guided, MASKED=masked, COEF=mode, SB=sb, BLOCK=block,
        num_warps=warps)
    return out


@register("posterior", NAME)
def posterior(logits, x_t, coef, temperature, p_flip, uncond_logits, guidance_scale, packed):
    return _step(logits, x_t, coef, None, temperature, p_flip, uncond_logits, guidance_scale, None, None, packed,
                 sample=False)


@register("sample_step", NAME)
def sample_step(logits, x_t, coef, rng, temperature, p_flip, uncond_logits, guidance_scale, mask, known, packed):
    return _step(logits, x_t, coef, rng, temperature, p_flip, uncond_logits, guidance_scale, mask, known, packed,
                 sample=True)


@register("diffusion_loss", NAME)
def diffusion_loss(logits, x_t, x0, coef, p_flip, balance, gamma, aux_weight, reduction, need_grad):
    """Value and d loss / d logits in one kernel (after a per-sample count of y = 1 when balance).

    Sums are per-program float32 partials, added in float64 by torch (deterministic, no float atomics)."""
    device, n = logits.device, logits.numel()
    grad = torch.empty(logits.shape if need_grad else (0,), dtype=torch.float32, device=device)
    elementwise = reduction == "none"
    if n == 0:
        if elementwise:
            return torch.empty(logits.shape, dtype=torch.float32, device=device), grad
        value = torch.zeros((), dtype=torch.float32, device=device)
        return (value / 0.0 if reduction == "mean" else value), grad  # the mean of nothing is nan
    per_sample = coef.shape[0] > 1
    nseg, seg, _, mode = _segments(logits.shape, per_sample or balance, False)
    if mode == 1 and not per_sample:
        mode = 0
    tile, warps = _config("loss", device)
    sb, block, chunks, grid = _tiling(nseg, seg, tile)
    xt_b, x0_b = _as_bytes(x_t), _as_bytes(x0)
    if balance:
        counts = torch.zeros((nseg,), dtype=torch.int32, device=device)
        diffusion_kernels.target_count_kernel[(grid,)](xt_b, x0_b, counts, nseg, seg, chunks, P_FLIP=p_flip, SB=sb,
                                                       BLOCK=block, num_warps=warps)
    else:
        counts = coef  # unused
    if elementwise:
        loss = torch.empty(logits.shape, dtype=torch.float32, device=device)
        partials = loss  # unused
    else:
        partials = torch.empty((grid,), dtype=torch.float32, device=device)
        loss = partials
    grad_scale = 1.0 / n if reduction == "mean" else 1.0
    diffusion_kernels.loss_kernel[(grid,)](
        logits, xt_b, x0_b, coef, counts, loss, grad, partials, nseg, seg, chunks, float(seg), float(gamma),
        float(aux_weight), grad_scale,
        P_FLIP=p_flip, BALANCE=balance, FOCAL=gamma != 0.0, AUX=aux_weight > 0.0, COEF=mode, ELEMENTWISE=elementwise,
        NEED_GRAD=need_grad, SB=sb, BLOCK=block, num_warps=warps)
    if not elementwise:
        total = partials.sum(dtype=torch.float64)
        loss = (total / n if reduction == "mean" else total).to(torch.float32)
    return loss, grad
