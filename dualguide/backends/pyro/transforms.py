"""Transformed latents on torch: outputs and their Jacobian by reverse-mode autodiff.

``J`` is built row by row: row ``r`` is the gradient of output number ``r``
summed over the batch, with respect to every base number, taken with
``create_graph=True`` so that log|det J| stays differentiable in the params.
Summing over the batch gives every batch element its own row at once because
the map acts on each batch element separately.  Plain autograd ops only, so the
guide still traces under ``torch.jit.trace`` (Pyro's ``JitTrace_ELBO``).
"""

from __future__ import annotations

import torch

from ...contract import Plan, _as_outputs


def jacobian(fn, us, in_eds, out_eds, in_names, out_names, square):
    """``(outputs, J, plan)``: outputs broadcast to ``batch + event``; J ``batch + (D_out, D_in)``."""
    us = [
        u if isinstance(u, torch.Tensor) else torch.as_tensor(u, dtype=torch.get_default_dtype())
        for u in us
    ]
    plan = Plan(in_names, out_names, [tuple(u.shape) for u in us], in_eds)
    grad_on = torch.is_grad_enabled()
    with torch.enable_grad():
        xs = []
        for i, u in enumerate(us):
            u = u.expand(plan.in_full_shape(i))
            xs.append(u if u.requires_grad else u.detach().requires_grad_())
        outs = _as_outputs(fn(*xs), plan.desc, len(out_names))
        outs = [
            o
            if isinstance(o, torch.Tensor)
            else torch.as_tensor(o, dtype=torch.get_default_dtype())
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


__all__ = ["jacobian"]
