"""Transformed latents on torch: outputs and their Jacobian by reverse-mode autodiff.

``J`` is built row by row: row ``r`` is the gradient of output number ``r``
summed over the batch, with respect to every base number, taken with
``create_graph=True`` so that log|det J| stays differentiable in the params.
Summing over the batch gives every batch element its own row at once because
the map acts on each batch element separately.  Plain autograd ops only, so the
guide still traces under ``torch.jit.trace`` (Pyro's ``JitTrace_ELBO``).
"""

from __future__ import annotations

import numpy as np
import pyro
import torch
from pyro import poutine

from ...contract import Plan, _as_outputs


def broadcast(*xs):
    """Broadcast tensors (or numbers) against each other."""
    ts = [x if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=torch.float32) for x in xs]
    return list(torch.broadcast_tensors(*ts))


def jacobian(fn, us, in_eds, out_eds, in_names, out_names, square):
    """``(outputs, J, plan)``: outputs broadcast to ``batch + event``; J ``batch + (D_out, D_in)``."""
    us = [u if isinstance(u, torch.Tensor) else torch.as_tensor(u, dtype=torch.float32) for u in us]
    plan = Plan(in_names, out_names, [tuple(u.shape) for u in us], in_eds)
    grad_on = torch.is_grad_enabled()
    with torch.enable_grad():
        xs = []
        for i, u in enumerate(us):
            u = u.expand(plan.in_full_shape(i))
            xs.append(u if u.requires_grad else u.detach().requires_grad_())
        outs = _as_outputs(fn(*xs), plan.desc, len(out_names))
        outs = [
            o if isinstance(o, torch.Tensor) else torch.as_tensor(o, dtype=torch.float32)
            for o in outs
        ]
        plan.outputs([tuple(o.shape) for o in outs], out_eds)
        if square:
            plan.check_square()
        outs = [o.expand(plan.out_full_shape(j)) for j, o in enumerate(outs)]
        B = plan.batch_shape
        flat = torch.cat([o.reshape(B + (-1,)) for o in outs], dim=-1) if outs else None
        rows = []
        for r in range(plan.d_out):
            o_r = flat[..., r]
            if not o_r.requires_grad:
                rows.append(flat.new_zeros(B + (plan.d_in,)))
                continue
            gs = torch.autograd.grad(o_r.sum(), xs, create_graph=True, allow_unused=True)
            rows.append(
                torch.cat(
                    [
                        (g if g is not None else x.new_zeros(x.shape)).reshape(B + (-1,))
                        for g, x in zip(gs, xs)
                    ],
                    dim=-1,
                )
            )
        J = torch.stack(rows, dim=-2)
    if not grad_on:
        outs, J = [o.detach() for o in outs], J.detach()
    return outs, J, plan


def logabsdet(J):
    """log|det J| over the last two dims (closed forms for 1x1 and 2x2)."""
    n = J.shape[-1]
    if n == 1:
        return torch.log(torch.abs(J[..., 0, 0]))
    if n == 2:
        return torch.log(torch.abs(J[..., 0, 0] * J[..., 1, 1] - J[..., 0, 1] * J[..., 1, 0]))
    return torch.linalg.slogdet(J).logabsdet


# ------------------------------------------------------------------------------------------
# many-particle ELBO samples (private helper for the examples and tests)
# ------------------------------------------------------------------------------------------
def _max_plate_nesting(tr) -> int:
    dims = [
        -f.dim
        for s in tr.nodes.values()
        for f in s.get("cond_indep_stack", ())
        if f.vectorized and f.dim is not None
    ]
    return max(dims, default=0)


def _log_prob_per_particle(tr, n, mpn):
    total = torch.zeros(n)
    for s in tr.nodes.values():
        if s["type"] != "sample":
            continue
        lp = s["fn"].log_prob(s["value"])
        if lp.dim() < mpn + 1:
            lp = lp.reshape((1,) * (mpn + 1 - lp.dim()) + tuple(lp.shape))
        lp = lp.expand((n,) + tuple(lp.shape[1:]))
        total = total + lp.reshape(n, -1).sum(-1)
    return total


def elbo_samples(model, guide, args, kwargs, num_particles, seed, chunk=20000):
    """Per-particle ``log p(x, z) - log q(z)`` at the current params, as a numpy array."""
    out = []
    store = pyro.get_param_store()
    with store.scope(), torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        gtr = poutine.trace(guide).get_trace(*args, **kwargs)
        mtr = poutine.trace(poutine.replay(model, trace=gtr)).get_trace(*args, **kwargs)
        mpn = max(_max_plate_nesting(gtr), _max_plate_nesting(mtr))
        torch.manual_seed(seed)
        dim = -mpn - 1
        left = num_particles
        while left > 0:
            n = min(chunk, left)
            left -= n

            def vec(fn, n=n):
                def wrapped(*a, **k):
                    with pyro.plate("_dualguide_particles", n, dim=dim):
                        return fn(*a, **k)

                return wrapped

            gtr = poutine.trace(vec(guide)).get_trace(*args, **kwargs)
            mtr = poutine.trace(poutine.replay(vec(model), trace=gtr)).get_trace(*args, **kwargs)
            lq = _log_prob_per_particle(gtr, n, mpn)
            lp = _log_prob_per_particle(mtr, n, mpn)
            out.append((lp - lq).numpy().astype(np.float64))
    return np.concatenate(out)


__all__ = ["jacobian", "logabsdet", "broadcast", "elbo_samples"]
