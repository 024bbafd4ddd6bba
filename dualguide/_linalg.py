"""Linear algebra written once against :mod:`dualguide.ops` (both backends, and the exporter)."""

from __future__ import annotations

from typing import Any

from . import ops

__all__ = ["logabsdet", "logabsdet_entries"]


def logabsdet(J: Any, n: int | None = None) -> Any:
    """log|det J| over the last two dims (closed forms for 1x1 and 2x2, else ``slogdet``).

    Written once with :mod:`dualguide.ops` for both backends (autodiff goes through it).
    ``n``: the matrix size when the caller knows it (default ``J.shape[-1]``); pass it inside
    a torch trace, where ``J.shape`` holds traced tensors and ``if n == 1`` would read one.

    >>> import numpy as np
    >>> import dualguide as dg
    >>> with dg.use_backend("numpyro"):
    ...     float(dg.transforms.logabsdet(dg.ops.asarray(np.array([[2.0, 1.0], [0.0, 3.0]]))))
    1.791759...
    """
    if n is None:
        n = J.shape[-1]
    if n == 1:
        return ops.log(ops.abs(J[..., 0, 0]))
    if n == 2:
        return ops.log(ops.abs(J[..., 0, 0] * J[..., 1, 1] - J[..., 0, 1] * J[..., 1, 0]))
    return ops.slogdet(J)[1]


def logabsdet_entries(J: Any) -> Any:
    """log|det J| of a square matrix given as its entries ``J[r][k]`` (arrays of one shape).

    The same arithmetic as :func:`logabsdet` (closed forms for 1x1 and 2x2, else the entries
    are stacked and ``slogdet`` is used), without first stacking the matrix and indexing it
    back: a Jacobian built entry by entry (the Pyro backend's, for maps of scalars) skips two
    stacks and eight selects, and their backward.

    >>> import numpy as np
    >>> import dualguide as dg
    >>> with dg.use_backend("numpyro"):
    ...     a = dg.ops.asarray
    ...     float(dg._linalg.logabsdet_entries([[a(2.0), a(1.0)], [a(0.0), a(3.0)]]))
    1.791759...
    """
    n = len(J)
    if n == 1:
        return ops.log(ops.abs(J[0][0]))
    if n == 2:
        return ops.log(ops.abs(J[0][0] * J[1][1] - J[0][1] * J[1][0]))
    return ops.slogdet(ops.stack([ops.stack(list(r), axis=-1) for r in J], axis=-2))[1]
