"""Backend registry: which implementation of which op runs for a backend name.

Backends register implementations with ``@register(op, backend)``; the custom ops of
``blkit.ops._library`` look them up by the backend name the API layer resolved. Default choice per
device is the first available backend in ``DEVICE_PREFERENCE`` that implements the op.
"""
import dataclasses

DEVICE_PREFERENCE = {
    "cpu": ("cpu", "reference"),
    "cuda": ("triton", "cuda", "reference"),
}
BACKEND_NAMES = ("reference", "cpu", "triton", "cuda")


@dataclasses.dataclass(frozen=True)
class BackendInfo:
    name: str
    devices: tuple  # device types whose tensors this backend accepts
    available: bool
    reason: str  # why it is (not) available
    how_to_enable: str = ""


_RESOLVED: dict = {}  # (op, backend, device_type) -> backend name, for the combinations that resolved


class _Forgetful(dict):
    """A registry table: any change forgets the cached resolutions (tests swap entries with monkeypatch)."""

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        _RESOLVED.clear()

    def __delitem__(self, key):
        super().__delitem__(key)
        _RESOLVED.clear()


_BACKENDS: dict = _Forgetful()  # name -> BackendInfo
_IMPLS: dict = _Forgetful()  # (op, backend) -> implementation


def declare_backend(info: BackendInfo) -> None:
    _BACKENDS[info.name] = info


def register(op: str, backend: str):
    """Decorator: register ``fn`` as the implementation of ``op`` on ``backend``."""

    def wrap(fn):
        _IMPLS[(op, backend)] = fn
        return fn

    return wrap


def lookup(op: str, backend: str):
    return _IMPLS[(op, backend)]


def implements(op: str, backend: str) -> bool:
    return (op, backend) in _IMPLS


def backend_info(name: str) -> BackendInfo:
    return _BACKENDS[name]


def all_backends() -> dict:
    return dict(_BACKENDS)


def resolve(op: str, backend, device_type: str) -> str:
    """The backend that runs ``op`` for tensors on ``device_type``; raises a clear error when impossible."""
    key = (op, backend, device_type)
    name = _RESOLVED.get(key) if isinstance(backend, (str, type(None))) else None
    if name is None:
        name = _RESOLVED[key] = _resolve(op, backend, device_type)
    return name


def _resolve(op: str, backend, device_type: str) -> str:
    if backend is None:
        for name in DEVICE_PREFERENCE.get(device_type, ("reference",)):
            info = _BACKENDS.get(name)
            if info and info.available and device_type in info.devices and implements(op, name):
                return name
        return "reference"
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a str or None, got {type(backend).__name__}")
    if backend not in BACKEND_NAMES:
        raise ValueError(f"backend must be one of {BACKEND_NAMES} or None, got {backend!r}")
    info = _BACKENDS.get(backend)
    if info is None or not info.available:
        reason = info.reason if info else "it was not loaded"
        hint = f" To enable it: {info.how_to_enable}" if info and info.how_to_enable else ""
        raise ValueError(f"backend={backend!r} is not available: {reason}.{hint}")
    if device_type not in info.devices:
        raise ValueError(
            f"backend={backend!r} does not run on {device_type} tensors (it supports {', '.join(info.devices)})"
        )
    if not implements(op, backend):
        raise ValueError(f"backend={backend!r} does not implement {op} yet")
    return backend
