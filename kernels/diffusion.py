"""Diffusion kernels (DESIGN §1): forward noising, the reverse-step posterior and sampler, the training loss.

Per-step scalars come in small float32 tables ``coef[R, K]`` (blkit/ops/_coefficients.py). COEF selects how a
tile finds its row: 0 = one row for everything, 1 = row = segment (sample) of the tile row, 2 = row = element
index (a 1-D input whose samples are single elements, seen as one segment).
"""
import triton
import triton.language as tl

from .tiles import dense_tile, pack8, packed_tile, unpack8

EPS = tl.constexpr(1e-6)


@triton.jit
def _coef(coef_ptr, nseg, seg, idx, valid, column: tl.constexpr, K: tl.constexpr, COEF: tl.constexpr,
          PACKED: tl.constexpr, other: tl.constexpr):
    """Column ``column`` of the coefficient table, shaped to broadcast over the tile."""
    if COEF == 0:
        c = tl.load(coef_ptr + column)
    elif COEF == 1:
        c = tl.load(coef_ptr + seg * K + column, mask=seg < nseg, other=other)
        if PACKED:
            c = c[:, None, None]
        else:
            c = c[:, None]
    else:
        c = tl.load(coef_ptr + idx * K + column, mask=valid, other=other)
    return c


@triton.jit
def _sigmoid(l):
    return 1.0 / (1.0 + tl.exp(-l))


# --- q_sample ----------------------------------------------------------------------------------------------------
@triton.jit
def q_sample_kernel(x0_ptr, coef_ptr, rng_ptr, xt_ptr, res_ptr, flips_ptr, nseg, S, C, W, SW, chunks,
                    PACKED: tl.constexpr, COEF: tl.constexpr, ELEMENT_FLIPS: tl.constexpr, SB: tl.constexpr,
                    BLOCK: tl.constexpr):
    """x_t = (u < p), p = coef[row, x0 != 0]; residual = x_t ^ x0; flips[sample] += popcount(residual).

    Segments are samples; flips is zeroed by the caller and each tile adds one count per sample row
    (ELEMENT_FLIPS: a 1-D packed input whose samples are single elements, one add per element).
    """
    seed = tl.load(rng_ptr)
    offset = tl.load(rng_ptr + 1)
    if PACKED:
        seg, idx, valid, byte, byte_valid = packed_tile(nseg, S, C, W, SW, chunks, SB, BLOCK)
    else:
        seg, idx, valid = dense_tile(nseg, S, chunks, SB, BLOCK)
    x = (tl.load(x0_ptr + idx, mask=valid, other=0) != 0) & valid
    p0 = _coef(coef_ptr, nseg, seg, idx, valid, 0, 2, COEF, PACKED, 0.0)
    p1 = _coef(coef_ptr, nseg, seg, idx, valid, 1, 2, COEF, PACKED, 0.0)
    xt = (tl.rand(seed, offset + idx) < tl.where(x, p1, p0)) & valid
    res = xt ^ x
    if PACKED:
        tl.store(xt_ptr + byte, pack8(xt), mask=byte_valid)
        tl.store(res_ptr + byte, pack8(res), mask=byte_valid)
    else:
        tl.store(xt_ptr + idx, xt.to(tl.uint8), mask=valid)
        tl.store(res_ptr + idx, res.to(tl.uint8), mask=valid)
    if ELEMENT_FLIPS:
        tl.atomic_add(flips_ptr + idx, res.to(tl.int64), mask=valid)
    else:
        if PACKED:
            count = tl.sum(tl.sum(res.to(tl.int32), axis=2), axis=1)
        else:
            count = tl.sum(res.to(tl.int32), axis=1)
        tl.atomic_add(flips_ptr + seg, count.to(tl.int64), mask=seg < nseg)


