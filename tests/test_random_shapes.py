"""Property tests over random shapes, dtypes and memory layouts (DESIGN §1-3), on every available backend.

Shapes are ``[*lead, C]`` with 0 to 3 leading dims of size 1..5 (sometimes one of them 0) and C in 1..130;
inputs are often non-contiguous views (transposed or strided) with the same logical shape. Oracles are numpy
(bit packing) and the reference Philox stream (``blkit._backends.reference.ops.uniforms``), so each test needs
only the op under test from the backend.
"""
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import blkit
from blkit import ops
from blkit._backends.reference.ops import uniforms

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

BIT_DTYPES = [torch.bool, torch.uint8, torch.float32]
LOGIT_DTYPES = [torch.float32, torch.float16, torch.bfloat16]
PROB_DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
LAYOUTS = ["contiguous", "transposed", "strided_last", "strided_first"]
T = 16
SCHEDULES = {kind: blkit.NoiseSchedule(T, kind) for kind in ("linear", "cos", "sigmoid")}
U64 = 1 << 64


# --- strategies and builders -------------------------------------------------------------------------------------

@st.composite
def shapes(draw, min_lead=0):
    """[*lead, C]: 0..3 leading dims of size 1..5, one of them occasionally 0; C in 1..130."""
    lead = draw(st.lists(st.integers(1, 5), min_size=min_lead, max_size=3))
    if lead and draw(st.integers(0, 7)) == 0:
        lead[draw(st.integers(0, len(lead) - 1))] = 0
    return (*lead, draw(st.integers(1, 130)))


def numel(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def junk(dtype):
    if dtype == torch.bool:
        return True
    if dtype.is_floating_point:
        return float("nan")
    return torch.iinfo(dtype).max


def relayout(x: torch.Tensor, layout: str) -> torch.Tensor:
    """A view equal to ``x`` (same logical shape and values) in another memory layout; gaps hold junk values."""
    if layout == "transposed" and x.dim() > 1:
        dims = list(range(x.dim()))[::-1]
        y = x.permute(*dims).contiguous().permute(*dims)
    elif layout == "strided_last":
        buf = torch.full((*x.shape[:-1], 2 * x.shape[-1]), junk(x.dtype), dtype=x.dtype, device=x.device)
        buf[..., ::2] = x
        y = buf[..., ::2]
    elif layout == "strided_first" and x.dim() > 1:
        buf = torch.full((2 * x.shape[0], *x.shape[1:]), junk(x.dtype), dtype=x.dtype, device=x.device)
        buf[::2] = x
        y = buf[::2]
    else:
        y = x.clone()
    assert y.shape == x.shape
    return y


def random_bits(rng, shape, dtype, device) -> torch.Tensor:
    """Dense binary input; uint8 and float use several nonzero values (any nonzero counts as 1), float uses -0.0."""
    if dtype == torch.bool:
        a = rng.random(shape) < 0.5
    elif dtype == torch.uint8:
        a = rng.choice(np.array([0, 0, 0, 1, 1, 2, 128, 255], np.uint8), size=shape)
    else:
        a = rng.choice(np.array([0.0, -0.0, 0.0, 1.0, 1.0, 0.5, -2.0], np.float32), size=shape)
    return torch.from_numpy(np.ascontiguousarray(a)).to(device=device, dtype=dtype)


def random_logits(rng, shape, dtype, device, scale) -> torch.Tensor:
    a = np.clip(rng.standard_normal(shape) * scale, -6e4, 6e4).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(a)).to(device=device, dtype=dtype)


def random_probs(rng, shape, dtype, device) -> torch.Tensor:
    a = rng.random(shape)
    r = rng.random(shape)
    a[r < 0.1] = 0.0
    a[(r >= 0.1) & (r < 0.2)] = 1.0
    return torch.from_numpy(np.ascontiguousarray(a)).to(device=device, dtype=dtype)


def np_pack(x: torch.Tensor) -> np.ndarray:
    """The oracle of DESIGN §3: numpy.packbits(x != 0, axis=-1, bitorder="little")."""
    return np.packbits(x.detach().cpu().numpy() != 0, axis=-1, bitorder="little")


def to_torch(a: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).to(device)


def signed(v: int) -> int:
    return v - U64 if v >= 1 << 63 else v


def stream_bernoulli(probs: torch.Tensor, seed: int, offset: int) -> torch.Tensor:
    u = uniforms(torch.tensor([signed(seed), signed(offset)], dtype=torch.int64), tuple(probs.shape))
    return (u < probs.detach().cpu().float()).to(torch.uint8)


