"""Pyro's side of dualguide's distributions: neutral transforms, ``biject_to``, and the
native subclass of a user-defined neutral distribution (``dualguide.distributions.Distribution``)."""

from __future__ import annotations

from typing import Any

import pyro
import pyro.distributions as pd
import pyro.distributions.transforms as pt
import torch

from ... import _table
from ...constraints import Constraint
from ...dist_transforms import Transform, native_args
from ...errors import SpecError


def _constraint(c: Any) -> Any:
    if isinstance(c, Constraint):
        from . import BACKEND

        return BACKEND.constraint(c)
    return c


def transform(t: Transform) -> Any:
    """The pyro transform for neutral transform ``t``."""
    if t.name == "biject_to":
        out = biject_to(t.args[0])
        return out.inv if t.inverted else out
    spec = _table.TRANSFORMS[t.name]
    args, kwargs = native_args(t, "pyro")
    assert spec.pyro is not None
    out = getattr(pt, spec.pyro)(*args, **kwargs)
    return out.inv if t.inverted else out


def biject_to(constraint: Any) -> Any:
    """The pyro bijection onto ``constraint`` (neutral or torch)."""
    c = _constraint(constraint)
    if type(c).__name__ == "MixtureSameFamilyConstraint":  # the component's support
        c = c.base_constraint
    try:
        return pt.biject_to(c)
    except (NotImplementedError, KeyError):
        raise SpecError(
            f"biject_to({constraint!r}): Pyro has no bijection onto this constraint"
        ) from None


# user-defined distributions ---------------------------------------------------------------
# ``_NeutralKey`` and ``UserDistribution`` are plain Pyro code: ``dualguide export`` copies them
# as they are into an exported program with a user-defined distribution
# (``porting/_native.user_dist_source``), so the backend and the export run the same base class.
class _NeutralKey:
    """dualguide's random source of a distribution's sample in Pyro: ``key.normal(shape)``
    and ``key.uniform(shape)`` draw from torch's global generator."""

    def normal(self, shape=()):
        return torch.randn(tuple(shape))

    def uniform(self, shape=()):
        return torch.rand(tuple(shape))


class UserDistribution(pd.TorchDistribution):
    """The base of a user-defined distribution written with dualguide: the subclass
    defines ``_sample(key, sample_shape)`` and ``_log_prob(value)``; values outside the
    support get log_prob -inf (as every dualguide distribution)."""

    has_rsample = False

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        super().__init__(
            torch.Size(batch_shape), torch.Size(event_shape), validate_args=validate_args
        )

    def rsample(self, sample_shape=torch.Size()):
        if not self.has_rsample:
            raise NotImplementedError(f"{type(self).__name__} has no rsample")
        return self._sample(_NeutralKey(), tuple(sample_shape))

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            return self._sample(_NeutralKey(), tuple(sample_shape))

    def _validate_sample(self, value):  # outside the support: -inf, not a ValueError
        pass

    def log_prob(self, value):
        lp = self._log_prob(value)
        return torch.where(self.support.check(value), lp, lp.new_full((), float("-inf")))

    def expand(self, batch_shape, _instance=None):  # torch's Distribution.expand raises
        return pd.ExpandedDistribution(self, torch.Size(batch_shape))

    def to_event(self, reinterpreted_batch_ndims=None):
        d = super().to_event(reinterpreted_batch_ndims)
        d._validate_args = False  # the base already masks; Independent must not raise
        return d


class _Adapter:
    """First in the native class's MRO (``_Adapter, user's class, UserDistribution``):
    :class:`UserDistribution`'s methods ahead of the user's neutral ``sample``/``log_prob``
    (which it calls as ``_sample``/``_log_prob``) and the neutral ``__init__``'s call."""

    sample = UserDistribution.sample
    rsample = UserDistribution.rsample
    log_prob = UserDistribution.log_prob

    def _dg_native_init(self, batch_shape, event_shape, validate_args):
        UserDistribution.__init__(self, batch_shape, event_shape, validate_args)


def user_class(cls: type) -> type:
    """The pyro subclass of user-defined neutral distribution class ``cls`` (out-of-support
    values get log_prob -inf, as for every dualguide distribution on Pyro)."""
    meta = type(f"{cls.__name__}Meta", (type(cls), type(pd.TorchDistribution)), {})
    ns: dict[str, Any] = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "_dg_backend": "pyro",
        "arg_constraints": {k: _constraint(v) for k, v in cls.arg_constraints.items()},  # type: ignore[attr-defined]
        "support": _constraint(cls.support),  # type: ignore[attr-defined]
        # the user's neutral methods under the names UserDistribution calls (as the export
        # renames them)
        "_sample": cls.sample,  # type: ignore[attr-defined]
        "_log_prob": cls.log_prob,  # type: ignore[attr-defined]
    }
    return meta(cls.__name__, (_Adapter, cls, UserDistribution), ns)


def catalog() -> tuple[str, dict[str, tuple[Any, type]]]:
    """Pyro's version, and the modules of its distribution and transform classes with their
    base classes (``python -m dualguide._support_matrix`` lists them)."""
    return pyro.__version__, {
        "distributions": (pd, torch.distributions.Distribution),
        "transforms": (pt, torch.distributions.transforms.Transform),
    }