# --- posterior / sample_step --------------------------------------------------------------------------------------
@triton.jit
def step_kernel(logits_ptr, uncond_ptr, x_ptr, mask_ptr, known_ptr, coef_ptr, rng_ptr, out_ptr,
                nseg, S, C, W, SW, chunks, temperature, cond_scale, uncond_scale,
                SAMPLE: tl.constexpr, PACKED: tl.constexpr, P_FLIP: tl.constexpr, GUIDED: tl.constexpr,
                MASKED: tl.constexpr, COEF: tl.constexpr, SB: tl.constexpr, BLOCK: tl.constexpr):
    """One reverse step (DESIGN §1.4, closed form), all in float32.

    l = logits / tau (guided: cond_scale * l - uncond_scale * uncond / tau); s = sigmoid(l).
    P_FLIP, coef (a, b0, c, d, final): f = (a s + b0) / (c s + d), pi = x ? 1 - f : f, phat = x ? 1 - s : s.
    not P_FLIP, coef (k', b', qh, ql, final): A1 = k' s + b', A0 = k' (1 - s) + b', Q1 = x ? qh : ql,
    Q0 = x ? ql : qh, pi = A1 Q1 / (A1 Q1 + A0 Q0), phat = s.
    SAMPLE: out = final ? (phat > 0.5) : (u < pi), then known where mask != 0; uint8 or packed like x.
    else:   out = final ? phat : pi, float32 dense.
    """
    if PACKED:
        seg, idx, valid, byte, byte_valid = packed_tile(nseg, S, C, W, SW, chunks, SB, BLOCK)
        x = unpack8(tl.load(x_ptr + byte, mask=byte_valid, other=0))
    else:
        seg, idx, valid = dense_tile(nseg, S, chunks, SB, BLOCK)
        x = tl.load(x_ptr + idx, mask=valid, other=0) != 0
    l = tl.load(logits_ptr + idx, mask=valid, other=0.0).to(tl.float32) / temperature
    if GUIDED:
        lu = tl.load(uncond_ptr + idx, mask=valid, other=0.0).to(tl.float32) / temperature
        l = cond_scale * l - uncond_scale * lu
    s = _sigmoid(l)
    c0 = _coef(coef_ptr, nseg, seg, idx, valid, 0, 5, COEF, PACKED, 0.0)
    c1 = _coef(coef_ptr, nseg, seg, idx, valid, 1, 5, COEF, PACKED, 0.0)
    c2 = _coef(coef_ptr, nseg, seg, idx, valid, 2, 5, COEF, PACKED, 0.0)
    c3 = _coef(coef_ptr, nseg, seg, idx, valid, 3, 5, COEF, PACKED, 1.0)
    final = _coef(coef_ptr, nseg, seg, idx, valid, 4, 5, COEF, PACKED, 0.0) != 0
    if P_FLIP:
        phat = tl.where(x, 1.0 - s, s)
        f = (c0 * s + c1) / (c2 * s + c3)
        pi = tl.where(x, 1.0 - f, f)
    else:
        phat = s
        a1 = c0 * s + c1
        a0 = c0 * (1.0 - s) + c1
        q1 = tl.where(x, c2, c3)
        q0 = tl.where(x, c3, c2)
        pi = a1 * q1 / (a1 * q1 + a0 * q0)
    if SAMPLE:
        seed = tl.load(rng_ptr)
        offset = tl.load(rng_ptr + 1)
        z = tl.where(final, phat > 0.5, tl.rand(seed, offset + idx) < pi)
        if MASKED:
            m = tl.load(mask_ptr + idx, mask=valid, other=0) != 0
            k = tl.load(known_ptr + idx, mask=valid, other=0) != 0
            z = tl.where(m, k, z)
        z = z & valid
        if PACKED:
            tl.store(out_ptr + byte, pack8(z), mask=byte_valid)
        else:
            tl.store(out_ptr + idx, z.to(tl.uint8), mask=valid)
    else:
        tl.store(out_ptr + idx, tl.where(final, phat, pi), mask=valid)


# --- diffusion_loss -----------------------------------------------------------------------------------------------
@triton.jit
def target_count_kernel(xt_ptr, x0_ptr, counts_ptr, nseg, S, chunks, P_FLIP: tl.constexpr, SB: tl.constexpr,
                        BLOCK: tl.constexpr):
    """counts[sample] += number of y = 1 (y = x_t ^ x0 for p_flip, else x0); counts zeroed by the caller."""
    seg, idx, valid = dense_tile(nseg, S, chunks, SB, BLOCK)
    y = tl.load(x0_ptr + idx, mask=valid, other=0) != 0
    if P_FLIP:
        y = y ^ (tl.load(xt_ptr + idx, mask=valid, other=0) != 0)
    count = tl.sum((y & valid).to(tl.int32), axis=1)
    tl.atomic_add(counts_ptr + seg, count, mask=seg < nseg)


@triton.jit
def _log1p_exp_neg_abs(l):
    """log(1 + exp(-|l|)) with log1p accuracy (the correction of Goldberg's log1p formula)."""
    e = tl.exp(-tl.abs(l))
    u = 1.0 + e
    d = u - 1.0
    return tl.where(d == 0.0, e, tl.log(u) * (e / tl.where(d == 0.0, 1.0, d)))


@triton.jit
def _pow(m, gamma):
    """m ** gamma for m > 0."""
    return tl.exp2(gamma * tl.log2(m))


@triton.jit
def _post(v, k_prev, b_prev, q1, q0):
    """Component 0 of the normalised posterior of x_{t-1} given P(x_0 = 1) = v, and its derivative by v."""
    n1 = (k_prev * v + b_prev) * q1
    n0 = (k_prev * (1.0 - v) + b_prev) * q0
    total = n1 + n0 + EPS
    return n1 / total, (k_prev * q1 * total - n1 * k_prev * (q1 - q0)) / (total * total)


