"""Linear algebra written once against :mod:`dualguide.ops` (both backends, and the exporter)."""

from __future__ import annotations

from typing import Any

from . import ops

__all__ = ["logabsdet"]


def logabsdet(J: Any) -> Any:
    """log|det J| over the last two dims (closed forms for 1x1 and 2x2, as dualguide)."""
    if J.shape[-1] == 1:
        return ops.log(ops.abs(J[..., 0, 0]))
    if J.shape[-1] == 2:
        return ops.log(ops.abs(J[..., 0, 0] * J[..., 1, 1] - J[..., 0, 1] * J[..., 1, 0]))
    return ops.slogdet(J)[1]
