"""NumPyro side of :mod:`dualguide.porting.params`: which params a guide (and model) declare."""

from __future__ import annotations

import numpy as np
from numpyro import handlers


def declared(model, guide, args, kwargs, seed: int = 0) -> dict[str, tuple]:
    """``{name: shape}`` of the params ``guide`` declares, then those of ``model`` run on the
    guide's latent values (as an ELBO would run them), in order of appearance."""
    with handlers.trace() as gtr, handlers.seed(rng_seed=seed):
        guide(*args, **kwargs)
    out = {k: tuple(np.shape(s["value"])) for k, s in gtr.items() if s["type"] == "param"}
    if model is not None:
        with handlers.trace() as mtr, handlers.seed(rng_seed=seed):
            handlers.replay(model, trace=gtr)(*args, **kwargs)
        for k, s in mtr.items():
            if s["type"] == "param" and k not in out:
                out[k] = tuple(np.shape(s["value"]))
    return out
