"""The guide doctor: each of the seed thread's mistakes is found, on both backends, with its fix.

Every test asserts the finding's code, site and the words of its message (what a user reads),
and that correct programs get no errors or warnings (no false alarms).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import dualguide as dg
from dualguide import constraints, ops
from dualguide import distributions as dist
from dualguide.doctor import Report, cheap_checks, check, nonfinite_sites
from dualguide.errors import CheckWarning, SpecError

from .conftest import load_example

DATA = Path(__file__).parent / "data"


# -- programs -----------------------------------------------------------------------------------


def model_xy():
    dg.sample("x", dist.Normal(0.0, 1.0))
    dg.sample("y", dist.Normal(0.0, 2.0))


def guide_factor():
    """The seed's guide_factor: param-free Uniform samplers "shaped" by a factor."""
    s1 = dg.param("s1", 1.0, constraint=constraints.positive)
    s2 = dg.param("s2", 1.0, constraint=constraints.positive)
    x = dg.sample("x", dist.Uniform(-10.0, 10.0))
    y = dg.sample("y", dist.Uniform(-10.0, 10.0))
    dg.factor("q", -0.5 * ((x / s1) ** 2 + (y / s2) ** 2) - ops.log(s1 * s2))


def guide_deterministic():
    s = dg.param("s", 1.0, constraint=constraints.positive)
    u = dg.sample("u", dist.Normal(0.0, 1.0), infer={"is_auxiliary": True})
    dg.deterministic("x", s * u)
    dg.sample("y", dist.Normal(0.0, s))


def guide_x_only():
    s = dg.param("s", 1.0, constraint=constraints.positive)
    dg.sample("x", dist.Normal(0.0, s))


def guide_improper():
    dg.sample("x", dist.ImproperUniform(constraints.real, (), ()))
    s = dg.param("s", 1.0, constraint=constraints.positive)
    dg.sample("y", dist.Normal(0.0, s))


def guide_extra(aux):
    def guide():
        s = dg.param("s", 1.0, constraint=constraints.positive)
        dg.sample("x", dist.Normal(0.0, s))
        dg.sample("y", dist.Normal(0.0, s))
        dg.sample("z", dist.Normal(0.0, 1.0), infer={"is_auxiliary": True} if aux else None)

    return guide


def guide_halfnormal():
    s = dg.param("s", 1.0, constraint=constraints.positive)
    dg.sample("x", dist.HalfNormal(s))
    dg.sample("y", dist.Normal(0.0, s))


def model_vec():
    dg.sample("z", dist.Normal(ops.zeros(3), 1.0).to_event(1))


def guide_vec_wrong_shape():
    dg.sample(
        "z",
        dist.Normal(ops.zeros(2), dg.param("s", 1.0, constraint=constraints.positive)).to_event(1),
    )


def guide_vec_batch():
    s = dg.param("s", 1.0, constraint=constraints.positive)
    dg.sample("z", dist.Normal(ops.zeros(3), s))


def _rotation(theta_init=0.3, jacobian=True, square=True):
    """Hand-written Delta guide for the rotated mixture's map (det of d(x,y)/d(u) = 1/sin 2t)."""

    def guide():
        b = dg.param("b", 0.5, constraint=constraints.positive)
        t = dg.param("theta", theta_init, constraint=constraints.interval(0.0, math.pi / 2))
        u1 = dg.sample("u1", dist.Normal(b, 0.7), infer={"is_auxiliary": True})
        u2 = dg.sample("u2", dist.Cauchy(0.0, 1.0), infer={"is_auxiliary": True})
        if not square:
            u3 = dg.sample("u3", dist.Normal(0.0, 1.0), infer={"is_auxiliary": True})
            u2 = u2 + u3
        c, s = ops.cos(t), ops.sin(t)
        ld = ops.log(ops.sin(2 * t)) if jacobian else 0.0 * t
        dg.sample("x", dist.Delta((u1 + u2) / (2 * c), log_density=ld))
        dg.sample("y", dist.Delta((u2 - u1) / (2 * s), log_density=0.0 * t))

    return guide


def model_flat_xy():
    x = dg.sample("x", dist.ImproperUniform(constraints.real, (), ()))
    y = dg.sample("y", dist.ImproperUniform(constraints.real, (), ()))
    dg.factor("t", -0.5 * (x**2 + y**2))


