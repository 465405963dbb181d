"""Backends register their op implementations on import; a missing dependency only marks one unavailable."""
from . import (
    cpu,  # noqa: F401
    cuda,  # noqa: F401
    reference,  # noqa: F401
    triton,  # noqa: F401
)
