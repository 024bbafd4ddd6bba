"""Rendered programs are plain callables that the frameworks' own SVI accepts, next to native code."""

from __future__ import annotations

import numpy as np
import pytest

import dualguide as dg
from dualguide import constraints
from dualguide import distributions as dist


def neutral_model():
    dg.sample("x", dist.Normal(0.0, 2.0))


def neutral_guide():
    loc = dg.param("loc", 0.5)
    scale = dg.param("scale", 1.0, constraint=constraints.positive)
    dg.sample("x", dist.Normal(loc, scale))


def test_numpyro_svi_accepts_rendered_guide_with_native_model():
    import jax
    import numpyro
    import numpyro.distributions as nd
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.optim import Adam

    def native_model():
        numpyro.sample("x", nd.Normal(0.0, 2.0))

    guide = dg.render(neutral_guide, "numpyro")
    svi = SVI(native_model, guide, Adam(lambda i: 0.05 * 0.998**i), Trace_ELBO(num_particles=16))
    res = svi.run(jax.random.PRNGKey(0), 2500, progress_bar=False)
    assert set(res.params) == {"loc", "scale"}
    # 16 particles, 2500 steps with lr decaying 0.05 -> 0.0003: the fit settles within ~0.03
    # of the true 2.0 for any seed tried; 0.15 only asserts that native SVI learned through it
    assert abs(float(res.params["scale"]) - 2.0) < 0.15
    assert abs(float(res.params["loc"])) < 0.15


def test_numpyro_svi_accepts_rendered_model_with_native_guide():
    import jax
    import numpyro
    import numpyro.distributions as nd
    from numpyro.distributions import constraints as nc
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.optim import Adam

    def native_guide():
        s = numpyro.param("scale", 1.0, constraint=nc.positive)
        numpyro.sample("x", nd.Normal(0.0, s))

    model = dg.render(neutral_model, "numpyro")
    res = SVI(
        model, native_guide, Adam(lambda i: 0.05 * 0.998**i), Trace_ELBO(num_particles=16)
    ).run(jax.random.PRNGKey(1), 2500, progress_bar=False)
    assert abs(float(res.params["scale"]) - 2.0) < 0.15


def test_pyro_svi_accepts_rendered_guide_with_native_model():
    import pyro
    import pyro.distributions as pdist
    import torch
    from pyro.infer import SVI, Trace_ELBO
    from pyro.optim import ClippedAdam

    def native_model():
        pyro.sample("x", pdist.Normal(0.0, 2.0))

    guide = dg.render(neutral_guide, "pyro")
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    svi = SVI(
        native_model,
        guide,
        ClippedAdam({"lr": 0.05, "lrd": 0.998}),
        Trace_ELBO(num_particles=16, vectorize_particles=True),
    )
    for _ in range(2500):
        svi.step()
    store = pyro.get_param_store()
    assert set(store.keys()) == {"loc", "scale"}
    assert isinstance(store["scale"], torch.Tensor)
    assert abs(float(store["scale"].detach()) - 2.0) < 0.15
    pyro.clear_param_store()


def test_pyro_svi_accepts_rendered_model_with_native_guide():
    import pyro
    import pyro.distributions as pdist
    from pyro.infer import SVI, Trace_ELBO
    from pyro.optim import ClippedAdam
    from torch.distributions import constraints as tc

    def native_guide():
        s = pyro.param("scale", lambda: __import__("torch").tensor(1.0), constraint=tc.positive)
        pyro.sample("x", pdist.Normal(0.0, s))

    pyro.clear_param_store()
    pyro.set_rng_seed(1)
    model = dg.render(neutral_model, "pyro")
    svi = SVI(
        model,
        native_guide,
        ClippedAdam({"lr": 0.05, "lrd": 0.998}),
        Trace_ELBO(num_particles=16, vectorize_particles=True),
    )
    for _ in range(2500):
        svi.step()
    assert abs(float(pyro.param("scale").detach()) - 2.0) < 0.15
    pyro.clear_param_store()


def test_params_keep_names_and_constraints(backend):
    sites = dg.trace(neutral_guide, backend=backend)
    assert [n for n, s in sites.items() if s.type == "param"] == ["loc", "scale"]
    native = sites["scale"].native
    if backend == "numpyro":
        from numpyro.distributions import constraints as nc

        assert native["kwargs"]["constraint"] is nc.positive
    else:
        # pyro records the constraint in the param store; the trace keeps the constrained value
        assert float(sites["scale"].value) == pytest.approx(1.0)
    assert sites["loc"].value.dtype == np.float32


def test_pyro_param_constraint_in_store():
    import pyro
    from torch.distributions import constraints as tc

    pyro.clear_param_store()
    dg.render(neutral_guide, "pyro")()
    store = pyro.get_param_store()
    assert store._constraints["scale"] is tc.positive
    assert float(store["scale"].detach()) == pytest.approx(1.0)
    pyro.clear_param_store()


def test_render_is_idempotent_and_rerenders(backend):
    other = "pyro" if backend == "numpyro" else "numpyro"
    r = dg.render(neutral_guide, backend)
    assert dg.render(r, backend) is r
    r2 = dg.render(r, other)
    assert r2.backend == other and r2.neutral is neutral_guide
    assert dg.backend_of(r) == backend and dg.backend_of(neutral_guide) is None


def test_render_rejects_non_callable():
    with pytest.raises(dg.SpecError, match="expected a model or guide function"):
        dg.render(42)
