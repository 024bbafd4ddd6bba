"""Pyro's TraceMeanField_ELBO under the JIT: traced once, the plain class's fit.

Pyro 1.9's ``JitTraceMeanField_ELBO`` re-traced the program on every step (its cache is
stored under one attribute name and looked up under another): ~27 steps/s and memory growing
by megabytes per step.  dualguide traces once after the plain class's step 0 (docs/elbo.md)."""

from __future__ import annotations

import numpy as np
import pytest

import dualguide as dg
from dualguide import constraints
from dualguide import distributions as dist

Y = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
OPT = dg.optim.Adam(lr=0.05)


def model(y):
    mu = dg.sample("mu", dist.Normal(0.0, 5.0))  # Normal-Normal: an analytic KL
    with dg.plate("rows", 6, dim=-2):
        r = dg.sample("r", dist.Normal(0.0, 1.0))
        with dg.plate("cols", 3, dim=-1):
            dg.sample("y", dist.StudentT(4.0, mu + r, 0.3), obs=y)


def guide(y):
    m = dg.param("m", 0.0)
    s = dg.param("s", 0.5, constraint=constraints.positive)
    dg.sample("mu", dist.Normal(m, s))
    rl = dg.param("rl", np.zeros((6, 1), np.float32))
    rs = dg.param("rs", np.full((6, 1), 0.5, np.float32), constraint=constraints.positive)
    with dg.plate("rows", 6, dim=-2):
        dg.sample("r", dist.Normal(rl, rs))


def _fit(steps, particles=1):
    return dg.fit(
        model,
        guide,
        backend="pyro",
        model_args=(Y,),
        num_steps=steps,
        num_particles=particles,
        optim=OPT,
        loss="TraceMeanField_ELBO",
        check=False,
        progress=False,
    )


@pytest.mark.parametrize("steps", [4, 16])
def test_pyro_mean_field_traces_the_program_once(monkeypatch, steps):
    # the number of torch.jit traces must not grow with the steps (Pyro's made one per step,
    # each graph kept: the memory growth)
    import torch

    calls = []
    trace = torch.jit.trace

    def counting(*a, **k):
        calls.append(1)
        return trace(*a, **k)

    monkeypatch.setattr(torch.jit, "trace", counting)
    r = _fit(steps)
    assert r.elbo == "JitTraceMeanField_ELBO"
    assert len(calls) == 1


@pytest.mark.parametrize("particles", [1, 3])
def test_pyro_mean_field_fit_is_plain_svi_step_for_step(particles):
    # the same draws as Pyro's own TraceMeanField_ELBO SVI (same seed), so the losses and params
    # agree to float rounding (float32 sums of different association: 1e-5)
    import pyro
    import torch
    from pyro.infer import SVI, TraceMeanField_ELBO

    from dualguide.backends.pyro.optim import make_optimizer

    r = _fit(12, particles)
    assert r.elbo == "JitTraceMeanField_ELBO"
    store = pyro.get_param_store()
    with store.scope(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        elbo = TraceMeanField_ELBO(num_particles=particles, vectorize_particles=False)
        svi = SVI(dg.render(model, "pyro"), dg.render(guide, "pyro"), make_optimizer(OPT), elbo)
        y = torch.from_numpy(Y)
        losses = np.array([svi.step(y) for _ in range(12)], np.float32)
        params = {k: v.detach().numpy().copy() for k, v in store.items()}
    np.testing.assert_allclose(r.losses, losses, rtol=1e-5, atol=1e-5)
    for k, v in params.items():
        np.testing.assert_allclose(r.params[k], v, rtol=1e-5, atol=1e-6)
