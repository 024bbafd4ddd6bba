"""Reparameterized MixtureSameFamily: pathwise ELBO gradients, the same in both backends and exact.

One guide holds a two-component mixture of each family (Normal, Cauchy, Laplace, StudentT)
with learnable logits (the weights), locs, log-scales and, for StudentT, log-dfs; the model
puts a StudentT(4, 0.3, 1.7) on each latent.  At fixed params each backend's native
``Trace_ELBO`` gradient is averaged over R batches of N particles and compared with the
gradient of the exact ELBO (scipy quadrature, central differences) and with the other backend.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
from scipy import integrate
from scipy.special import gammaln

import dualguide as dg
from dualguide import distributions as dist
from dualguide import ops

FAMILIES = ("Normal", "Cauchy", "Laplace", "StudentT")
P0 = {"logits": [0.4, -0.3], "locs": [-1.2, 0.8], "log_scales": [-0.2, 0.3], "log_df": [1.0, 1.6]}
TARGET = (4.0, 0.3, 1.7)  # StudentT(df, loc, scale) on every latent of the model
R, N = 50, 1000  # batches x particles per backend: 50k draws


def _names(fam):
    return [f"{fam}.{p}" for p in ("logits", "locs", "log_scales")] + (
        [f"{fam}.log_df"] if fam == "StudentT" else []
    )


ALL_NAMES = [n for f in FAMILIES for n in _names(f)]


def _mixture(fam, p):
    scale = ops.exp(p[f"{fam}.log_scales"])
    if fam == "StudentT":
        comp = dist.StudentT(ops.exp(p[f"{fam}.log_df"]), p[f"{fam}.locs"], scale)
    else:
        comp = getattr(dist, fam)(p[f"{fam}.locs"], scale)
    return dist.MixtureSameFamily(dist.Categorical(logits=p[f"{fam}.logits"]), comp)


def guide():
    p = {n: dg.param(n, P0[n.split(".")[1]]) for n in ALL_NAMES}
    for fam in FAMILIES:
        dg.sample(f"x_{fam}", _mixture(fam, p))


def model():
    for fam in FAMILIES:
        dg.sample(f"x_{fam}", dist.StudentT(*TARGET))


# ---- exact ELBO gradient by quadrature ------------------------------------------------------
def _log_component_pdf(fam, x, loc, scale, df):
    """log density of the component family at x (numpy, vectorized over the params)."""
    z = (x - loc) / scale
    if fam == "Normal":
        return -0.5 * z * z - np.log(scale) - 0.5 * math.log(2 * math.pi)
    if fam == "Cauchy":
        return -np.log1p(z * z) - np.log(scale) - math.log(math.pi)
    if fam == "Laplace":
        return -np.abs(z) - np.log(2 * scale)
    return (
        gammaln((df + 1) / 2)
        - gammaln(df / 2)
        - 0.5 * np.log(df * math.pi)
        - np.log(scale)
        - (df + 1) / 2 * np.log1p(z * z / df)
    )


def _unpack(fam, theta):
    """(weights, locs, scales, dfs) from a parameter vector (or a stack of them)."""
    theta = np.atleast_2d(theta)
    logits = theta[:, 0:2]
    w = np.exp(logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True))
    dfs = np.exp(theta[:, 6:8]) if fam == "StudentT" else np.ones_like(logits)
    return w, theta[:, 2:4], np.exp(theta[:, 4:6]), dfs


def _log_q(fam, x, theta):
    w, locs, scales, dfs = _unpack(fam, theta)
    return np.logaddexp.reduce(np.log(w) + _log_component_pdf(fam, x, locs, scales, dfs), axis=-1)


def exact_gradient(fam, h=1e-4):
    """d ELBO / d theta by central differences of the quadrature ELBO (all in float64)."""
    theta0 = np.concatenate(
        [P0[p] for p in ("logits", "locs", "log_scales")]
        + ([P0["log_df"]] if fam == "StudentT" else [])
    ).astype(float)
    dims = theta0.size
    thetas = np.stack([theta0 + s * h * np.eye(dims)[i] for i in range(dims) for s in (1, -1)])
    t_df, t_loc, t_scale = TARGET

    def integrand(x):
        lq = _log_q(fam, x, thetas)
        lp = _log_component_pdf("StudentT", x, t_loc, t_scale, t_df)
        return np.exp(lq) * (lp - lq)

    total = sum(
        integrate.quad_vec(integrand, a, b, epsabs=1e-11, epsrel=1e-10)[0]
        for a, b in ((-np.inf, -20.0), (-20.0, 20.0), (20.0, np.inf))
    )
    g = (total[0::2] - total[1::2]) / (2 * h)
    return dict(zip(_names(fam), np.split(g, [2, 4, 6])[: 4 if fam == "StudentT" else 3]))


@pytest.fixture(scope="module")
def exact():
    out = {}
    for fam in FAMILIES:
        out.update(exact_gradient(fam))
    return out


# ---- Monte-Carlo ELBO gradients with each backend's native Trace_ELBO -----------------------
def _numpyro_gradients(seed):
    import jax
    import jax.numpy as jnp
    from numpyro.infer import Trace_ELBO

    m, g = dg.render(model, "numpyro"), dg.render(guide, "numpyro")
    elbo = Trace_ELBO(num_particles=N)
    params = {n: jnp.asarray(P0[n.split(".")[1]], dtype=jnp.float32) for n in ALL_NAMES}
    grad = jax.jit(jax.vmap(jax.grad(lambda p, k: -elbo.loss(k, p, m, g)), in_axes=(None, 0)))
    out = grad(params, jax.random.split(jax.random.PRNGKey(seed), R))
    return {n: np.asarray(v, dtype=float) for n, v in out.items()}


def _pyro_gradients(seed):
    import pyro
    import torch
    from pyro.infer import Trace_ELBO

    m, g = dg.render(model, "pyro"), dg.render(guide, "pyro")
    elbo = Trace_ELBO(num_particles=N, vectorize_particles=True, max_plate_nesting=0)
    store = pyro.get_param_store()
    out = {n: [] for n in ALL_NAMES}
    with store.scope(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        g()
        params = [pyro.param(n).unconstrained() for n in ALL_NAMES]
        for _ in range(R):
            grads = torch.autograd.grad(-elbo.differentiable_loss(m, g), params)
            for n, v in zip(ALL_NAMES, grads):
                out[n].append(v.numpy().astype(float))
    return {n: np.stack(v) for n, v in out.items()}


@pytest.fixture(scope="module")
def mc():
    """{backend: {param: (mean, standard error)}} of the ELBO gradient."""
    res = {}
    for b, fn in (("numpyro", _numpyro_gradients), ("pyro", _pyro_gradients)):
        draws = fn(seed=11)
        res[b] = {n: (d.mean(0), d.std(0, ddof=1) / math.sqrt(R)) for n, d in draws.items()}
    return res


# 5 standard errors (t with 49 dof: two-sided p ~ 1e-5 per entry, ~60 entries) plus 2e-3 for
# float32 sums and the StudentT continued fraction's df-derivative (relative error ~1e-3).
Z, ATOL = 5.0, 2e-3


@pytest.mark.parametrize("fam", FAMILIES)
def test_elbo_gradient_matches_quadrature(backend, fam, mc, exact):
    for n in _names(fam):
        mean, se = mc[backend][n]
        np.testing.assert_array_less(np.abs(mean - exact[n]), Z * se + ATOL, err_msg=n)


@pytest.mark.parametrize("fam", FAMILIES)
def test_elbo_gradient_agrees_across_backends(fam, mc):
    for n in _names(fam):
        (a, sa), (b, sb) = mc["numpyro"][n], mc["pyro"][n]
        np.testing.assert_array_less(np.abs(a - b), Z * np.hypot(sa, sb) + ATOL, err_msg=n)


def test_weights_gradient_is_not_zero(mc, exact):
    # the weights' gradient comes only through the implicit formula: check it is really there
    for b in ("numpyro", "pyro"):
        for fam in FAMILIES:
            mean, se = mc[b][f"{fam}.logits"]
            assert np.all(np.abs(mean) > 10 * se), (b, fam, mean, se)


# ---- the class itself -----------------------------------------------------------------------
@pytest.mark.parametrize("fam", FAMILIES)
def test_mixture_has_rsample_and_samples_the_mixture(backend, fam):
    def draw():
        params = {n: ops.asarray(P0[n.split(".")[1]]) for n in _names(fam)}
        with dg.plate("n", 20000):
            d = _mixture(fam, params)
            dg.sample("x", d)
        dg.deterministic("has_rsample", float(d.has_rsample))

    sites = dg.trace(draw, backend=backend, seed=7)
    assert float(sites["has_rsample"].value) == 1.0
    theta = np.concatenate([P0["logits"], P0["locs"], P0["log_scales"], P0["log_df"]])
    w, locs, scales, dfs = (a[0] for a in _unpack(fam, theta.astype(float)))
    comps = [
        {
            "Normal": st.norm(locs[k], scales[k]),
            "Cauchy": st.cauchy(locs[k], scales[k]),
            "Laplace": st.laplace(locs[k], scales[k]),
            "StudentT": st.t(dfs[k], locs[k], scales[k]),
        }[fam]
        for k in range(2)
    ]
    x = sites["x"].value.astype(float)
    ks = st.kstest(x, lambda v: w[0] * comps[0].cdf(v) + w[1] * comps[1].cdf(v))
    assert ks.pvalue > 1e-4, ks  # a sampler of the wrong law fails at p << 1e-10


def test_multivariate_components_are_not_reparameterized(backend):
    def prog():
        d = dist.MixtureSameFamily(
            dist.Categorical(logits=ops.zeros(2)), dist.Normal(ops.zeros((2, 3)), 1.0).to_event(1)
        )
        dg.deterministic("has_rsample", float(d.has_rsample))

    assert float(dg.trace(prog, backend=backend)["has_rsample"].value) == 0.0


@pytest.mark.parametrize("df", [0.5, 1.0, 2.5, 10.0, 100.0])
def test_student_t_cdf_matches_scipy(backend, df):
    import importlib

    mod = importlib.import_module(f"dualguide.backends.{backend}.mixture")
    z = np.concatenate([-np.logspace(-3, 5, 40), [0.0], np.logspace(-3, 5, 40)]).astype(np.float32)
    b = dg._state.load(backend)
    F = b.to_numpy(mod.student_t_cdf_standard(b.ops.asarray(z), b.ops.asarray(np.float32(df))))
    # float32: absolute error a few 1e-7 (1e-5 allows for lgamma at df = 100)
    np.testing.assert_allclose(F, st.t.cdf(z.astype(float), df), atol=1e-5, rtol=0)
