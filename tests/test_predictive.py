"""dg.infer.Predictive on both backends: shapes, exact deterministic functions, predictive means."""

from __future__ import annotations

import numpy as np
import pytest

import dualguide as dg
from dualguide import distributions as dist
from dualguide.errors import SpecError

Predictive = dg.infer.Predictive
Y = np.array([0.5, 1.0, 2.0], dtype=np.float32)


def model(y=None):
    x = dg.sample("x", dist.Normal(1.0, 2.0))
    dg.deterministic("ex", dg.ops.exp(x))
    with dg.plate("data", 3):
        dg.sample("y", dist.Normal(x, 0.5), obs=y)


def guide(y=None):
    m = dg.param("m", 0.0)
    s = dg.param("s", 1.0, constraint=dg.constraints.positive)
    dg.sample("x", dist.Normal(m, s))


POST = {"x": np.linspace(-1.0, 1.0, 7, dtype=np.float32)}


def test_deterministic_functions_of_posterior_samples_match_exactly():
    outs = [
        Predictive(model, posterior_samples=POST, seed=0, backend=b)() for b in ("numpyro", "pyro")
    ]
    for out in outs:
        assert list(out) == ["ex", "y"]  # the default: what the samples do not give
        assert out["ex"].shape == (7,) and out["y"].shape == (7, 3)
        assert out["ex"].dtype == np.float32
    np.testing.assert_allclose(outs[0]["ex"], np.exp(POST["x"]), rtol=1e-6)
    np.testing.assert_allclose(outs[0]["ex"], outs[1]["ex"], rtol=1e-6)


@pytest.mark.parametrize("parallel", [False, True])
def test_guide_predictive_mean_and_shapes(backend, parallel):
    """y | x ~ N(x, 0.5), x ~ q = N(1, 0.1): E y = 1, sd y = sqrt(0.25 + 0.01)."""
    n = 400
    out = Predictive(
        model,
        guide=guide,
        num_samples=n,
        params={"m": 1.0, "s": 0.1},
        seed=1,
        parallel=parallel,
        backend=backend,
    )()
    assert sorted(out) == ["ex", "y"] and out["y"].shape == (n, 3)
    sd = np.sqrt(0.25 + 0.01)
    # 400 draws: the mean's standard error is sd / 20 = 0.026; 4 standard errors
    assert np.all(np.abs(out["y"].mean(0) - 1.0) < 4 * sd / np.sqrt(n))
    assert np.all(np.abs(out["y"].std(0) - sd) < 0.08)


def test_guide_as_model_gives_posterior_samples_then_the_same_predictive(backend):
    params = {"m": 0.3, "s": 0.2}
    post = Predictive(guide, num_samples=300, params=params, seed=2, backend=backend)()
    assert list(post) == ["x"] and post["x"].shape == (300,)
    assert abs(post["x"].mean() - 0.3) < 4 * 0.2 / np.sqrt(300)
    out = Predictive(model, post, return_sites=["x", "ex"], seed=3, backend=backend)()
    np.testing.assert_array_equal(out["x"], post["x"])  # substituted values come back unchanged


def test_posterior_predictive_mean_matches_the_analytic_one(both):
    """Conjugate model: the exact posterior of x given Y, then y_new | x ~ N(x, 0.5)."""
    prec = 1 / 4 + 3 / 0.25
    mean = (1.0 / 4 + Y.sum() / 0.25) / prec
    rng = np.random.default_rng(0)
    post = {"x": (mean + prec**-0.5 * rng.standard_normal(500)).astype(np.float32)}
    for b in both:
        out = Predictive(model, posterior_samples=post, seed=0, backend=b)()
        sd = np.sqrt(prec**-1 + 0.25)
        # 500 draws: standard error sd / sqrt(500) = 0.025 per data point; 4 standard errors
        assert np.all(np.abs(out["y"].mean(0) - mean) < 4 * sd / np.sqrt(500))


def test_observed_data_comes_back_and_seed_repeats(backend):
    p = Predictive(
        model, guide=guide, num_samples=4, seed=5, backend=backend, return_sites=["x", "y"]
    )
    a, b = p(Y), p(Y)
    np.testing.assert_array_equal(a["y"], np.broadcast_to(Y, (4, 3)))
    np.testing.assert_array_equal(a["x"], b["x"])


def test_params_default_to_the_param_store(backend):
    dg.clear_param_store()
    dg.get_param_store()["m"] = 5.0
    dg.get_param_store()["s"] = 0.01
    try:
        out = Predictive(guide, num_samples=20, seed=0, backend=backend)()
        assert abs(out["x"].mean() - 5.0) < 0.05
    finally:
        dg.clear_param_store()


def test_bad_input_is_a_spec_error():
    with pytest.raises(SpecError, match="num_samples"):
        Predictive(model)
    with pytest.raises(SpecError, match="not both"):
        Predictive(model, POST, guide=guide)
    with pytest.raises(SpecError, match="different numbers of samples"):
        Predictive(model, {"x": np.zeros(3), "z": np.zeros(4)})
    with pytest.raises(SpecError, match="holds? 7 samples"):
        Predictive(model, POST, num_samples=3)
    with pytest.raises(SpecError, match="'nope'"):
        Predictive(model, POST, return_sites=["nope"], backend="numpyro")()


