"""dualguide's Adam for torch: the same update as jax's ``example_libraries.optimizers.adam``.

Wrapped in :class:`pyro.optim.PyroOptim` so that Pyro's native ``SVI`` accepts it.
"""

from __future__ import annotations

import numpy as np
import torch
from pyro.optim import PyroOptim


class DualAdam(torch.optim.Optimizer):
    """Adam with optional elementwise clamp and an lr schedule ``lr_fn(t)`` (t from 0).

    ``m = (1-b1) g + b1 m``; ``v = (1-b2) g^2 + b2 v``;
    ``x -= lr_t * m/(1-b1^(t+1)) / (sqrt(v/(1-b2^(t+1))) + eps)``.
    """

    def __init__(self, params, lr_fn, betas=(0.9, 0.999), eps=1e-8, clip_norm=None):
        super().__init__(
            params, {"lr_fn": lr_fn, "betas": betas, "eps": eps, "clip_norm": clip_norm}
        )

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            eps, clip, lr_fn = group["eps"], group["clip_norm"], group["lr_fn"]
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                st = self.state[p]
                if not st:
                    st["t"] = 0
                    st["m"] = torch.zeros_like(p)
                    st["v"] = torch.zeros_like(p)
                t = st["t"]
                if clip is not None:
                    g = g.clamp(-clip, clip)
                m = (1 - b1) * g + b1 * st["m"]
                v = (1 - b2) * g.square() + b2 * st["v"]
                st["m"], st["v"], st["t"] = m, v, t + 1
                f = np.float64 if p.dtype == torch.float64 else np.float32  # as jax's adam
                bc1 = float(f(1) - f(b1) ** f(t + 1))
                bc2 = float(f(1) - f(b2) ** f(t + 1))
                p.sub_(float(lr_fn(t)) * (m / bc1) / ((v / bc2).sqrt() + eps))
        return None


def make_optimizer(opt) -> PyroOptim:
    """A PyroOptim running :class:`DualAdam` with the neutral optimizer's settings."""
    lr_fn = opt.lr_at
    return PyroOptim(
        DualAdam,
        {"lr_fn": lr_fn, "betas": tuple(opt.betas), "eps": opt.eps, "clip_norm": opt.clip_norm},
    )
