"""dualguide gives a value outside a distribution's support log_prob = -inf, as NumPyro does;
plain Pyro raises a ValueError instead. masked(cls) keeps dualguide's behaviour (parameters
are still validated as Pyro does by default).

Support masking written once against :mod:`dualguide.ops`: the exporter writes
this module out natively (``dualguide.porting._native``) into every Pyro export
that uses a distribution with a bounded support.
"""

from __future__ import annotations

from . import ops

__all__ = ["masked"]


class _SupportMasked:
    """Mixin: no exception for out-of-support values; their log_prob is -inf."""

    def _validate_sample(self, value):
        pass

    def log_prob(self, value):
        lp = super().log_prob(value)
        ok = self.support.check(value)
        return ops.where(ok, lp, ops.full((), -ops.inf))

    def to_event(self, reinterpreted_batch_ndims=None):
        d = super().to_event(reinterpreted_batch_ndims)
        d._validate_args = False  # the masked base handles values outside the support
        return d


_MASKED: dict = {}


def masked(cls):
    """``cls`` with log_prob = -inf outside its support instead of a ValueError."""
    if cls not in _MASKED:
        _MASKED[cls] = type(cls.__name__, (_SupportMasked, cls), {})
    return _MASKED[cls]
