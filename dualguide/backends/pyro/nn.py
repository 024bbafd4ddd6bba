"""Pyro side of :mod:`dualguide.nn`: the layers' kernels as torch functions, and native
networks (a ``torch.nn.Module`` through ``pyro.module``).

A neutral network on Pyro computes with ``torch.nn.functional`` (the kernels of
``torch.nn.Linear``, ``torch.nn.ReLU`` ...) on weights that are Pyro params, registered by
:func:`dualguide.nn.module` under ``pyro.module``'s names (``name$$$path``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyro
import torch
import torch.nn.functional as F

from ...errors import SpecError
from ...nn import check_features as _check_features


def linear(x: Any, weight: Any, bias: Any) -> Any:
    """``torch.nn.functional.linear`` (``torch.nn.Linear``'s forward)."""
    _check_features(int(x.shape[-1]), tuple(int(d) for d in weight.shape))
    return F.linear(x, weight, bias)


_ACTS: dict[str, Callable[..., Any]] = {
    "relu": lambda x: F.relu(x),
    "leaky_relu": lambda x, negative_slope=0.01: F.leaky_relu(x, negative_slope),
    "elu": lambda x, alpha=1.0: F.elu(x, alpha),
    "softplus": lambda x: F.softplus(x),
    "tanh": lambda x: torch.tanh(x),
    "sigmoid": lambda x: torch.sigmoid(x),
    "exp": lambda x: torch.exp(x),
    "identity": lambda x: x,
    "softmax": lambda x, dim=-1: torch.softmax(x, dim=dim),
    "log_softmax": lambda x, dim=-1: torch.log_softmax(x, dim=dim),
}


def activation(kind: str, x: Any, **kwargs: Any) -> Any:
    """The activation ``kind`` (one of ``dualguide.nn.ACTIVATIONS``) applied to ``x``."""
    return _ACTS[kind](x, **kwargs)


def init_key() -> None:
    """Nothing on Pyro (NumPyro draws a PRNG key where ``numpyro.module`` initializes a stax
    network; Pyro's random stream has no keys)."""


def native_module(name: str, net: Any, input_shape: Any) -> Any:
    """A user's native network on Pyro: a ``torch.nn.Module`` registered with
    ``pyro.module(name, net)`` (``input_shape`` is not needed); returns the module."""
    if isinstance(net, torch.nn.Module):
        return pyro.module(name, net)
    if isinstance(net, tuple) and len(net) == 2 and all(callable(f) for f in net):
        raise SpecError(
            f"nn.module({name!r}): a stax (init_fn, apply_fn) pair runs only on the numpyro "
            "backend; build the network with dualguide.nn to run it on both"
        )
    raise SpecError(
        f"nn.module({name!r}): expected a dualguide.nn module (or, on Pyro only, a "
        f"torch.nn.Module), got {type(net).__name__}"
    )
