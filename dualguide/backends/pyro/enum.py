"""Pyro's side of :mod:`dualguide.enum`: ``pyro.infer.config_enumerate``, ``pyro.markov``,
``pyro.infer.infer_discrete`` and ``pyro.ops.indexing.vindex`` (no funsor needed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyro
import pyro.infer as pi
import torch
from pyro.ops.indexing import vindex as _vindex


def config_enumerate(fn: Callable, default: str) -> Callable:
    """``pyro.infer.config_enumerate(fn, default)``."""
    return pi.config_enumerate(fn, default=default)


def markov(fn: Any, history: int, keep: bool) -> Any:
    """``pyro.markov(fn, history, keep)`` (context manager, iterator or decorated function)."""
    return pyro.markov(fn, history=history, keep=keep)


def infer_discrete(fn: Callable, first_available_dim: int, temperature: int) -> Callable:
    """``pyro.infer.infer_discrete`` (it draws from torch's global RNG)."""
    return pi.infer_discrete(fn, first_available_dim=first_available_dim, temperature=temperature)


def vindex(tensor: Any, args: tuple) -> Any:
    """``pyro.ops.indexing.vindex(tensor, args)``."""
    return _vindex(tensor, args)


def check() -> None:
    """Pyro's enumeration needs nothing beyond Pyro."""


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
    """``n`` single-particle values of ``-TraceEnum_ELBO.loss`` (the enumerated sites summed
    out), in a fresh param store (the programs declare their params from the param hook,
    which the neutral side sets to ``params``) and an RNG fork seeded with ``seed``."""
    elbo = pi.TraceEnum_ELBO(num_particles=1, max_plate_nesting=max_plate_nesting)
    out = np.empty(n, dtype=np.float64)
    store = pyro.get_param_store()
    with store.scope(), torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for i in range(n):
            out[i] = -float(elbo.loss(model, guide, *args, **kwargs))
    return out
