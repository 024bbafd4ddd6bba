"""Pyro side of :mod:`dualguide.porting.params`: which params a guide (and model) declare."""

from __future__ import annotations

import pyro
import torch
from pyro import poutine


def declared(model, guide, args, kwargs, seed: int = 0) -> dict[str, tuple]:
    """``{name: shape}`` of the params ``guide`` declares, then those of ``model`` run on the
    guide's latent values (as an ELBO would run them), in order of appearance.  Runs in a
    fresh param-store scope and RNG fork."""
    with pyro.get_param_store().scope(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gtr = poutine.trace(guide).get_trace(*args, **kwargs)
        out = {k: tuple(s["value"].shape) for k, s in gtr.nodes.items() if s["type"] == "param"}
        if model is not None:
            mtr = poutine.trace(poutine.replay(model, trace=gtr)).get_trace(*args, **kwargs)
            for k, s in mtr.nodes.items():
                if s["type"] == "param" and k not in out:
                    out[k] = tuple(s["value"].shape)
    return out