@pytest.mark.parametrize("kind", ["AutoNormal", "AutoDiagonalNormal", "AutoDelta"])
def test_an_autoguide_as_the_model_returns_the_latents_only(backend, kind):
    """The guide's posterior samples of the model's latents, constrained (what
    ``sample_posterior`` gives); auxiliary sites (Pyro's "<site>_unconstrained", NumPyro's
    "_auto_latent") are not returned."""

    def scaled(y=None):
        x = dg.sample("x", dist.Normal(1.0, 2.0))
        s = dg.sample("s", dist.LogNormal(0.0, 1.0))
        with dg.plate("data", 3):
            dg.sample("y", dist.Normal(x, s), obs=y)

    g = getattr(dg.autoguides, kind)(scaled)
    out = Predictive(g, num_samples=10, seed=0, backend=backend)(Y)
    assert sorted(out) == ["s", "x"] and out["x"].shape == (10,)
    assert np.all(out["s"] > 0)
    out = Predictive(scaled, guide=g, num_samples=10, seed=0, backend=backend)(Y)
    assert list(out) == ["y"] and out["y"].shape == (10, 3)


def test_parallel_gives_the_sequential_shapes(backend):
    """Pyro's vectorized Predictive leaves a plate dim on sites outside plates; not here."""
    kw = {"posterior_samples": POST, "seed": 0, "backend": backend, "return_sites": ["ex", "y"]}
    a = Predictive(model, parallel=True, **kw)()
    b = Predictive(model, parallel=False, **kw)()
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    np.testing.assert_allclose(a["ex"], b["ex"], rtol=1e-6)  # a function of the samples


def test_parallel_falls_back_when_the_program_does_not_vectorize(backend):
    """A matmul against the sample dim breaks Pyro's vectorized plate: drawn one by one instead."""

    def regression(X):
        w = dg.sample("w", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
        with dg.plate("d", 4):
            dg.sample("y", dist.Normal(dg.ops.matmul(X, w), 0.5))

    X = np.ones((4, 2), dtype=np.float32)
    out = Predictive(regression, num_samples=7, parallel=True, seed=0, backend=backend)(X)
    assert out["w"].shape == (7, 2) and out["y"].shape == (7, 4)


XR = np.linspace(-1, 1, 8).astype(np.float32)
YR = (1.0 + 2.0 * XR + 0.1 * np.random.RandomState(0).randn(8)).astype(np.float32)


def regression(x, y=None):
    a = dg.sample("a", dist.Normal(0.0, 5.0))
    b = dg.sample("b", dist.Normal(0.0, 5.0))
    with dg.plate("n", x.shape[0]):
        dg.sample("y", dist.Normal(a + b * x, 0.1), obs=y)


@pytest.mark.parametrize("kind", ["AutoNormal", "AutoDiagonalNormal"])
def test_autoguide_predictive_without_the_observations(backend, kind):
    """``Predictive(model, guide=autoguide, params=fit)(x)`` (found porting a NumPyro
    program): the autoguide was set up afresh with ``y=None``, so ``y`` became one of its
    latents, drawn from init params: every ``y`` had mean ~0 and ``return_sites=None`` gave
    ``{}``.  The guide now covers the model's latents as fitted, as the frameworks' own do."""
    guide = getattr(dg.autoguides, kind)(regression)
    r = dg.fit(regression, guide, backend=backend, model_args=(XR, YR), num_steps=600,
               optim=dg.optim.Adam(lr=0.05), progress=False)  # fmt: skip
    pred = dg.infer.Predictive(regression, guide=guide, params=r, num_samples=400, seed=0)
    out = pred(XR)
    assert set(out) == {"y"} and out["y"].shape == (400, 8)
    med = guide.median(r, model_args=(XR, YR))
    # E[y] = E[a] + E[b] x; 400 draws of sd ~0.12 (noise 0.1, the guide's scales ~0.05):
    # standard error ~0.006, so 0.05 is 8 of them
    np.testing.assert_allclose(out["y"].mean(0), med["a"] + med["b"] * XR, atol=0.05)
    assert abs(float(med["a"]) - 1.0) < 0.2 and abs(float(med["b"]) - 2.0) < 0.2


def test_autoguide_predictive_on_the_other_backend_takes_the_fits_params(backend):
    """Params fitted on one backend (its names) predict on the other: the autoguide's
    params are translated as its other methods translate them."""
    guide = dg.autoguides.AutoNormal(regression)
    r = dg.fit(regression, guide, backend=backend, model_args=(XR, YR), num_steps=300,
               optim=dg.optim.Adam(lr=0.05), progress=False)  # fmt: skip
    other = "pyro" if backend == "numpyro" else "numpyro"
    out = {
        b: dg.infer.Predictive(
            regression, guide=guide, params=r, num_samples=300, seed=0, backend=b
        )(XR)["y"].mean(0)  # fmt: skip
        for b in (backend, other)
    }
    # different draws of one predictive: standard error ~0.007 each
    np.testing.assert_allclose(out[other], out[backend], atol=0.05)


def test_autoguide_never_fitted_here_with_params_that_do_not_match_is_a_clear_error():
    """Params loaded for a fresh autoguide (not fitted in this process): set up with ``y``
    unobserved, its latents include ``y``, which the params lack: one clear error saying what
    to do, not draws of ``y`` from init params."""
    guide = dg.autoguides.AutoNormal(regression)
    r = dg.fit(regression, guide, backend="numpyro", model_args=(XR, YR), num_steps=5,
               progress=False)  # fmt: skip
    fresh = dg.autoguides.AutoNormal(regression)
    with pytest.raises(SpecError, match="Fit the autoguide in this process"):
        dg.infer.Predictive(regression, guide=fresh, params=r.params, num_samples=3,
                            backend="numpyro")(XR)  # fmt: skip
