"""Arguments of ``dist.transforms``: numbers, lists and numpy arrays are taken on both backends
(as the backend's arrays in the current float dtype), and bad ones are one SpecError naming
the transform and the argument, raised when the transform is built (not a torch/jax error at
first use)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import dualguide as dg
from dualguide import distributions as dist
from dualguide import ops

T = dist.transforms
LOC, SCALE = np.array([1.0, -2.0]), np.array([2.0, 0.5])
X = np.array([[0.3, 1.2], [2.0, 0.1]], dtype=np.float32)  # positive: in every support

#: (transform built from numpy/list arguments, the same built from the backend's arrays)
CASES = {
    "affine numpy": (
        lambda: T.AffineTransform(LOC, SCALE),
        lambda: T.AffineTransform(ops.asarray(LOC), ops.asarray(SCALE)),
    ),
    "affine list": (
        lambda: T.AffineTransform(LOC.tolist(), SCALE.tolist()),
        lambda: T.AffineTransform(ops.asarray(LOC), ops.asarray(SCALE)),
    ),
    "affine float64 numpy, keyword, event_dim": (
        lambda: T.AffineTransform(loc=LOC.astype(np.float64), scale=SCALE, event_dim=1),
        lambda: T.AffineTransform(ops.asarray(LOC), ops.asarray(SCALE), event_dim=1),
    ),
    "power": (
        lambda: T.PowerTransform(np.array([2.0, 3.0])),
        lambda: T.PowerTransform(ops.asarray([2.0, 3.0])),
    ),
    "lower cholesky affine": (
        lambda: T.LowerCholeskyAffine(LOC.tolist(), np.array([[1.0, 0.0], [0.5, 2.0]])),
        lambda: T.LowerCholeskyAffine(
            ops.asarray(LOC), ops.asarray(np.array([[1.0, 0.0], [0.5, 2.0]], np.float32))
        ),
    ),
    "permute": (lambda: T.Permute([1, 0]), lambda: T.Permute(ops.asarray(np.array([1, 0])))),
}


def _log_prob(t, x):
    base = dist.Normal(ops.zeros(2), 1.0).to_event(1)
    return dist.TransformedDistribution(base, [t]).log_prob(ops.asarray(x))


@pytest.mark.parametrize("case", sorted(CASES))
def test_numpy_and_list_arguments_equal_native_ones(backend, case):
    """The same numbers as the backend's own arrays give the same log_prob bit for bit, in the
    current float dtype (float64 numpy included), for a TransformedDistribution and a call."""
    data, native = CASES[case]
    b = dg._state.resolve(backend)
    with dg.use_backend(backend):
        lp_data, lp_native = _log_prob(data(), X), _log_prob(native(), X)
        y = data()(ops.asarray(X))
        assert str(lp_data.dtype).endswith("float32") and str(y.dtype).endswith("float32")
        np.testing.assert_array_equal(b.to_numpy(lp_data), b.to_numpy(lp_native))
        np.testing.assert_array_equal(b.to_numpy(y), b.to_numpy(native()(ops.asarray(X))))


def test_the_affine_map_is_exact(backend):
    with dg.use_backend(backend):
        y = dg._state.resolve(backend).to_numpy(T.AffineTransform(LOC, SCALE)(ops.asarray(X)))
    np.testing.assert_allclose(y, LOC + SCALE * X, rtol=1e-6)


def test_float64_arguments_follow_the_dtype_switch(backend):
    with dg.use_dtype("float64"), dg.use_backend(backend):
        t = T.AffineTransform(LOC.astype(np.float32), SCALE)
        y = t(ops.asarray(X.astype(np.float64)))
        assert str(y.dtype).endswith("float64")
    with dg.use_backend(backend):  # the same transform object, rendered again in float32
        assert str(t(ops.asarray(X)).dtype).endswith("float32")


def test_a_learnable_native_argument_keeps_its_gradient():
    import torch

    loc = torch.tensor([1.0, 2.0], requires_grad=True)
    with dg.use_backend("pyro"):
        y = T.AffineTransform(loc, np.array([2.0, 3.0]))(torch.zeros(2))
    (g,) = torch.autograd.grad(y.sum(), loc)
    assert g.tolist() == [1.0, 1.0]


def test_calling_on_numpy_computes_on_the_active_backend_and_returns_numpy(backend):
    t = T.AffineTransform([1.0, -2.0], np.array([2.0, 0.5]))
    with dg.use_backend(backend):
        for x in (X, X.tolist()):
            y = t(x)
            assert isinstance(y, np.ndarray) and y.dtype == np.float32
            np.testing.assert_allclose(y, LOC + SCALE * X, rtol=1e-6)
            ld = t.log_abs_det_jacobian(x, y)
            assert isinstance(ld, np.ndarray)
            np.testing.assert_allclose(ld, np.log(SCALE) + 0 * X, rtol=1e-6)
            np.testing.assert_allclose(t.inv(y), X, rtol=1e-6)


BAD = {
    "a string": (lambda: T.AffineTransform("a", 1.0), r"AffineTransform: loc: expected numbers"),
    "a ragged list": (
        lambda: T.PowerTransform([[1.0], [2.0, 3.0]]),
        r"PowerTransform: exponent: cannot read builtins.list",
    ),
    "None as scale": (
        lambda: T.AffineTransform(0.0, None),
        r"AffineTransform: scale: expected numbers",
    ),
    "shapes that do not broadcast": (
        lambda: T.AffineTransform(np.zeros(3), [1.0, 2.0]),
        r"AffineTransform: loc of shape \(3,\) and scale of shape \(2,\) do not broadcast",
    ),
    "a scale_tril that is no matrix": (
        lambda: T.LowerCholeskyAffine(np.zeros(2), np.ones(2)),
        r"LowerCholeskyAffine: scale_tril must be a square matrix .* shape \(2,\)",
    ),
    "a loc that does not fit scale_tril": (
        lambda: T.LowerCholeskyAffine(np.zeros(3), np.eye(2)),
        r"LowerCholeskyAffine: loc of shape \(3,\) does not fit scale_tril",
    ),
    "a permutation of floats": (
        lambda: T.Permute([0.5, 1.0]),
        r"Permute: permutation must be a 1-d sequence of integers",
    ),
    "a permutation with a repeat": (
        lambda: T.Permute([0, 0]),
        r"Permute: permutation must hold each of 0..1 once",
    ),
    "a reshape that changes the size": (
        lambda: T.ReshapeTransform((4,), (3,)),
        r"ReshapeTransform: in_shape \(4,\) has 4 elements and out_shape \(3,\) has 3",
    ),
    "a negative event_dim": (
        lambda: T.AffineTransform(0.0, 1.0, event_dim=-1),
        r"AffineTransform\(\.\.\., event_dim=-1\): event_dim must be an integer >= 0",
    ),
    "a negative reinterpreted_batch_ndims": (
        lambda: T.IndependentTransform(T.ExpTransform(), -1),
        r"IndependentTransform\(\.\.\., reinterpreted_batch_ndims=-1\)",
    ),
    "compose parts that are not transforms": (
        lambda: T.ComposeTransform([1, 2]),
        r"ComposeTransform: parts must be a list of transforms",
    ),
    "compose of one transform, not a list": (
        lambda: T.ComposeTransform(T.ExpTransform()),
        r"ComposeTransform: parts must be a list of transforms",
    ),
    "independent of a string": (
        lambda: T.IndependentTransform("exp", 1),
        r"IndependentTransform: base_transform must be a transform",
    ),
    "a dim that is not an integer": (
        lambda: T.DiscreteCosineTransform(dim="a"),
        r"DiscreteCosineTransform: dim must be an integer",
    ),
    "a flip that is not a bool": (
        lambda: T.HaarTransform(flip="yes"),
        r"HaarTransform: flip must be True or False",
    ),
    "biject_to of a string": (
        lambda: dist.biject_to("positive"),
        r"biject_to\('positive'\): expected a constraint",
    ),
    "a call on a string": (
        lambda: T.ExpTransform()("abc"),
        r"ExpTransform\(\)\(x\): expected numbers",
    ),
}


def test_native_transforms_and_constraints_are_still_taken(backend):
    """The checks let the frameworks' own objects through: a native part of a composition
    and a distribution's native support."""
    b = dg._state.resolve(backend)
    with dg.use_backend(backend):
        native_exp = T.ExpTransform().native(backend)
        t = T.ComposeTransform([native_exp, T.AffineTransform(1.0, 2.0)])
        y = b.to_numpy(t(ops.asarray(X)))
        u = dist.biject_to(dist.Exponential(1.0).support)
        pos = b.to_numpy(u(ops.asarray(-X)))
    np.testing.assert_allclose(y, 1.0 + 2.0 * np.exp(X), rtol=1e-6)
    np.testing.assert_allclose(pos, np.exp(-X), rtol=1e-6)


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_arguments_are_one_clear_error(backend, case):
    make, match = BAD[case]
    with dg.use_backend(backend), pytest.raises(dg.SpecError, match=match):
        make()