@triton.jit
def loss_kernel(logits_ptr, xt_ptr, x0_ptr, coef_ptr, counts_ptr, loss_ptr, grad_ptr, partial_ptr,
                nseg, S, chunks, seg_size, gamma, aux_weight, grad_scale,
                P_FLIP: tl.constexpr, BALANCE: tl.constexpr, FOCAL: tl.constexpr, AUX: tl.constexpr,
                COEF: tl.constexpr, ELEMENTWISE: tl.constexpr, NEED_GRAD: tl.constexpr, SB: tl.constexpr,
                BLOCK: tl.constexpr):
    """Element loss tw * (alpha * bce * m**gamma + aux_weight * aux) and its derivative by the logit.

    coef (tw, k[t-1], b[t-1], keep[t], first) per sample; counts[sample] = number of y = 1 (BALANCE).
    ELEMENTWISE: the loss is stored per element; otherwise partial_ptr[pid] = the tile's sum (float32).
    NEED_GRAD: grad = grad_scale * d loss / d l (grad_scale = 1 / numel for the mean).
    """
    seg, idx, valid = dense_tile(nseg, S, chunks, SB, BLOCK)
    l = tl.load(logits_ptr + idx, mask=valid, other=0.0).to(tl.float32)
    x = (tl.load(xt_ptr + idx, mask=valid, other=0) != 0).to(tl.float32)
    x0 = (tl.load(x0_ptr + idx, mask=valid, other=0) != 0).to(tl.float32)
    if P_FLIP:
        y = tl.abs(x - x0)
    else:
        y = x0
    p = _sigmoid(l)
    dp = p * (1.0 - p)
    bce = tl.maximum(l, 0.0) - l * y + _log1p_exp_neg_abs(l)
    d_el = p - y
    if FOCAL:
        m_raw = 1.0 - (p * y + (1.0 - p) * (1.0 - y))
        m = tl.minimum(tl.maximum(m_raw, EPS), 1.0 - EPS)
        dm = tl.where((m_raw >= EPS) & (m_raw <= 1.0 - EPS), -(2.0 * y - 1.0) * dp, 0.0)
        mg = _pow(m, gamma)
        d_el = d_el * mg + bce * gamma * (mg / m) * dm
        bce = bce * mg
    if BALANCE:
        w = tl.load(counts_ptr + seg, mask=seg < nseg, other=0).to(tl.float32) / seg_size
        w = w[:, None]
        alpha = (1.0 - w) * y + w * (1.0 - y)
        bce = alpha * bce
        d_el = alpha * d_el
    tw = _coef(coef_ptr, nseg, seg, idx, valid, 0, 5, COEF, False, 0.0)
    loss = tw * bce
    grad = tw * d_el
    if AUX:
        k_prev = _coef(coef_ptr, nseg, seg, idx, valid, 1, 5, COEF, False, 0.0)
        b_prev = _coef(coef_ptr, nseg, seg, idx, valid, 2, 5, COEF, False, 0.0)
        keep = _coef(coef_ptr, nseg, seg, idx, valid, 3, 5, COEF, False, 0.0)
        first = _coef(coef_ptr, nseg, seg, idx, valid, 4, 5, COEF, False, 0.0) != 0
        q1 = keep * x + (1.0 - keep) / 2.0
        q0 = keep * (1.0 - x) + (1.0 - keep) / 2.0
        if P_FLIP:
            xhat = tl.where(x != 0, 1.0 - p, p)
            dxhat = tl.where(x != 0, -dp, dp)
        else:
            xhat = p
            dxhat = dp
        post_pred, dpost = _post(xhat, k_prev, b_prev, q1, q0)
        pred = tl.where(first, xhat, post_pred)
        dpred = tl.where(first, 1.0, dpost) * dxhat
        target, _ = _post(x0, k_prev, b_prev, q1, q0)
        target = tl.minimum(tl.maximum(target, 0.0), 1.0)
        pc = tl.minimum(tl.maximum(pred, EPS), 1.0 - EPS)
        aux = -(target * tl.log(pc) + (1.0 - target) * tl.log(1.0 - pc))
        inside = (pred >= EPS) & (pred <= 1.0 - EPS)
        d_aux = tl.where(inside, (pc - target) / (pc * (1.0 - pc)), 0.0) * dpred
        aux_tw = aux_weight * tw
        loss = loss + aux_tw * aux
        grad = grad + aux_tw * d_aux
    if ELEMENTWISE:
        tl.store(loss_ptr + idx, loss, mask=valid)
    else:
        total = tl.sum(tl.sum(tl.where(valid, loss, 0.0), axis=1), axis=0)
        tl.store(partial_ptr + tl.program_id(0), total)
    if NEED_GRAD:
        tl.store(grad_ptr + idx, grad * grad_scale, mask=valid)
