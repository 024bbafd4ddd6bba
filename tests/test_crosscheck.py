"""dualguide.crosscheck: the report, the deterministic checks, references and bad input.

Cross-backend by construction: every check compares the NumPyro and the Pyro rendering.
Fits are short; tolerances are explained where they are set.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

import dualguide as dg
from dualguide import constraints, ops
from dualguide import distributions as dist
from dualguide.crosscheck import (
    elbo_estimate,
    gradient_parity,
    lockstep,
    logdensity_parity,
    quadrature_reference,
)
from dualguide.errors import SpecError

from .conftest import load_example


# -- small programs ----------------------------------------------------------------------------
def normal_model():
    dg.sample("x", dist.Normal(0.0, 2.0))


def normal_guide():
    s = dg.param("s", 1.0, constraint=constraints.positive)
    dg.sample("x", dist.Normal(0.0, s))


def guide_scale_differs():
    """Pyro's rendering uses a 0.1% larger scale once s > 1.3: a backend difference."""
    s = dg.param("s", 1.0, constraint=constraints.positive)
    scale = ops.where(s > 1.3, s * 1.001, s) if dg.get_backend() == "pyro" else s
    dg.sample("x", dist.Normal(0.0, scale))


def guide_detached_in_pyro():
    """Pyro's rendering cuts the gradient through the scale: same densities, other gradient."""
    s = dg.param("s", 1.0, constraint=constraints.positive)
    if dg.get_backend() == "pyro":
        s = s.detach()
    dg.sample("x", dist.Normal(0.0, s))


# -- the report on the seed Gaussian -------------------------------------------------------------
@pytest.fixture(scope="module")
def seed_report():
    """One full crosscheck of the seed Gaussian: short fit, all checks, quadrature reference.

    800 steps x 16 particles with a decaying step size put both fits within the default
    tolerance (abs 0.02 + rel 0.05: 0.07 for sig1_q, 0.12 for sig2_q) of each other and of the
    quadrature optimum (1, 2) for seeds 0-4 (largest difference seen: 0.06 on sig2_q).
    """
    m = load_example("seed_gaussian")
    return dg.crosscheck(
        m.model_nofactor,
        m.guide,
        num_steps=800,
        num_particles=16,
        optim=dg.optim.ClippedAdam(lr=0.05, lrd=0.996),
        checks="all",
        reference="quadrature",
        elbo_particles=4000,
        lockstep_steps=100,
    )


def test_report_verdicts_and_contents(seed_report):
    r = seed_report
    assert r.ok, str(r)
    assert [p.name for p in r.params] == ["sig1_q", "sig2_q"]
    for p in r.params:
        assert set(p.values) == {"numpyro", "pyro"}
        assert p.ok and p.diff <= p.limit
    # the quadrature optimum is exact: sig1 = 1, sig2 = 2 (float32 optimizer: 1e-3)
    ref = {p.name: float(p.reference) for p in r.params}
    assert ref["sig1_q"] == pytest.approx(1.0, abs=1e-3)
    assert ref["sig2_q"] == pytest.approx(2.0, abs=1e-3)
    for run in r.runs.values():
        assert run.error is None
        assert run.fit.num_steps == 800 and run.steps_per_second > 0 and run.wall_time > 0
        # the model is normalized and the fits are near exact: ELBO ~ 0 (4000 particles)
        assert abs(run.elbo) < 4 * run.elbo_stderr + 0.01
    assert [c for c in r.checks] == [
        "doctor",
        "logdensity",
        "gradient",
        "lockstep",
        "elbo",
        "quadrature",
    ]
    assert all(c.status == "pass" for c in r.checks.values()), str(r)
    assert r.checks["lockstep"].details["parted_at"] is None


