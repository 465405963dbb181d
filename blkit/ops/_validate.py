"""Input validation, once, before dispatch. Every error names the argument and what was expected.

Value checks (step ranges, probabilities) need the data on the host. They always run on CPU tensors in
eager mode; on CUDA tensors they would cost a host synchronisation per call, so they run only after
``blkit.ops.set_device_value_checks(True)`` (a debugging switch). They are skipped while torch.compile
traces or a CUDA graph is captured; the step tables are then indexed with clamped steps, so a bad value
gives a wrong step, never an out-of-bounds access.
"""
import array
import math
import numbers

import torch

from ..schedule import NoiseSchedule

LOGIT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
BINARY_DTYPES = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64) + FLOAT_DTYPES
_U64 = 1 << 64


_DEVICE_VALUE_CHECKS = [False]


def set_device_value_checks(enabled: bool) -> None:
    _DEVICE_VALUE_CHECKS[0] = flag(enabled, "enabled")


def values_checkable(*tensors) -> bool:
    tensors = [t for t in tensors if isinstance(t, torch.Tensor)]
    if torch.compiler.is_compiling() or any(t.is_meta for t in tensors):
        return False
    if any(t.device.type != "cpu" for t in tensors):
        return _DEVICE_VALUE_CHECKS[0] and not (torch.cuda.is_available() and torch.cuda.is_current_stream_capturing())
    return True


def tensor(x, name: str, dtypes=None, what: str = "", min_dim: int = 0) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if dtypes is not None and x.dtype not in dtypes:
        names = ", ".join(str(d).replace("torch.", "") for d in dtypes)
        raise TypeError(f"{name} must have dtype {what or names}, got {str(x.dtype).replace('torch.', '')}")
    if x.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dimension(s), got shape {tuple(x.shape)}")
    return x


def optional_tensor(x, name: str, **kw):
    return None if x is None else tensor(x, name, **kw)


def same_device(ref: torch.Tensor, ref_name: str, **others) -> None:
    for name, x in others.items():
        if x is not None and x.device != ref.device:
            raise ValueError(f"{name} is on {x.device} but {ref_name} is on {ref.device}; move them to one device")


def same_shape(x: torch.Tensor, name: str, shape, ref_name: str) -> None:
    if x.shape != shape:  # torch.Size compares equal to a tuple of the same ints
        raise ValueError(f"{name} must have shape {tuple(shape)} like {ref_name}, got {tuple(x.shape)}")


def broadcastable(x: torch.Tensor, name: str, shape) -> None:
    try:
        ok = torch.broadcast_shapes(x.shape, shape) == torch.Size(shape)
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"{name} of shape {tuple(x.shape)} does not broadcast to {tuple(shape)}")


def flag(x, name: str) -> bool:
    if not isinstance(x, bool):
        raise TypeError(f"{name} must be a bool, got {type(x).__name__}")
    return x


def integer(x, name: str, low=None, high=None) -> int:
    if type(x) is not int:  # exact int first: the ABC check below costs a microsecond per call
        if isinstance(x, bool) or not isinstance(x, numbers.Integral):
            raise TypeError(f"{name} must be an int, got {type(x).__name__}")
        x = int(x)
    if (low is not None and x < low) or (high is not None and x > high):
        raise ValueError(f"{name} must be in [{low}, {high}], got {x}")
    return x


def real(x, name: str, *, positive=False, nonnegative=False) -> float:
    if type(x) is not float and type(x) is not int:
        if isinstance(x, bool) or not isinstance(x, numbers.Real):
            raise TypeError(f"{name} must be a float, got {type(x).__name__}")
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x}")
    if positive and x <= 0:
        raise ValueError(f"{name} must be > 0, got {x}")
    if nonnegative and x < 0:
        raise ValueError(f"{name} must be >= 0, got {x}")
    return x


def choice(x, name: str, options) -> str:
    if x not in options:
        raise ValueError(f"{name} must be one of {tuple(options)}, got {x!r}")
    return x


def schedule(s, name: str = "schedule"):
    if not isinstance(s, NoiseSchedule):
        raise TypeError(f"{name} must be a blkit.NoiseSchedule, got {type(s).__name__}")
    return s


def step(t, name: str, num_steps: int, batch: int, device, low: int):
    """t: int in [low, T] or int64 tensor [batch] (per-sample steps) on ``device`` or the CPU."""
    if isinstance(t, torch.Tensor):
        if t.dtype != torch.int64:
            dtype = str(t.dtype).replace("torch.", "")
            raise TypeError(f"{name} must be an int or an int64 tensor, got a {dtype} tensor")
        if t.dim() != 1 or t.shape[0] != batch:
            raise ValueError(
                f"{name} as a tensor must have shape [{batch}] (one step per sample), got {tuple(t.shape)}"
            )
        if t.device != device and t.device.type != "cpu":
            raise ValueError(f"{name} is on {t.device} but the data is on {device}")
        if values_checkable(t) and t.numel():
            lo, hi = int(t.min()), int(t.max())
            if lo < low or hi > num_steps:
                raise ValueError(f"{name} must lie in [{low}, {num_steps}], got values in [{lo}, {hi}]")
        return t
    t = integer(t, name)
    if not low <= t <= num_steps:
        raise ValueError(f"{name} must be in [{low}, {num_steps}], got {t}")
    return t


