"""Conformance-suite fixtures: every (device, backend) pair available on this machine, poisoned outputs.

Without a GPU, Triton kernels run on CPU tensors through the interpreter (TRITON_INTERPRET=1 must be set
before Triton compiles anything, hence here, before blkit is imported).
"""
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import dataclasses  # noqa: E402

import pytest  # noqa: E402

import blkit  # noqa: E402
from blkit import _registry  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Target:
    """A device and the backend forced on every op call of a test."""

    device: str
    backend: str

    def require(self, op: str) -> None:
        """Skip (with the reason) when this backend does not implement ``op`` yet."""
        if not _registry.implements(op, self.backend):
            pytest.skip(f"backend {self.backend!r} has no {op} kernel yet")

    def __str__(self):
        return f"{self.device}-{self.backend}"


def available_targets():
    targets = []
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for name, info in _registry.all_backends().items():
            if info.available and device in info.devices:
                targets.append(Target(device, name))
    return targets


TARGETS = available_targets()


@pytest.fixture(params=TARGETS, ids=str)
def target(request) -> Target:
    return request.param


@pytest.fixture(autouse=True)
def poison_uninitialized_memory():
    """torch.empty returns 255 / NaN / int max while a test runs, so elements a kernel forgot to write show."""
    previous = torch.are_deterministic_algorithms_enabled()
    previous_fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    yield
    torch.use_deterministic_algorithms(previous)
    torch.utils.deterministic.fill_uninitialized_memory = previous_fill


def pytest_report_header(config):
    return [f"blkit {blkit.__version__}; targets: {', '.join(map(str, TARGETS))}"]