def guide_transformed(theta_init=0.3):
    def guide():
        t = dg.param("theta", theta_init, constraint=constraints.interval(0.0, math.pi / 2))
        c, s = ops.cos(t), ops.sin(t)
        dg.transformed(
            ("x", "y"),
            {"u1": dist.Normal(0.0, 1.0), "u2": dist.Cauchy(0.0, 1.0)},
            lambda u1, u2: ((u1 + u2) / (2 * c), (u2 - u1) / (2 * s)),
        )

    return guide


# -- the seed's mistakes ------------------------------------------------------------------------


def test_seed_guide_is_clean(backend, seed_gaussian):
    r = check(seed_gaussian.model_nofactor, seed_gaussian.guide, backend=backend)
    assert r.ok and not r.warnings, str(r)
    # a Normal x Normal guide integrates to 1; quadrature error far below the 0.01 alarm
    assert r.figures["quadrature"]["integral"] == pytest.approx(1.0, abs=1e-3)
    assert r.find("quadrature-ok")
    assert r.figures["depends_on"] == {"x": ["sig1_q"], "y": ["sig2_q"]}


def test_guide_factor_is_an_error(backend):
    r = check(model_xy, guide_factor, backend=backend)
    assert not r.ok
    for site in ("x", "y"):
        (f,) = r.find("param-free-guide-site", site)
        assert f.severity == "error"
        assert "depends on no param" in f.message and "factor 'q'" in f.message
        assert "does not change what the guide samples" in f.message
        assert "dist.Normal(loc, scale)" in f.fix and "dg.transformed" in f.fix
    # the guide's density is Uniform^2 * exp(factor): 2 pi / 400 at s1 = s2 = 1
    (f,) = r.find("density-not-normalized")
    assert f.severity == "error" and "guide factors add to log q" in f.message
    assert r.figures["quadrature"]["integral"] == pytest.approx(2 * math.pi / 400, rel=1e-3)
    assert r.find("guide-factor", "q")[0].severity == "info"
    # the Uniform guide cannot reach the Normal model's tails
    assert {f.site for f in r.find("support-narrower")} == {"x", "y"}


def test_deterministic_for_a_latent(backend):
    r = cheap_checks(model_xy, guide_deterministic, backend=backend)
    (f,) = r.find("latent-deterministic", "x")
    assert f.severity == "error"
    assert "Site x must be sampled in trace" in f.message
    assert "dist.Delta(value, log_density=" in f.fix and "dg.transformed" in f.fix


def test_latent_missing_from_guide(backend):
    r = cheap_checks(model_xy, guide_x_only, backend=backend)
    (f,) = r.find("latent-missing")
    assert f.site == "y" and f.severity == "error"
    assert "no site in the guide" in f.message and "dg.sample('y'" in f.fix


def test_improper_distribution_in_guide(backend):
    r = cheap_checks(model_xy, guide_improper, backend=backend)
    (f,) = r.find("improper-guide-dist", "x")
    assert f.severity == "error" and "ImproperUniform" in f.message and "no sampler" in f.message
    assert "keep ImproperUniform in the model" in f.fix
    # the rest of the guide was still checked (y is fine)
    assert not r.find("latent-missing")


@pytest.mark.parametrize("aux", [False, True])
def test_guide_site_the_model_lacks(backend, aux):
    r = cheap_checks(model_xy, guide_extra(aux), backend=backend)
    if aux:
        assert not r.find("guide-extra-site")
    else:
        (f,) = r.find("guide-extra-site", "z")
        assert f.severity == "warning" and "not marked auxiliary" in f.message
        assert "infer={'is_auxiliary': True}" in f.fix and "'x', 'y'" in f.fix


def test_guide_support_outside_model_support(backend, seed_gaussian):
    r = cheap_checks(seed_gaussian.model_factor, seed_gaussian.guide, backend=backend)
    assert r.ok
    for site in ("x", "y"):
        (f,) = r.find("support-outside", site)
        assert f.severity == "warning"
        assert "the whole real line" in f.message and "(-10, 10)" in f.message
        assert "-inf on both backends" in f.message
        assert "on_nonfinite='skip'" in f.fix


