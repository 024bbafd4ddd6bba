"""dg.transformed: Delta sites carrying -log|det J| (autodiff and closed form), on both backends."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dualguide as dg
from dualguide import SpecError, constraints, ops
from dualguide import distributions as dist
from dualguide.transforms import INFER_KEY, bijections, jacobian, log_abs_det_jacobian

T = 0.6  # an angle for the seed's map, det d(x, y)/d(u1, u2) = 1 / sin(2 T)


def rotated_guide():
    b = dg.param("b", 1.5, constraint=constraints.positive)
    t = dg.param("theta", T, constraint=constraints.interval(0.0, math.pi / 2))
    c, s = ops.cos(t), ops.sin(t)
    return dg.transformed(
        ("x", "y"),
        {"u1": dist.Normal(b, 1.0), "u2": dist.Cauchy(0.0, 1.0)},
        lambda u1, u2: ((u1 + u2) / (2 * c), (u2 - u1) / (2 * s)),
    )


def test_delta_sites_carry_minus_log_det(backend):
    sites = dg.trace(rotated_guide, backend=backend, seed=3)
    u1, u2, x, y = (sites[n] for n in ("u1", "u2", "x", "y"))
    assert u1.infer["is_auxiliary"] and u2.infer["is_auxiliary"]
    assert x.dist == y.dist == "Delta"
    # values are the map of the base values
    np.testing.assert_allclose(x.value, (u1.value + u2.value) / (2 * math.cos(T)), rtol=1e-5)
    np.testing.assert_allclose(y.value, (u2.value - u1.value) / (2 * math.sin(T)), rtol=1e-5)
    # log q(x, y) = log q(u) - log|det| = log q(u) + log sin(2T): all of it on the first site
    np.testing.assert_allclose(x.log_prob, math.log(math.sin(2 * T)), atol=1e-5)
    np.testing.assert_allclose(y.log_prob, 0.0, atol=0)
    info = x.infer[INFER_KEY]
    assert info["inputs"] == ["u1", "u2"] and info["outputs"] == ["x", "y"]
    assert info["logdet_site"] == "x" and info["method"] == "autodiff"
    assert info["base_event_dims"] == [0, 0] and info["event_dims"] == [0, 0]
    assert y.infer[INFER_KEY]["outputs"] == ["x", "y"]
    # the introspection hook reproduces the Jacobian at the traced base values
    J = jacobian(info["fn"], [u1.value, u2.value], backend=backend)
    c, s = math.cos(T), math.sin(T)
    np.testing.assert_allclose(
        J, [[1 / (2 * c), 1 / (2 * c)], [-1 / (2 * s), 1 / (2 * s)]], rtol=1e-5
    )


def test_returns_sampled_values(backend):
    def guide():
        v = dg.transformed("z", {"u": dist.Normal(0.0, 1.0)}, lambda u: 2.0 * u + 1.0)
        dg.deterministic("seen", v)

    sites = dg.trace(guide, backend=backend, seed=1)
    np.testing.assert_allclose(sites["seen"].value, sites["z"].value)
    np.testing.assert_allclose(sites["z"].log_prob, -math.log(2.0), atol=1e-6)


# A nonlinear map of a scalar and a 2-vector to a 3-vector, inside two plates; its Jacobian in
# numpy for comparison.  x = (u1 + 0.3 tanh(w . v), v * exp(0.2 u1) + 0.1 u1), v = u2.
W = np.array([0.7, -0.4], dtype=np.float32)


def _nonlinear(u1, u2):
    a = u1 + 0.3 * ops.tanh(ops.sum(u2 * ops.asarray(W), axis=-1))
    rest = u2 * ops.expand_dims(ops.exp(0.2 * u1), -1) + 0.1 * ops.expand_dims(u1, -1)
    return ops.concatenate([ops.expand_dims(a, -1), rest], axis=-1)


def _nonlinear_logdet_np(u1, u2):
    u1 = u1.astype(np.float64)
    u2 = u2.astype(np.float64)
    sech2 = 1.0 / np.cosh(u2 @ W) ** 2
    e = np.exp(0.2 * u1)
    J = np.zeros(u1.shape + (3, 3))
    J[..., 0, 0] = 1.0
    J[..., 0, 1:] = 0.3 * sech2[..., None] * W
    J[..., 1:, 0] = 0.2 * u2 * e[..., None] + 0.1
    J[..., 1, 1] = e
    J[..., 2, 2] = e
    return np.linalg.slogdet(J)[1]


def test_event_dims_plates_and_several_inputs(backend):
    def guide():
        with dg.plate("outer", 4, dim=-2), dg.plate("inner", 3, dim=-1):
            dg.transformed(
                "x",
                {"u1": dist.Normal(0.0, 1.0), "u2": dist.Normal(ops.zeros(2), 1.0).to_event(1)},
                _nonlinear,
                event_dims=1,
            )

    sites = dg.trace(guide, backend=backend, seed=2)
    u1, u2, x = sites["u1"].value, sites["u2"].value, sites["x"]
    assert u1.shape == (4, 3) and u2.shape == (4, 3, 2) and x.value.shape == (4, 3, 3)
    assert x.log_prob.shape == (4, 3)
    np.testing.assert_allclose(x.log_prob, -_nonlinear_logdet_np(u1, u2), atol=2e-5)
    ld = log_abs_det_jacobian(
        _nonlinear, [u1, u2], base_event_dims=[0, 1], event_dims=1, backend=backend
    )
    np.testing.assert_allclose(ld, _nonlinear_logdet_np(u1, u2), atol=2e-5)


def test_params_with_plate_batch_dims(backend):
    # a closure over a param with the plate's batch shape: each element has its own scale
    def guide():
        s = dg.param("s", np.array([0.5, 1.0, 2.0], np.float32), constraint=constraints.positive)
        with dg.plate("n", 3):
            dg.transformed("x", {"u": dist.Normal(0.0, 1.0)}, lambda u: s * u)

    sites = dg.trace(guide, backend=backend)
    np.testing.assert_allclose(sites["x"].log_prob, -np.log([0.5, 1.0, 2.0]), atol=1e-6)


def test_non_square_map_is_refused(backend):
    def guide():
        dg.transformed(
            "x", {"u1": dist.Normal(0.0, 1.0), "u2": dist.Normal(0.0, 1.0)}, lambda u1, u2: u1 + u2
        )

    with pytest.raises(SpecError) as e:
        dg.trace(guide, backend=backend)
    msg = str(e.value)
    assert "not square" in msg and "u1: 1, u2: 1" in msg and "x: 1" in msg
    assert "takes 2" in msg and "returns 1" in msg


def test_output_wider_than_its_batch_is_refused(backend):
    def guide():
        dg.transformed("x", {"u": dist.Normal(0.0, 1.0)}, lambda u: u * ops.ones(3))

    with pytest.raises(SpecError, match=r"output 'x' has batch shape \(3,\)"):
        dg.trace(guide, backend=backend)


@pytest.mark.parametrize(
    "names, base, fn, match",
    [
        (("x", "y"), {"u": None}, lambda u: u, "returned a single array for 2 names"),
        ("x", {"x": None}, lambda u: u, "both a base site and an output"),
        (("x", "x"), {"u": None}, lambda u: (u, u), "repeat a name"),
        ("x", {}, lambda u: u, "base is empty"),
        ("x", {"u": None}, 3.0, "fn must be a function"),
    ],
)
def test_bad_arguments_name_the_problem(backend, names, base, fn, match):
    def guide():
        b = {k: dist.Normal(0.0, 1.0) for k in base}
        dg.transformed(names, b, fn)

    with pytest.raises(SpecError, match=match):
        dg.trace(guide, backend=backend)


# ---- named bijections: closed form == autodiff, inverse(forward(x)) == x ----------------------
M = np.array([[1.2, 0.3, -0.2], [0.1, 0.8, 0.4], [-0.5, 0.2, 1.5]], np.float32)
BIJECTIONS = {
    "affine": (lambda: bijections.affine(0.5, ops.asarray([-2.0, 0.3, 1.7])), 0, (5, 3)),
    "linear": (lambda: bijections.linear(ops.asarray(M)), 1, (5, 3)),
    "rotation": (lambda: bijections.rotation(0.7), 1, (5, 2)),
    "exp": (lambda: bijections.exp(), 0, (5, 3)),
    "log": (lambda: bijections.log(), 0, (5, 3)),
    "sigmoid": (lambda: bijections.sigmoid(), 0, (5, 3)),
    "compose": (
        lambda: bijections.compose(
            bijections.linear(ops.asarray(M)), bijections.sigmoid(), bijections.affine(1.0, 3.0)
        ),
        1,
        (5, 3),
    ),
}


@pytest.mark.parametrize("name", sorted(BIJECTIONS))
def test_bijection_closed_form_matches_autodiff(backend, name):
    make, ed, shape = BIJECTIONS[name]
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype(np.float32)
    if name == "log":
        x = np.exp(x)
    with dg.use_backend(backend):
        bij = make()
    closed = log_abs_det_jacobian(bij, [x], base_event_dims=ed, event_dims=ed, backend=backend)
    auto = log_abs_det_jacobian(
        lambda u: bij(u), [x], base_event_dims=ed, event_dims=ed, backend=backend
    )
    assert closed.shape == shape[: len(shape) - ed]
    np.testing.assert_allclose(closed, auto, atol=2e-5, rtol=1e-5)
    with dg.use_backend(backend):
        back = bij.inverse(bij(ops.asarray(x)))
    np.testing.assert_allclose(dg.ops.to_numpy(back), x, rtol=1e-4, atol=1e-4)


def test_bijection_in_a_guide_of_stacked_scalars(backend):
    # the seed's inverse map as a linear bijection of the stacked (u1, u2)
    c, s = math.cos(T), math.sin(T)
    A = np.array([[1 / (2 * c), 1 / (2 * c)], [-1 / (2 * s), 1 / (2 * s)]], np.float32)

    def guide():
        dg.transformed(
            ("x", "y"),
            {"u1": dist.Normal(0.0, 1.0), "u2": dist.Cauchy(0.0, 1.0)},
            bijections.linear(ops.asarray(A)),
        )

    sites = dg.trace(guide, backend=backend, seed=4)
    np.testing.assert_allclose(sites["x"].log_prob, math.log(math.sin(2 * T)), atol=1e-5)
    np.testing.assert_allclose(
        sites["x"].value, A[0] @ [sites["u1"].value, sites["u2"].value], rtol=1e-5
    )
    assert sites["x"].infer[INFER_KEY]["method"] == "bijections.linear(matrix)"


def test_bijection_event_dim_must_fit_the_base(backend):
    def guide():
        with dg.plate("n", 2):
            dg.transformed("x", {"u": dist.Normal(0.0, 1.0)}, bijections.rotation(0.3))

    with pytest.raises(SpecError, match="event_dim 1 but base 'u' has event_dim 0"):
        dg.trace(guide, backend=backend)


def test_jacobian_of_a_non_square_map_is_reported():
    J = jacobian(lambda a, b: a + b, [np.zeros(4), np.ones(4)], backend="numpyro")
    assert J.shape == (4, 1, 2)
    np.testing.assert_allclose(J, 1.0)


def test_both_backends_give_the_same_log_det():
    rng = np.random.default_rng(5)
    u1 = rng.normal(size=(6,)).astype(np.float32)
    u2 = rng.normal(size=(6, 2)).astype(np.float32)
    a = log_abs_det_jacobian(
        _nonlinear, [u1, u2], base_event_dims=[0, 1], event_dims=1, backend="numpyro"
    )
    b = log_abs_det_jacobian(
        _nonlinear, [u1, u2], base_event_dims=[0, 1], event_dims=1, backend="pyro"
    )
    np.testing.assert_allclose(a, b, atol=1e-5)
