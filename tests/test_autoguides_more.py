"""The remaining autoguides: AutoIAFNormal, AutoLaplaceApproximation, the init_to_* strategies,
``sample_posterior`` / ``median`` / ``quantiles`` as numpy on both backends, and param
translation for the new guides.  Checked against exact answers where there are any.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import dualguide as dg
from dualguide import distributions as dist
from dualguide.autoguides import (
    init_to_feasible,
    init_to_mean,
    init_to_median,
    init_to_sample,
    init_to_uniform,
    init_to_value,
)
from dualguide.errors import SpecError


def other(b: str) -> str:
    return "pyro" if b == "numpyro" else "numpyro"


# --- AutoIAFNormal ------------------------------------------------------------------------------


def banana():
    x1 = dg.sample("x1", dist.Normal(0.0, 1.0))
    dg.sample("x2", dist.Normal(x1**2, 0.5))


IAF = {"hidden_dim": [6, 6], "num_transforms": 2}


@pytest.fixture(scope="module")
def iaf_fits():
    guide = dg.autoguides.AutoIAFNormal(banana, **IAF)
    return {
        b: dg.fit(
            banana,
            guide,
            backend=b,
            num_steps=150,
            num_particles=4,
            optim=dg.optim.Adam(lr=0.01),
            seed=0,
        )
        for b in ("numpyro", "pyro")
    }


def test_iaf_fits_with_native_names(iaf_fits, backend):
    r = iaf_fits[backend]
    layers = 3  # two hidden layers + the output layer, per flow
    if backend == "numpyro":
        names = {
            f"auto_arn__{i}$params.layers.{j}.{w}"
            for i in range(2)
            for j in range(layers)
            for w in "Wb"
        }
        w0 = r.params["auto_arn__0$params.layers.0.W"]
        assert w0.shape == (2, 6)  # stax: (in, out)
    else:
        names = {
            f"AutoIAFNormal.transform$$${i}.arn.layers.{j}.{w}"
            for i in range(2)
            for j in range(layers)
            for w in ("weight", "bias")
        }
        assert r.params["AutoIAFNormal.transform$$$0.arn.layers.0.weight"].shape == (6, 2)
    assert set(r.params) == names
    assert all(isinstance(v, np.ndarray) for v in r.params.values())
    assert all(c == dg.constraints.real for c in r.constraints.values())
    assert r.losses[-20:].mean() < r.losses[:20].mean()


def test_iaf_renders_the_native_class(backend):
    native = dg.autoguides.AutoIAFNormal(banana).render(backend)
    if backend == "numpyro":
        from numpyro.infer.autoguide import AutoIAFNormal as Native
    else:
        from pyro.infer.autoguide import AutoIAFNormal as Native
    assert isinstance(native, Native)


def _flow(b, guide, params, eps):
    """The guide's flow applied to base noise ``eps`` by the framework's own transform."""
    if b == "numpyro":
        import jax.numpy as jnp
        from numpyro import handlers

        native = guide.render("numpyro")
        with handlers.seed(rng_seed=0):
            native()
        p = {k: jnp.asarray(v) for k, v in params.items()}
        t = native.get_transform(p)
        return np.asarray(t(jnp.asarray(eps))), np.asarray(t.log_abs_det_jacobian(eps, t(eps)))
    import torch

    native = guide.render("pyro", params=params)
    t = native.get_transform()
    with torch.no_grad():
        x = torch.as_tensor(eps)
        y = t(x)
        return y.numpy(), t.log_abs_det_jacobian(x, y).numpy()


@pytest.mark.parametrize("source", ["numpyro", "pyro"])
def test_iaf_translated_params_give_the_same_flow(iaf_fits, source):
    """Translate a fit to the other framework: its own flow maps the same noise to the same
    points with the same log|det J|, to float32 round-off (same network, weights transposed)."""
    guide = dg.autoguides.AutoIAFNormal(banana, **IAF)
    params = iaf_fits[source].params
    translated = guide.translate(params, to=other(source))
    assert set(translated) == set(iaf_fits[other(source)].params)
    eps = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    y_s, ld_s = _flow(source, guide, params, eps)
    y_t, ld_t = _flow(other(source), guide, translated, eps)
    assert np.abs(y_s - eps).max() > 0.05  # the flow is not the identity
    np.testing.assert_allclose(y_t, y_s, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.sum(ld_t, -1) if ld_t.ndim > 1 else ld_t, ld_s, atol=1e-4)
    back = guide.translate(translated, to=source)
    for k in params:
        np.testing.assert_array_equal(back[k], params[k])


def test_iaf_sample_posterior_and_no_quantiles(iaf_fits, backend):
    guide = dg.autoguides.AutoIAFNormal(banana, **IAF)
    r = iaf_fits[backend]
    s = guide.sample_posterior(0, r, sample_shape=(500, 2))
    assert set(s) == {"x1", "x2"} and s["x1"].shape == (500, 2)
    assert np.isfinite(s["x2"]).all() and s["x1"].std() > 0.1
    with pytest.raises(SpecError, match="sample_posterior"):
        guide.quantiles(r, [0.5])
    with pytest.raises(SpecError, match="median"):
        guide.median(r)


def test_iaf_bad_arguments_are_refused(backend):
    with pytest.raises(SpecError, match="hidden_dim"):
        dg.autoguides.AutoIAFNormal(banana, hidden_dim=[])
    with pytest.raises(SpecError, match="num_transforms"):
        dg.autoguides.AutoIAFNormal(banana, num_transforms=0)
    with pytest.raises(SpecError, match="nonlinearity"):
        dg.autoguides.AutoIAFNormal(banana, nonlinearity="sigmoid")
    narrow = dg.autoguides.AutoIAFNormal(banana, hidden_dim=[1])
    with pytest.raises(SpecError, match="at least 2 units"):
        dg.fit(banana, narrow, backend=backend, num_steps=2)

    def one():
        dg.sample("x", dist.Normal(0.0, 1.0))

    with pytest.raises(SpecError, match="one latent dimension"):
        dg.fit(one, dg.autoguides.AutoIAFNormal(one), backend=backend, num_steps=2)


# --- AutoLaplaceApproximation ------------------------------------------------------------------

DATA = np.array([0.3, 1.9, 2.4, 0.8, 1.1], np.float32)
A, NOISE, PRIOR = np.array([1.0, 0.5]), 0.7, 2.0


def gauss(data):
    mu = dg.sample("mu", dist.Normal(0.0, PRIOR).expand([2]).to_event(1))
    with dg.plate("n", data.shape[0]):
        dg.sample("obs", dist.Normal(mu[..., 0] + 0.5 * mu[..., 1], NOISE), obs=data)


def exact_posterior():
    """Conjugate: prior N(0, PRIOR^2 I), y_i = A . mu + N(0, NOISE^2)."""
    prec = np.eye(2) / PRIOR**2 + len(DATA) * np.outer(A, A) / NOISE**2
    cov = np.linalg.inv(prec)
    return cov @ (A * DATA.sum() / NOISE**2), cov


@pytest.fixture(scope="module")
def laplace_fits():
    guide = dg.autoguides.AutoLaplaceApproximation(gauss)
    return {
        b: dg.fit(
            gauss,
            guide,
            backend=b,
            model_args=(DATA,),
            num_steps=800,
            optim=dg.optim.Adam(lr=0.03),
        )
        for b in ("numpyro", "pyro")
    }


def test_laplace_covariance_is_the_exact_posterior_covariance(laplace_fits, backend):
    mean, cov = exact_posterior()
    guide = dg.autoguides.AutoLaplaceApproximation(gauss)
    r = laplace_fits[backend]
    name = "auto_loc" if backend == "numpyro" else "AutoLaplaceApproximation.loc"
    assert set(r.params) == {name}
    post = guide.get_posterior(r, model_args=(DATA,))
    # the MAP is found by Adam (to ~1e-3); the Hessian of a Gaussian is exact anywhere
    np.testing.assert_allclose(post["loc"], mean, atol=2e-3)
    np.testing.assert_allclose(post["covariance_matrix"], cov, rtol=1e-4, atol=1e-5)
    assert post["layout"] == [("mu", (2,))]
    # the other framework computes the same covariance from the translated point
    t = guide.translate(r, to=other(backend), model_args=(DATA,))
    post_t = guide.get_posterior(t, model_args=(DATA,))
    np.testing.assert_allclose(post_t["covariance_matrix"], cov, rtol=1e-4, atol=1e-5)
    # median and quantiles are the Laplace Gaussian's (marginal Normal icdf)
    med = guide.median(r, model_args=(DATA,))
    np.testing.assert_allclose(med["mu"], post["loc"], rtol=1e-6)
    q = guide.quantiles(r, [0.1, 0.9], model_args=(DATA,))
    sd = np.sqrt(np.diag(cov))
    want = post["loc"] + stats.norm.ppf([[0.1], [0.9]]) * sd
    np.testing.assert_allclose(q["mu"], want, rtol=1e-4, atol=1e-4)
    # draws have that covariance: with 4000 draws a sample variance's relative sd is
    # sqrt(2/4000) = 0.022 (the covariance, correlation -0.94, about the same): 12% is > 5 sd
    s = guide.sample_posterior(3, r, sample_shape=(4000,), model_args=(DATA,))
    np.testing.assert_allclose(np.cov(s["mu"].T), cov, rtol=0.12)


# --- init strategies --------------------------------------------------------------------------


def priors():
    dg.sample("x", dist.LogNormal(1.0, 0.5))
    dg.sample("y", dist.Normal(3.0, 1.0).expand([2]).to_event(1))


def _init(strategy, backend, seed=0):
    guide = dg.autoguides.AutoDelta(priors, init_loc_fn=strategy)
    sites = dg.trace(guide, backend=backend, seed=seed)
    names = ("x_auto_loc", "y_auto_loc") if backend == "numpyro" else ("AutoDelta.x", "AutoDelta.y")
    return float(sites[names[0]].value), np.asarray(sites[names[1]].value)


def test_init_to_feasible_mean_and_value_are_exact_on_both(backend):
    assert _init(init_to_feasible(), backend)[0] == pytest.approx(1.0)  # exp(0)
    x, y = _init(init_to_mean(), backend)
    assert x == pytest.approx(np.exp(1.0 + 0.5**2 / 2), rel=1e-6)  # LogNormal mean
    np.testing.assert_allclose(y, [3.0, 3.0])
    x, y = _init(init_to_value(values={"x": 2.5, "y": [1.0, -1.0]}), backend)
    assert x == pytest.approx(2.5)
    np.testing.assert_allclose(y, [1.0, -1.0])
    # the string names still work
    assert _init("mean", backend)[0] == pytest.approx(np.exp(1.125), rel=1e-6)


def test_init_to_median_uniform_and_sample_follow_their_definitions(backend):
    # median of 401 prior draws: its sd is ~ 1.2533 * sigma / sqrt(401) = 0.063 for y (sigma 1);
    # 0.3 is more than 4 sd, so any seed passes
    x, y = _init(init_to_median(num_samples=401), backend)
    np.testing.assert_allclose(y, [3.0, 3.0], atol=0.3)
    assert abs(np.log(x) - 1.0) < 0.15  # log x's median is 1 (sd of the estimate 0.031)
    for seed in range(3):
        x, y = _init(init_to_uniform(radius=0.25), backend, seed=seed)
        assert abs(np.log(x)) <= 0.25 and np.all(np.abs(y) <= 0.25)
    x, y = _init(init_to_sample(), backend)
    assert x > 0 and np.isfinite(y).all()


def test_bad_init_strategies_are_refused():
    with pytest.raises(SpecError, match="num_samples"):
        init_to_median(num_samples=0)
    with pytest.raises(SpecError, match="radius"):
        init_to_uniform(radius=-1.0)
    with pytest.raises(SpecError, match=r"values\['x'\]"):
        init_to_value(values={"x": "abc"})
    with pytest.raises(SpecError, match="init_to_median"):
        dg.autoguides.AutoNormal(priors, init_loc_fn="nearest")


# --- median / quantiles / sample_posterior on AutoNormal: analytic --------------------------


def test_autonormal_median_quantiles_and_draws_are_analytic(backend):
    guide = dg.autoguides.AutoNormal(priors)
    p = {
        "x_auto_loc": np.float32(0.3),
        "x_auto_scale": np.float32(0.5),
        "y_auto_loc": np.array([1.0, -2.0], np.float32),
        "y_auto_scale": np.array([0.2, 1.5], np.float32),
    }
    p = guide.translate(p, to=backend)
    med = guide.median(p)
    assert med["x"] == pytest.approx(np.exp(0.3), rel=1e-6)  # exp of the unconstrained median
    np.testing.assert_allclose(med["y"], [1.0, -2.0])
    qs = [0.05, 0.5, 0.95]
    q = guide.quantiles(p, qs)
    z = stats.norm.ppf(qs)
    np.testing.assert_allclose(q["x"], np.exp(0.3 + 0.5 * z), rtol=1e-5)
    np.testing.assert_allclose(q["y"], np.array([1.0, -2.0]) + np.outer(z, [0.2, 1.5]), rtol=1e-5)
    n = 20000
    s = guide.sample_posterior(7, p, sample_shape=(n,))
    assert s["x"].shape == (n,) and s["y"].shape == (n, 2)
    # means within 5 standard errors (sd / sqrt(n)): passes for any seed
    se = np.array([0.2, 1.5]) / np.sqrt(n)
    assert np.all(np.abs(s["y"].mean(0) - [1.0, -2.0]) < 5 * se)
    assert abs(np.log(s["x"]).std() - 0.5) < 5 * 0.5 / np.sqrt(2 * n)
    with pytest.raises(SpecError, match="sample_shape"):
        guide.sample_posterior(0, p, sample_shape=(-3,))


def test_sample_posterior_of_packed_and_delta_guides(backend):
    def m():
        dg.sample("a", dist.Normal(0.0, 1.0))
        dg.sample("b", dist.HalfNormal(1.0).expand([3]).to_event(1))

    mvn = dg.autoguides.AutoMultivariateNormal(m)
    r = dg.fit(m, mvn, backend=backend, num_steps=5)
    s = mvn.sample_posterior(0, r, sample_shape=(10,))
    assert s["a"].shape == (10,) and s["b"].shape == (10, 3) and (s["b"] > 0).all()
    delta = dg.autoguides.AutoDelta(m)
    r = dg.fit(m, delta, backend=backend, num_steps=5)
    s = delta.sample_posterior(0, r, sample_shape=(4,))
    med = delta.median(r)
    np.testing.assert_allclose(s["b"], np.broadcast_to(med["b"], (4, 3)))


# --- porting: the gallery's IAF programs -----------------------------------------------------


@pytest.mark.parametrize("fw", ["numpyro", "pyro"])
def test_native_iaf_programs_port_to_the_neutral_guide(fw):
    from pathlib import Path

    from dualguide.porting.port import port_source

    path = Path(__file__).parents[1] / "examples" / "gallery" / "neutra_flow" / f"{fw}_model.py"
    text, framework, _notes, _fns, problems, _margs = port_source(path)
    assert framework == fw and not problems
    assert "dg.autoguides.AutoIAFNormal(model" in text
    assert "num_transforms=2" in text and "hidden_dim=[8, 8]" in text
    if fw == "pyro":
        assert 'nonlinearity="relu"' in text  # Pyro's default, written out


# --- AutoGuideList ----------------------------------------------------------------------------


def pieces(data):
    a = dg.sample("a", dist.Normal(0.0, 2.0).expand([2]).to_event(1))
    s = dg.sample("s", dist.LogNormal(0.0, 1.0))
    with dg.plate("n", data.shape[0]):
        dg.sample("obs", dist.Normal(a[..., 0] + 0.5 * a[..., 1], s), obs=data)


def _guide_list():
    g = dg.autoguides.AutoGuideList(pieces)
    g.append(dg.autoguides.AutoMultivariateNormal(dg.handlers.block(pieces, expose=["a"])))
    g.append(dg.autoguides.AutoNormal(dg.handlers.block(pieces, expose=["s"])))
    return g


def test_autoguidelist_fits_and_translates_part_by_part(backend):
    g = _guide_list()
    r = dg.fit(
        pieces, g, backend=backend, model_args=(DATA,), num_steps=150, optim=dg.optim.Adam(lr=0.03)
    )
    if backend == "numpyro":
        want = {"auto_loc", "auto_scale_tril", "s_auto_loc", "s_auto_scale"}
    else:
        want = {
            "AutoGuideList.0.loc",
            "AutoGuideList.0.scale",
            "AutoGuideList.0.scale_tril",
            "AutoGuideList.1.locs.s",
            "AutoGuideList.1.scales.s",
        }
    assert set(r.params) == want
    assert r.losses[-20:].mean() < r.losses[:20].mean()
    t = g.translate(r, to=other(backend), model_args=(DATA,))
    # the other framework's own AutoGuideList gives the same medians and quantiles
    for a_, b_ in (
        (g.median(r, model_args=(DATA,)), g.median(t, model_args=(DATA,))),
        (
            g.quantiles(r, [0.2, 0.8], model_args=(DATA,)),
            g.quantiles(t, [0.2, 0.8], model_args=(DATA,)),
        ),
    ):
        assert set(a_) == set(b_) == {"a", "s"}
        for k in a_:
            np.testing.assert_allclose(b_[k], a_[k], rtol=2e-5, atol=2e-6)
    d = g.sample_posterior(0, r, sample_shape=(3,), model_args=(DATA,))
    assert d["a"].shape == (3, 2) and d["s"].shape == (3,) and (d["s"] > 0).all()


def test_autoguidelist_refuses_bad_parts():
    g = dg.autoguides.AutoGuideList(pieces)
    with pytest.raises(SpecError, match="expected a dg.autoguides autoguide"):
        g.append(lambda data: None)  # type: ignore[arg-type]
    g.append(dg.autoguides.AutoDiagonalNormal(dg.handlers.block(pieces, expose=["a"])))
    with pytest.raises(SpecError, match="at most one packed part"):
        g.append(dg.autoguides.AutoMultivariateNormal(dg.handlers.block(pieces, expose=["s"])))
    with pytest.raises(SpecError, match="no parts"):
        dg.autoguides.AutoGuideList(pieces).render("numpyro")


def _delta_then_normal():
    def model():
        a = dg.sample("a", dist.Normal(0.0, 1.0))
        dg.sample("b", dist.LogNormal(a, 1.0))

    g = dg.autoguides.AutoGuideList(model)
    g.append(dg.autoguides.AutoDelta(dg.handlers.block(model, expose=["a"])))
    g.append(dg.autoguides.AutoNormal(dg.handlers.block(model, expose=["b"])))
    return model, g


def test_autoguidelist_median_of_params_given_to_a_fresh_guide(backend):
    """A list's ``median`` on a guide that has not run (params from a fit or a file): Pyro's
    parts read the list's plates, which Pyro makes only when the list runs (it failed with
    ``AttributeError: 'AutoGuideList' object has no attribute 'plates'`` from inside Pyro)."""
    model, g = _delta_then_normal()
    r = dg.fit(model, g, backend=backend, num_steps=30, progress=False)
    fresh = _delta_then_normal()[1]
    med = fresh.median(r.params, backend=backend)
    names = {
        "numpyro": ("a_auto_loc", "b_auto_loc"),
        "pyro": ("AutoGuideList.0.a", "AutoGuideList.1.locs.b"),
    }
    a_name, b_loc = names[backend]
    np.testing.assert_allclose(med["a"], r.params[a_name], rtol=1e-6)
    np.testing.assert_allclose(med["b"], np.exp(r.params[b_loc]), rtol=1e-5)