def step_order(t, t_prev) -> None:
    """0 <= t_prev < t, elementwise when either is a tensor."""
    if isinstance(t, torch.Tensor) or isinstance(t_prev, torch.Tensor):
        if not values_checkable(t, t_prev):
            return
        bad = torch.as_tensor(t_prev).cpu() >= torch.as_tensor(t).cpu()
        if bool(bad.any()):
            raise ValueError("t_prev must be smaller than t for every sample")
    elif t_prev >= t:
        raise ValueError(f"t_prev must be smaller than t, got t={t}, t_prev={t_prev}")


def rng_state(seed, offset, numel: int, device) -> torch.Tensor:
    """int64 [2] (seed, offset) on ``device``. Python ints: seed in [0, 2**64), offset + numel <= 2**64."""
    if type(seed) is int and type(offset) is int and 0 <= seed < _U64 and 0 <= offset and offset + numel <= _U64:
        return host_to_device([_signed(seed), _signed(offset)], torch.int64, device)  # the common case, first
    if isinstance(seed, torch.Tensor):
        if seed.dtype != torch.int64 or seed.numel() != 1:
            raise TypeError(
                f"seed as a tensor must be a one-element int64 tensor, got {seed.dtype} of shape {tuple(seed.shape)}"
            )
        _rng_device(seed, "seed", device)
        seed_t = seed.reshape(1).to(device)
    else:
        seed = integer(seed, "seed")
        if not 0 <= seed < _U64:
            raise ValueError(f"seed must be in [0, 2**64), got {seed}")
        seed_t = None
    if isinstance(offset, torch.Tensor):
        if offset.dtype != torch.int64 or offset.numel() != 1:
            raise TypeError(
                f"offset as a tensor must be a one-element int64 tensor, got {offset.dtype} of shape "
                f"{tuple(offset.shape)}"
            )
        _rng_device(offset, "offset", device)
        offset_t = offset.reshape(1).to(device)
    else:
        offset = integer(offset, "offset")
        if not 0 <= offset or offset + numel > _U64:
            raise ValueError(f"offset must be >= 0 with offset + numel <= 2**64, got offset={offset}, numel={numel}")
        offset_t = None
    if seed_t is None and offset_t is None:
        return host_to_device([_signed(seed), _signed(offset)], torch.int64, device)
    if seed_t is None:
        seed_t = torch.tensor([_signed(seed)], dtype=torch.int64, device=device)
    if offset_t is None:
        offset_t = torch.tensor([_signed(offset)], dtype=torch.int64, device=device)
    return torch.cat([seed_t, offset_t])


def host_to_device(values, dtype, device) -> torch.Tensor:
    """A small tensor from host values, copied to an accelerator without blocking the host (pinned memory)."""
    if not isinstance(device, torch.device):
        device = torch.device(device)
    compiling = torch.compiler.is_compiling()
    if device.type == "cpu" and dtype == torch.int64 and not compiling:
        return torch.frombuffer(array.array("q", values), dtype=torch.int64)  # a quarter of torch.tensor's cost
    if device.type != "cuda" or compiling:
        return torch.tensor(values, dtype=dtype, device=device)
    return torch.tensor(values, dtype=dtype).pin_memory().to(device, non_blocking=True)


def _rng_device(x: torch.Tensor, name: str, device) -> None:
    if x.device != device and x.device.type != "cpu":
        raise ValueError(f"{name} is on {x.device} but the data is on {device}; use the data's device or the CPU")


def _signed(v: int) -> int:
    """Two's-complement int64 view of a value in [0, 2**64)."""
    return v - _U64 if v >= 1 << 63 else v


def probabilities(p: torch.Tensor, name: str) -> None:
    """Every value in [0, 1]: one min/max reduction (no temporaries; NaN propagates into it and fails)."""
    if values_checkable(p) and p.numel():
        lo, hi = (float(v) for v in torch.aminmax(p.detach()))
        if lo >= 0.0 and hi <= 1.0:
            return
        if not (math.isfinite(lo) and math.isfinite(hi)):  # NaN propagates into aminmax, inf is the min or max
            raise ValueError(f"{name} contains non-finite values (NaN or inf)")
        raise ValueError(f"{name} must lie in [0, 1], got values in [{lo}, {hi}]")