def test_model_support_wider_than_guide(backend):
    r = cheap_checks(model_xy, guide_halfnormal, backend=backend)
    (f,) = r.find("support-narrower", "x")
    assert f.severity == "warning" and "(0, inf)" in f.message and "whole real line" in f.message
    assert "ignores that part of the model" in f.message
    assert not r.find("support-narrower", "y")


def test_transformed_distribution_support_is_its_image(backend):
    """A guide's TransformedDistribution: its support is the base's pushed through the
    transforms (Sigmoid then Affine(0, 3): (0, 3)); both frameworks report the last
    transform's codomain, the whole real line, so the doctor warned a correct guide against
    a Uniform(0, 3) prior (found porting a program).  An unbounded map still warns."""
    T = dist.transforms

    def model():
        dg.sample("t", dist.Uniform(0.0, 3.0))
        dg.sample("s", dist.Uniform(1.0, 2.0))

    def guide():
        loc = dg.param("loc", 0.0)
        base = dist.Normal(loc, 1.0)
        dg.sample(
            "t",
            dist.TransformedDistribution(base, [T.SigmoidTransform(), T.AffineTransform(0.0, 3.0)]),
        )
        # exp then a negative scale: (-inf, 2.5) mapped from (0, inf); wider than (1, 2)
        dg.sample(
            "s",
            dist.TransformedDistribution(base, [T.ExpTransform(), T.AffineTransform(2.5, -1.0)]),
        )

    r = cheap_checks(model, guide, backend=backend)
    assert not r.find("support-outside", "t") and not r.find("support-narrower", "t")
    (f,) = r.find("support-outside", "s")
    assert "(-inf, 2.5)" in f.message and "(1, 2)" in f.message

    # wrapped: in a plate (NumPyro expands it) and with .to_event (Independent on both)
    def model_v():
        with dg.plate("n", 2):
            dg.sample("t", dist.Uniform(0.0, 3.0))
        dg.sample("u", dist.Uniform(0.0, 3.0).expand([2]).to_event(1))

    def guide_v():
        loc = dg.param("loc", np.zeros(2, np.float32))
        flow = [T.SigmoidTransform(), T.AffineTransform(0.0, 3.0)]
        with dg.plate("n", 2):
            dg.sample("t", dist.TransformedDistribution(dist.Normal(loc, 1.0), flow))
        dg.sample("u", dist.TransformedDistribution(dist.Normal(loc, 1.0), flow).to_event(1))

    r = cheap_checks(model_v, guide_v, backend=backend)
    assert not [f for f in r.findings if f.code.startswith("support")], r


def test_shape_mismatch_names_both_shapes(backend):
    r = cheap_checks(model_vec, guide_vec_wrong_shape, backend=backend)
    (f,) = r.find("shape-mismatch", "z")
    assert f.severity == "error"
    assert "shape (2,) in the guide" in f.message and "(3,) in the model" in f.message
    assert "event (2,)" in f.message and "event (3,)" in f.message


def test_event_dim_mismatch(backend):
    r = cheap_checks(model_vec, guide_vec_batch, backend=backend)
    (f,) = r.find("event-dim-mismatch", "z")
    assert f.severity == "warning"
    assert "guide's event shape is ()" in f.message and "model's (3,)" in f.message
    assert f.fix == "add .to_event(1) to the guide's distribution"


# -- transformed latents and the quadrature ----------------------------------------------------


def test_missing_jacobian_is_caught(backend):
    r = check(model_flat_xy, _rotation(jacobian=False), backend=backend)
    (f,) = r.find("transform-logdet")
    assert f.severity == "error" and f.site == "x, y"
    # log|det d(x,y)/d(u)| = -log sin(2 * 0.3) = 0.5716, exactly the missing term (finite
    # differences in float32 give it to about 1e-3)
    logdet = float(re.search(r"log\|det J\| = ([0-9.]+)", f.message).group(1))
    off = float(re.search(r"off by ([0-9.]+)", f.message).group(1))
    assert logdet == pytest.approx(0.5716, abs=2e-3) and off == pytest.approx(0.5716, abs=2e-3)
    (q,) = r.find("density-not-normalized")
    assert r.figures["quadrature"]["integral"] == pytest.approx(1 / math.sin(0.6), rel=2e-3)
    assert "Delta sites must carry -log|det J|" in q.message