def _transforms_of_params_program():
    from dualguide import constraints

    def model():
        dg.sample("x", dist.Normal(ops.zeros(2), 3.0).to_event(1))

    def guide():
        m = dg.param("m", 0.1 * np.ones(2, np.float32))
        s = dg.param("s", np.ones(2, np.float32), constraint=constraints.positive)
        t = T.ComposeTransform(
            [
                T.AffineTransform(m, s),  # built from params each step
                T.AffineTransform(LOC, SCALE.tolist()),  # numpy and a list
                T.LowerCholeskyAffine(m, ops.eye(2) * s[..., None]),
            ]
        )
        base = dist.Normal(ops.zeros(2), 1.0).to_event(1)
        dg.sample("x", dist.TransformedDistribution(base, [t]))

    return model, guide


def test_transforms_built_from_params_keep_the_pyro_jit():
    """The argument checks run on the transform built in the guide at every step: they must
    not read traced sizes (that would make Pyro's fit fall back to Trace_ELBO)."""
    from .conftest import assert_fit_keeps_the_jit

    assert_fit_keeps_the_jit(*_transforms_of_params_program(), seed=0)


def test_transforms_built_from_params_fit_on_numpyro():
    model, guide = _transforms_of_params_program()
    r = dg.fit(model, guide, backend="numpyro", num_steps=4, check=False, progress=False, seed=0)
    assert np.all(np.isfinite(r.losses))


