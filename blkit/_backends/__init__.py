"""Backends register their op implementations on import; a missing dependency only marks one unavailable."""
from . import reference  # noqa: F401
from . import cpu  # noqa: F401
from . import triton  # noqa: F401
from . import cuda  # noqa: F401
