"""TraceMeanField_ELBO where one framework has an analytic KL for a site and the other not.

Pyro registers KL(LogNormal || LogNormal); NumPyro does not and uses the Monte-Carlo term.
Both estimators are valid (the same mean), so the crosscheck's common-noise checks compare
like with like there -- both sides' Monte-Carlo term -- and name the site, instead of a false
FAIL (it reported a gradient off by 7e-2 and a lockstep parted at step 0)."""

from __future__ import annotations

import numpy as np

import dualguide as dg
from dualguide import constraints
from dualguide import distributions as dist

Y = np.array([0.3, -0.2, 0.5], np.float32)


def model(y):
    s = dg.sample("sigma", dist.LogNormal(-1.0, 1.0))
    with dg.plate("n", 3):
        dg.sample("y", dist.Normal(0.0, s), obs=y)


def guide(y):
    a = dg.param("a", -1.0)
    b = dg.param("b", 0.3, constraint=constraints.positive)
    dg.sample("sigma", dist.LogNormal(a, b))


def test_the_frameworks_kl_registries_differ_here(both):
    # the premise: analytic on Pyro, Monte Carlo on NumPyro (if either registry changes, the
    # crosscheck test below no longer exercises the mismatch)
    from dualguide.crosscheck._programs import prepare
    from dualguide.crosscheck.estimators import kl_mismatch

    progs = prepare(model, guide, (Y,), None, None, 0)
    loss = dg.infer.TraceMeanField_ELBO()
    assert kl_mismatch(progs, loss) == {"sigma": {"numpyro": False, "pyro": True}}
    assert kl_mismatch(progs, dg.infer.Trace_ELBO()) == {}


def test_crosscheck_compares_like_with_like_and_names_the_site(both):
    report = dg.crosscheck(
        model,
        guide,
        (Y,),
        loss="TraceMeanField_ELBO",
        num_steps=20,
        checks=("gradient", "lockstep"),
        reference=None,
        doctor=False,
        tolerances=1.0,  # 20 steps: the fits' ELBO is not under test
    )
    grad, lock = report.checks["gradient"], report.checks["lockstep"]
    # common noise: the same Monte-Carlo terms agree to float32 rounding (CRN_GRAD_RTOL)
    assert grad.status == "pass" and grad.details["mode"] == "common noise", grad.summary
    assert grad.details["compared_as"] == "Trace_ELBO"
    assert grad.details["kl_mismatch"] == {"sigma": {"numpyro": False, "pyro": True}}
    assert lock.status == "pass" and lock.details["compared_as"] == "Trace_ELBO", lock.summary
    for r in (grad, lock):
        assert (
            "'sigma' (LogNormal guide, LogNormal prior): analytic KL on pyro, Monte Carlo on numpyro"
            in r.summary
        )
    assert "'sigma'" in str(report)
