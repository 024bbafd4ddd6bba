"""Pyro's side of dualguide's pyro-api backend ``dualguide.pyro``.

Pyro's own ``infer``, ``poutine`` (handlers), ``optim`` fallbacks and torch ``ops``;
``SVI`` also takes dualguide's optimizers.  The primitives and distributions
themselves are dualguide's neutral ones (see :mod:`dualguide.porting.pyroapi`).
"""

from __future__ import annotations

import numpy as np
import pyro
import pyro.distributions as pd
import pyro.infer as pi
import pyro.optim as po
import torch
from pyro import poutine
from torch.distributions import transform_to

from ... import _inputs
from ..._state import render
from ...optim import Optimizer
from . import BACKEND


def stored_param(name):
    """Pyro's param store already gives a stored value precedence over the init value."""
    return None


def project(value, constraint, native):
    """An init value outside ``constraint`` moved inside through its transform (as Pyro does)."""
    t = (
        value
        if isinstance(value, torch.Tensor)
        else torch.as_tensor(np.asarray(value, dtype=_inputs.float_np()))
    )
    if constraint.check(t.detach().cpu().numpy()):
        return value
    tr = transform_to(native)
    with torch.no_grad():
        return tr(tr.inv(t.detach().to(torch.get_default_dtype())))


def native_param(name, init, constraint, event_dim):
    return pyro.param(name, init, constraint=constraint, event_dim=event_dim)


def native_plate(name, size, subsample_size, subsample, dim, **kwargs):
    return pyro.plate(name, size, subsample_size, subsample, dim, **kwargs)


PYRO = pyro


class SVI(pi.SVI):
    """Pyro's SVI; ``optim`` may also be a dualguide optimizer (``pyroapi.optim.Adam``)."""

    def __init__(
        self, model, guide, optim, loss, loss_and_grads=None, num_samples=0, num_steps=0, **kwargs
    ):
        if isinstance(optim, Optimizer):
            optim = BACKEND.optimizer(optim)
        super().__init__(
            render(model, BACKEND),
            render(guide, BACKEND),
            optim,
            loss,
            loss_and_grads=loss_and_grads,
            num_samples=num_samples,
            num_steps=num_steps,
            **kwargs,
        )


class _Fallback:
    def __init__(self, primary: dict, *rest):
        self.__dict__.update(primary)
        self._rest = rest

    def __getattr__(self, attr):
        for m in self._rest:
            if hasattr(m, attr):
                return getattr(m, attr)
        raise AttributeError(attr)


INFER = _Fallback({"SVI": SVI}, pi)
OPTIM = po
HANDLERS = poutine
DISTRIBUTIONS = pd
OPS = torch
