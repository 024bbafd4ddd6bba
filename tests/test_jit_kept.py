"""dualguide's own checks must not cost Pyro's JIT: a model observing data inside a plate
fits with JitTrace_ELBO (the input checks run on the eager first step, not in the trace)."""

from __future__ import annotations

import numpy as np

import dualguide as dg
from dualguide import distributions as dist

X = np.random.default_rng(0).normal(size=(50,)).astype(np.float32)


def model(x):
    m = dg.sample("m", dist.Normal(0.0, 1.0))
    with dg.plate("data", 50):
        dg.sample("obs", dist.Normal(m, 1.0), obs=x)


def guide(x):
    loc = dg.param("loc", 0.0)
    dg.sample("m", dist.Normal(loc, 0.5))


def test_plated_observations_keep_the_jit_on_pyro():
    r = dg.fit(model, guide, backend="pyro", model_args=(X,), num_steps=50, progress=False)
    assert r.elbo == "JitTrace_ELBO"


def test_the_plate_check_still_runs_under_the_jit():
    import pytest

    with pytest.raises(dg.errors.SpecError, match="plate 'data' has size 50"):
        dg.fit(model, guide, backend="pyro", model_args=(X[:40],), num_steps=5, progress=False)
