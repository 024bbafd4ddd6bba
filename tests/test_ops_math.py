"""The ops the shared numerics need, and the shared numerics themselves, on both backends.

Each op added for the framework-free math (``dualguide._mixture_math``, ``dualguide._noise``,
``dualguide.transforms.logabsdet``) gives numpy's values on both backends; the shared math
gives the same numbers on both.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import gammaln

import dualguide as dg
from dualguide import _state, ops

X = np.array([[0.3, -1.2, 2.0], [0.5, 0.0, -0.7]], dtype=np.float32)
IDX = np.array([[2], [0]])

NEW_OPS = [
    ("sign", lambda o, x: o.sign(x), np.sign),
    ("lgamma", lambda o, x: o.lgamma(o.abs(x) + 0.1), lambda x: gammaln(np.abs(x) + 0.1)),
    ("stop_gradient", lambda o, x: o.stop_gradient(x), lambda x: x),
    ("cumsum", lambda o, x: o.cumsum(x, axis=-1), lambda x: np.cumsum(x, -1)),
    ("cumsum_dim_alias", lambda o, x: o.cumsum(x, dim=0), lambda x: np.cumsum(x, 0)),
    ("cumsum_flat", lambda o, x: o.cumsum(x), np.cumsum),
    (
        "broadcast_to",
        lambda o, x: o.broadcast_to(x[0], (4, 3)),
        lambda x: np.broadcast_to(x[0], (4, 3)),
    ),
    (
        "broadcast_arrays",
        lambda o, x: o.stack(o.broadcast_arrays(x[:, :1], x[0], 2.0)),
        lambda x: np.stack(np.broadcast_arrays(x[:, :1], x[0], np.float32(2.0))),
    ),
    (
        "take_along_axis",
        lambda o, x: o.take_along_axis(x, o.asarray(IDX), -1),
        lambda x: np.take_along_axis(x, IDX, -1),
    ),
    (
        "take_along_axis_broadcast",
        lambda o, x: o.take_along_axis(x[:1], o.asarray(IDX), -1),
        lambda x: np.take_along_axis(np.broadcast_to(x[:1], (2, 3)), IDX, -1),
    ),
    ("where_numbers", lambda o, x: o.where(x > 0, 1e-30, x), lambda x: np.where(x > 0, 1e-30, x)),
]


@pytest.mark.parametrize("name,f,ref", NEW_OPS, ids=[o[0] for o in NEW_OPS])
def test_new_ops_match_numpy_on_both_backends(backend, name, f, ref):
    with dg.use_backend(backend):
        out = ops.to_numpy(f(ops, ops.asarray(X)))
    np.testing.assert_allclose(out, ref(X.astype(np.float64)), rtol=2e-6, atol=2e-6)
    if name == "where_numbers":
        assert out.dtype == np.float32


def _grad(backend, f, x):
    """d sum(f(x)) / dx on ``backend`` (numpy in, numpy out)."""
    if backend == "numpyro":
        import jax

        return np.asarray(jax.grad(lambda v: ops.sum(f(v)))(ops.asarray(x)))
    import torch

    t = torch.tensor(x, requires_grad=True)
    y = ops.sum(f(t))
    if not y.requires_grad:
        return np.zeros_like(x)
    return torch.autograd.grad(y, [t])[0].numpy()


def test_stop_gradient_blocks_the_gradient(backend):
    with dg.use_backend(backend):
        g = _grad(backend, lambda v: v * v + ops.stop_gradient(v * v), X)
    np.testing.assert_allclose(g, 2 * X, rtol=1e-6)


# ---- the shared mixture math gives the same numbers on both backends -------------------------
def _mixture_cdfs(backend):
    from dualguide import distributions as dist
    from dualguide._mixture_math import component_cdf

    x = np.linspace(-6, 6, 25, dtype=np.float32)[:, None]
    loc, scale = np.array([-1.0, 0.5], np.float32), np.array([0.7, 2.0], np.float32)
    out = {}
    with dg.use_backend(backend):
        b = _state.current()
        comps = {
            "Normal": dist.Normal(ops.asarray(loc), ops.asarray(scale)),
            "Cauchy": dist.Cauchy(ops.asarray(loc), ops.asarray(scale)),
            "Laplace": dist.Laplace(ops.asarray(loc), ops.asarray(scale)),
            "StudentT": dist.StudentT(
                ops.asarray([1.5, 7.0]), ops.asarray(loc), ops.asarray(scale)
            ),
        }
        for fam, comp in comps.items():
            out[fam] = b.to_numpy(component_cdf(comp, ops.asarray(x)))
    return out


def test_component_cdfs_agree_across_backends():
    import scipy.stats as st

    a, b = _mixture_cdfs("numpyro"), _mixture_cdfs("pyro")
    x = np.linspace(-6, 6, 25)[:, None]
    loc, scale = np.array([-1.0, 0.5]), np.array([0.7, 2.0])
    ref = {
        "Normal": st.norm.cdf(x, loc, scale),
        "Cauchy": st.cauchy.cdf(x, loc, scale),
        "Laplace": st.laplace.cdf(x, loc, scale),
        "StudentT": st.t.cdf(x, [1.5, 7.0], loc, scale),
    }
    for fam in ref:
        np.testing.assert_allclose(a[fam], b[fam], atol=1e-6, err_msg=fam)  # float32 ulps
        np.testing.assert_allclose(a[fam], ref[fam], atol=2e-6, err_msg=fam)


def test_betacf_loops_agree():
    # the NumPyro backend runs the continued fraction as a lax.fori_loop, the Pyro backend (and
    # the default) as a Python loop: the same steps, the same numbers up to float32 rounding
    # (XLA compiles the loop body, eager jax runs op by op)
    import jax.numpy as jnp

    from dualguide._mixture_math import betacf
    from dualguide.backends.numpyro.mixture import fori

    a = jnp.asarray([0.25, 1.0, 5.0, 50.0], dtype=jnp.float32)
    b = jnp.full((4,), 0.5, dtype=jnp.float32)
    x = jnp.asarray([0.1, 0.3, 0.6, 0.9], dtype=jnp.float32)
    np.testing.assert_allclose(
        np.asarray(betacf(a, b, x, fori)), np.asarray(betacf(a, b, x)), rtol=2e-6
    )


# ---- logabsdet: closed forms and slogdet -------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3])
def test_logabsdet_matches_numpy(backend, n):
    from dualguide.transforms import logabsdet

    rng = np.random.default_rng(n)
    J = rng.standard_normal((4, n, n)).astype(np.float32)
    with dg.use_backend(backend):
        out = ops.to_numpy(logabsdet(ops.asarray(J)))
    np.testing.assert_allclose(
        out, np.linalg.slogdet(J.astype(np.float64))[1], rtol=1e-5, atol=1e-5
    )
    assert math.isfinite(float(out.sum()))
