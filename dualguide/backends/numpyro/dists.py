"""NumPyro's side of dualguide's distributions: neutral transforms, ``biject_to``, and the
native subclass of a user-defined neutral distribution (``dualguide.distributions.Distribution``)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as nd
import numpyro.distributions.transforms as nt
from numpyro.distributions import constraints as nc

from ... import _table
from ...constraints import Constraint
from ...dist_transforms import Transform, native_args
from ...errors import SpecError


class TanhTransform(nt.Transform):
    """``y = tanh(x)`` (NumPyro has no TanhTransform; the same map and log|det J| as torch's)."""

    domain = nc.real
    codomain = nc.interval(-1.0, 1.0)

    def __call__(self, x):
        return jnp.tanh(x)

    def _inverse(self, y):
        eps = jnp.finfo(jnp.result_type(y)).eps
        return jnp.arctanh(jnp.clip(y, -1 + eps, 1 - eps))

    def log_abs_det_jacobian(self, x, y, intermediates=None):
        # torch's formula: log(1 - tanh(x)^2) = 2 (log 2 - x - softplus(-2x))
        return 2.0 * (jnp.log(2.0) - x - jax.nn.softplus(-2.0 * x))

    def tree_flatten(self):
        return (), ((), {})

    def __eq__(self, other):
        return isinstance(other, TanhTransform)


def _constraint(c: Any) -> Any:
    if isinstance(c, Constraint):
        from . import BACKEND

        return BACKEND.constraint(c)
    return c


def transform(t: Transform) -> Any:
    """The numpyro transform for neutral transform ``t``."""
    if t.name == "biject_to":
        out = biject_to(t.args[0])
        return out.inv if t.inverted else out
    spec = _table.TRANSFORMS[t.name]
    args, kwargs = native_args(t, "numpyro")
    if spec.rename:  # NumPyro's own keywords (and argument order): pass all by keyword
        kwargs.update(zip(spec.args, args))
        args = ()
        kwargs = {spec.rename.get(k, k): v for k, v in kwargs.items()}
    if t.name == "AffineTransform":
        named = dict(zip(spec.args, args), **kwargs)
        event_dim = named.pop("event_dim", 0)
        out = nt.AffineTransform(named["loc"], named["scale"])
        if event_dim:
            # torch's AffineTransform(event_dim=k) sums log|scale| over the k rightmost dims.
            # NumPyro's takes a domain instead, and with an independent domain it has no
            # codomain (TransformedDistribution needs one): the same map is NumPyro's
            # elementwise AffineTransform wrapped in an IndependentTransform
            out = nt.IndependentTransform(out, event_dim)  # an int >= 0: checked when built
    elif t.name == "TanhTransform":
        out = TanhTransform()
    else:
        assert spec.numpyro is not None
        out = getattr(nt, spec.numpyro)(*args, **kwargs)
    return out.inv if t.inverted else out


def biject_to(constraint: Any) -> Any:
    """The numpyro bijection onto ``constraint`` (neutral or numpyro)."""
    c = _constraint(constraint)
    try:
        return nt.biject_to(c)
    except (NotImplementedError, KeyError):
        raise SpecError(
            f"biject_to({constraint!r}): NumPyro has no bijection onto this constraint"
        ) from None


# user-defined distributions ---------------------------------------------------------------
# ``_NeutralKey`` and ``UserDistribution`` are plain NumPyro code: ``dualguide export`` copies
# them as they are into an exported program with a user-defined distribution
# (``porting/_native.user_dist_source``), so the backend and the export run the same base class.
class _NeutralKey:
    """dualguide's random source of a distribution's sample over a JAX key:
    ``key.normal(shape)`` and ``key.uniform(shape)`` each draw with a fresh subkey."""

    def __init__(self, key):
        self._key = key

    def _next(self):
        self._key, sub = jax.random.split(self._key)
        return sub

    def normal(self, shape=()):
        return jax.random.normal(self._next(), tuple(shape))

    def uniform(self, shape=()):
        return jax.random.uniform(self._next(), tuple(shape))


class UserDistribution(nd.Distribution):
    """The base of a user-defined distribution written with dualguide: the subclass
    defines ``_sample(key, sample_shape)`` and ``_log_prob(value)``; values outside the
    support get log_prob -inf (as every dualguide distribution)."""

    has_rsample = False

    def sample(self, key, sample_shape=()):
        return self._sample(_NeutralKey(key), tuple(sample_shape))

    def rsample(self, key, sample_shape=()):
        if not self.has_rsample:
            raise NotImplementedError(f"{type(self).__name__} has no rsample")
        return self.sample(key, sample_shape)

    def log_prob(self, value):
        lp = self._log_prob(value)
        if self.support is nc.real:
            return lp
        return jnp.where(self.support.check(value), lp, -jnp.inf)


class _Adapter:
    """First in the native class's MRO (``_Adapter, user's class, UserDistribution``):
    :class:`UserDistribution`'s methods ahead of the user's neutral ``sample``/``log_prob``
    (which it calls as ``_sample``/``_log_prob``), the neutral ``__init__``'s call, and no
    pytree (the user's attributes are not leaves).  UserDistribution itself comes after the
    user's class so that numpyro's ``Distribution.__init__`` is the last ``__init__``."""

    sample = UserDistribution.sample
    rsample = UserDistribution.rsample
    log_prob = UserDistribution.log_prob

    def _dg_native_init(self, batch_shape, event_shape, validate_args):
        nd.Distribution.__init__(
            self,
            batch_shape=tuple(batch_shape),
            event_shape=tuple(event_shape),
            validate_args=validate_args,
        )

    def tree_flatten(self):
        raise NotImplementedError("user-defined distributions are not pytrees")


def user_class(cls: type) -> type:
    """The numpyro subclass of user-defined neutral distribution class ``cls``."""
    meta = type(f"{cls.__name__}Meta", (type(cls), type(nd.Distribution)), {})
    ns: dict[str, Any] = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "_dg_backend": "numpyro",
        "arg_constraints": {k: _constraint(v) for k, v in cls.arg_constraints.items()},  # type: ignore[attr-defined]
        "support": _constraint(cls.support),  # type: ignore[attr-defined]
        # the user's neutral methods under the names UserDistribution calls (as the export
        # renames them)
        "_sample": cls.sample,  # type: ignore[attr-defined]
        "_log_prob": cls.log_prob,  # type: ignore[attr-defined]
    }
    return meta(cls.__name__, (_Adapter, cls, UserDistribution), ns)


def catalog() -> tuple[str, dict[str, tuple[Any, type]]]:
    """NumPyro's version, and the modules of its distribution and transform classes with
    their base classes (``python -m dualguide._support_matrix`` lists them)."""
    return numpyro.__version__, {
        "distributions": (nd, nd.Distribution),
        "transforms": (nt, nt.Transform),
    }