# ------------------------------------------------------------------------------------------
# call-time shapes: the arguments fit each input, or one SpecError naming transform and argument
# ------------------------------------------------------------------------------------------
PERM3 = [1, 0, 2]
#: (how it is misused, the call, what the error names)
MISFITS = {
    "affine called on a shorter vector": (
        lambda: T.AffineTransform(np.zeros(3), 1.0)(np.zeros(2)),
        "loc of shape (3,) does not broadcast with its input of shape (2,)",
    ),
    "affine inverse on a shorter vector": (
        lambda: T.AffineTransform(np.zeros(3), 1.0).inv(np.zeros(2)),
        "loc of shape (3,) does not broadcast",
    ),
    "affine log-det on a shorter vector": (
        lambda: T.AffineTransform(1.0, np.ones(3)).log_abs_det_jacobian(np.zeros(2), np.zeros(2)),
        "scale of shape (3,) does not broadcast",
    ),
    # NumPyro's gather clamps the index: a 2-vector came back as 3 numbers, no error
    "permute on a shorter vector": (
        lambda: T.Permute(PERM3)(np.zeros(2)),
        "permutes 3 numbers but its input's last dim has 2",
    ),
    "lower cholesky affine on a longer vector": (
        lambda: T.LowerCholeskyAffine(np.zeros(2), np.eye(2))(np.zeros(3)),
        "maps vectors of length 2",
    ),
    "composed: the second part": (
        lambda: T.ComposeTransform([T.ExpTransform(), T.Permute(PERM3)])(np.zeros(2)),
        "Permute",
    ),
    # Pyro built these and failed in log_prob with a torch RuntimeError
    "transformed distribution, affine": (
        lambda: dist.TransformedDistribution(
            dist.Normal(np.zeros(2), 1.0), [T.AffineTransform(np.zeros(3), 1.0)]
        ),
        "dist.TransformedDistribution: transforms[0] = AffineTransform",
    ),
    "transformed distribution, second transform": (
        lambda: dist.TransformedDistribution(
            dist.Normal(np.zeros(3), 1.0).to_event(1),
            [T.ExpTransform(), T.LowerCholeskyAffine(np.zeros(2), np.eye(2))],
        ),
        "transforms[1] = LowerCholeskyAffine",
    ),
}


@pytest.mark.parametrize("case", sorted(MISFITS))
def test_arguments_that_do_not_fit_the_input_are_one_clear_error(backend, case):
    call, names = MISFITS[case]
    with dg.use_backend(backend):
        with pytest.raises(dg.SpecError, match=re.escape(names)):
            call()


def test_arguments_that_fit_or_broadcast_are_taken(backend):
    """The shape check refuses only what the frameworks cannot do: broadcasting arguments,
    event dims, composed and inverted transforms run as before."""
    with dg.use_backend(backend):
        y = T.AffineTransform(np.zeros(3), 2.0)(np.ones((4, 1)))  # (4, 1) with (3,): (4, 3)
        assert np.shape(y) == (4, 3) and np.allclose(y, 2.0)
        d = dist.TransformedDistribution(
            dist.Normal(np.zeros(3), 1.0).to_event(1),
            [T.Permute(PERM3), T.LowerCholeskyAffine(np.zeros(3), np.eye(3)).inv],
        )
        assert np.shape(ops.to_numpy(d.log_prob(ops.asarray(np.zeros(3))))) == ()
        z = T.Permute(PERM3).inv(np.array([0.0, 1.0, 2.0]))
        np.testing.assert_allclose(z, [1.0, 0.0, 2.0])
