"""Neutral primitives with Pyro's names and argument conventions.

Each call is answered by the active backend (see :func:`dualguide.render`), so
the same function body is a NumPyro program on one backend and a Pyro program
on the other.

>>> import dualguide as dg
>>> from dualguide import constraints, distributions as dist
>>> def guide():
...     s = dg.param("s", 1.0, constraint=constraints.positive)
...     return dg.sample("x", dist.Normal(0.0, s))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _state
from .constraints import Constraint, as_constraint, real
from .errors import SpecError

__all__ = ["param", "sample", "plate", "factor", "deterministic"]


def param(
    name: str,
    init_value: Any = None,
    constraint: Constraint = real,
    event_dim: int | None = None,
):
    """A learnable parameter, stored unconstrained and returned constrained.

    ``init_value`` is a number, a nested list, a numpy array, or a callable
    returning one of those that takes no argument (Pyro's convention) or one, the
    init key (NumPyro's: ``lambda key: ops.random.normal(key, (3,))`` or
    ``lambda key: dist.Exponential(1.0).sample(key)`` run on both backends); it
    becomes a float32 array of the active backend.  ``constraint`` is a
    :mod:`dualguide.constraints` object.

    >>> import dualguide as dg
    >>> from dualguide import constraints
    >>> def guide():
    ...     return dg.param("scale", 1.0, constraint=constraints.positive)
    """
    if not isinstance(constraint, Constraint):
        constraint = as_constraint(constraint, where=f"param {name!r}")
    hook = _state.param_hook
    if hook is not None:
        init_value = hook(name, init_value, constraint, event_dim)
    b = _state.current()
    if init_value is None and not b.in_program():
        return _read(b, name)
    return b.param(name, init_value, constraint, event_dim)


def _read(b: Any, name: str) -> np.ndarray:
    """``dg.param(name)`` outside a program: the fitted value, as numpy (a copy: later steps
    do not change it), from the framework's store (Pyro's) or dualguide's (NumPyro has no
    global store)."""
    try:
        value = b.param(name, None, real, None)
    except KeyError:  # Pyro's store
        value = None
    if value is None and _state.stored_param is not None:
        value = _state.stored_param(name)
    if value is None:
        raise SpecError(
            f"dg.param({name!r}): no fitted value to read (outside a model or guide it reads "
            "the param store, which dg.infer.SVI fills; dg.fit returns its params in the "
            "result: result.params)"
        )
    return np.array(b.to_numpy(value), copy=True)


def sample(name: str, fn, obs=None, *, infer: dict | None = None, **kwargs):
    """A random variable ``name`` drawn from (or, with ``obs=``, observed under) ``fn``.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model(data=None):
    ...     mu = dg.sample("mu", dist.Normal(0.0, 1.0))
    ...     return dg.sample("y", dist.Normal(mu, 1.0), obs=data)
    """
    return _state.current().sample(name, fn, obs, infer, kwargs)


def plate(
    name: str, size: int | None = None, subsample_size: int | None = None, dim: int | None = None
):
    """Conditionally independent batch dimension; use as a context manager.

    ``size`` is required (a Python int, or a concrete integer array); a plate without one,
    or of size 0, is a :class:`~dualguide.errors.SpecError` on both backends.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     with dg.plate("data", 10):
    ...         dg.sample("z", dist.Normal(0.0, 1.0))
    """
    return _state.current().plate(name, size, subsample_size, dim)


def factor(name: str, log_factor, *, has_rsample: bool | None = None) -> None:
    """Add ``log_factor`` to the log density of the program it is called in.

    In a guide the factor is differentiated pathwise on both backends (Pyro's
    ``has_rsample=True``); that is the one documented behaviour, so
    ``has_rsample=False`` is refused.  A factor in a guide only adds an ELBO
    term: it does not change what the guide samples.

    >>> import dualguide as dg
    >>> def model():
    ...     dg.factor("penalty", -1.0)
    """
    if has_rsample is False:
        from .errors import SpecError

        raise SpecError(
            f"factor {name!r}: has_rsample=False is not supported; dualguide differentiates "
            "factors pathwise in both backends (drop the argument)"
        )
    return _state.current().factor(name, log_factor)


def deterministic(name: str, value, event_dim: int | None = None):
    """Record ``value`` in the trace under ``name``; it is not a random variable.

    >>> import dualguide as dg
    >>> def model():
    ...     return dg.deterministic("two", 2.0)
    """
    return _state.current().deterministic(name, value, event_dim)
