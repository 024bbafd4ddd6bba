"""Pyro's side of :class:`dualguide.svi.SVI`: ``pyro.infer.SVI`` with a ``pyro.optim`` optimizer.

Params live in Pyro's global ``ParamStore``, as in any Pyro program.  Particles follow
``dg.fit``'s rule (``docs/particles.md``): ``Trace_ELBO`` is :class:`.particles.ParticleELBO`
(one particle of Pyro's ``Trace_ELBO`` under ``torch.func.vmap``, each particle with its own
draws and its own minibatch), the other estimators run their particles one by one
(``vectorize_particles=False``); the model never sees a particle dimension.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyro
import pyro.infer as pi
import torch
from pyro import poutine

from ... import _state
from ..._table import ELBOS
from .particles import ParticleELBO


class NativeSVI:
    """``pyro.infer.SVI``; the first step declares the params (init values from the store)."""

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
        loss: Any
        if elbo == "Trace_ELBO":  # NumPyro's vmap semantics, as in dg.fit (docs/particles.md)
            loss = ParticleELBO(num_particles, jit=False)
        else:
            loss = getattr(pi, ELBOS[elbo][1])(
                num_particles=num_particles,
                vectorize_particles=False,
                **(elbo_options or {}),
            )
        self.svi = pi.SVI(model, guide, optim, loss)
        self.init_params = init_params
        if rng_seed is not None:  # Pyro draws from torch's global RNG; a seed sets it
            torch.manual_seed(rng_seed)
        self._names: list[str] = []
        self._started = False

    def _first(self, run: Callable) -> float:
        if self._started:
            return run()
        with _state.param_overrides(self.init_params), poutine.trace(param_only=True) as cap:
            out = run()
        self._names = [n for n, s in cap.trace.nodes.items() if s["type"] == "param"]
        self._started = True
        return out

    def _run_once(self, args: tuple, kwargs: dict) -> list[str]:
        """The guide, then the model on its draws, once in an RNG fork (so the steps draw what
        they would have drawn without it); the names of the params they declare."""
        with (
            torch.random.fork_rng(devices=[]),
            _state.param_overrides(self.init_params),
            poutine.trace(param_only=True) as cap,
        ):
            guide_trace = poutine.trace(self.svi.guide).get_trace(*args, **kwargs)
            poutine.replay(self.svi.model, trace=guide_trace)(*args, **kwargs)
        return list(dict.fromkeys(n for n, s in cap.trace.nodes.items() if s["type"] == "param"))

    def init(self, args: tuple, kwargs: dict, fresh: bool = False) -> None:
        """Create the params without a step; ``fresh``: from their init values (the program's
        params already in Pyro's store are removed first, as NumPyro's ``svi.init`` ignores
        earlier runs)."""
        if self._started:
            return
        if fresh:
            store = pyro.get_param_store()
            for name in self._run_once(args, kwargs):
                if name in store:
                    del store[name]
        self._names = self._run_once(args, kwargs)
        self._started = True

    def step(self, args: tuple, kwargs: dict) -> float:
        return float(self._first(lambda: self.svi.step(*args, **kwargs)))

    def evaluate_loss(self, args: tuple, kwargs: dict) -> float:
        with torch.no_grad():
            return float(self._first(lambda: self.svi.evaluate_loss(*args, **kwargs)))

    def params(self) -> dict[str, Any]:
        """Constrained params (tensors) of this program by name, read from Pyro's store."""
        store = pyro.get_param_store()
        return {n: store[n].detach() for n in self._names if n in store}


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
    """``pyro.clear_param_store()``."""
    pyro.clear_param_store()


def set_rng_seed(seed: int) -> None:
    """``pyro.set_rng_seed`` (torch, numpy and random)."""
    pyro.set_rng_seed(seed)