def test_hand_written_jacobian_and_transformed_pass(backend):
    for guide in (_rotation(jacobian=True), guide_transformed()):
        r = check(model_flat_xy, guide, backend=backend)
        assert r.ok and not r.warnings, str(r)
        assert r.figures["quadrature"]["integral"] == pytest.approx(1.0, abs=2e-3)
        assert r.figures["transform"]["log_abs_det"][0] == pytest.approx(
            -math.log(math.sin(0.6)), abs=1e-3
        )


def test_transform_not_square(backend):
    r = check(model_flat_xy, _rotation(square=False), backend=backend)
    (f,) = r.find("transform-not-square")
    assert f.severity == "warning"
    assert "'u1', 'u2', 'u3' (3 dims)" in f.message and "(2 dims)" in f.message
    assert r.find("quadrature-skipped")


def test_transformed_not_square_is_an_error(backend):
    def guide():
        dg.transformed(
            "x", {"u1": dist.Normal(0.0, 1.0), "u2": dist.Normal(0.0, 1.0)}, lambda a, b: a + b
        )

    r = cheap_checks(guide_x_only, guide, backend=backend)
    (f,) = r.errors
    assert f.code == "transform-not-square" and "the map is not square" in f.message
    assert "Trace Shapes" not in f.message
    with pytest.raises(SpecError, match="the map is not square"):
        dg.fit(guide_x_only, guide, backend=backend, num_steps=2)


def test_transform_not_invertible_near_params(backend):
    # at theta = 1e-7 the map's Jacobian has condition number ~ 1 / theta
    for guide, params in ((guide_transformed(), {"theta": 1e-7}), (_rotation(1e-7), None)):
        r = check(model_flat_xy, guide, backend=backend, params=params)
        (f,) = r.find("transform-singular")
        assert f.severity == "warning" and "not invertible near the current params" in f.message


def test_point_mass_guide_is_not_an_error(backend):
    def guide():
        dg.sample("x", dist.Delta(dg.param("a", 0.5)))
        dg.sample("y", dist.Normal(0.0, dg.param("s", 1.0, constraint=constraints.positive)))

    r = check(model_xy, guide, backend=backend)
    assert r.ok and not r.warnings, str(r)
    assert r.find("point-mass-site", "x")


def test_quadrature_of_bounded_and_vector_sites(backend):
    # (samplers that are cheap to compile: numpyro's Gamma/Beta take seconds the first time)
    def model():
        dg.sample("a", dist.LogNormal(0.0, 1.0))
        dg.sample("p", dist.Uniform(0.0, 2.0))
        dg.sample("z", dist.Normal(0.0, 1.0))

    def guide():
        k = dg.param("k", 1.5, constraint=constraints.positive)
        dg.sample("a", dist.LogNormal(0.3, k))  # support (0, inf): a log map
        dg.sample("p", dist.Uniform(0.0, 2.0))  # support (0, 2): a logit map
        dg.sample("z", dist.Laplace(0.5, k))  # the real line: a tan map

    r = check(model, guide, backend=backend)
    assert r.ok and not r.warnings, str(r)
    assert r.figures["quadrature"]["dims"] == 3
    assert r.figures["quadrature"]["integral"] == pytest.approx(1.0, abs=5e-3)
    # a vector site (event shape (3,)) counts three dims
    r = check(
        model_vec,
        lambda: dg.sample("z", dist.Normal(ops.zeros(3), 2.0).to_event(1)),
        backend=backend,
    )
    assert r.figures["quadrature"]["dims"] == 3
    assert r.figures["quadrature"]["integral"] == pytest.approx(1.0, abs=5e-3)


def test_plates_and_data_no_false_alarm(backend):
    good = load_example_file("good_regression")
    r = check(good.model, good.guide, backend=backend, model_args=good.MODEL_ARGS)
    assert r.ok and not r.warnings, str(r)
    assert r.figures["quadrature"]["integral"] == pytest.approx(1.0, abs=1e-3)


