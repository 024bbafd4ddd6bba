"""Transformed latents on JAX: outputs and their Jacobian by forward-mode autodiff.

``jax.linearize`` gives the outputs and the map's JVP at the base values; the
JVP is then ``vmap``-ed over one tangent per base number, each tangent a one-hot
vector repeated over every batch element, so one pass yields column ``k`` of the
Jacobian of every batch element (the map acts on each batch element separately).
Everything is traceable, so it runs under ``jit``, ``vmap`` and ``grad``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ... import _inputs
from ...contract import Plan, _as_outputs

F32 = jnp.float64 if _inputs.get_dtype() == "float64" else jnp.float32  # rebound by use_dtype


def _arr(x):
    return x if isinstance(x, jax.Array) else jnp.asarray(x, dtype=F32)


def jacobian(fn, us, in_eds, out_eds, in_names, out_names, square, entries=False):
    """``(outputs, J, plan)``: outputs broadcast to ``batch + event``; J ``batch + (D_out, D_in)``.

    ``entries`` is accepted for the backend contract and ignored: under ``jit`` XLA fuses the
    matrix's assembly, so J is always an array here (the Pyro backend may return its entries).
    """
    us = [_arr(u) for u in us]
    plan = Plan(in_names, out_names, [tuple(u.shape) for u in us], in_eds)
    xs = [jnp.broadcast_to(u, plan.in_full_shape(i)) for i, u in enumerate(us)]
    n_out = len(out_names)

    def f(*a):
        return tuple(_arr(o) for o in _as_outputs(fn(*a), plan.desc, n_out))

    outs, f_jvp = jax.linearize(f, *xs)
    plan.outputs([tuple(o.shape) for o in outs], out_eds)
    if square:
        plan.check_square()
    B, D = plan.batch_shape, plan.d_in
    eye = jnp.eye(D, dtype=F32)
    tangents, start = [], 0
    for i, size in enumerate(plan.in_sizes):
        ev = plan.in_event_shapes[i]
        t = eye[:, start : start + size].reshape((D,) + (1,) * len(B) + ev)
        tangents.append(jnp.broadcast_to(t, (D,) + B + ev))
        start += size
    touts = jax.vmap(f_jvp)(*tangents)
    cols = jnp.concatenate(
        [
            jnp.broadcast_to(t, (D,) + plan.out_full_shape(j)).reshape((D,) + B + (-1,))
            for j, t in enumerate(touts)
        ],
        axis=-1,
    )  # (D_in,) + B + (D_out,)
    J = jnp.moveaxis(cols, 0, -1)  # B + (D_out, D_in)
    outs = [jnp.broadcast_to(o, plan.out_full_shape(j)) for j, o in enumerate(outs)]
    return outs, J, plan


__all__ = ["jacobian"]
