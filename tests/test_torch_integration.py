"""torch.library.opcheck for every op on every backend, torch.compile(fullgraph=True) over a sampling step."""
import pytest
import torch

import blkit
from blkit import ops
from blkit.ops import _coefficients as coefs


def _rng(device):
    return torch.tensor([123, 4], dtype=torch.int64, device=device)


def _op_cases(device):
    """(op name, args without the trailing backend) for each custom op."""
    g = torch.Generator().manual_seed(0)
    schedule = blkit.NoiseSchedule(16)
    bits = torch.randint(0, 2, (3, 4, 13), generator=g, dtype=torch.uint8).to(device)
    packed = torch.randint(0, 256, (3, 4, 2), generator=g, dtype=torch.uint8).to(device)
    logits = torch.randn(3, 4, 13, generator=g).to(device)
    probs = torch.rand(3, 4, 13, generator=g).to(device)
    t = torch.tensor([3, 16, 1], device=device)
    step = coefs.step_coefficients(schedule, t, t - 1, True, device)
    q = coefs.q_sample_coefficients(schedule, t, device)
    loss = coefs.loss_coefficients(schedule, t, "weighted", device)
    mask = torch.randint(0, 2, bits.shape, generator=g, dtype=torch.uint8).to(device)
    return [
        ("pack_bits", (bits,)),
        ("unpack_bits", (packed, 13, torch.uint8)),
        ("xor_bits", (packed, packed.flip(0))),
        ("popcount", (packed, 2)),
        ("bernoulli", (probs, _rng(device), False)),
        ("bernoulli", (probs, _rng(device), True)),
        ("q_sample", (bits, q, _rng(device), False)),
        ("posterior", (logits, bits, step, 0.9, True, None, 0.0, False)),
        ("sample_step", (logits, bits, step, _rng(device), 1.0, True, logits * 0.5, 1.5, mask, bits, False)),
        ("sample_step", (logits, packed, step, _rng(device), 1.0, False, None, 0.0, None, None, True)),
        ("diffusion_loss",
         (logits.clone().requires_grad_(), bits, bits.flip(0), loss, True, True, 2.0, 0.1, "mean", True)),
        ("binary_quantize", (probs.clone().requires_grad_(), _rng(device), False)),
    ]


CASES = _op_cases("cpu")


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{name}-{i}" for i, (name, _) in enumerate(CASES)])
def test_opcheck(target, index):
    name, args = _op_cases(target.device)[index]
    target.require(name)
    op = getattr(torch.ops.blkit, name).default
    torch.library.opcheck(op, (*args, target.backend))


def test_compile_fullgraph_sampling_step(target):
    """A sampling step (posterior sampling with tensor seed, per-sample steps, packing) compiles without breaks."""
    target.require("sample_step")
    torch._dynamo.reset()
    schedule = blkit.NoiseSchedule(64)

    def step(logits, x_t, t, seed):
        x_next = ops.sample_step(logits, x_t, t, t - 1, schedule, seed, backend=target.backend)
        return x_next, ops.pack_bits(x_next, backend="reference")

    compiled = torch.compile(step, fullgraph=True, dynamic=False)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 16, 64, generator=g).to(target.device)
    x_t = torch.randint(0, 2, (2, 16, 64), generator=g, dtype=torch.uint8).to(target.device)
    t = torch.tensor([10, 64], device=target.device)
    for seed in (1, 2):
        seed_t = torch.tensor(seed, device=target.device)
        got = compiled(logits, x_t, t, seed_t)
        want = step(logits, x_t, t, seed_t)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_compile_fullgraph_loss_backward(target):
    target.require("diffusion_loss")
    torch._dynamo.reset()
    schedule = blkit.NoiseSchedule(64)

    def loss_fn(logits, x_t, x0, t):
        return ops.diffusion_loss(logits, x_t, x0, t, schedule, aux_weight=0.1, backend=target.backend)

    compiled = torch.compile(loss_fn, fullgraph=True)
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 8, 16, generator=g).to(target.device)
    x_t, x0 = (torch.randint(0, 2, (2, 8, 16), generator=g, dtype=torch.uint8).to(target.device) for _ in range(2))
    t = torch.tensor([3, 40], device=target.device)
    a, b = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    compiled(a, x_t, x0, t).backward()
    loss_fn(b, x_t, x0, t).backward()
    torch.testing.assert_close(a.grad, b.grad)