def test_unused_param(backend):
    def guide():
        dg.param("forgotten", 0.0)
        s = dg.param("s", 1.0, constraint=constraints.positive)
        dg.sample("x", dist.Normal(0.0, s))
        dg.sample("y", dist.Normal(0.0, s))

    r = check(model_xy, guide, backend=backend)
    (f,) = r.find("unused-param", "forgotten")
    assert f.severity == "warning" and "leaves it at its initial value" in f.message


# -- the report and the levels ------------------------------------------------------------------


def test_report_api():
    r = check(model_xy, guide_factor, backend="numpyro")
    text = str(r)
    assert text.startswith("dualguide check (numpyro, full): 3 error(s)")
    assert "ERROR: [x] guide site 'x' is drawn from Uniform" in text and "    fix: " in text
    d = json.loads(json.dumps(r.to_dict()))
    assert d["ok"] is False and d["counts"]["error"] == 3
    assert {"code", "severity", "site", "message", "fix"} == set(d["findings"][0])
    assert r.codes("error").count("param-free-guide-site") == 2
    with pytest.raises(SpecError, match=r"check: the guide has 3 error\(s\)"):
        r.raise_for_errors()
    assert isinstance(r, Report) and len(r) == len(list(r))


def test_cheap_level_skips_the_expensive_checks(backend):
    cheap = cheap_checks(model_xy, guide_factor, backend=backend)
    assert cheap.level == "cheap" and "quadrature" not in cheap.checks
    assert "quadrature" not in cheap.figures
    # the seed's mistake is an error already at the cheap level (fit refuses it)
    assert [f.site for f in cheap.find("param-free-guide-site")] == ["x", "y"]
    with pytest.raises(SpecError, match="level must be 'cheap' or 'full'"):
        check(model_xy, guide_factor, level="everything")


def test_check_at_fitted_params(backend, seed_gaussian):
    # params= accepts a FitResult: the checks look at the guide there
    res = dg.fit(seed_gaussian.model_nofactor, seed_gaussian.guide, backend=backend, num_steps=5)
    r = check(seed_gaussian.model_nofactor, seed_gaussian.guide, backend=backend, params=res)
    assert r.ok


# -- fit runs the cheap checks first ------------------------------------------------------------


def test_fit_refuses_errors_and_check_false_runs(backend):
    with pytest.raises(SpecError) as ei:
        dg.fit(model_xy, guide_factor, backend=backend, num_steps=10)
    msg = str(ei.value)
    assert f"fit ({backend}): the guide has 2 error(s)" in msg
    assert "guide site 'x' is drawn from Uniform" in msg and "pass check=False" in msg
    r = dg.fit(model_xy, guide_factor, backend=backend, num_steps=10, check=False)
    assert r.num_steps == 10


def test_fit_refuses_deterministic_latent(backend):
    with pytest.raises(SpecError, match="is a deterministic\\(\\) site in the guide"):
        dg.fit(model_xy, guide_deterministic, backend=backend, num_steps=10)


def test_fit_warnings_pass_through(backend, seed_gaussian):
    m, g = seed_gaussian.model_factor, seed_gaussian.guide
    with pytest.warns(CheckWarning) as rec:
        dg.fit(m, g, backend=backend, num_steps=3)
    msgs = [str(w.message) for w in rec if issubclass(w.category, CheckWarning)]
    assert [m_.split("]")[0] for m_ in msgs] == [
        "dualguide check: WARNING: [x",
        "dualguide check: WARNING: [y",
    ]
    assert "has support the whole real line but the model's Uniform only (-10, 10)" in msgs[0]
    # on_nonfinite="skip" is what the fix says: no warning then
    with warnings.catch_warnings():
        warnings.simplefilter("error", CheckWarning)
        dg.fit(m, g, backend=backend, num_steps=3, on_nonfinite="skip")


def test_nonfinite_sites_names_the_culprit(backend):
    def model():
        x = dg.sample("x", dist.Normal(0.0, 1.0))
        dg.factor("wall", ops.log(1.0 - x) * 0.0)  # NaN when x > 1

    def guide():
        dg.sample("x", dist.Normal(dg.param("loc", 2.0), 0.1))

    assert nonfinite_sites(model, guide, backend=backend) == [("wall", "model")]
    assert nonfinite_sites(model, guide, backend=backend, params={"loc": -2.0}) == []


