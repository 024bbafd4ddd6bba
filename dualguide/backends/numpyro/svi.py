"""NumPyro's side of :class:`dualguide.svi.SVI`: ``numpyro.infer.SVI`` with a jitted update kept in the object."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import numpyro.infer as ni

from ..._table import ELBOS

log = logging.getLogger("dualguide")


class NativeSVI:
    """``numpyro.infer.SVI`` stepped one update at a time (``init`` on the first step)."""

    def __init__(
        self,
        model: Callable,
        guide: Callable,
        optim: Any,
        elbo: str,
        num_particles: int,
        init_params: dict,
        rng_seed: int | None,
        elbo_options: dict | None = None,
    ) -> None:
        loss = getattr(ni, ELBOS[elbo][0])(num_particles=num_particles, **(elbo_options or {}))
        self.svi = ni.SVI(model, guide, optim, loss)
        self.state: Any = None
        self.init_params = init_params
        # unseeded: a seed from numpy's global RNG (dualguide's rule for unseeded runs)
        self.rng_seed = int(np.random.randint(0, 2**31 - 1)) if rng_seed is None else rng_seed
        self._jitted: dict = {}
        self._jit = True
        self._get_params: Callable = jax.jit(self.svi.get_params)

    def _init(self, args: tuple, kwargs: dict) -> None:
        """``svi.init``; the program's params found in the store start from the stored values
        (autoguides' native params too), the others from their init values."""
        if self.state is None:
            key = jax.random.PRNGKey(self.rng_seed)
            state = self.svi.init(key, *args, **kwargs)
            names = set(self.svi.get_params(state))
            given = {k: v for k, v in self.init_params.items() if k in names}
            if given:
                state = self.svi.init(key, *args, init_params=given, **kwargs)
            self.state = state

    def _call(self, what: str, args: tuple, kwargs: dict) -> Any:
        """``svi.update`` / ``svi.evaluate`` jitted, with Python ints, bools and strings static
        (a plate size passed as an int stays an int); unjitted if jit fails."""
        fn = getattr(self.svi, what)
        if not self._jit:
            return fn(self.state, *args, **kwargs)
        static = (
            tuple(i + 1 for i, a in enumerate(args) if isinstance(a, (int, str, bool))),
            tuple(sorted(k for k, v in kwargs.items() if isinstance(v, (int, str, bool)))),
        )
        key = (what, static)
        jitted = self._jitted.get(key)
        if jitted is None:
            jitted = self._jitted[key] = jax.jit(
                fn, static_argnums=static[0], static_argnames=static[1]
            )
        try:
            return jitted(self.state, *args, **kwargs)
        except (TypeError, jax.errors.ConcretizationTypeError) as e:
            log.info("SVI (numpyro): jit failed (%s); stepping without jit", e)
            self._jit = False
            return fn(self.state, *args, **kwargs)

    def init(self, args: tuple, kwargs: dict, fresh: bool = False) -> None:
        """Create the state (and so the params) without a step (``fresh``: the object was
        made without store values, so ``svi.init`` starts from the init values)."""
        self._init(args, kwargs)

    def step(self, args: tuple, kwargs: dict) -> float:
        self._init(args, kwargs)
        self.state, loss = self._call("update", args, kwargs)
        return float(loss)

    def evaluate_loss(self, args: tuple, kwargs: dict) -> float:
        """Pyro's rule (docs/handlers.md): each call draws fresh noise.  NumPyro's ``evaluate``
        uses the noise of the next ``update`` and leaves the key as it is; here the state's key
        then advances as an ``update`` advances it, so the next call (an evaluation or a step)
        draws new noise, as if the evaluation had used one step's draws from the stream."""
        self._init(args, kwargs)
        loss = float(self._call("evaluate", args, kwargs))
        self.state = self.state._replace(rng_key=jax.random.split(self.state.rng_key)[0])
        return loss

    def params(self) -> dict[str, Any]:
        """Constrained params (jax arrays) by name; empty before the first step."""
        if self.state is None:
            return {}
        return dict(self._get_params(self.state))


def make(
    model: Callable,
    guide: Callable,
    optim: Any,
    elbo: str,
    num_particles: int,
    init_params: dict,
    rng_seed: int,
    elbo_options: dict | None = None,
) -> NativeSVI:
    """The SVI object for rendered ``model`` / ``guide`` and the framework's ``optim``
    (``elbo_options``: the estimator's other arguments, e.g. RenyiELBO's ``alpha``)."""
    return NativeSVI(model, guide, optim, elbo, num_particles, init_params, rng_seed, elbo_options)


def clear_param_store() -> None:
    """NumPyro keeps params in each SVI object's state: nothing global to clear."""


def set_rng_seed(seed: int) -> None:
    """NumPyro has no global RNG: unseeded runs take their key from numpy's (seeded neutrally)."""
