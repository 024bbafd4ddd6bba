"""``ops.eye`` (and ``ops.linspace``, ``ops.full``) of a size read from a traced shape keeps
the JIT on both backends.

Under Pyro's JitTrace_ELBO (``torch.jit.trace``) ``x.shape[0]`` is a 0-d tensor; ``int()`` of
it used to freeze it into the trace, which dualguide's JIT-safety check caught, so the fit
fell back to Trace_ELBO (gallery: gp_classification).  The size now goes to torch as it is,
and the trace keeps it dynamic.  Under ``jax.jit`` a shape is a Python int already."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import dualguide as dg
from dualguide import distributions as dist
from dualguide import ops

X = np.linspace(-2.0, 2.0, 6).astype(np.float32)
Y = (np.sin(X) > 0).astype(np.float32)


def gp_model(x, y=None):
    # the gallery's gp_classification model (ported from NumPyro), on 6 points
    d = x[:, None] - x[None, :]
    K = 2.0 * ops.exp(-0.5 * d**2) + 1e-3 * ops.eye(x.shape[0])
    f = dg.sample("f", dist.MultivariateNormal(ops.zeros(x.shape[0]), covariance_matrix=K))
    with dg.plate("data", x.shape[0]):
        dg.sample("obs", dist.Bernoulli(logits=f), obs=y)


def test_the_gp_fit_keeps_the_jit(backend):
    guide = dg.autoguides.AutoNormal(gp_model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a JitFallbackWarning (or any other) fails the test
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.jit.trace's own
        r = dg.fit(gp_model, guide, backend=backend, model_args=(X, Y), num_steps=30, jit=True)
    if backend == "pyro":
        assert r.elbo == "JitTrace_ELBO"  # was Trace_ELBO: the JIT fell back
    assert np.all(np.isfinite(r.losses)) and r.num_steps == 30
    # that the compiled eye is the right one is test_a_compiled_size_follows_the_input


#: ops that take a size, each with a size read from x's shape, and numpy's answer
SIZED = {
    "eye": (
        lambda x: ops.eye(x.shape[0]) + x[:, None],
        lambda x: np.eye(len(x)) + x[:, None],
    ),
    "linspace": (
        lambda x: ops.linspace(0.0, 1.0, x.shape[0]) + x,
        lambda x: np.linspace(0.0, 1.0, len(x)) + x,
    ),
    "full": (lambda x: ops.full(x.shape[0], 2.0) + x, lambda x: np.full(len(x), 2.0) + x),
}


@pytest.mark.parametrize("op", sorted(SIZED))
def test_a_compiled_size_follows_the_input(backend, op):
    """Compiled for 3 points and run on 5: numpy's answer for 5 (a frozen size would be 3)."""
    fn, want = SIZED[op]
    x5 = np.arange(5.0, dtype=np.float32)
    with dg.use_backend(backend):
        if backend == "pyro":
            import torch

            with warnings.catch_warnings():
                warnings.simplefilter("error", torch.jit.TracerWarning)  # no frozen value
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                f = torch.jit.trace(fn, (torch.zeros(3),), check_trace=False)
        else:
            import jax

            f = jax.jit(fn)
            f(ops.zeros(3))
        got = ops.to_numpy(f(ops.asarray(x5)))
    np.testing.assert_allclose(got, want(x5), rtol=1e-6, atol=1e-7)


def test_an_offset_eye_of_a_shape(backend):
    # with k the Pyro backend builds it from ones, triu and tril
    with dg.use_backend(backend):
        got = ops.to_numpy(ops.eye(ops.zeros(3).shape[0], 4, k=1))
    np.testing.assert_array_equal(got, np.eye(3, 4, 1))


@pytest.mark.parametrize("bad", [2.5, -1, True, np.array([3])])
def test_a_size_that_is_not_one_is_refused(backend, bad):
    with dg.use_backend(backend):
        with pytest.raises(dg.SpecError, match="ops.eye: .*integer"):
            ops.eye(bad)
        with pytest.raises(dg.SpecError, match="ops.linspace: .*integer"):
            ops.linspace(0.0, 1.0, bad)
        assert ops.to_numpy(ops.eye(3.0)).tolist() == np.eye(3).tolist()  # an integral float


def test_a_size_computed_from_values_under_jit(backend):
    """NumPyro: one clear error (jax shapes are static); Pyro: the trace keeps it dynamic."""
    mask = np.array([1.0, 0.0, 1.0, 1.0], np.float32)

    def eye_of_count(m):
        return ops.eye(ops.sum(m > 0.5))

    with dg.use_backend(backend):
        if backend == "numpyro":
            import jax

            with pytest.raises(dg.SpecError, match="traced values.*x.shape\\[0\\].*jit=False"):
                jax.jit(eye_of_count)(ops.asarray(mask))
        else:
            import torch

            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                f = torch.jit.trace(eye_of_count, (torch.tensor(mask),), check_trace=False)
            assert tuple(f(torch.ones(5)).shape) == (5, 5)
        assert ops.to_numpy(eye_of_count(ops.asarray(mask))).shape == (3, 3)  # eagerly
        with pytest.raises(dg.SpecError, match="ops.eye: the size is .*float"):
            ops.eye(ops.asarray(2.0))