def assert_equal(actual: torch.Tensor, expected, what: str):
    if isinstance(expected, (np.ndarray, np.generic)):
        expected = torch.from_numpy(np.array(expected, order="C"))
    actual = actual.detach().cpu()
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    if not torch.equal(actual, expected):
        bad = (actual != expected).nonzero()
        raise AssertionError(f"{what}: {bad.shape[0]} of {actual.numel()} elements differ, first at {bad[:4].tolist()}")


def rng_from(data) -> np.random.Generator:
    return np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="data seed"))


def draw_seed_offset(data, n: int):
    seed = data.draw(st.one_of(st.integers(0, 2**32), st.integers(0, U64 - 1)), label="seed")
    offset = data.draw(st.one_of(st.integers(0, 2**33), st.just(U64 - max(n, 1))), label="offset")
    return seed, offset


# --- bit ops -----------------------------------------------------------------------------------------------------

@SETTINGS
@given(data=st.data())
def test_pack_bits_matches_numpy(target, data):
    target.require("pack_bits")
    rng = rng_from(data)
    shape = data.draw(shapes(), label="shape")
    dtype = data.draw(st.sampled_from(BIT_DTYPES), label="dtype")
    layout = data.draw(st.sampled_from(LAYOUTS), label="layout")
    x = random_bits(rng, shape, dtype, target.device)
    out = ops.pack_bits(relayout(x, layout), backend=target.backend)
    assert_equal(out, np_pack(x), "pack_bits")


@SETTINGS
@given(data=st.data())
def test_unpack_bits_inverts_packing(target, data):
    target.require("unpack_bits")
    rng = rng_from(data)
    shape = data.draw(shapes(), label="shape")
    dtype = data.draw(st.sampled_from(BIT_DTYPES), label="input dtype")
    out_dtype = data.draw(st.sampled_from([torch.uint8, torch.bool, torch.float32]), label="out dtype")
    layout = data.draw(st.sampled_from(LAYOUTS), label="layout")
    x = random_bits(rng, shape, dtype, target.device)
    expected = (x != 0).to(out_dtype).cpu()
    packed = to_torch(np_pack(x), target.device)
    out = ops.unpack_bits(relayout(packed, layout), shape[-1], out_dtype, backend=target.backend)
    assert_equal(out, expected, "unpack_bits(numpy packed)")
    if blkit._registry.implements("pack_bits", target.backend):
        round_trip = ops.unpack_bits(ops.pack_bits(relayout(x, layout), backend=target.backend), shape[-1],
                                     out_dtype, backend=target.backend)
        assert_equal(round_trip, expected, "unpack_bits(pack_bits(x))")


@SETTINGS
@given(data=st.data())
def test_xor_bits_packed_and_dense(target, data):
    target.require("xor_bits")
    rng = rng_from(data)
    shape = data.draw(shapes(), label="shape")
    dtype = data.draw(st.sampled_from(BIT_DTYPES), label="dtype")
    la, lb = data.draw(st.sampled_from(LAYOUTS), label="layout a"), data.draw(st.sampled_from(LAYOUTS), label="b")
    a = random_bits(rng, shape, dtype, target.device)
    b = random_bits(rng, shape, dtype, target.device)
    dense_xor = (a != 0) ^ (b != 0)
    # packed words
    pa, pb = to_torch(np_pack(a), target.device), to_torch(np_pack(b), target.device)
    out = ops.xor_bits(relayout(pa, la), relayout(pb, lb), backend=target.backend)
    assert_equal(out, np_pack(dense_xor), "xor_bits(packed)")
    # dense: bool -> bool, uint8 -> bitwise uint8, floating 0/1 -> uint8 (nonzero = 1)
    out = ops.xor_bits(relayout(a, la), relayout(b, lb), backend=target.backend)
    if dtype == torch.bool:
        expected = dense_xor.cpu()
    elif dtype == torch.uint8:
        expected = (a ^ b).cpu()
    else:
        expected = dense_xor.to(torch.uint8).cpu()
    assert_equal(out, expected, "xor_bits(dense)")


