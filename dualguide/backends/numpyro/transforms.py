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
import numpy as np

from ...contract import Plan, _as_outputs

F32 = jnp.float32


def _arr(x):
    return x if isinstance(x, jax.Array) else jnp.asarray(x, dtype=F32)


def broadcast(*xs):
    """Broadcast arrays (or numbers) against each other."""
    return list(jnp.broadcast_arrays(*[_arr(x) for x in xs]))


def jacobian(fn, us, in_eds, out_eds, in_names, out_names, square):
    """``(outputs, J, plan)``: outputs broadcast to ``batch + event``; J ``batch + (D_out, D_in)``."""
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


def logabsdet(J):
    """log|det J| over the last two dims (closed forms for 1x1 and 2x2)."""
    n = J.shape[-1]
    if n == 1:
        return jnp.log(jnp.abs(J[..., 0, 0]))
    if n == 2:
        return jnp.log(jnp.abs(J[..., 0, 0] * J[..., 1, 1] - J[..., 0, 1] * J[..., 1, 0]))
    return jnp.linalg.slogdet(J)[1]


# ------------------------------------------------------------------------------------------
# many-particle ELBO samples (private helper for the examples and tests)
# ------------------------------------------------------------------------------------------
def elbo_samples(model, guide, args, kwargs, num_particles, seed, chunk=20000):
    """Per-particle ``log p(x, z) - log q(z)`` at the given params, as a numpy array.

    The params are taken from the guide's own init values (set them with the
    param hook), exactly as a fresh trace would see them.
    """
    from numpyro import handlers
    from numpyro.infer.util import log_density

    def one(key):
        kg, km = jax.random.split(key)
        lq, gtr = log_density(handlers.seed(guide, kg), args, kwargs, {})
        lp, _ = log_density(handlers.replay(handlers.seed(model, km), trace=gtr), args, kwargs, {})
        return lp - lq

    out = []
    keys = jax.random.split(jax.random.PRNGKey(seed), num_particles)
    run = jax.jit(jax.vmap(one))
    for s in range(0, num_particles, chunk):
        out.append(np.asarray(run(keys[s : s + chunk]), dtype=np.float64))
    return np.concatenate(out)