# -- the command line ---------------------------------------------------------------------------


class _Run:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _cli(capsys, *args):
    """``dualguide check ARGS`` in this process (tests/test_bad_input.py runs it as a command)."""
    from dualguide.cli import main

    rc = main(["check", *map(str, args)])
    out = capsys.readouterr()
    return _Run(rc, out.out, out.err)


def test_cli_clean_file_exits_0(capsys):
    p = _cli(capsys, DATA / "good_regression.py", "--backend", "both", "--level", "cheap")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "dualguide check (numpyro, cheap): 0 error(s), 0 warning(s)" in p.stdout
    assert "dualguide check (pyro, cheap): 0 error(s), 0 warning(s)" in p.stdout


def test_cli_seed_mistakes_exit_1_with_json(capsys):
    p = _cli(capsys, DATA / "bad_factor_guide.py", "--json", "--level", "cheap")
    assert p.returncode == 1, p.stderr
    out = json.loads(p.stdout)
    assert out["ok"] is False and out["guide"] == "guide"
    assert [r["backend"] for r in out["reports"]] == ["numpyro", "pyro"]
    for rep in out["reports"]:
        errs = [f for f in rep["findings"] if f["severity"] == "error"]
        assert [(f["code"], f["site"]) for f in errs] == [
            ("param-free-guide-site", "x"),
            ("param-free-guide-site", "y"),
        ]
    p = _cli(capsys, DATA / "bad_deterministic.py", "--backend", "pyro", "--level", "cheap")
    assert p.returncode == 1
    assert "ERROR: [x] the model's latent 'x' is a deterministic() site in the guide" in p.stdout


def test_cli_names_model_and_guide(capsys, seed_gaussian):
    path = Path(seed_gaussian.__file__)
    p = _cli(capsys, path, "--model", "model_factor", "--backend", "numpyro", "--level", "cheap")
    assert p.returncode == 0, p.stderr
    assert "model 'model_factor', guide 'guide'" in p.stdout
    assert "WARNING: [x] guide site 'x' (Normal) has support" in p.stdout


def load_example_file(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_dg_data_{name}", DATA / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_check_uses_the_examples_jacobian(backend):
    rm = load_example("rotated_mixture")
    r = check(rm.model, rm.guide_no_jacobian, backend=backend)
    assert [f.code for f in r.errors] == ["transform-logdet", "density-not-normalized"]
    # at the init theta = 0.3 the missing term is log|sin 0.6|
    assert r.figures["quadrature"]["integral"] == pytest.approx(1 / math.sin(0.6), rel=2e-3)
    assert np.isfinite(r.figures["transform"]["log_abs_det"]).all()


def test_docs_examples_run(backend_state):
    """docs/doctor.md: every example runs and prints what the page says."""
    import doctest

    res = doctest.testfile(
        str(DATA.parent.parent / "docs" / "doctor.md"),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert res.failed == 0 and res.attempted > 40


@pytest.mark.parametrize("how", ["dict", "init_to_value"])
def test_an_autoguides_init_value_for_an_unknown_site_is_an_error(backend, how):
    """``AutoNormal(model, init_loc_fn={"muu": 1.0})`` (a misspelled site; found by a probe):
    NumPyro and Pyro ignore the value silently, so the fit starts elsewhere than meant."""

    def model():
        dg.sample("mu", dist.Normal(0.0, 1.0))

    values = {"muu": 1.0}
    init = values if how == "dict" else dg.autoguides.init_to_value(values=values)
    guide = dg.autoguides.AutoNormal(model, init_loc_fn=init)
    r = dg.check(model, guide, backend=backend, level="cheap")
    (f,) = r.find("init-unknown-site", "muu")
    assert f.severity == "error" and "'mu'" in f.message
    with pytest.raises(dg.SpecError, match="init_loc_fn gives a value for 'muu'"):
        dg.fit(model, guide, backend=backend, num_steps=2, progress=False)
    ok = dg.autoguides.AutoNormal(model, init_loc_fn={"mu": 1.0})
    assert not dg.check(model, ok, backend=backend, level="cheap").find("init-unknown-site")
