"""Pure-PyTorch backend: runs every op on every device; the correctness baseline of the fast backends."""
from ..._registry import BackendInfo, declare_backend

declare_backend(BackendInfo("reference", devices=("cpu", "cuda", "mps", "xpu", "meta"), available=True,
                            reason="pure PyTorch, always available"))

from . import ops  # noqa: E402,F401  (registers the implementations)
