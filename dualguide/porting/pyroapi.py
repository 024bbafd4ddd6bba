"""dualguide as a backend of pyro-api, for NumPyro and for Pyro.

`pyro-api <https://github.com/pyro-ppl/pyro-api>`_ is the Pyro team's generic
dispatch API: code written against ``from pyroapi import pyro, distributions,
infer, optim, ops, handlers`` runs on whichever backend ``pyro_backend(name)``
selects.  Importing this module registers two backends::

    "dualguide.numpyro"   dualguide's neutral API answered by NumPyro (JAX)
    "dualguide.pyro"      dualguide's neutral API answered by Pyro (PyTorch)

In both, ``pyro.param / sample / plate / factor / deterministic`` are dualguide's
neutral primitives (float32 arrays, dualguide's support masking, pathwise
factors) and ``distributions`` and ``distributions.constraints`` are the neutral
ones wherever the table (:mod:`dualguide._table`) has the name -- other names
(``Binomial``, ``transforms``...) are the framework's own.  ``optim.Adam`` and
``optim.ClippedAdam`` are :mod:`dualguide.optim` (the same update in both, Pyro's
dict-of-settings convention); ``infer`` (``SVI`` with Pyro's ``step()`` loop,
``Trace_ELBO``, ``JitTrace_ELBO``, ``TraceMeanField_ELBO``), ``handlers`` and ``ops``
are the framework's, NumPyro's dressed in Pyro's conventions (a param store,
``ops.tensor``, ``ops.randn(*sizes)``).  Pyro's param conventions hold in both: an
init value outside its constraint is moved inside it through the constraint's
transform (as Pyro's param store does), and ``pyro.param(name)`` returns the
fitted value after ``SVI.step``.  One difference remains on NumPyro: outside SVI a
param with an explicit init value returns that init value (as ``numpyro.compat``
does), where Pyro's global param store would return the stored value.

>>> import dualguide.porting.pyroapi  # registers the two backends
>>> from pyroapi import pyro_backend, pyro, distributions as dist, infer, optim
>>> def model():
...     loc = pyro.param("loc", 0.0)
...     pyro.sample("x", dist.Normal(loc, 1.0), obs=1.0)
>>> def guide():
...     pass
>>> with pyro_backend("dualguide.numpyro"):  # doctest: +SKIP
...     svi = infer.SVI(model, guide, optim.Adam({"lr": 0.1}), infer.Trace_ELBO())
...     losses = [svi.step() for _ in range(10)]
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

from .. import _state, _table
from ..constraints import Constraint

__all__ = ["register", "BACKEND_NAMES", "NAMESPACES"]

#: pyro-api name -> dualguide backend
BACKEND_NAMES = {f"dualguide.{b}": b for b in _table.BACKENDS}
#: the module kinds pyro-api dispatches
NAMESPACES = ("pyro", "distributions", "handlers", "infer", "optim", "ops")


def _impl(backend: str):
    """The backend-side module (imports the framework)."""
    return _state.feature(backend, "pyroapi")


class _Namespace(types.ModuleType):
    """A module pyro-api imports by name; its attributes are built on first access."""

    def __init__(self, name: str, backend: str, kind: str):
        super().__init__(name, f"pyro-api {kind!r} namespace of dualguide's {backend} backend")
        self._backend = backend
        self._kind = kind
        self._table: Any = None

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        ns = self.__dict__.get("_table")
        if ns is None:
            ns = self.__dict__["_table"] = _build(self.__dict__["_backend"], self.__dict__["_kind"])
        try:
            value = getattr(ns, attr)
        except AttributeError:
            raise AttributeError(
                f"dualguide's pyro-api backend {self._backend!r} has no {self._kind}.{attr}"
            ) from None
        return value

    def __dir__(self):
        ns = _build(self._backend, self._kind)
        return sorted(set(dir(ns)))


def _module_name(backend: str, kind: str) -> str:
    return f"{__name__}._{backend}_{kind}"


def register() -> list[str]:
    """Register ``dualguide.numpyro`` and ``dualguide.pyro`` with pyro-api; return their names.

    Safe to call again.  Nothing is imported from jax or torch until a namespace is used.

    >>> from dualguide.porting.pyroapi import register
    >>> register()
    ['dualguide.numpyro', 'dualguide.pyro']
    """
    try:
        import pyroapi
    except ImportError:
        from ..errors import BackendError

        raise BackendError(
            "pyro-api is not installed: pip install pyro-api (or 'dualguide[all]')"
        ) from None
    names = []
    for alias, b in BACKEND_NAMES.items():
        mods = {}
        for kind in NAMESPACES:
            modname = _module_name(b, kind)
            if modname not in sys.modules:
                sys.modules[modname] = _Namespace(modname, b, kind)
            mods[kind] = modname
        pyroapi.register_backend(alias, mods)
        names.append(alias)
    return names


# -------------------------------------------------------------------------------------------
# the namespaces
# -------------------------------------------------------------------------------------------
_BUILT: dict[tuple[str, str], Any] = {}


def _build(backend: str, kind: str):
    key = (backend, kind)
    ns = _BUILT.get(key)
    if ns is None:
        if kind == "pyro":
            ns = PyroNamespace(backend)
        elif kind == "distributions":
            ns = DistributionsNamespace(backend)
        elif kind == "optim":
            ns = OptimNamespace(backend)
        else:
            ns = getattr(_impl(backend), kind.upper())
        _BUILT[key] = ns
    return ns


class _Swap:
    """Run a call with dualguide's active backend set to ``backend``."""

    __slots__ = ("b", "prev")

    def __init__(self, b):
        self.b = b

    def __enter__(self):
        self.prev = _state._swap(self.b)

    def __exit__(self, *exc):
        _state._restore(self.prev)


