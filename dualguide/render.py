"""Turn a neutral model or guide into a plain callable of one backend.

The implementation lives in the kernel (:mod:`dualguide._state`), since the backends
and :mod:`dualguide.trace` need it too; this is its public home.
"""

from __future__ import annotations

from ._state import backend_of, render

__all__ = ["render", "backend_of"]