@SETTINGS
@given(data=st.data())
def test_popcount_counts_bits(target, data):
    target.require("popcount")
    rng = rng_from(data)
    shape = data.draw(shapes(), label="shape")
    dtype = data.draw(st.sampled_from(BIT_DTYPES), label="dtype")
    layout = data.draw(st.sampled_from(LAYOUTS), label="layout")
    x = random_bits(rng, shape, dtype, target.device)
    packed_np = np_pack(x)
    packed = relayout(to_torch(packed_np, target.device), layout)
    out = ops.popcount(packed, backend=target.backend)
    assert_equal(out, (x != 0).sum(-1).cpu(), "popcount(pack_bits(x))")
    # over another dim: the per-byte bit counts summed along that dim
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    per_byte = np.unpackbits(packed_np[..., None], axis=-1).sum(-1, dtype=np.int64)
    out = ops.popcount(packed, dim=dim, backend=target.backend)
    assert_equal(out, per_byte.sum(dim, dtype=np.int64), f"popcount(dim={dim})")


# --- random ops --------------------------------------------------------------------------------------------------

@SETTINGS
@given(data=st.data())
def test_bernoulli_follows_the_stream_in_any_layout(target, data):
    target.require("bernoulli")
    rng = rng_from(data)
    shape = data.draw(shapes(), label="shape")
    dtype = data.draw(st.sampled_from(PROB_DTYPES), label="dtype")
    layout = data.draw(st.sampled_from(LAYOUTS[1:]), label="layout")
    seed, offset = draw_seed_offset(data, numel(shape))
    p = random_probs(rng, shape, dtype, target.device)
    contiguous = ops.bernoulli(p, seed, offset, backend=target.backend)
    strided = ops.bernoulli(relayout(p, layout), seed, offset, backend=target.backend)
    expected = stream_bernoulli(p, seed, offset)
    assert_equal(contiguous, expected, "bernoulli == (u < p)")
    assert_equal(strided, expected, f"bernoulli on a {layout} view")


@SETTINGS
@given(data=st.data())
def test_bernoulli_packed_is_packed_dense(target, data):
    target.require("bernoulli")
    rng = rng_from(data)
    shape = data.draw(shapes(), label="shape")
    dtype = data.draw(st.sampled_from(PROB_DTYPES), label="dtype")
    layout = data.draw(st.sampled_from(LAYOUTS), label="layout")
    seed, offset = draw_seed_offset(data, numel(shape))
    p = relayout(random_probs(rng, shape, dtype, target.device), layout)
    dense = ops.bernoulli(p, seed, offset, backend=target.backend)
    packed = ops.bernoulli(p, seed, offset, packed=True, backend=target.backend)
    assert_equal(packed, np_pack(dense), "bernoulli(packed=True) == pack_bits(bernoulli())")
    assert_equal(dense, stream_bernoulli(p, seed, offset), "bernoulli == (u < p)")


@SETTINGS
@given(data=st.data())
def test_q_sample_residual_and_packing(target, data):
    target.require("q_sample")
    rng = rng_from(data)
    shape = data.draw(shapes(min_lead=1), label="shape")
    dtype = data.draw(st.sampled_from(BIT_DTYPES), label="dtype")
    layout = data.draw(st.sampled_from(LAYOUTS), label="layout")
    schedule = SCHEDULES[data.draw(st.sampled_from(sorted(SCHEDULES)), label="kind")]
    if data.draw(st.booleans(), label="per-sample t"):
        t = torch.from_numpy(rng.integers(1, T + 1, size=shape[0])).to(target.device)
    else:
        t = data.draw(st.integers(1, T), label="t")
    seed, offset = draw_seed_offset(data, numel(shape))
    x0 = random_bits(rng, shape, dtype, target.device)
    x_t, residual, flips = ops.q_sample(relayout(x0, layout), t, schedule, seed, offset, return_counts=True,
                                        backend=target.backend)
    assert_equal(residual, ((x_t != 0) ^ (x0 != 0)).to(torch.uint8).cpu(), "residual == x_t XOR x0")
    assert_equal(flips, residual.reshape(shape[0], -1).sum(1, dtype=torch.int64).cpu()
                 if numel(shape) else torch.zeros(shape[0], dtype=torch.int64), "flips per sample")
    assert x_t.dtype == torch.uint8 and bool(((x_t == 0) | (x_t == 1)).all())
    px_t, presidual = ops.q_sample(relayout(x0, layout), t, schedule, seed, offset, packed=True,
                                   backend=target.backend)
    assert_equal(px_t, np_pack(x_t), "q_sample(packed=True) x_t")
    assert_equal(presidual, np_pack(residual), "q_sample(packed=True) residual")