def neutral_constraint(c, backend) -> Constraint | None:
    """The neutral constraint equal to a native one (None when there is none)."""
    if isinstance(c, Constraint):
        return c
    from .. import constraints as nc

    b = _state.load(backend)
    for name in _table.CONSTRAINTS:
        obj = getattr(nc, name)
        if isinstance(obj, Constraint) and b.constraint(obj) is c:
            return obj
    name = type(c).__name__.lstrip("_").lower()
    args = {
        "interval": ("lower_bound", "upper_bound"),
        "greaterthan": ("lower_bound",),
        "lessthan": ("upper_bound",),
    }
    for neutral, attrs in (
        ("interval", args["interval"]),
        ("greater_than", args["greaterthan"]),
        ("less_than", args["lessthan"]),
    ):
        if name.replace("_", "") == neutral.replace("_", "") and all(hasattr(c, a) for a in attrs):
            try:
                return getattr(nc, neutral)(*(float(getattr(c, a)) for a in attrs))
            except Exception:
                return None
    return None


class PyroNamespace:
    """``pyroapi.pyro``: dualguide's neutral primitives, with Pyro's param conventions."""

    def __init__(self, backend: str):
        self._name = backend
        self._b = _state.load(backend)
        self._impl = _impl(backend)

    def param(self, name, init_tensor=None, constraint=None, event_dim=None, **kwargs):
        """Pyro's ``param``: through ``dualguide.param``; init moved inside its constraint."""
        from ..constraints import real
        from ..primitives import param

        if "init_value" in kwargs:
            init_tensor = kwargs.pop("init_value")
        if kwargs:
            raise TypeError(f"param {name!r}: unexpected arguments {sorted(kwargs)}")
        c = real if constraint is None else neutral_constraint(constraint, self._name)
        impl = self._impl
        if c is None:  # a native constraint dualguide has no name for: the native param
            return impl.native_param(name, init_tensor, constraint, event_dim)
        if init_tensor is None:
            stored = impl.stored_param(name)
            if stored is not None:
                return stored
            with _Swap(self._b):
                value = param(name)
            # outside a program dualguide's param read gives numpy; pyro-api code does
            # framework math on it (``ops.allclose(pyro.param("p"), ...)``)
            return value if value is None or self._b.in_program() else self._b.to_array(value)
        if not callable(init_tensor):
            init_tensor = impl.project(init_tensor, c, self._b.constraint(c))
        with _Swap(self._b):
            return param(name, init_tensor, c, event_dim)

    def sample(self, name, fn, *args, **kwargs):
        from ..primitives import sample

        obs = kwargs.pop("obs", None)
        infer = kwargs.pop("infer", None)
        if args:
            raise TypeError(f"sample {name!r}: give obs= by keyword")
        with _Swap(self._b):
            return sample(name, fn, obs, infer=infer, **kwargs)

    def plate(self, name, size=None, subsample_size=None, subsample=None, dim=None, **kwargs):
        from ..primitives import plate

        if subsample is not None or kwargs:
            return self._impl.native_plate(name, size, subsample_size, subsample, dim, **kwargs)
        with _Swap(self._b):
            return plate(name, size, subsample_size, dim)

    def factor(self, name, log_factor, *, has_rsample=None):
        from ..primitives import factor

        with _Swap(self._b):
            return factor(name, log_factor, has_rsample=has_rsample)

    def deterministic(self, name, value, event_dim=None):
        from ..primitives import deterministic

        with _Swap(self._b):
            return deterministic(name, value, event_dim)

    def __getattr__(self, attr):
        # get_param_store, clear_param_store, set_rng_seed, module, ... from the backend side
        return getattr(self._impl.PYRO, attr)


class DistributionsNamespace:
    """``pyroapi.distributions``: neutral distributions where the table has the name."""

    def __init__(self, backend: str):
        self._name = backend
        self._b = _state.load(backend)
        self.constraints = ConstraintsNamespace(backend)

    def __getattr__(self, attr):
        if attr in _table.DISTRIBUTIONS:
            from .. import distributions as nd

            ctor = getattr(nd, attr)
            b = self._b

            def make(*args, **kwargs):
                with _Swap(b):
                    return ctor(*args, **kwargs)

            make.__name__ = make.__qualname__ = attr
            make.__doc__ = ctor.__doc__
            setattr(self, attr, make)
            return make
        return getattr(_impl(self._name).DISTRIBUTIONS, attr)


class ConstraintsNamespace:
    """``distributions.constraints``: neutral constraints, native ones for other names."""

    def __init__(self, backend: str):
        self._name = backend

    def __getattr__(self, attr):
        if attr in _table.CONSTRAINTS:
            from .. import constraints as nc

            return getattr(nc, attr)
        return getattr(_impl(self._name).DISTRIBUTIONS.constraints, attr)


class OptimNamespace:
    """``pyroapi.optim``: dualguide's Adam and ClippedAdam (Pyro's dict convention)."""

    def __init__(self, backend: str):
        self._name = backend

    def __getattr__(self, attr):
        from .. import optim

        if attr in _table.OPTIMIZERS:
            return getattr(optim, attr)
        return getattr(_impl(self._name).OPTIM, attr)


if importlib.util.find_spec("pyroapi") is not None:
    register()
