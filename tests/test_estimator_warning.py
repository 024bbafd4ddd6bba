"""Trace_ELBO / TraceMeanField_ELBO with a guide site without rsample run a different estimator
on each framework; dualguide warns, naming the site and the fix (issue 14, docs/elbo.md)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import dualguide as dg
from dualguide import constraints
from dualguide import distributions as dist
from dualguide.errors import EstimatorMismatchWarning

FLIPS = np.array([1, 1, 0, 1, 1, 1, 0, 1, 0, 1], np.float32)


def bb_model(x):
    p = dg.sample("p", dist.Beta(1.0, 1.0))
    with dg.plate("flips", len(FLIPS)):
        dg.sample("x", dist.Bernoulli(p), obs=x)


def bb_guide(x):
    mu = dg.param("mu", 0.5, constraint=constraints.unit_interval)
    dg.sample("p", dg.infer.has_rsample_(dist.Beta(12.0 * mu, 12.0 * (1.0 - mu)), False))


def reparam_guide(x):
    mu = dg.param("mu", 0.5, constraint=constraints.unit_interval)
    dg.sample("p", dist.Beta(12.0 * mu, 12.0 * (1.0 - mu)))


def coin_model():
    dg.sample("z", dist.Bernoulli(0.3))


def coin_guide():
    q = dg.param("q", 0.5, constraint=constraints.unit_interval)
    dg.sample("z", dist.Bernoulli(q))


FIX = "TraceGraph_ELBO for the same score-function estimator on both backends"


def test_fit_warns_naming_the_site_and_the_fix(backend):
    with pytest.warns(EstimatorMismatchWarning, match="'p' \\(Beta on " + backend) as rec:
        r = dg.fit(bb_model, bb_guide, backend=backend, model_args=(FLIPS,), num_steps=2)
    assert r.num_steps == 2  # a warning, not a refusal
    (w,) = [w for w in rec if w.category is EstimatorMismatchWarning]  # exactly one
    assert FIX in str(w.message) and "infer={'enumerate': 'parallel'}" in str(w.message)
    assert str(w.message).startswith("fit: Trace_ELBO")


def test_fit_with_seeds_warns_once(backend):
    with pytest.warns(EstimatorMismatchWarning) as rec:
        rs = dg.fit(
            bb_model,
            bb_guide,
            backend=backend,
            model_args=(FLIPS,),
            num_steps=2,
            seeds=[0, 1],
            jit=False,
        )
    assert len(rs) == 2 and sum(w.category is EstimatorMismatchWarning for w in rec) == 1


def test_mean_field_refuses_a_site_without_rsample(backend):
    # Pyro's TraceMeanField_ELBO raises NotImplementedError deep inside; NumPyro's would run
    # another estimator: refused on both, naming the site and the fix
    with pytest.raises(dg.SpecError, match="TraceMeanField_ELBO .*'p' \\(Beta\\).*TraceGraph"):
        dg.fit(
            bb_model,
            bb_guide,
            backend=backend,
            model_args=(FLIPS,),
            num_steps=2,
            loss="TraceMeanField_ELBO",
        )


def test_fit_warns_for_a_discrete_guide_site(backend):
    with pytest.warns(EstimatorMismatchWarning, match="'z' \\(Bernoulli"):
        dg.fit(coin_model, coin_guide, backend=backend, num_steps=2, check=False)


def test_svi_object_warns_once(backend):
    svi = dg.infer.SVI(bb_model, bb_guide, dg.optim.Adam(lr=0.01), backend=backend, seed=0)
    with pytest.warns(EstimatorMismatchWarning, match="SVI: Trace_ELBO .*'p'") as rec:
        svi.step(FLIPS)
        svi.step(FLIPS)
    assert sum(w.category is EstimatorMismatchWarning for w in rec) == 1


def test_reparameterized_guide_and_tracegraph_do_not_warn(backend):
    # the warning is an error here: any EstimatorMismatchWarning fails the test
    with warnings.catch_warnings():
        warnings.simplefilter("error", EstimatorMismatchWarning)
        r1 = dg.fit(bb_model, reparam_guide, backend=backend, model_args=(FLIPS,), num_steps=2)
        r2 = dg.fit(
            bb_model,
            bb_guide,
            backend=backend,
            model_args=(FLIPS,),
            num_steps=2,
            loss="TraceGraph_ELBO",
        )
        svi = dg.infer.SVI(bb_model, reparam_guide, dg.optim.Adam(lr=0.01), backend=backend)
        loss = svi.step(FLIPS)
    assert len(r1.losses) == len(r2.losses) == 2 and np.isfinite(loss)


def test_crosscheck_warns_once_for_both_backends(both):
    with pytest.warns(EstimatorMismatchWarning) as rec:
        dg.crosscheck(
            bb_model,
            bb_guide,
            model_args=(FLIPS,),
            num_steps=2,
            checks=(),
            reference=None,
            elbo_particles=10,
            doctor=False,
        )
    (w,) = [w for w in rec if w.category is EstimatorMismatchWarning]
    text = str(w.message)
    assert text.startswith("crosscheck: Trace_ELBO")
    assert "'p' (Beta on numpyro, Beta on pyro)" in text and FIX in text


def test_pyro_lkj_cholesky_guide_warns_and_still_fits():
    # torch's LKJCholesky has no rsample: Pyro's Trace_ELBO runs a score-function estimator
    def model():
        dg.sample("L", dist.LKJCholesky(3, 2.0))

    def guide():
        c = dg.param("c", 4.0, constraint=constraints.positive)
        dg.sample("L", dist.LKJCholesky(3, c))

    with pytest.warns(EstimatorMismatchWarning, match="'L' \\(LKJCholesky on pyro\\)"):
        r = dg.fit(model, guide, backend="pyro", num_steps=3, seed=0)
    assert r.num_steps == 3 and np.isfinite(r.params["c"])


def test_warning_exported_at_top_level(backend):
    # dg.EstimatorMismatchWarning is the class the library warns with, public like dg.SpecError
    assert dg.EstimatorMismatchWarning is EstimatorMismatchWarning
    assert "EstimatorMismatchWarning" in dg.__all__
    with pytest.warns(dg.EstimatorMismatchWarning, match="'p'"):
        dg.fit(bb_model, bb_guide, backend=backend, model_args=(FLIPS,), num_steps=1)
