"""Reparameterizers both frameworks share, for :func:`dualguide.handlers.reparam`.

Each renders to the framework's own class of the same name (``numpyro.infer.reparam`` /
``pyro.infer.reparam``; the rows are ``dualguide._table.REPARAMS``).  Also reachable as
``dualguide.infer.reparam``.

>>> import dualguide as dg
>>> from dualguide import distributions as dist
>>> from dualguide.reparam import LocScaleReparam
>>> def model():
...     dg.sample("x", dist.Normal(1.0, 2.0))
>>> noncentered = dg.handlers.reparam(model, config={"x": LocScaleReparam(centered=0.0)})
>>> sorted(dg.handlers.trace(dg.handlers.seed(noncentered, rng_seed=0)).get_trace())
['x', 'x_decentered']
"""

from __future__ import annotations

from typing import Any

from ._table import REPARAMS
from .errors import SpecError

__all__ = ["LocScaleReparam", "Reparam"]


class Reparam:
    """A neutral reparameterizer: a row of ``_table.REPARAMS`` and its keyword arguments."""

    name: str = ""

    def __init__(self, **kwargs: Any) -> None:
        if self.name not in REPARAMS:
            raise SpecError(f"{type(self).__name__}: no such reparameterizer in _table.REPARAMS")
        self.kwargs = kwargs

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.name}({args})"


class LocScaleReparam(Reparam):
    """Decenter a location-scale site: ``x = loc + scale**(1 - centered) * x_decentered``.

    ``centered`` is a number in ``[0, 1]`` (0: fully non-centered, 1: unchanged) or None,
    in which case both frameworks learn it as the param ``"<site>_centered"``.
    ``shape_params`` names other parameters passed through unchanged (e.g. ``("df",)``
    for ``StudentT``).  The auxiliary site is ``"<site>_decentered"`` and the original
    site becomes a deterministic one (docs/handlers.md).

    >>> LocScaleReparam(centered=0.0)
    LocScaleReparam(centered=0.0, shape_params=())
    """

    name = "LocScaleReparam"

    def __init__(self, centered: float | None = None, shape_params: tuple | list = ()) -> None:
        if centered is not None:
            try:
                c = float(centered)
            except (TypeError, ValueError):
                raise SpecError(
                    f"LocScaleReparam: centered must be a number in [0, 1] or None, got {centered!r}"
                ) from None
            if not 0.0 <= c <= 1.0:
                raise SpecError(f"LocScaleReparam: centered must be in [0, 1], got {c}")
            centered = c
        if isinstance(shape_params, str) or not all(isinstance(p, str) for p in shape_params):
            raise SpecError(
                f"LocScaleReparam: shape_params must be a tuple of parameter names, got {shape_params!r}"
            )
        super().__init__(centered=centered, shape_params=tuple(shape_params))
