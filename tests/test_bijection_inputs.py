"""Bad or plain-data input to ``dg.bijections`` and ``dg.transforms.jacobian`` /
``log_abs_det_jacobian``: numbers, lists and numpy arrays work on both backends, and what cannot
work is one SpecError naming the bijection or argument (not a torch/jax traceback), checked
on both backends."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dualguide as dg
from dualguide import bijections
from dualguide.transforms import jacobian, log_abs_det_jacobian

LOC, SCALE = np.array([1.0, -2.0]), np.array([2.0, 0.5])
X = np.array([[0.3, 1.2], [2.0, 0.1], [-0.4, 0.9]], dtype=np.float32)
ROT = np.array([[math.cos(0.3), -math.sin(0.3)], [math.sin(0.3), math.cos(0.3)]])


@pytest.mark.parametrize("params", ["numpy", "list"])
def test_affine_with_numpy_or_list_params_is_exact(backend, params):
    loc, scale = (LOC, SCALE) if params == "numpy" else (LOC.tolist(), SCALE.tolist())
    bij = bijections.affine(loc, scale)
    b = dg._state.resolve(backend)
    with dg.use_backend(backend):
        y = bij(dg.ops.asarray(X))
        assert str(y.dtype).endswith("float32")
        np.testing.assert_allclose(b.to_numpy(y), LOC + SCALE * X, rtol=1e-6)
        np.testing.assert_allclose(b.to_numpy(bij.inverse(y)), X, rtol=1e-6, atol=1e-6)
    ld = log_abs_det_jacobian(bij, [X], backend=backend)
    np.testing.assert_allclose(ld, np.log(SCALE) + 0 * X, rtol=1e-6)


def test_linear_and_rotation_with_numpy_params_are_exact(backend):
    b = dg._state.resolve(backend)
    with dg.use_backend(backend):
        lin = b.to_numpy(bijections.linear(2.0 * ROT)(X))  # a numpy input too
        rot = b.to_numpy(bijections.rotation(np.float64(0.3))(X.tolist()))
    np.testing.assert_allclose(lin, X @ (2.0 * ROT).T, rtol=1e-5)
    np.testing.assert_allclose(rot, X @ ROT.T, rtol=1e-5)
    ld = log_abs_det_jacobian(
        bijections.linear(2.0 * ROT), [X], base_event_dims=1, event_dims=1, backend=backend
    )
    np.testing.assert_allclose(ld, np.full(3, math.log(4.0)), rtol=1e-6)


def test_jacobian_takes_lists_and_tensors_that_require_grad(backend):
    import torch

    f = lambda a, c: (a + c, a - c)
    want = np.broadcast_to(np.array([[1.0, 1.0], [1.0, -1.0]]), (3, 2, 2))
    got = jacobian(f, [[0.0, 1.0, 2.0], torch.zeros(3, requires_grad=True)], backend=backend)
    np.testing.assert_array_equal(got, want)


BAD = {
    "affine: a string loc": (
        lambda be: bijections.affine("a", 1.0),
        r"bijections.affine: loc: expected numbers",
    ),
    "affine: params that do not broadcast": (
        lambda be: bijections.affine(np.zeros(3), [1.0, 2.0]),
        r"bijections.affine: loc of shape \(3,\) and scale of shape \(2,\) do not broadcast",
    ),
    "affine: params that do not fit the input": (
        lambda be: log_abs_det_jacobian(bijections.affine(np.zeros(3), 1.0), [X], backend=be),
        r"bijections.affine: loc and scale of shape \(3,\) do not fit an input of shape \(3, 2\)",
    ),
    "linear: a matrix that is not square": (
        lambda be: bijections.linear(np.ones((2, 3))),
        r"bijections.linear: matrix must be a square matrix .* \(2, 3\)",
    ),
    "linear: vectors of the wrong length": (
        lambda be: log_abs_det_jacobian(
            bijections.linear(np.eye(3)), [X], base_event_dims=1, event_dims=1, backend=be
        ),
        r"bijections.linear\(matrix\) acts on vectors of length 3 .* shape \(3, 2\)",
    ),
    "rotation: vectors of length 3 (silently cut to 2 before)": (
        lambda be: log_abs_det_jacobian(
            bijections.rotation(0.3), [np.ones((4, 3))], base_event_dims=1, backend=be
        ),
        r"bijections.rotation\(angle\) acts on vectors of length 2 .* shape \(4, 3\)",
    ),
    "jacobian: a string base value": (
        lambda be: jacobian(lambda a: a, ["a"], backend=be),
        r"jacobian: base value 'input0': expected numbers",
    ),
    "jacobian: a ragged base value": (
        lambda be: jacobian(lambda a: a, {"u": [[1.0], [1.0, 2.0]]}, backend=be),
        r"jacobian: base value 'u': cannot read builtins.list",
    ),
    "jacobian: base values whose batch shapes do not broadcast": (
        lambda be: jacobian(lambda a, c: (a + c, a - c), [np.zeros(3), np.zeros(2)], backend=be),
        r"\(input0, input1\): batch shapes \[\(3,\), \(2,\)\] do not broadcast",
    ),
    "jacobian: fn not callable": (
        lambda be: jacobian(3, [np.zeros(3)], backend=be),
        r"jacobian: fn must be a function or a dg.bijections object, got 3",
    ),
    "log_abs_det_jacobian: no base values": (
        lambda be: log_abs_det_jacobian(lambda a: a, [], backend=be),
        r"log_abs_det_jacobian: base_values is empty",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_clear_error(backend, case):
    make, match = BAD[case]
    with dg.use_backend(backend), pytest.raises(dg.SpecError, match=match):
        make(backend)


SCALE2 = np.array([2.0, 0.5])
GUIDE_BIJECTIONS = {  # (bijection with numpy params, its log|det J| per 2-vector)
    "affine": (lambda: bijections.affine(LOC, SCALE2), float(np.log(SCALE2).sum())),
    "linear": (lambda: bijections.linear(np.diag(SCALE2)), float(np.log(SCALE2).sum())),
    "rotation": (lambda: bijections.rotation(np.float32(0.3)), 0.0),
    # built from a param at each step: its shape checks must not read traced sizes
    "affine of a param": (
        lambda: bijections.affine(dg.param("loc", LOC.astype(np.float32)), SCALE2),
        float(np.log(SCALE2).sum()),
    ),
    "linear of a param": (
        lambda: bijections.linear(dg.param("A", np.diag(SCALE2).astype(np.float32))),
        float(np.log(SCALE2).sum()),
    ),
}


@pytest.mark.parametrize("name", sorted(GUIDE_BIJECTIONS))
def test_a_bijection_with_numpy_params_in_a_guide(backend, name):
    """In dg.transformed the numpy params become the backend's arrays: the Delta site carries
    -log|det J| exactly, and a short fit runs (on Pyro under its JIT: the shape checks do not
    read traced sizes, so there is no fallback to Trace_ELBO)."""
    from dualguide import distributions as dist

    make, logdet = GUIDE_BIJECTIONS[name]

    def model():
        dg.sample("x", dist.Normal(dg.ops.zeros(2), 3.0).to_event(1))

    def guide():
        m = dg.param("m", 0.1)
        base = dist.Normal(m * dg.ops.ones(2), 1.0).to_event(1)
        dg.transformed("x", {"u": base}, make())

    sites = dg.trace(guide, backend=backend, seed=0)
    assert float(sites["x"].log_prob) == pytest.approx(-logdet, abs=1e-6)
    r = dg.fit(model, guide, backend=backend, num_steps=4, check=False, progress=False, seed=1)
    assert np.all(np.isfinite(r.losses))
    if backend == "pyro":
        assert r.elbo == "JitTrace_ELBO"
