"""The floors: the same ELBO step written directly in pure JAX and in pure PyTorch.

No NumPyro, no Pyro: the negative ELBO of each problem written out by hand
(reparameterized draws, log densities as formulas, the constraint transforms of
the params done by hand), and Adam(lr=0.01).  JAX: ``jit`` + ``lax.scan`` with
the update inline and JAX's default PRNG.  PyTorch: autograd and
``torch.optim.Adam``.  These show what each framework's own machinery costs on top
of the arithmetic.  Constant terms of the log densities are dropped (they do
not change the gradient).
"""

from __future__ import annotations

import math

import numpy as np
from problems import B_STAR, INV_SQRT2, SIG1, SIG2, T_STAR, plated_data

LR, B1, B2, EPS = 0.01, 0.9, 0.999, 1e-8


def _c_s():
    return math.cos(T_STAR), math.sin(T_STAR)


# ------------------------------------------------------------------------------------------
# pure JAX
# ------------------------------------------------------------------------------------------
def jax_floor(problem: str, P: int, N: int):
    """``(run, carry)``: ``run(carry)`` does N steps under jit + scan and returns (carry, losses)."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    if problem == "seed":
        sig = jnp.array([SIG1, SIG2], jnp.float32)
        params = (jnp.zeros(2, jnp.float32),)

        def loss_fn(params, key):
            (u,) = params
            s = jnp.exp(u)
            eps = jax.random.normal(key, (P, 2))
            z = eps * s
            lq = -0.5 * eps**2 - u
            lp = -0.5 * (z / sig) ** 2 - jnp.log(sig)
            return jnp.mean(jnp.sum(lq - lp, -1))

    elif problem.startswith("plated"):
        D = int(problem[len("plated") :])
        y = jnp.asarray(plated_data(D))
        params = (jnp.zeros(D, jnp.float32), jnp.zeros(D, jnp.float32))

        def loss_fn(params, key):
            loc, u = params
            eps = jax.random.normal(key, (P, D))
            z = loc + jnp.exp(u) * eps
            lq = -0.5 * eps**2 - u
            lp = -0.5 * z**2 - 0.5 * (y - z) ** 2
            return jnp.mean(jnp.sum(lq - lp, -1))

    elif problem == "mixture":
        c0, s0 = _c_s()
        params = (
            jnp.log(jnp.float32(0.5)),
            jnp.asarray(-math.log(math.pi / 2 / 0.3 - 1), jnp.float32),
        )

        def loss_fn(params, key):
            ub, ut = params
            b = jnp.exp(ub)
            t = (math.pi / 2) * jax.nn.sigmoid(ut)
            k1, k2, k3 = jax.random.split(key, 3)
            sign = jnp.where(jax.random.bernoulli(k1, 0.5, (P,)), 1.0, -1.0)
            u1 = sign * b + INV_SQRT2 * jax.random.normal(k2, (P,))
            u2 = jax.random.cauchy(k3, (P,))
            c, s = jnp.cos(t), jnp.sin(t)
            x, yy = (u1 + u2) / (2 * c), (u2 - u1) / (2 * s)
            lq_u1 = jnp.logaddexp(-((u1 - b) ** 2), -((u1 + b) ** 2)) - math.log(
                2 * math.sqrt(math.pi)
            )
            lq_u2 = -jnp.log1p(u2**2) - math.log(math.pi)
            lq = lq_u1 + lq_u2 + jnp.log(jnp.abs(2 * c * s))
            v1, v2 = c0 * x - s0 * yy, c0 * x + s0 * yy
            lp = jnp.logaddexp(-((v1 - B_STAR) ** 2), -((v1 + B_STAR) ** 2)) - jnp.log1p(v2**2)
            return jnp.mean(lq - lp)

    else:
        raise KeyError(problem)

    def body(carry, i):
        params, m, v, key = carry
        key, sub = jax.random.split(key)
        loss, g = jax.value_and_grad(loss_fn)(params, sub)
        t = (i + 1).astype(jnp.float32)
        m = tuple((1 - B1) * gi + B1 * mi for gi, mi in zip(g, m))
        v = tuple((1 - B2) * gi**2 + B2 * vi for gi, vi in zip(g, v))
        params = tuple(
            p - LR * (mi / (1 - B1**t)) / (jnp.sqrt(vi / (1 - B2**t)) + EPS)
            for p, mi, vi in zip(params, m, v)
        )
        return (params, m, v, key), loss

    @jax.jit
    def run(carry):
        return lax.scan(body, carry, jnp.arange(N))

    zeros = tuple(jnp.zeros_like(p) for p in params)
    return run, (params, zeros, zeros, jax.random.PRNGKey(0))


# ------------------------------------------------------------------------------------------
# pure PyTorch
# ------------------------------------------------------------------------------------------
def torch_floor(problem: str, P: int):
    """A function doing one ELBO step (autograd + torch.optim.Adam) and returning the loss."""
    import torch

    if problem == "seed":
        u = torch.zeros(2, requires_grad=True)
        params = [u]
        log_sig = torch.tensor([math.log(SIG1), math.log(SIG2)])
        sig = log_sig.exp()

        def loss_fn():
            s = u.exp()
            eps = torch.randn(P, 2)
            z = eps * s
            lq = -0.5 * eps**2 - u
            lp = -0.5 * (z / sig) ** 2 - log_sig
            return (lq - lp).sum(-1).mean()

    elif problem.startswith("plated"):
        D = int(problem[len("plated") :])
        y = torch.as_tensor(plated_data(D))
        loc = torch.zeros(D, requires_grad=True)
        u = torch.zeros(D, requires_grad=True)
        params = [loc, u]

        def loss_fn():
            eps = torch.randn(P, D)
            z = loc + u.exp() * eps
            lq = -0.5 * eps**2 - u
            lp = -0.5 * z**2 - 0.5 * (y - z) ** 2
            return (lq - lp).sum(-1).mean()

    elif problem == "mixture":
        c0, s0 = _c_s()
        ub = torch.tensor(math.log(0.5), requires_grad=True)
        ut = torch.tensor(-math.log(math.pi / 2 / 0.3 - 1), requires_grad=True)
        params = [ub, ut]
        half = torch.full((P,), 0.5)

        def loss_fn():
            b = ub.exp()
            t = (math.pi / 2) * torch.sigmoid(ut)
            sign = torch.bernoulli(half) * 2 - 1
            u1 = sign * b + INV_SQRT2 * torch.randn(P)
            u2 = torch.tan(math.pi * (torch.rand(P) - 0.5))
            c, s = torch.cos(t), torch.sin(t)
            x, yy = (u1 + u2) / (2 * c), (u2 - u1) / (2 * s)
            lq_u1 = torch.logaddexp(-((u1 - b) ** 2), -((u1 + b) ** 2)) - math.log(
                2 * math.sqrt(math.pi)
            )
            lq_u2 = -torch.log1p(u2**2) - math.log(math.pi)
            lq = lq_u1 + lq_u2 + torch.log(torch.abs(2 * c * s))
            v1, v2 = c0 * x - s0 * yy, c0 * x + s0 * yy
            lp = torch.logaddexp(-((v1 - B_STAR) ** 2), -((v1 + B_STAR) ** 2)) - torch.log1p(v2**2)
            return (lq - lp).mean()

    else:
        raise KeyError(problem)

    opt = torch.optim.Adam(params, lr=LR, betas=(B1, B2), eps=EPS)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def check_floor_matches(problem: str) -> None:
    """Sanity check used by the runner's --check: the floors' losses go down."""

    run, carry = jax_floor(problem, 16, 500)
    _, losses = run(carry)
    losses = np.asarray(losses)
    assert losses[-50:].mean() < losses[:50].mean(), problem
