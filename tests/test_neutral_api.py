"""The neutral namespace: distributions, constraints and ops agree between backends (float32)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dualguide as dg
from dualguide import constraints, ops
from dualguide import distributions as dist

from .conftest import is_native

# (name, args builder, a point in the support)
DISTS = [
    ("Normal", lambda: dist.Normal(0.5, 2.0), 0.3),
    ("Cauchy", lambda: dist.Cauchy(0.5, 2.0), 0.3),
    ("StudentT", lambda: dist.StudentT(3.0, 0.5, 2.0), 0.3),
    ("Laplace", lambda: dist.Laplace(0.5, 2.0), 0.3),
    ("LogNormal", lambda: dist.LogNormal(0.1, 0.7), 1.3),
    ("HalfNormal", lambda: dist.HalfNormal(2.0), 1.3),
    ("Gamma", lambda: dist.Gamma(2.0, 3.0), 0.4),
    ("Beta", lambda: dist.Beta(2.0, 3.0), 0.4),
    ("Exponential", lambda: dist.Exponential(1.5), 0.4),
    ("Uniform", lambda: dist.Uniform(-1.0, 3.0), 0.4),
    ("Bernoulli", lambda: dist.Bernoulli(probs=0.3), 1.0),
    ("Categorical", lambda: dist.Categorical(probs=ops.asarray([0.2, 0.3, 0.5])), 2),
    (
        "MultivariateNormal",
        lambda: dist.MultivariateNormal(
            ops.asarray([0.0, 1.0]), scale_tril=ops.asarray([[1.0, 0.0], [0.5, 2.0]])
        ),
        [0.3, -0.2],
    ),
    ("Dirichlet", lambda: dist.Dirichlet(ops.asarray([1.0, 2.0, 3.0])), [0.2, 0.3, 0.5]),
    ("Delta", lambda: dist.Delta(ops.asarray(0.3), log_density=ops.asarray(-1.25)), 0.3),
    (
        "ImproperUniform",
        lambda: dist.ImproperUniform(constraints.positive, (), ()),
        0.3,
    ),
    ("Normal.to_event", lambda: dist.Normal(ops.zeros((3,)), 1.0).to_event(1), [0.1, 0.2, 0.3]),
]


def _log_prob(backend, make, point):
    with dg.use_backend(backend):
        d = make()
        x = ops.asarray(point)
        if backend == "pyro" and isinstance(point, int):
            import torch

            x = torch.tensor(point)
        return np.asarray(ops.to_numpy(d.log_prob(x)), dtype=np.float64)


@pytest.mark.parametrize("name,make,point", DISTS, ids=[d[0] for d in DISTS])
def test_log_prob_agrees_across_backends(name, make, point):
    a = _log_prob("numpyro", make, point)
    b = _log_prob("pyro", make, point)
    assert np.all(np.isfinite(a))
    # float32 on both: agree to float32 rounding
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,make,point", DISTS[:-3], ids=[d[0] for d in DISTS[:-3]])
def test_samples_are_native_and_float32(backend, name, make, point):
    with dg.use_backend(backend):
        d = make()
        assert is_native(d, backend)
        if backend == "numpyro":
            import jax

            x = d.sample(jax.random.PRNGKey(0), (5,))
        else:
            x = d.sample((5,))
        x = ops.to_numpy(x)
    assert x.shape[0] == 5
    if x.dtype.kind == "f":
        assert x.dtype == np.float32


def test_mixture_same_family_takes_pyros_keyword(backend):
    with dg.use_backend(backend):
        d = dist.MixtureSameFamily(
            mixture_distribution=dist.Categorical(probs=ops.asarray([0.5, 0.5])),
            component_distribution=dist.Normal(ops.asarray([-1.0, 1.0]), 0.5),
        )
        lp = float(ops.to_numpy(d.log_prob(ops.asarray(0.2))))
    expected = math.log(
        0.5 * math.exp(-0.5 * (1.2 / 0.5) ** 2) + 0.5 * math.exp(-0.5 * (0.8 / 0.5) ** 2)
    ) - math.log(0.5 * math.sqrt(2 * math.pi))
    assert lp == pytest.approx(expected, rel=1e-5)


@pytest.mark.filterwarnings("ignore:Out-of-support values")
def test_out_of_support_is_minus_inf_on_both_backends(backend):
    # documented behaviour: log_prob outside the support is -inf, never an exception
    with dg.use_backend(backend):
        u = dist.Uniform(-10.0, 10.0)
        assert float(ops.to_numpy(u.log_prob(ops.asarray(11.0)))) == -math.inf
        e = dist.Exponential(1.0)
        assert float(ops.to_numpy(e.log_prob(ops.asarray(-1.0)))) == -math.inf
        v = dist.Uniform(ops.zeros((2,)), 1.0).to_event(1)
        assert float(ops.to_numpy(v.log_prob(ops.asarray([0.5, 2.0])))) == -math.inf
        # inside the support nothing changes
        assert float(ops.to_numpy(u.log_prob(ops.asarray(1.0)))) == pytest.approx(-math.log(20))


def test_bad_parameters_are_still_validated_in_pyro():
    with dg.use_backend("pyro"):
        with pytest.raises(ValueError, match="scale"):
            dist.Normal(0.0, -1.0)


CONSTRAINTS = [
    (constraints.real, [-3.0, 0.0, 4.0]),
    (constraints.positive, [0.1, 2.0]),
    (constraints.interval(0.0, math.pi / 2), [0.3, 1.2]),
    (constraints.unit_interval, [0.2, 0.9]),
    (constraints.simplex, [0.2, 0.3, 0.5]),
    (constraints.lower_cholesky, [[1.0, 0.0], [0.4, 2.0]]),
]


@pytest.mark.parametrize("c,init", CONSTRAINTS, ids=[repr(c[0]) for c in CONSTRAINTS])
def test_param_constraints_round_trip(backend, c, init):
    def prog():
        return dg.param("p", init, constraint=c)

    sites = dg.trace(prog, backend=backend)
    np.testing.assert_allclose(sites["p"].value, np.asarray(init, np.float32), rtol=1e-6)
    assert c.check(sites["p"].value)


def test_constraint_objects():
    assert repr(constraints.interval(0, 1)) == "interval(0.0, 1.0)"
    assert constraints.interval(0, 1) == constraints.interval(0.0, 1.0)
    c = constraints.interval(-1.0, 2.0)
    assert type(c).from_dict(c.to_dict()) == c
    with pytest.raises(dg.SpecError, match="lower bound must be below upper bound"):
        constraints.interval(1.0, 0.0)
    with pytest.raises(dg.SpecError, match="needs arguments"):
        dg.trace(lambda: dg.param("p", 0.5, constraint=constraints.interval), backend="numpyro")


X = np.array([[0.3, -1.2, 2.0], [0.5, 0.1, -0.7]], dtype=np.float32)
P = np.array([[0.2, 0.5, 0.9], [0.4, 0.6, 0.1]], dtype=np.float32)
OPS = [
    ("exp", lambda o, x: o.exp(x), np.exp),
    ("log", lambda o, x: o.log(o.abs(x)), lambda x: np.log(np.abs(x))),
    ("log1p", lambda o, x: o.log1p(o.abs(x)), lambda x: np.log1p(np.abs(x))),
    ("expm1", lambda o, x: o.expm1(x), np.expm1),
    ("sqrt", lambda o, x: o.sqrt(o.abs(x)), lambda x: np.sqrt(np.abs(x))),
    ("sin", lambda o, x: o.sin(x), np.sin),
    ("cos", lambda o, x: o.cos(x), np.cos),
    ("tan", lambda o, x: o.tan(x), np.tan),
    ("arctan2", lambda o, x: o.arctan2(x, x + 0.5), lambda x: np.arctan2(x, x + 0.5)),
    ("tanh", lambda o, x: o.tanh(x), np.tanh),
    ("sigmoid", lambda o, x: o.sigmoid(x), lambda x: 1 / (1 + np.exp(-x))),
    ("logaddexp", lambda o, x: o.logaddexp(x, 2 * x), lambda x: np.logaddexp(x, 2 * x)),
    (
        "logsumexp",
        lambda o, x: o.logsumexp(x, axis=-1),
        lambda x: np.log(np.sum(np.exp(x), axis=-1)),
    ),
    ("sum", lambda o, x: o.sum(x, axis=0), lambda x: np.sum(x, axis=0)),
    ("sum_all", lambda o, x: o.sum(x), np.sum),
    (
        "sum_dim_alias",
        lambda o, x: o.sum(x, dim=1, keepdims=True),
        lambda x: x.sum(1, keepdims=True),
    ),
    ("prod", lambda o, x: o.prod(x, axis=-1), lambda x: np.prod(x, axis=-1)),
    ("stack", lambda o, x: o.stack([x, 2 * x], axis=-1), lambda x: np.stack([x, 2 * x], -1)),
    (
        "concatenate",
        lambda o, x: o.concatenate([x, x], axis=0),
        lambda x: np.concatenate([x, x], 0),
    ),
    ("where", lambda o, x: o.where(x > 0, x, -x), lambda x: np.where(x > 0, x, -x)),
    ("matmul", lambda o, x: o.matmul(x, o.swapaxes(x, 0, 1)), lambda x: x @ x.T),
    ("zeros", lambda o, x: o.zeros((2, 3)) + x, lambda x: x),
    ("ones", lambda o, x: o.ones((2, 3)) * x, lambda x: x),
    ("arange", lambda o, x: o.arange(0, 3) + x, lambda x: np.arange(3) + x),
    ("pi", lambda o, x: x * o.pi, lambda x: x * np.pi),
    ("abs", lambda o, x: o.abs(x), np.abs),
]


@pytest.mark.parametrize("name,f,ref", OPS, ids=[o[0] for o in OPS])
def test_ops_match_numpy_on_both_backends(backend, name, f, ref):
    with dg.use_backend(backend):
        x = ops.asarray(X)
        out = ops.to_numpy(f(ops, x))
    np.testing.assert_allclose(out, ref(X.astype(np.float64)), rtol=2e-6, atol=2e-6)


def test_ops_dispatch_on_array_type():
    # a torch tensor goes to torch even while numpyro is active, and vice versa
    import jax.numpy as jnp
    import torch

    with dg.use_backend("numpyro"):
        assert isinstance(ops.exp(torch.tensor([0.0])), torch.Tensor)
    with dg.use_backend("pyro"):
        assert not isinstance(ops.exp(jnp.zeros(1)), torch.Tensor)
        assert isinstance(ops.zeros((2,)), torch.Tensor)
        assert ops.zeros((2,)).dtype == torch.float32


def test_sample_obs_and_plate_and_deterministic(backend):
    data = np.array([0.5, 1.5, 2.5], dtype=np.float32)

    def model(data):
        mu = dg.sample("mu", dist.Normal(0.0, 10.0))
        with dg.plate("data", 3, dim=-1):
            dg.sample("obs", dist.Normal(mu, 1.0), obs=data)
        dg.deterministic("mu2", mu * 2)

    sites = dg.trace(model, data, backend=backend)
    assert sites["obs"].is_observed and not sites["mu"].is_observed
    np.testing.assert_allclose(sites["obs"].value, data)
    assert sites["obs"].plates == ("data",)
    assert sites["mu2"].type == "deterministic"
    np.testing.assert_allclose(sites["mu2"].value, 2 * sites["mu"].value, rtol=1e-6)


def test_plate_subsample_size(backend):
    def model():
        with dg.plate("N", 100, subsample_size=10) as idx:
            dg.sample("z", dist.Normal(0.0, 1.0))
            return idx

    sites = dg.trace(model, backend=backend)
    assert sites["z"].value.shape == (10,)


def test_factor_and_callable_init(backend):
    def guide():
        w = dg.param("w", lambda: np.ones(3) * 0.5)
        dg.factor("f", ops.sum(w))

    sites = dg.trace(guide, backend=backend)
    np.testing.assert_allclose(sites["w"].value, [0.5, 0.5, 0.5])
    assert sites["f"].is_factor
    assert float(sites["f"].log_prob) == pytest.approx(1.5)


def test_factor_has_rsample_false_is_refused():
    with pytest.raises(dg.SpecError, match="has_rsample=False is not supported"):
        dg.trace(lambda: dg.factor("f", 0.0, has_rsample=False), backend="pyro")


def test_neutral_constructors_pickle():
    import pickle

    assert pickle.loads(pickle.dumps(dist.Normal)) is dist.Normal
    assert pickle.loads(pickle.dumps(constraints.interval(0.0, 1.0))) == constraints.interval(0, 1)


def test_used_constraints_pickle_without_backend_objects(backend):
    import pickle

    c = constraints.interval(0.0, 2.0)
    dg.trace(lambda: dg.param("p", 1.0, constraint=c), backend=backend)
    assert c._native  # the backend cached its native constraint
    c2 = pickle.loads(pickle.dumps(c))
    assert c2 == c and not c2._native
    assert pickle.loads(pickle.dumps(constraints.positive)) is constraints.positive
