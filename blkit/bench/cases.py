"""Per-op benchmark cases: each case is one op at one size with a callable per provider.

Providers: ``blkit-<backend>`` for every fast backend available on the device, ``reference`` (the authors'
program, blkit.reference, eager), ``reference-compiled`` (torch.compile of the same function) and, for bit
packing on the CPU, ``numpy``. ``bytes_moved`` counts the logical tensors an op must read and write once:
the floor is bytes_moved / copy bandwidth.
"""
import dataclasses

import numpy as np
import torch

from .. import NoiseSchedule, _registry, ops
from .. import reference as authors

T = 64


@dataclasses.dataclass
class Case:
    name: str
    shape: tuple
    dtype: str
    bytes_moved: int
    providers: dict  # provider name -> zero-argument callable
    graph_safe: tuple = ()  # providers that may be timed as a CUDA graph
    samples: int = 0  # end-to-end cases: samples per call (samples/s), timed by wall clock
    warmup: int = 1
    min_repeats: int = 3


def fast_backends(device: str, op: str) -> list:
    names = []
    for name, info in _registry.all_backends().items():
        if name == "reference" or not (info.available and device in info.devices):
            continue
        if device == "cpu" and name == "triton":
            continue  # the interpreter is a test vehicle, not a CPU backend
        if _registry.implements(op, name):
            names.append(name)
    return names


_COMPILED = {}


def compiled(fn):
    """torch.compile of a reference function, once per function (compilation happens in the warm-up)."""
    if fn not in _COMPILED:
        _COMPILED[fn] = torch.compile(fn)
    return _COMPILED[fn]


def _with_reference(providers, fn, *args, **kwargs):
    providers["reference"] = lambda: fn(*args, **kwargs)
    compiled_fn = compiled(fn)
    providers["reference-compiled"] = lambda: compiled_fn(*args, **kwargs)
    return providers


def _blkit(op: str, device: str, call) -> dict:
    return {f"blkit-{name}": (lambda n=name: call(n)) for name in fast_backends(device, op)}


def _xor_reference(x0, x_t):
    return torch.logical_xor(x0, x_t)


def _authors_q_sample(sched, x0, t):
    x_t = authors.q_sample(sched, x0, t)
    return x_t, _xor_reference(x0, x_t)


def _authors_loss_step(sched, logits, x0, t):
    logits.grad = None
    x_t = authors.q_sample(sched, x0, t)
    authors.loss_from_logits(logits, x0, x_t, t, sched)["loss"].backward()


def op_cases(device: str, batch: int, positions: int, channels: int, sample_steps=(64, 16)) -> list:
    """Every op at one latent size [batch, positions, channels]."""
    shape = (batch, positions, channels)
    numel = batch * positions * channels
    packed_numel = batch * positions * ((channels + 7) // 8)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(shape, generator=g).to(device)
    bits = torch.randint(0, 2, shape, generator=g, dtype=torch.uint8).to(device)
    bits_f = bits.float()
    packed = ops.pack_bits(bits)
    probs = torch.rand(shape, generator=g).to(device)
    schedule, sched = NoiseSchedule(T), authors.Scheduler(T).to(device)
    t_vec = torch.randint(1, T + 1, (batch,), generator=g).to(device)
    cases = []

    for s in sample_steps:
        t_prev = schedule.sampling_steps(s)[1]
        dense = _blkit("sample_step", device,
                       lambda b, tp=t_prev: ops.sample_step(logits, bits, T, tp, schedule, 1, backend=b))
        cases.append(Case(f"sample_step[T={T},S={s}]", shape, "float32", numel * (4 + 1 + 1),
                          _with_reference(dense, authors.sample_step, logits, bits_f, T, t_prev, sched),
                          graph_safe=tuple(dense)))
        packed_providers = _blkit("sample_step", device, lambda b, tp=t_prev: ops.sample_step(
            logits, packed, T, tp, schedule, 1, packed=True, backend=b))
        packed_providers = {f"{k}-packed": v for k, v in packed_providers.items()}
        cases.append(Case(f"sample_step_packed[T={T},S={s}]", shape, "float32", numel * 4 + 2 * packed_numel,
                          _with_reference(packed_providers, authors.sample_step, logits, bits_f, T, t_prev, sched),
                          graph_safe=tuple(packed_providers)))

    q = _blkit("q_sample", device, lambda b: ops.q_sample(bits, t_vec, schedule, 2, backend=b))
    cases.append(Case("q_sample", shape, "uint8", numel * 3,
                      _with_reference(q, _authors_q_sample, sched, bits_f, t_vec), graph_safe=tuple(q)))

    leaf = logits.clone().requires_grad_()

    def blkit_loss_step(b):
        leaf.grad = None
        x_t, _ = ops.q_sample(bits, t_vec, schedule, 3, backend=b if _registry.implements("q_sample", b) else None)
        ops.diffusion_loss(leaf, x_t, bits, t_vec, schedule, backend=b).backward()

    loss = _blkit("diffusion_loss", device, blkit_loss_step)
    cases.append(Case("q_sample+diffusion_loss fwd+bwd", shape, "float32", numel * (1 + 1 + 4 + 4),
                      _with_reference(loss, _authors_loss_step, sched, leaf, bits_f, t_vec)))

    for name, call, reference_fn, args, moved in [
        ("pack_bits", lambda b: ops.pack_bits(bits, backend=b), _reference_impl("pack_bits"), (bits,),
         numel + packed_numel),
        ("unpack_bits", lambda b: ops.unpack_bits(packed, channels, backend=b), _reference_impl("unpack_bits"),
         (packed, channels, torch.uint8), numel + packed_numel),
        ("xor_bits(packed)", lambda b: ops.xor_bits(packed, packed, backend=b), _reference_impl("xor_bits"),
         (packed, packed), 3 * packed_numel),
    ]:
        op = name.split("(")[0]
        providers = _with_reference(_blkit(op, device, call), reference_fn, *args)
        if device == "cpu" and op in ("pack_bits", "unpack_bits"):
            array = (bits if op == "pack_bits" else packed).numpy()
            numpy_fn = np.packbits if op == "pack_bits" else np.unpackbits
            providers["numpy"] = lambda f=numpy_fn, a=array: f(a, axis=-1, bitorder="little")
        cases.append(Case(name, shape, "uint8", moved, providers,
                          graph_safe=tuple(k for k in providers if k.startswith("blkit"))))

    bern = _blkit("bernoulli", device, lambda b: ops.bernoulli(probs, 4, backend=b))
    cases.append(Case("bernoulli", shape, "float32", numel * 5, _with_reference(bern, torch.bernoulli, probs),
                      graph_safe=tuple(bern)))
    quant = _blkit("binary_quantize", device, lambda b: ops.binary_quantize(probs, 5, backend=b))
    cases.append(Case("binary_quantize", shape, "float32", numel * 8,
                      _with_reference(quant, authors.binary_quantize, probs), graph_safe=tuple(quant)))
    return cases


def _reference_impl(op: str):
    """The pure-PyTorch implementation (blkit's reference backend): the authors have no bit packing."""
    return _registry.lookup(op, "reference")
