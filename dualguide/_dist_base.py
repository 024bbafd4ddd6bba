"""A user-defined distribution, written once with :mod:`dualguide.ops`.

Subclass :class:`Distribution` (``dg.distributions.Distribution``) as you would subclass
``pyro.distributions.TorchDistribution``: set ``arg_constraints`` and ``support`` (neutral
constraints) and ``has_rsample``, call ``super().__init__(batch_shape, event_shape)`` in
``__init__``, and write ``log_prob(value)`` and ``sample(key, sample_shape=())`` with ops.
``key`` is a neutral random source: ``key.normal(shape)`` and ``key.uniform(shape)`` give
standard normal and uniform arrays of that shape (a fresh draw each call).

Calling the class builds a native subclass for the active backend (a
``numpyro.distributions.Distribution`` or a ``pyro.distributions.TorchDistribution``): it
works in ``dg.sample``, models, guides and ``dg.fit``, and has the framework's own
``sample`` / ``rsample`` signatures, ``expand``, ``to_event`` and ``mask``.  ``dualguide
export`` writes the class as a native subclass of each framework, and ``dualguide port`` reads
a native subclass (NumPyro's ``Distribution``, Pyro's ``TorchDistribution``) back as one of
these (``docs/export_and_port.md``).

>>> import dualguide as dg
>>> from dualguide import constraints, ops, distributions as dist
>>> class Shifted(dist.Distribution):
...     arg_constraints = {"loc": constraints.real}
...     support = constraints.real
...     has_rsample = True
...     def __init__(self, loc, validate_args=None):
...         self.loc = ops.asarray(loc)
...         super().__init__(batch_shape=tuple(self.loc.shape), validate_args=validate_args)
...     def sample(self, key, sample_shape=()):
...         return self.loc + key.normal(tuple(sample_shape) + tuple(self.batch_shape))
...     def log_prob(self, value):
...         return -0.5 * (value - self.loc) ** 2 - 0.5 * ops.log(2 * ops.pi)
>>> with dg.use_backend("pyro"):
...     round(float(Shifted(1.0).log_prob(dg.ops.asarray(1.0))), 4)
-0.9189
>>> with dg.use_backend("numpyro"):
...     round(float(Shifted(1.0).log_prob(dg.ops.asarray(1.0))), 4)
-0.9189
"""

from __future__ import annotations

from typing import Any

from . import _state
from . import constraints as _c
from .errors import SpecError

__all__ = ["Distribution"]


class _NeutralMeta(type):
    """Calling a neutral subclass builds (once per backend) and instantiates its native class."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if "_dg_backend" in vars(cls) or cls.__dict__.get("_dg_abstract"):
            return super().__call__(*args, **kwargs)
        b = _state.current()
        cache = cls.__dict__.get("_dg_native")
        if cache is None:
            cache = {}
            type.__setattr__(cls, "_dg_native", cache)
        native = cache.get(b.name)
        if native is None:
            _check_class(cls)
            native = cache[b.name] = _state.feature(b, "dists").user_class(cls)
        return native(*args, **kwargs)


def _check_class(cls: type) -> None:
    for attr in ("log_prob", "sample"):
        if getattr(cls, attr) is getattr(Distribution, attr):
            raise SpecError(
                f"distribution class {cls.__name__!r} must define {attr}(...) written with "
                "dualguide.ops"
            )
    if not isinstance(getattr(cls, "support", None), _c.Constraint):
        raise SpecError(
            f"distribution class {cls.__name__!r}: support must be a dualguide constraint "
            "(e.g. support = constraints.real)"
        )
    for k, v in getattr(cls, "arg_constraints", {}).items():
        if not isinstance(v, _c.Constraint):
            raise SpecError(
                f"distribution class {cls.__name__!r}: arg_constraints[{k!r}] must be a "
                "dualguide constraint"
            )


class Distribution(metaclass=_NeutralMeta):
    """Base class of a user-defined distribution written once with ``ops`` (see the module)."""

    _dg_abstract = True
    #: parameter name -> neutral constraint (validated as each framework validates)
    arg_constraints: dict = {}
    #: the set of values (a neutral constraint)
    support: Any = _c.real
    #: whether ``sample`` is differentiable in the parameters (a reparameterized sampler)
    has_rsample = False

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._dg_native_init(tuple(batch_shape), tuple(event_shape), validate_args)

    def _dg_native_init(self, batch_shape, event_shape, validate_args):  # pragma: no cover
        raise SpecError("instantiate a dualguide Distribution subclass, not the base class")

    def sample(self, key, sample_shape=()):
        """A draw of shape ``sample_shape + batch_shape + event_shape`` from ``key``'s noise."""
        raise NotImplementedError

    def log_prob(self, value):
        """The log density of ``value`` (one number per batch element)."""
        raise NotImplementedError