def draw_steps(data, rng, shape, device):
    """(t, t_prev) with 0 <= t_prev < t <= T: Python ints, or int64 [B] tensors when there is a batch dim."""
    if len(shape) > 1 and data.draw(st.booleans(), label="per-sample steps"):
        t = rng.integers(1, T + 1, size=shape[0])
        t_prev = (rng.random(shape[0]) * t).astype(np.int64)  # uniform in 0..t-1
        return torch.from_numpy(t).to(device), torch.from_numpy(t_prev).to(device)
    t = data.draw(st.integers(1, T), label="t")
    return t, data.draw(st.integers(0, t - 1), label="t_prev")


def draw_step_kwargs(data, rng, shape, dtype, device):
    kw = dict(temperature=data.draw(st.sampled_from([1.0, 0.5, 1.7]), label="temperature"),
              p_flip=data.draw(st.booleans(), label="p_flip"))
    if data.draw(st.booleans(), label="guidance"):
        kw["uncond_logits"] = random_logits(rng, shape, dtype, device, 2.0)
        kw["guidance_scale"] = data.draw(st.sampled_from([0.0, 1.5, 4.0]), label="guidance_scale")
    return kw


def draw_step_inputs(data, target, scales):
    """(rng, shape, layout, schedule, t, t_prev, logits, x_t, step kwargs) for posterior / sample_step."""
    rng = rng_from(data)
    shape = data.draw(shapes(), label="shape")
    dtype = data.draw(st.sampled_from(LOGIT_DTYPES), label="logits dtype")
    x_dtype = data.draw(st.sampled_from(BIT_DTYPES), label="x_t dtype")
    layout = data.draw(st.sampled_from(LAYOUTS), label="layout")
    schedule = SCHEDULES[data.draw(st.sampled_from(sorted(SCHEDULES)), label="kind")]
    t, t_prev = draw_steps(data, rng, shape, target.device)
    scale = data.draw(st.sampled_from(scales), label="logit scale")
    logits = random_logits(rng, shape, dtype, target.device, scale)
    x_t = random_bits(rng, shape, x_dtype, target.device)
    kw = draw_step_kwargs(data, rng, shape, dtype, target.device)
    return rng, shape, layout, schedule, t, t_prev, logits, x_t, kw


@SETTINGS
@given(data=st.data())
def test_sample_step_packed_is_packed_dense(target, data):
    target.require("sample_step")
    rng, shape, layout, schedule, t, t_prev, logits, x_t, kw = draw_step_inputs(data, target, [0.5, 3.0, 30.0])
    seed, offset = draw_seed_offset(data, numel(shape))
    if data.draw(st.booleans(), label="inpainting"):
        keep = data.draw(st.integers(1, len(shape)), label="mask dims")
        mshape = tuple(s if data.draw(st.booleans(), label="broadcast") else 1 for s in shape[-keep:])
        kw["mask"] = random_bits(rng, mshape, torch.bool, target.device)
        kw["known"] = random_bits(rng, mshape, torch.uint8, target.device)

    dense = ops.sample_step(relayout(logits, layout), relayout(x_t, layout), t, t_prev, schedule, seed, offset,
                            backend=target.backend, **kw)
    assert dense.dtype == torch.uint8 and dense.shape == torch.Size(shape)
    assert bool(((dense == 0) | (dense == 1)).all())
    if "mask" in kw:
        m = (kw["mask"] != 0).expand(shape)
        assert torch.equal(dense[m], (kw["known"] != 0).expand(shape)[m].to(torch.uint8))
    x_packed = relayout(to_torch(np_pack(x_t), target.device), layout)
    packed = ops.sample_step(relayout(logits, layout), x_packed, t, t_prev, schedule, seed, offset, packed=True,
                             backend=target.backend, **kw)
    assert_equal(packed, np_pack(dense), "sample_step(packed=True) == pack_bits(sample_step(dense))")


@SETTINGS
@given(data=st.data())
def test_posterior_is_a_probability(target, data):
    target.require("posterior")
    _, shape, layout, schedule, t, t_prev, logits, x_t, kw = draw_step_inputs(data, target, [0.5, 3.0, 30.0, 3e4])

    pi = ops.posterior(relayout(logits, layout), relayout(x_t, layout), t, t_prev, schedule,
                       backend=target.backend, **kw)
    assert pi.dtype == torch.float32 and pi.shape == torch.Size(shape)
    assert bool(torch.isfinite(pi).all()), "posterior is not finite"
    assert bool(((pi >= 0) & (pi <= 1)).all()), f"posterior outside [0, 1]: [{pi.min()}, {pi.max()}]"
    x_packed = relayout(to_torch(np_pack(x_t), target.device), layout)
    pi_packed = ops.posterior(relayout(logits, layout), x_packed, t, t_prev, schedule, packed=True,
                              backend=target.backend, **kw)
    assert_equal(pi_packed, pi.cpu(), "posterior(packed x_t) == posterior(dense x_t)")


