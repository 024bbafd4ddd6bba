"""NumPyro's side of dualguide's pyro-api backend ``dualguide.numpyro``.

Pyro's conventions on NumPyro: a param store that ``SVI.step`` fills (so
``pyro.param(name)`` returns the fitted value), ``SVI.step()`` loops with a jitted
update, ELBOs that accept Pyro's keyword arguments, and torch-style ``ops``
(``tensor``, ``randn(*sizes)``, ``ones(*sizes)``).  The primitives and distributions
themselves are dualguide's neutral ones (see :mod:`dualguide.porting.pyroapi`).
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as nd
import numpyro.infer as ni
from numpyro import handlers
from numpyro.distributions.transforms import biject_to

from ... import _inputs
from ..._state import render
from ...optim import Optimizer
from . import BACKEND

log = logging.getLogger("dualguide")

F32 = jnp.float64 if _inputs.get_dtype() == "float64" else jnp.float32  # rebound by use_dtype


class ParamStore(dict):
    """Constrained params by name; ``SVI.step`` writes them, ``pyro.param(name)`` reads them."""

    def get_param(self, name):
        return self[name]

    def get_all_param_names(self):
        return list(self)


STORE = ParamStore()


def _substituted() -> bool:
    """Whether a ``substitute`` handler (SVI's params) is active."""
    from numpyro.primitives import _PYRO_STACK

    return any(isinstance(h, handlers.substitute) for h in _PYRO_STACK)


def stored_param(name):
    """The fitted value of a param read without an init value (outside SVI's substitution)."""
    if name in STORE and not _substituted():
        return STORE[name]
    return None


def project(value, constraint, native):
    """An init value outside ``constraint`` moved inside through its transform (as Pyro does)."""
    try:
        arr = np.asarray(value, dtype=F32)
    except Exception:
        return value
    if constraint.check(arr):
        return value
    t = biject_to(native)
    return t(t.inv(jnp.asarray(arr)))


def native_param(name, init, constraint, event_dim):
    if init is None and stored_param(name) is not None:
        return STORE[name]
    v = numpyro.param(name, init, constraint=constraint, event_dim=event_dim)
    return STORE.get(name) if v is None else v


def native_plate(name, size, subsample_size, subsample, dim, **kwargs):
    if subsample is not None:
        raise NotImplementedError("numpyro.plate has no subsample= (give subsample_size=)")
    return numpyro.plate(name, size, subsample_size=subsample_size, dim=dim)


def _set_rng_seed(seed: int) -> None:
    np.random.seed(seed)


PYRO = SimpleNamespace(
    get_param_store=lambda: STORE,
    clear_param_store=STORE.clear,
    set_rng_seed=_set_rng_seed,
    module=numpyro.module,
    prng_key=numpyro.prng_key,
)


def _rng_key(rng_key):
    if rng_key is not None:
        return rng_key
    from numpyro.primitives import _PYRO_STACK

    if any(isinstance(h, handlers.seed) for h in _PYRO_STACK):
        return numpyro.prng_key()
    return jax.random.PRNGKey(0)


class SVI:
    """Pyro's ``SVI(model, guide, optim, loss)`` with ``step()``, on NumPyro's SVI.

    ``optim`` is a dualguide optimizer (``pyroapi.optim.Adam({"lr": ...})``) or a NumPyro
    one.  Each step runs a jitted update and writes the constrained params to the store.
    """

    def __init__(
        self, model, guide, optim, loss, loss_and_grads=None, num_samples=10, num_steps=0, **kwargs
    ):
        if isinstance(optim, Optimizer):
            optim = BACKEND.optimizer(optim)
        self._svi = ni.SVI(render(model, BACKEND), render(guide, BACKEND), optim, loss, **kwargs)
        self.svi_state = None
        self._update = jax.jit(self._svi.update)
        self._get_params = jax.jit(self._svi.get_params)

    def step(self, *args, rng_key=None, **kwargs) -> float:
        if self.svi_state is None:
            self.svi_state = self._svi.init(_rng_key(rng_key), *args, **kwargs)
        try:
            self.svi_state, loss = self._update(self.svi_state, *args, **kwargs)
        except (TypeError, jax.errors.ConcretizationTypeError) as e:
            log.info("pyro-api SVI.step: jit failed (%s); stepping without jit", e)
            self._update, self._get_params = self._svi.update, self._svi.get_params
            self.svi_state, loss = self._update(self.svi_state, *args, **kwargs)
        STORE.update(self._get_params(self.svi_state))
        return float(loss)

    def evaluate_loss(self, *args, **kwargs) -> float:
        return float(self._svi.evaluate(self.svi_state, *args, **kwargs))

    def get_params(self):
        return self._svi.get_params(self.svi_state)


def _pyro_style(cls):
    """An ELBO class that accepts Pyro's constructor arguments (and ignores those NumPyro lacks)."""

    class Elbo(cls):
        def __init__(
            self,
            num_particles=1,
            max_plate_nesting=float("inf"),
            max_iarange_nesting=None,
            vectorize_particles=True,
            strict_enumeration_warning=True,
            ignore_jit_warnings=False,
            jit_options=None,
            retain_graph=None,
            tail_adaptive_beta=-1.0,
        ):
            super().__init__(num_particles=num_particles)

    Elbo.__name__ = Elbo.__qualname__ = cls.__name__
    return Elbo


class _Fallback:
    """Attributes of ``primary`` first, then of each module in ``rest``."""

    def __init__(self, primary: dict, *rest):
        self.__dict__.update(primary)
        self._rest = rest

    def __getattr__(self, attr):
        for m in self._rest:
            if hasattr(m, attr):
                return getattr(m, attr)
        raise AttributeError(attr)


def _compat(name):
    import importlib

    return importlib.import_module(f"numpyro.compat.{name}")


INFER = _Fallback(
    {
        "SVI": SVI,
        "Trace_ELBO": _pyro_style(ni.Trace_ELBO),
        "JitTrace_ELBO": _pyro_style(ni.Trace_ELBO),
        "TraceMeanField_ELBO": _pyro_style(ni.TraceMeanField_ELBO),
        "JitTraceMeanField_ELBO": _pyro_style(ni.TraceMeanField_ELBO),
        "TraceGraph_ELBO": _pyro_style(ni.TraceGraph_ELBO),
        "JitTraceGraph_ELBO": _pyro_style(ni.TraceGraph_ELBO),
    },
    _compat("infer"),
    ni,
)
OPTIM = _Fallback({}, _compat("optim"), numpyro.optim)
HANDLERS = handlers
DISTRIBUTIONS = nd


def _sizes(sizes):
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        return tuple(sizes[0])
    return tuple(sizes)


def _tensor(data, dtype=None, **_kwargs):
    a = np.asarray(data)
    if dtype is None and a.dtype.kind == "f":
        dtype = F32
    return jnp.asarray(a, dtype=dtype)


OPS = _Fallback(
    {
        "tensor": _tensor,
        "as_tensor": _tensor,
        "randn": lambda *sizes: jnp.asarray(np.random.randn(*_sizes(sizes)), dtype=F32),
        "rand": lambda *sizes: jnp.asarray(np.random.rand(*_sizes(sizes)), dtype=F32),
        "ones": lambda *sizes, dtype=F32: jnp.ones(_sizes(sizes), dtype=dtype),
        "zeros": lambda *sizes, dtype=F32: jnp.zeros(_sizes(sizes), dtype=dtype),
        "full": lambda size, fill_value, dtype=F32: jnp.full(_sizes((size,)), fill_value, dtype),
    },
    jnp,
)
