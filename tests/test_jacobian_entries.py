"""The fast autodiff Jacobian of small maps (entries, no matrix): exact against closed forms,
identical to the matrix path, differentiable, and recorded by Pyro's JitTrace_ELBO."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dualguide as dg
from dualguide import constraints, ops
from dualguide import distributions as dist
from dualguide._linalg import logabsdet, logabsdet_entries
from dualguide.transforms import _logdet, log_abs_det_jacobian

from .conftest import assert_fit_keeps_the_jit, assert_traced_matches_eager


def _module(backend):
    return dg._state.feature(dg._state.resolve(backend), "transforms")


# (map of scalars, closed-form log|det| as a function of the inputs' numpy values)
MAPS = {
    "linear2": (
        lambda a, b: (2.0 * a + 3.0 * b, a - 4.0 * b),
        lambda a, b: np.full(np.broadcast(a, b).shape, math.log(11.0)),
    ),
    "scale1": (lambda a: -3.0 * a, lambda a: np.full(np.shape(a), math.log(3.0))),
    "polar2": (  # (r, phi) -> (r cos phi, r sin phi): det = r
        lambda r, p: (r * ops.cos(p), r * ops.sin(p)),
        lambda r, p: np.log(np.abs(r)),
    ),
    "triangular3": (  # lower-triangular Jacobian: det = 2 * exp(b) * 5
        lambda a, b, c: (2.0 * a, a + ops.exp(b), a * b + 5.0 * c),
        lambda a, b, c: np.log(10.0 * np.exp(b)),
    ),
}


@pytest.mark.parametrize("name", sorted(MAPS))
def test_log_det_matches_the_closed_form(backend, name):
    fn, closed = MAPS[name]
    n = fn.__code__.co_argcount
    rng = np.random.RandomState(0)
    vals = [(0.5 + rng.rand(4, 3)).astype(np.float32) for _ in range(n)]
    got = log_abs_det_jacobian(fn, vals, backend=backend)
    assert got.shape == (4, 3)
    # float32 autodiff of the same formulas: rounding only
    np.testing.assert_allclose(got, closed(*vals), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(MAPS))
def test_entries_equal_the_matrix_path(backend, name):
    """The entries and the stacked matrix hold the same numbers, and both log-dets agree to the
    last bit for n <= 2 (the same arithmetic) and to rounding for slogdet."""
    fn, _ = MAPS[name]
    n = fn.__code__.co_argcount
    rng = np.random.RandomState(1)
    b = dg._state.resolve(backend)
    names = tuple(f"u{i}" for i in range(n))
    outs = tuple(f"x{i}" for i in range(n))
    with dg.use_backend(backend):
        us = [b.ops.asarray((0.5 + rng.rand(5)).astype(np.float32)) for _ in range(n)]
        mod = _module(backend)
        _, Je, plan = mod.jacobian(fn, us, [0] * n, [0] * n, names, outs, True, entries=True)
        _, Jm, _ = mod.jacobian(fn, us, [0] * n, [0] * n, names, outs, True)
        ld_e = b.to_numpy(_logdet(Je, plan))
        ld_m = b.to_numpy(logabsdet(Jm, plan.d_in))
        if isinstance(Je, list):  # (Pyro: entries; NumPyro: always the matrix)
            assert len(Je) == n and all(len(r) == n for r in Je)
            stacked = np.stack([np.stack([b.to_numpy(e) for e in r], -1) for r in Je], -2)
            np.testing.assert_array_equal(stacked, b.to_numpy(Jm))
    if n <= 2:
        np.testing.assert_array_equal(ld_e, ld_m)
    else:
        np.testing.assert_allclose(ld_e, ld_m, rtol=1e-6, atol=1e-6)


def test_logabsdet_entries_matches_logabsdet(backend):
    rng = np.random.RandomState(2)
    b = dg._state.resolve(backend)
    for n in (1, 2, 3):
        M = rng.randn(6, n, n).astype(np.float32)
        with dg.use_backend(backend):
            ent = [[b.ops.asarray(M[:, r, k]) for k in range(n)] for r in range(n)]
            got = b.to_numpy(logabsdet_entries(ent))
        np.testing.assert_allclose(got, np.linalg.slogdet(M)[1], rtol=1e-5, atol=1e-5)


def _rotated_guide():
    b = dg.param("b", 1.2, constraint=constraints.positive)
    t = dg.param("theta", 0.5, constraint=constraints.interval(0.0, math.pi / 2))
    c, s = ops.cos(t), ops.sin(t)
    dg.transformed(
        ("x", "y"),
        {"u1": dist.Normal(b, 1.0), "u2": dist.Cauchy(0.0, 1.0)},
        lambda u1, u2: ((u1 + u2) / (2 * c), (u2 - u1) / (2 * s)),
    )


def test_log_det_gradient_matches_the_closed_form():
    """d(-log|det|)/d theta through the entries (double backward) = d(log|sin 2 theta|)/d theta."""
    import torch

    with dg.use_backend("pyro"):
        theta = torch.tensor(0.5, requires_grad=True)

        def fn(u1, u2):
            return (u1 + u2) / (2 * torch.cos(theta)), (u2 - u1) / (2 * torch.sin(theta))

        us = [torch.tensor([0.3, -1.0]), torch.tensor([0.7, 2.0])]
        _, J, plan = _module("pyro").jacobian(
            fn, us, [0, 0], [0, 0], ("u1", "u2"), ("x", "y"), True, entries=True
        )
        ld = _logdet(J, plan)
        (g,) = torch.autograd.grad(ld.sum(), theta)
    # log|det| = -log|sin 2 theta|, derivative -2 cot(2 theta), twice (two batch elements)
    assert float(g) == pytest.approx(2 * -2.0 / math.tan(1.0), rel=1e-5)


def test_the_delta_site_carries_the_closed_form(backend):
    sites = dg.trace(_rotated_guide, backend=backend, seed=0)
    assert float(sites["x"].log_prob) == pytest.approx(math.log(math.sin(1.0)), abs=1e-5)
    assert float(sites["y"].log_prob) == 0.0


def test_jit_trace_elbo_keeps_the_entries_path():
    """dg.fit on Pyro keeps JitTrace_ELBO (no fallback warning) with the entries path."""

    def model():
        x = dg.sample("x", dist.Normal(0.0, 1.0))
        dg.sample("y", dist.Normal(x, 1.0))

    assert_fit_keeps_the_jit(model, _rotated_guide, seed=4, lr=0.05)


def test_traced_entries_match_eager():
    """torch.jit.trace of the entries path (log-det and its gradient) = the eager values."""

    def f(u, p):
        with dg.use_backend("pyro"):
            outs, J, plan = _module("pyro").jacobian(
                lambda a, b: (a * ops.exp(b), a + b * p),
                [u * p, u],
                [0, 0],
                [0, 0],
                ("a", "b"),
                ("x", "y"),
                True,
                entries=True,
            )
            assert isinstance(J, list)
            return _logdet(J, plan).sum() + outs[0].sum()

    assert_traced_matches_eager(f)