# --- degenerate shapes, deterministically (hypothesis reaches them only now and then) ----------------------------

def _edge_cases():
    sched = SCHEDULES["linear"]

    def z(*shape, dtype=torch.float32):
        return lambda device: torch.zeros(shape, dtype=dtype, device=device)

    lg, xt, t0 = z(0, 3, 10), z(0, 3, 10, dtype=torch.uint8), z(0, dtype=torch.int64)
    cases = [
        # (id, op, call(device, backend), expected shapes of the outputs)
        ("posterior-empty-batch-int-t", "posterior",
         lambda d, b: ops.posterior(lg(d), xt(d), 5, 2, sched, backend=b), [(0, 3, 10)]),
        ("posterior-empty-batch-tensor-t", "posterior",
         lambda d, b: ops.posterior(lg(d), xt(d), t0(d), t0(d), sched, backend=b), [(0, 3, 10)]),
        ("sample_step-empty-batch-int-t", "sample_step",
         lambda d, b: ops.sample_step(lg(d), xt(d), 5, 2, sched, 1, backend=b), [(0, 3, 10)]),
        ("sample_step-empty-batch-tensor-t", "sample_step",
         lambda d, b: ops.sample_step(lg(d), xt(d), t0(d), t0(d), sched, 1, backend=b), [(0, 3, 10)]),
        ("sample_step-empty-batch-packed", "sample_step",
         lambda d, b: ops.sample_step(lg(d), z(0, 3, 2, dtype=torch.uint8)(d), 5, 0, sched, 1, packed=True,
                                      backend=b), [(0, 3, 2)]),
        ("q_sample-empty-batch-int-t", "q_sample",
         lambda d, b: ops.q_sample(xt(d), 5, sched, 1, backend=b), [(0, 3, 10), (0, 3, 10)]),
        ("q_sample-empty-batch-tensor-t", "q_sample",
         lambda d, b: ops.q_sample(xt(d), t0(d), sched, 1, backend=b), [(0, 3, 10), (0, 3, 10)]),
        ("q_sample-empty-rows-counts", "q_sample",
         lambda d, b: ops.q_sample(z(2, 0, 10)(d), 5, sched, 1, return_counts=True, backend=b),
         [(2, 0, 10), (2, 0, 10), (2,)]),
        ("diffusion_loss-empty-batch-none", "diffusion_loss",
         lambda d, b: ops.diffusion_loss(lg(d), xt(d), xt(d), 5, sched, reduction="none", backend=b), [(0, 3, 10)]),
        ("diffusion_loss-empty-batch-sum", "diffusion_loss",
         lambda d, b: ops.diffusion_loss(lg(d), xt(d), xt(d), t0(d), sched, reduction="sum", backend=b), [()]),
        ("bernoulli-0d", "bernoulli", lambda d, b: ops.bernoulli(z()(d) + 0.5, 3, backend=b), [()]),
        ("bernoulli-empty", "bernoulli", lambda d, b: ops.bernoulli(z(4, 0)(d), 3, packed=True, backend=b), [(4, 0)]),
        ("binary_quantize-0d", "binary_quantize", lambda d, b: ops.binary_quantize(z()(d) + 0.5, 3, backend=b), [()]),
        ("pack_bits-C-0", "pack_bits", lambda d, b: ops.pack_bits(z(2, 0)(d), backend=b), [(2, 0)]),
        ("unpack_bits-C-0", "unpack_bits",
         lambda d, b: ops.unpack_bits(z(2, 0, dtype=torch.uint8)(d), 0, backend=b), [(2, 0)]),
        ("popcount-empty-row", "popcount",
         lambda d, b: ops.popcount(z(3, 0, dtype=torch.uint8)(d), backend=b), [(3,)]),
    ]
    return [pytest.param(op, call, shapes, id=id) for id, op, call, shapes in cases]


@pytest.mark.parametrize("op, call, expected_shapes", _edge_cases())
def test_degenerate_shapes(target, op, call, expected_shapes):
    """Empty batches, empty rows and 0-d inputs give outputs of the right shape (no crash)."""
    target.require(op)
    out = call(target.device, target.backend)
    outs = list(out) if isinstance(out, tuple) else [out]
    assert [tuple(o.shape) for o in outs] == [tuple(s) for s in expected_shapes]
    if op == "diffusion_loss" and outs[0].dim() == 0:
        assert float(outs[0]) == 0.0
