"""dualguide's Adam for torch: the same update as jax's ``example_libraries.optimizers.adam``.

:func:`adam_update_` is the one implementation of the update in the Pyro backend: the
optimizer Pyro's own ``SVI`` runs (:class:`DualAdam`, wrapped in
:class:`pyro.optim.PyroOptim`) and both steps of the fast fit loop (``fitloop.py``: its
TorchScript step and its first, eager step) call it.
"""

from __future__ import annotations

import torch
from pyro.optim import PyroOptim

from ... import _inputs


def adam_update_(
    x: torch.Tensor,
    g: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    lr: float,
    bc1: float,
    bc2: float,
    b1: float,
    b2: float,
    eps: float,
    clip: float,
    do_clip: bool,
) -> None:
    """One Adam step on ``x`` with gradient ``g``, updating ``x``, ``m`` and ``v`` in place.

    ``g`` is first clamped to ``[-clip, clip]`` if ``do_clip``;
    ``m = b1 m + (1-b1) g``; ``v = b2 v + (1-b2) g^2``;
    ``x -= lr * (m / bc1) / (sqrt(v / bc2) + eps)`` with the bias corrections
    ``bc = 1 - b**(t+1)`` (t counted from 0).  In place, so a large flat tensor makes no
    temporaries its size but two; TorchScript compiles it into the fused step.

    >>> x, g = torch.zeros(2), torch.tensor([1.0, -20.0])
    >>> m, v = torch.zeros(2), torch.zeros(2)
    >>> adam_update_(x, g, m, v, 0.1, 0.1, 0.001, 0.9, 0.999, 1e-8, 10.0, True)
    >>> [round(float(a), 4) for a in x]
    [-0.1, 0.1]
    """
    if do_clip:
        g = g.clamp(-clip, clip)
    m.mul_(b1).add_(g * (1 - b1))
    v.mul_(b2).add_(g.square().mul_(1 - b2))
    step = (m / bc1).mul_(lr)
    step.div_((v / bc2).sqrt_().add_(eps))
    x.sub_(step)


def bias_correction(beta: float, t: int) -> float:
    """``1 - beta**(t+1)`` computed in the current float dtype, as jax's adam does (the value
    every caller of the update uses)."""
    f = _inputs.float_np()
    return float(f(1) - f(beta) ** f(t + 1))


class DualAdam(torch.optim.Optimizer):
    """Adam with optional elementwise clamp and an lr schedule ``lr_fn(t)`` (t from 0).

    ``m = (1-b1) g + b1 m``; ``v = (1-b2) g^2 + b2 v``;
    ``x -= lr_t * m/(1-b1^(t+1)) / (sqrt(v/(1-b2^(t+1))) + eps)`` (:func:`adam_update_`).
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
                adam_update_(
                    p,
                    g,
                    st["m"],
                    st["v"],
                    float(lr_fn(t)),
                    bias_correction(b1, t),
                    bias_correction(b2, t),
                    float(b1),
                    float(b2),
                    float(eps),
                    float(clip or 0.0),
                    clip is not None,
                )
                st["t"] = t + 1
        return None


def make_optimizer(opt) -> PyroOptim:
    """A PyroOptim running :class:`DualAdam` with the neutral optimizer's settings."""
    lr_fn = opt.lr_at
    return PyroOptim(
        DualAdam,
        {"lr_fn": lr_fn, "betas": tuple(opt.betas), "eps": opt.eps, "clip_norm": opt.clip_norm},
    )
