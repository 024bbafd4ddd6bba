"""NumPyro's side of :mod:`dualguide.enum`: ``numpyro.contrib.funsor`` (which needs ``funsor``)
and ``numpyro.ops.indexing.vindex``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import numpyro
from numpyro import handlers as nh
from numpyro.ops.indexing import vindex as _vindex
from numpyro.primitives import _PYRO_STACK

from ...errors import BackendError


def _funsor() -> Any:
    """``numpyro.contrib.funsor``, or a clear error naming the missing package."""
    try:
        import numpyro.contrib.funsor as nf
    except ImportError:
        raise BackendError(
            "enumeration on NumPyro (config_enumerate, markov, infer_discrete, TraceEnum_ELBO) "
            "needs the package funsor: pip install 'dualguide[numpyro]' (or pip install funsor)"
        ) from None
    return nf


def config_enumerate(fn: Callable, default: str) -> Callable:
    """``numpyro.contrib.funsor.config_enumerate(fn, default)``."""
    return _funsor().config_enumerate(fn, default=default)


def markov(fn: Any, history: int, keep: bool) -> Any:
    """``numpyro.contrib.funsor.markov(fn, history, keep)`` (context manager, iterator or
    decorated function)."""
    return _funsor().markov(fn, history=history, keep=keep)


def _key() -> Any:
    """The key of the enclosing seed handler, else one from numpy's global RNG."""
    if any(isinstance(h, nh.seed) for h in _PYRO_STACK):
        return numpyro.prng_key()
    return jax.random.PRNGKey(int(np.random.randint(0, 2**31 - 1)))


def infer_discrete(fn: Callable, first_available_dim: int, temperature: int) -> Callable:
    """``numpyro.contrib.funsor.infer_discrete``; its key comes from the enclosing seed handler
    (dualguide's handlers seed every run) or numpy's global RNG, drawn at each call."""
    nf = _funsor()

    def run(*args: Any, **kwargs: Any) -> Any:
        native = nf.infer_discrete(
            fn, first_available_dim=first_available_dim, temperature=temperature, rng_key=_key()
        )
        return native(*args, **kwargs)

    return run


def vindex(tensor: Any, args: tuple) -> Any:
    """``numpyro.ops.indexing.vindex(tensor, args)``."""
    return _vindex(tensor, args)


def check() -> None:
    """Raise :class:`~dualguide.errors.BackendError` when enumeration cannot run (no funsor)."""
    _funsor()


def loss_values(
    model: Callable,
    guide: Callable,
    params: dict,
    n: int,
    seed: int,
    args: tuple,
    kwargs: dict,
    max_plate_nesting: int,
) -> np.ndarray:
    """``n`` single-particle values of ``-TraceEnum_ELBO.loss`` at the constrained ``params``
    (the enumerated sites summed out), one jitted evaluation per key."""
    import jax.numpy as jnp
    from numpyro.infer import TraceEnum_ELBO

    _funsor()
    elbo = TraceEnum_ELBO(num_particles=1, max_plate_nesting=max_plate_nesting)
    p = {k: jnp.asarray(v) for k, v in params.items()}
    # set an autoguide up outside jit (its first call runs the model)
    nh.substitute(nh.seed(guide, jax.random.PRNGKey(0)), data=p)(*args, **kwargs)

    @jax.jit
    def one(key: Any) -> Any:
        return -elbo.loss(key, p, model, guide, *args, **kwargs)

    keys = jax.random.split(jax.random.PRNGKey(seed), n)
    return np.asarray([float(one(k)) for k in keys], dtype=np.float64)
