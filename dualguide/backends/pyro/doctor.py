"""Pyro side of :mod:`dualguide.doctor`: run a program with chosen latent values, batched."""

from __future__ import annotations

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.poutine.messenger import Messenger
from torch.distributions import biject_to

from ... import _inputs
from ...trace import base_distribution, unsamplable

base_dist = base_distribution  # re-exported for dualguide.doctor


def in_support(d):
    """A deterministic value inside ``d``'s support (the image of 0 under its bijection)."""
    t = biject_to(d.support)
    shape = tuple(d.batch_shape) + tuple(d.event_shape)
    return t(torch.zeros(t.inverse_shape(torch.Size(shape))))


class _Values(Messenger):
    def __init__(self, values: dict, fill: str, filled: list):
        super().__init__()
        self.values, self.fill, self.filled = values, fill, filled

    def _pyro_sample(self, msg) -> None:
        if msg["is_observed"] or msg["infer"].get("_deterministic"):
            return
        if type(msg["fn"]).__name__ == "_Subsample":  # a plate's subsample site
            return
        name = msg["name"]
        if name in self.values:
            value = self.values[name]
        elif self.fill == "missing" or (self.fill == "unsamplable" and unsamplable(msg["fn"])):
            self.filled.append(name)
            value = in_support(msg["fn"])
        else:
            return
        msg["value"] = value
        msg["done"] = True


def with_values(fn, values: dict, fill: str):
    """``fn`` with its (unobserved) sample sites named in ``values`` set to those values.

    ``fill``: ``"none"``; ``"unsamplable"`` (sites whose distribution cannot be
    sampled get an in-support value); ``"missing"`` (every site not in ``values``
    gets one).  Returns ``(wrapped, filled)``; ``filled`` lists the filled names
    once the wrapped program has run.
    """
    filled: list[str] = []

    def wrapped(*args, **kwargs):
        filled.clear()
        with _Values(values, fill, filled):
            return fn(*args, **kwargs)

    return wrapped, filled


def batched_eval(fn, args, kwargs, values: dict, shapes: dict, out_names, n: int, nest: int):
    """Run ``fn`` at ``n`` points at once, inside a plate of size ``n`` left of all others.

    ``values``: name -> numpy array of shape ``(n, *site shape)``; ``shapes``:
    name -> ``(site shape, event ndim)`` for every name in ``values`` and
    ``out_names``; ``nest``: the number of batch dims right of the grid plate.
    Returns the log density of each sample site (factors and Delta sites
    included) summed over its elements, name -> ``(n,)``, and the values of
    ``out_names``, each ``(n, *site shape)``.
    """

    def padded(k):
        shape, event_ndim = shapes[k]
        shape = tuple(shape)
        return (n,) + (1,) * max(nest - (len(shape) - event_ndim), 0) + shape

    vals = {
        k: torch.as_tensor(np.asarray(v, dtype=_inputs.float_np())).reshape(padded(k))
        for k, v in values.items()
    }
    store = pyro.get_param_store()
    with store.scope(), torch.no_grad():
        wrapped, _ = with_values(fn, vals, "none")
        with pyro.plate("_dualguide_grid", n, dim=-(nest + 1)):
            tr = poutine.trace(wrapped).get_trace(*args, **kwargs)
        lps = {}
        for k, s in tr.nodes.items():
            if s["type"] != "sample" or s["infer"].get("_deterministic"):
                continue
            if type(s["fn"]).__name__ == "_Subsample":
                continue
            lp = s["fn"].log_prob(s["value"])
            lp = lp.reshape((1,) * (nest + 1 - lp.dim()) + tuple(lp.shape))
            lps[k] = lp.reshape(lp.shape[0], -1).sum(-1).expand(n)
        outs = {}
        for k in out_names:
            v = tr.nodes[k]["value"]
            target = padded(k)
            v = v.reshape((1,) * (len(target) - v.dim()) + tuple(v.shape)).expand(target)
            outs[k] = v.reshape((n,) + tuple(shapes[k][0]))
    return (
        {k: v.detach().numpy() for k, v in lps.items()},
        {k: v.detach().numpy() for k, v in outs.items()},
    )


def batched_draws(fn, args, kwargs, names, shapes, n: int, nest: int, seed: int):
    """``n`` independent runs of ``fn`` at once (a plate of size ``n`` left of all others):
    name -> values ``(n, *site shape)``."""
    store = pyro.get_param_store()
    with store.scope(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with pyro.plate("_dualguide_draws", n, dim=-(nest + 1)):
            tr = poutine.trace(fn).get_trace(*args, **kwargs)
        out = {}
        for k in names:
            shape, event_ndim = shapes[k]
            target = (n,) + (1,) * max(nest - (len(shape) - event_ndim), 0) + tuple(shape)
            v = tr.nodes[k]["value"].detach()
            v = v.reshape((1,) * (len(target) - v.dim()) + tuple(v.shape)).expand(target)
            out[k] = v.reshape((n,) + tuple(shape)).numpy()
    return out