def test_report_renders_as_text_json_rich_and_plot(seed_report, tmp_path):
    r = seed_report
    text = str(r)
    assert "sig1_q" in text and "ELBO (4000 particles)" in text and "verdict: OK" in text
    assert "log-density parity" in text and "lockstep" in text
    d = json.loads(json.dumps(r.to_dict()))  # plain types only
    assert d["ok"] is True and d["params"][0]["name"] == "sig1_q"
    assert set(d["runs"]) == {"numpyro", "pyro"} and d["runs"]["pyro"]["elbo_stderr"] > 0
    assert d["checks"]["gradient"]["status"] == "pass"
    buf = io.StringIO()
    r.print(rich=True, file=buf)
    assert "sig2_q" in buf.getvalue() and "verdict: OK" in buf.getvalue()
    path = r.plot(str(tmp_path / "seed.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_crosscheck_is_the_package_and_a_callable():
    import subprocess
    import sys

    import dualguide.crosscheck as cc

    assert dg.crosscheck is cc and callable(dg.crosscheck)
    assert dg.crosscheck.crosscheck.__name__ == "crosscheck"
    # in a fresh interpreter the first access (lazy, before any import of the package) and
    # every later one give the same object, and neither jax nor torch is imported by it
    code = (
        "import sys, dualguide as dg; a = dg.crosscheck; b = dg.crosscheck; "
        "print(a is b, callable(a), a.lockstep.__name__, "
        "'jax' in sys.modules or 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "lockstep", "False"]


def test_per_param_tolerances(seed_report):
    from dualguide.crosscheck.core import _parse_tolerances
    from dualguide.crosscheck.report import isclose_elementwise

    default, per = _parse_tolerances({"sig1_q": 1e-6, "*": {"rel": 0.1}})
    assert default == {"abs": 0.0, "rel": 0.1} and per == {"sig1_q": {"abs": 1e-6, "rel": 0.0}}
    assert _parse_tolerances(0.5) == ({"abs": 0.5, "rel": 0.0}, {})
    p = seed_report.params[0]
    _, ok = isclose_elementwise(p.values["numpyro"], p.values["pyro"], 1e-6, 0.0)
    assert not ok  # two stochastic fits never agree to 1e-6
    with pytest.raises(SpecError, match="tolerance"):
        _parse_tolerances({"sig1_q": "tight"})
    with pytest.raises(SpecError, match="unknown param"):
        dg.crosscheck(normal_model, normal_guide, tolerances={"nope": 0.1}, num_steps=10)


# -- deterministic checks --------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["model_factor", "model_improper"])
def test_logdensity_parity_seed_models(which):
    m = load_example("seed_gaussian")
    r = logdensity_parity(getattr(m, which), m.guide, num_points=32)
    assert r.status == "pass", r.summary
    # float32: the two frameworks agree to a few ulps, far inside the 1e-5 limit
    assert r.details["guide_max_diff"] < 1e-5 and r.details["model_max_diff"] < 1e-5


def test_logdensity_parity_catches_a_backend_difference():
    # at s = 1.5 Pyro's scale is 0.1% larger: log q moves by ~1e-3, 100x the limit
    r = logdensity_parity(normal_model, guide_scale_differs, params={"s": 1.5}, num_points=16)
    assert r.status == "fail"
    assert "guide site 'x'" in r.summary
    # below the switch both renderings are the same program
    assert logdensity_parity(normal_model, guide_scale_differs, num_points=16).status == "pass"
    # the difference is real: float64 (looked at when float32 fails) keeps it
    assert "in float64 too" in r.summary, r.summary


def test_logdensity_parity_tells_float32_rounding_from_a_difference():
    # Beta(150, 150): log q = lgamma(300) - 2 lgamma(150) + ..., terms of ~1400 whose float32
    # ulp (1.2e-4) is far above the limit 1e-5 * (1 + |log q| ~ 3); the frameworks round them
    # differently, so float32 differs beyond the limit and float64 agrees to ~1e-12
    def model():
        dg.sample("p", dist.Beta(150.0, 150.0))

    def guide():
        a = dg.param("a", 150.0, constraint=constraints.positive)
        dg.sample("p", dist.Beta(a, 150.0))

    r = logdensity_parity(model, guide, num_points=32)
    assert r.status == "pass", r.summary
    assert "float32 differences are rounding" in r.summary
    assert r.details["float32"]["guide_max_diff"] > 1e-5 > r.details["guide_max_diff"]
    assert dg.get_dtype() == "float32"  # the float64 look leaves the dtype as it was


def test_gradient_parity_passes_and_catches_a_biased_gradient():
    ok = gradient_parity(normal_model, normal_guide, num_batches=16, batch_size=32)
    assert ok.status == "pass", ok.summary
    # Pyro's rendering detaches the scale: its ELBO gradient is 0, NumPyro's is about -0.75
    # (d/du of -KL at s = 1 for the target sd 2), dozens of standard errors away
    bad = gradient_parity(normal_model, guide_detached_in_pyro, num_batches=16, batch_size=32)
    assert bad.status == "fail", bad.summary
    g = bad.details["params"]["s"]
    assert abs(float(g["pyro_mean"])) < 1e-6 and float(g["numpyro_mean"]) < -0.3


def test_lockstep_agrees_then_reports_the_first_parting_step():
    opt = dg.optim.Adam(lr=0.05)
    same = lockstep(normal_model, normal_guide, optim=opt, num_steps=120)
    assert same.status == "pass", same.summary
    assert same.details["max_param_dev"] < 1e-5  # float32 rounding only
    # the renderings differ only once s > 1.3: they must part exactly at that step
    r = lockstep(normal_model, guide_scale_differs, optim=opt, num_steps=120)
    assert r.status == "fail"
    u = np.asarray(r.data["params"]["numpyro"]["s"])  # unconstrained (log s) per step
    first = int(np.argmax(np.exp(u) > 1.3))
    assert first > 0 and r.details["parted_at"] == first
    assert f"parted at step {first}" in r.summary
    # a gradient-only difference parts after the first update, in the params
    g = lockstep(normal_model, guide_detached_in_pyro, optim=opt, num_steps=20)
    assert g.status == "fail" and g.details["parted_at"] == 0
    assert g.details["parted_in"] == "param 's'"


def test_not_lockstepable_is_reported_not_failed():
    def model():
        dg.sample("r", dist.Gamma(2.0, 1.0))

    def guide():
        a = dg.param("a", 2.0, constraint=constraints.positive)
        dg.sample("r", dist.Gamma(a, 1.0))

    r = lockstep(model, guide, num_steps=5)
    assert r.status == "n/a" and r.ok is None
    assert "not lockstep-able" in r.summary and "Gamma" in r.summary


def test_elbo_estimate_matches_the_exact_value(backend):
    # ELBO = -KL(N(0, 1) || N(0, 2)) = -(log 2 + 1/8 - 1/2); per-particle sd 0.53, so 20000
    # particles give a standard error of 0.004 and 4 se bound the error for any seed
    exact = -(math.log(2.0) + 0.125 - 0.5)
    m, se = elbo_estimate(normal_model, normal_guide, backend=backend, num_particles=20000)
    assert 0.002 < se < 0.006
    assert abs(m - exact) < 4 * se


def test_elbo_particles_of_a_model_that_does_not_broadcast_over_particles(backend):
    """``X @ w`` with a drawn ``w`` cannot take a particle dim: Pyro runs such a model one
    particle at a time (NumPyro vmaps it).  A Delta guide makes every particle exactly
    ``log p(w0, y)``, so the values are checked exactly."""
    X = np.array([[1.0, 2.0], [0.5, -1.0], [2.0, 0.0]], np.float32)
    y = np.array([0.5, -0.25, 1.0], np.float32)
    w0 = np.array([0.3, -0.7], np.float32)

    def model():
        w = dg.sample("w", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
        with dg.plate("data", 3):
            dg.sample("y", dist.Normal(ops.matmul(ops.asarray(X), w), 1.0), obs=y)

    def guide():
        dg.sample("w", dist.Delta(dg.param("w0", w0), event_dim=1))

    def lognormal(v, m):
        return -0.5 * (v - m) ** 2 - 0.5 * math.log(2 * math.pi)

    exact = sum(lognormal(w0, 0.0)) + sum(lognormal(y, X @ w0))
    vals = dg.crosscheck.elbo_particles(model, guide, None, backend, 3, 0)
    assert vals.shape == (3,)
    np.testing.assert_allclose(vals, exact, rtol=1e-5)  # float32 sums of 5 terms


# -- the rotated mixture: transformed latents and reparameterized mixtures ----------------------------
@pytest.fixture(scope="module")
def mixture():
    return load_example("rotated_mixture")


def test_rotated_mixture_parity_and_lockstep(mixture):
    m = mixture
    ld = logdensity_parity(m.model, m.guide, num_points=16)
    assert ld.status == "pass", ld.summary
    # x, y are Delta sites recomputed by each backend from the same base values u1, u2
    assert "value:x" in ld.details["sites"] and "value:y" in ld.details["sites"]
    ls = lockstep(m.model, m.guide, optim=m.FIT_SETTINGS["optim"], num_steps=60)
    assert ls.status == "pass", ls.summary
    assert "MixtureSameFamily" in ls.summary and "Cauchy" in ls.summary


def test_quadrature_finds_the_exact_optimum(mixture):
    # the guide family holds the target: the optimum is (b*, theta*) and the ELBO is log Z
    r = quadrature_reference(
        mixture.model, mixture.guide, grid_size=61, start={"b": 1.3, "theta": 0.55}
    )
    assert r.status == "pass", r.summary
    assert float(r.details["params"]["b"]) == pytest.approx(1.5, abs=2e-3)
    assert float(r.details["params"]["theta"]) == pytest.approx(0.6, abs=1e-3)
    assert r.details["elbo"] == pytest.approx(mixture.LOG_Z, abs=2e-3)


# -- bad input ---------------------------------------------------------------------------------------
def guide_torch_only():
    import torch

    s = dg.param("s", 1.0, constraint=constraints.positive)
    dg.sample("x", dist.Normal(0.0, torch.exp(torch.log(s))))


def guide_native_numpyro():
    import numpyro.distributions as nd

    s = dg.param("s", 1.0, constraint=constraints.positive)
    dg.sample("x", nd.Normal(0.0, s))


@pytest.mark.parametrize(
    "guide,broken,works",
    [
        (guide_torch_only, "numpyro", "pyro"),
        (guide_native_numpyro, "pyro", "numpyro"),
    ],
)
def test_a_backend_failure_is_reported_and_the_rest_kept(guide, broken, works):
    r = dg.crosscheck(
        normal_model,
        guide,
        num_steps=200,
        optim=dg.optim.Adam(lr=0.05),
        elbo_particles=500,
        checks="all",
        reference="quadrature",
    )
    assert not r.ok
    assert r.runs[broken].error and r.runs[broken].fit is None
    assert any(broken in f for f in r.failures)
    ok = r.runs[works]
    assert ok.error is None and ok.fit is not None and ok.elbo is not None
    assert r.params[0].values.keys() == {works}
    assert all(r.checks[c].status == "n/a" for c in ("logdensity", "gradient", "lockstep"))
    text = str(r)
    assert f"{broken} error:" in text
    if works == "numpyro":  # the quadrature runs on NumPyro's rendering, so it is still there
        assert r.checks["quadrature"].status == "pass"


def test_a_fit_that_stops_keeps_its_partial_result():
    def guide():
        s = dg.param("s", 1.0, constraint=constraints.positive)
        if dg.get_backend() == "pyro":  # NaN once s passes 1.2: only Pyro's fit stops
            s = s + ops.where(s > 1.2, ops.asarray(math.nan), ops.asarray(0.0))
        dg.sample("x", dist.Normal(0.0, s))

    r = dg.crosscheck(
        normal_model,
        guide,
        num_steps=300,
        optim=dg.optim.Adam(lr=0.05),
        checks=(),
        reference=None,
        elbo_particles=500,
    )
    assert not r.ok
    assert "fit stopped" in r.runs["pyro"].error
    partial = r.runs["pyro"].fit
    assert partial is not None and 0 < partial.num_steps < 300
    assert r.runs["numpyro"].error is None and r.runs["numpyro"].fit.num_steps == 300


def test_doctor_errors_refuse_before_fitting():
    def model():
        dg.sample("x", dist.Normal(0.0, 1.0))
        dg.sample("y", dist.Normal(0.0, 1.0))

    with pytest.raises(SpecError, match="crosscheck"):
        dg.crosscheck(model, normal_guide, num_steps=10)


def test_bad_arguments():
    with pytest.raises(SpecError, match="unknown check"):
        dg.crosscheck(normal_model, normal_guide, checks=("speed",))
    with pytest.raises(SpecError, match="reference"):
        dg.crosscheck(normal_model, normal_guide, reference="mcmc")


# -- plates, local latents, observed data ------------------------------------------------------------
DATA = np.random.default_rng(0).normal(1.0, 1.0, size=20).astype(np.float32)


def plate_model(data):
    mu = dg.sample("mu", dist.Normal(0.0, 3.0))
    with dg.plate("n", 20):
        z = dg.sample("z", dist.Normal(mu, 1.0))
        dg.sample("obs", dist.Normal(z, 0.5), obs=data)


def plate_guide(data):
    m = dg.param("m", 0.0)
    s = dg.param("s", 1.0, constraint=constraints.positive)
    dg.sample("mu", dist.Normal(m, s))
    with dg.plate("n", 20):
        lz = dg.param("lz", np.zeros(20, np.float32))
        sz = dg.param("sz", np.ones(20, np.float32), constraint=constraints.positive)
        dg.sample("z", dist.Normal(lz, sz))


def test_plates_and_observations():
    ld = logdensity_parity(plate_model, plate_guide, (DATA,), num_points=16)
    assert ld.status == "pass", ld.summary
    ls = lockstep(plate_model, plate_guide, (DATA,), optim=dg.optim.Adam(lr=0.05), num_steps=40)
    assert ls.status == "pass", ls.summary
    # the ELBO of this conjugate model at the init params, same value on both backends
    # (2000 particles: standard error about 0.9; 4 se of the difference bound it)
    (ma, sa), (mb, sb) = (
        elbo_estimate(plate_model, plate_guide, None, b, 2000, 1, (DATA,))
        for b in ("numpyro", "pyro")
    )
    assert abs(ma - mb) < 4 * math.hypot(sa, sb)


def test_nuts_reference_compares_moments():
    from dualguide.crosscheck import nuts_reference

    m = load_example("seed_gaussian")
    rng = np.random.default_rng(0)
    exact = {"x": rng.normal(0, 1, 4000), "y": rng.normal(0, 2, 4000)}
    r = nuts_reference(
        m.model_improper,
        guide=m.guide,
        guide_samples={"exact": exact},
        num_warmup=300,
        num_samples=1000,
    )
    assert r.status == "info" and r.ok is None
    rows = r.details["sites"]
    # NUTS recovers the target's sds 1 and 2 (1000 draws: within 15%)
    assert rows["x"]["nuts_sd"] == pytest.approx(1.0, rel=0.15)
    assert rows["y"]["nuts_sd"] == pytest.approx(2.0, rel=0.15)
    assert rows["y"]["exact_sd"] == pytest.approx(2.0, rel=0.05)


def test_docs_examples_run(backend_state):
    """docs/crosscheck.md: every example runs and prints what the page says."""
    import doctest

    from .conftest import ROOT

    res = doctest.testfile(
        str(ROOT / "docs" / "crosscheck.md"),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert res.failed == 0 and res.attempted > 20


# -- every family lockstep drives, and params the frameworks unconstrain differently -----------------
def families_model():
    dg.sample("n", dist.Normal(1.0, 2.0))
    dg.sample("ln", dist.LogNormal(0.5, 0.5))
    dg.sample("hn", dist.HalfNormal(2.0))
    dg.sample("c", dist.Cauchy(1.0, 1.0))
    dg.sample("hc", dist.HalfCauchy(1.0))
    dg.sample("la", dist.Laplace(0.0, 2.0))
    dg.sample("u", dist.Uniform(-1.0, 1.0))
    dg.sample("e", dist.Exponential(2.0))
    dg.sample("t", dist.StudentT(4.0, 0.0, 1.0))
    dg.sample("mvn", dist.MultivariateNormal(ops.zeros(2), ops.asarray([[2.0, 0.5], [0.5, 1.0]])))


def families_guide():
    a = dg.param("a", 0.0)
    s = dg.param("s", 1.0, constraint=constraints.positive)
    lo = dg.param("lo", -0.5, constraint=constraints.interval(-1.0, 0.0))
    dg.sample("n", dist.Normal(a, s))
    dg.sample("ln", dist.LogNormal(a, s))
    dg.sample("hn", dist.HalfNormal(s))
    dg.sample("c", dist.Cauchy(a, s))
    dg.sample("hc", dist.HalfCauchy(s))
    dg.sample("la", dist.Laplace(a, s))
    dg.sample("u", dist.Uniform(lo, 1.0))
    dg.sample("e", dist.Exponential(s))
    dg.sample("t", dist.StudentT(4.0, a, s))
    dg.sample(
        "mvn",
        dist.MultivariateNormal(
            ops.stack([a, a]), scale_tril=s * ops.asarray([[1.0, 0.0], [0.3, 0.8]])
        ),
    )


def test_lockstep_drives_every_supported_family():
    r = lockstep(families_model, families_guide, optim=dg.optim.Adam(lr=0.02), num_steps=60)
    assert r.status == "pass", r.summary
    for fam in (
        "Normal",
        "LogNormal",
        "HalfNormal",
        "Cauchy",
        "HalfCauchy",
        "Laplace",
        "Uniform",
        "Exponential",
        "StudentT",
        "MultivariateNormal",
    ):
        assert f"({fam})" in r.summary
    assert "not finite" not in r.summary
    assert r.details["max_param_dev"] < 1e-5


def test_params_with_other_unconstrained_coordinates():
    # lower_cholesky: NumPyro optimizes the 3 free numbers, Pyro the whole 2x2 matrix
    def model():
        dg.sample("z", dist.MultivariateNormal(ops.zeros(2), ops.asarray([[2.0, 0.5], [0.5, 1.0]])))

    def guide():
        L = dg.param("L", np.eye(2, dtype=np.float32), constraint=constraints.lower_cholesky)
        dg.sample("z", dist.MultivariateNormal(ops.zeros(2), scale_tril=L))

    ls = lockstep(model, guide, num_steps=5)
    assert ls.status == "n/a" and "'L' (lower_cholesky)" in ls.summary
    # gradients are compared w.r.t. the constrained values, which both frameworks share
    gp = gradient_parity(model, guide, num_batches=16, batch_size=32)
    assert gp.status == "pass", gp.summary
    assert np.shape(gp.details["params"]["L"]["z"]) == (2, 2)


def test_logdensity_parity_across_the_frameworks_reparam_records():
    # LocScaleReparam: NumPyro records theta as a deterministic site, Pyro as an observed
    # Delta with log density 0 -- the same program; the checks must not call it a difference
    def model():
        mu = dg.sample("mu", dist.Normal(0.0, 1.0))
        with dg.plate("p", 3):
            dg.sample("theta", dist.Normal(mu, 2.0))

    rmodel = dg.handlers.reparam(model, config={"theta": dg.reparam.LocScaleReparam(0.0)})

    def guide():
        dg.sample("mu", dist.Normal(dg.param("m", 0.0), 1.0))
        with dg.plate("p", 3):
            dg.sample("theta_decentered", dist.Normal(dg.param("t", 0.0), 1.0))

    r = logdensity_parity(rmodel, guide, num_points=16)
    assert r.status == "pass", r.summary
    assert "model:theta" not in r.details["sites"]  # compared: mu and theta_decentered
    assert {"model:mu", "model:theta_decentered"} <= set(r.details["sites"])


# -- subsampled plates: both backends must see the same minibatch ------------------------------
SUB_Y = np.sin(np.arange(40.0))


def subsampled_model(y):
    mu = dg.sample("mu", dist.Normal(0.0, 1.0))
    with dg.plate("data", 40, subsample_size=10) as ind:
        z = dg.sample("z", dist.Normal(mu, 1.0))
        dg.sample("y", dist.Normal(z, 0.5), obs=y[ind])


def subsampled_guide(y):
    dg.sample("mu", dist.Normal(dg.param("m", 0.3), 1.0))
    loc = dg.param("z_loc", np.linspace(-1.0, 1.0, 40))
    with dg.plate("data", 40, subsample_size=10) as ind:
        dg.sample("z", dist.Normal(loc[ind], 0.7))


def test_logdensity_parity_gives_both_backends_the_same_subsample():
    # each point's minibatch is drawn once (with its latents) and replayed in both backends:
    # drawn by each backend's own generator, y[ind] and z_loc[ind] differ and so do the
    # densities (by ~10 nats, the radon gallery model's failure); replayed, they agree to float32
    r = logdensity_parity(subsampled_model, subsampled_guide, (SUB_Y,), num_points=8)
    assert r.status == "pass", r.summary
    assert r.details["guide_max_diff"] < 1e-4 and r.details["model_max_diff"] < 1e-4


def test_elbo_particles_each_draw_their_own_minibatch(backend):
    # no latents: one particle's ELBO is 40 x log N(y[i]) for its one drawn index i, an
    # unbiased estimate of sum_i log N(y_i).  Particles sharing one minibatch (Pyro's particle
    # plate) would all be equal (spread 0) and their mean one term's, far from the exact value
    def model(y):
        with dg.plate("data", 40, subsample_size=1) as ind:
            dg.sample("y", dist.Normal(0.0, 1.0), obs=y[ind])

    def guide(y):
        pass

    vals = dg.crosscheck.elbo_particles(
        model, guide, backend=backend, num_particles=2000, model_args=(SUB_Y,)
    )
    exact = float(np.sum(-0.5 * SUB_Y**2 - 0.5 * math.log(2 * math.pi)))
    se = vals.std(ddof=1) / math.sqrt(vals.size)
    assert se > 0.1
    # 5 standard errors: a seed-independent bound for a mean of 2000 independent draws
    assert abs(vals.mean() - exact) < 5 * se


MVN_Y = np.array([0.5, -1.0, 2.0])


def event_as_batch_model(y):
    # f's event dimension is the data plate's batch dimension (the GP-classification pattern)
    f = dg.sample("f", dist.MultivariateNormal(ops.zeros(3), covariance_matrix=ops.eye(3)))
    with dg.plate("data", 3):
        dg.sample("y", dist.Normal(f, 1.0), obs=y)


def event_as_batch_guide(y):
    # the exact posterior: f_i ~ Normal(y_i / 2, 1 / sqrt(2)), independent
    loc = dg.param("f_loc", y / 2.0)
    dg.sample("f", dist.Normal(loc, math.sqrt(0.5)).to_event(1))


def test_elbo_particles_of_a_latent_whose_event_dim_is_a_data_batch(backend):
    # an exact guide: every particle's log p - log q is the log evidence, sum log N(y; 0, 2).
    # Pyro's particle plate gives f the shape (P, 1, 3) and y's density (P, P, 3): each
    # particle summed the others' f (ELBO -2119 for the 15-point GP instead of -40)
    vals = dg.crosscheck.elbo_particles(
        event_as_batch_model,
        event_as_batch_guide,
        backend=backend,
        num_particles=64,
        model_args=(MVN_Y,),
    )
    exact = float(np.sum(-0.25 * MVN_Y**2 - 0.5 * math.log(2 * math.pi * 2.0)))
    np.testing.assert_allclose(vals, exact, atol=1e-4)  # float32 rounding of a few terms


def test_gradient_parity_of_a_latent_whose_event_dim_is_a_data_batch():
    # Pyro's vectorized particles cross f's particles with the plate's (see above): its
    # gradients would be those of another objective; run one particle at a time they agree
    # 16 batches of 8 particles: the crossed gradient is off by several batch sds, and the
    # particle loop stays short
    r = gradient_parity(
        event_as_batch_model, event_as_batch_guide, (MVN_Y,), num_batches=16, batch_size=8
    )
    assert r.status == "pass", r.summary


def test_elbo_particles_of_a_model_that_sums_over_every_dimension(backend):
    """``dg.factor("f", -0.5 * (z * z).sum())`` sums over every dimension, the particles' too
    when Pyro vectorizes them in a plate: shapes look right (the plate broadcasts the one sum
    to every particle), the values do not (every particle got all particles' sum: about
    -3000 for 2000 particles). Exact: log p - log q = -0.5 |z|^2 with z ~ N(0, I_3), mean
    -1.5, sd sqrt(1.5); 2000 particles put the mean within 4 se (0.11) of it."""

    def model():
        z = dg.sample("z", dist.Normal(ops.zeros(3), 1.0).to_event(1))
        dg.factor("f", -0.5 * (z * z).sum())

    def guide():
        m = dg.param("m", ops.zeros(3))
        dg.sample("z", dist.Normal(m, 1.0).to_event(1))

    v = dg.crosscheck.elbo_particles(model, guide, backend=backend, num_particles=2000, seed=0)
    se = np.sqrt(1.5 / 2000)
    assert abs(v.mean() + 1.5) < 4 * se
    assert abs(v.std() - np.sqrt(1.5)) < 0.1
