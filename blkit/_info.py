"""blkit.backends(): which backend runs on which device, and why the others do not."""
import torch

from . import _registry


def _device_types():
    types = ["cpu"]
    if torch.cuda.is_available():
        types.append("cuda")
    return types


def backends() -> dict:
    """{device_type: {backend: {"available": bool, "reason": str, "default_for": [ops]}}} for this machine.

    ``default_for`` lists the ops that run on this backend when no ``backend=`` is given.
    """
    from .ops import OP_NAMES as op_names

    report = {}
    for device in ("cpu", "cuda"):
        entry = {}
        for name, info in _registry.all_backends().items():
            usable = info.available and device in info.devices
            if usable:
                reason = info.reason
            elif not info.available:
                reason = info.reason
            elif device == "cuda" and not torch.cuda.is_available():
                reason = "no CUDA device is available (torch.cuda.is_available() is False)"
            else:
                reason = f"runs on {', '.join(info.devices)} tensors only"
            defaults = [op for op in op_names if usable and _registry.resolve(op, None, device) == name] \
                if device in _device_types() else []
            entry[name] = {"available": usable, "reason": reason, "default_for": defaults}
        report[device] = entry
    return report
