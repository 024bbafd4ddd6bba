"""Issue 13's parity details, each on both backends: nested ``seed``, ``condition`` on an
observed site, ``Predictive(guide)`` vs posterior samples (``sample_posterior``), and an
autoguide with a varying subsample size (docs/handlers.md)."""

from __future__ import annotations

import numpy as np
import pytest

import dualguide as dg
from dualguide import distributions as dist
from dualguide.errors import SpecError

H = dg.handlers
Y = np.array([0.5, 1.0, 2.0], dtype=np.float32)


def model(y=None):
    x = dg.sample("x", dist.Normal(1.0, 2.0))
    with dg.plate("data", 3):
        dg.sample("y", dist.Normal(x, 0.5), obs=y)


def guide(y=None):
    m = dg.param("m", 0.0)
    s = dg.param("s", 1.0, constraint=dg.constraints.positive)
    dg.sample("x", dist.Normal(m, s))


@pytest.fixture
def on(backend, backend_state):
    dg.set_backend(backend)
    dg.clear_param_store()
    yield backend
    dg.clear_param_store()


def _x(fn) -> float:
    return float(H.trace(fn).get_trace(Y)["x"].value)


def test_nested_seed_innermost_wins_and_the_outer_stream_goes_on(on):
    """Innermost wins (both frameworks in their current versions), and the draws after an
    inner seeded block are those the outer seed gives without it."""

    def two(inner: bool):
        def prog():
            a = dg.sample("a", dist.Normal(0.0, 1.0))
            if inner:
                with H.seed(rng_seed=7):
                    dg.sample("x", dist.Normal(0.0, 1.0))
            b = dg.sample("b", dist.Normal(0.0, 1.0))
            return a, b

        tr = H.trace(H.seed(prog, rng_seed=1)).get_trace()
        return tr

    with_inner, without = two(True), two(False)
    assert float(with_inner["a"].value) == float(without["a"].value)
    assert float(with_inner["b"].value) == float(without["b"].value)
    # the inner block draws what seed 7 draws on its own
    alone = H.trace(H.seed(lambda: dg.sample("x", dist.Normal(0.0, 1.0)), rng_seed=7)).get_trace()
    assert float(with_inner["x"].value) == float(alone["x"].value)


def test_condition_on_an_observed_site_replaces_the_observation(on):
    """Allowed on both (the new value wins): the log density is the exact one of the new
    observation."""
    new = np.array([3.0, 3.0, 3.0], dtype=np.float32)
    tr = H.trace(H.condition(H.seed(model, rng_seed=0), data={"x": 0.0, "y": new})).get_trace(Y)
    assert tr["y"].is_observed
    np.testing.assert_array_equal(tr["y"].value, new)
    # log N(3 | 0, 0.5) for each point
    want = -0.5 * (3.0 / 0.5) ** 2 - np.log(0.5) - 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(tr["y"].log_prob, np.full(3, want), rtol=1e-5)


def test_predictive_from_the_guide_equals_predictive_from_its_posterior_samples(on):
    """The documented rule: Predictive(model, guide=g) and Predictive(model,
    posterior_samples=Predictive(g)()) are the same distribution, the exact one:
    x ~ N(m, s), y_new ~ N(x, 0.5), so y_new ~ N(m, sqrt(s^2 + 0.25))."""
    params = {"m": 0.3, "s": 0.4}
    n = 2000

    def P(*a, **k):
        return dg.infer.Predictive(*a, parallel=True, **k)

    via_guide = P(model, guide=guide, params=params, num_samples=n, seed=0)()["y"]
    post = P(guide, params=params, num_samples=n, seed=1)()
    assert abs(post["x"].mean() - 0.3) < 4 * 0.4 / np.sqrt(n)
    assert abs(post["x"].std() - 0.4) < 0.03
    via_samples = P(model, posterior_samples=post, num_samples=n, seed=2)()["y"]
    sd = np.sqrt(0.4**2 + 0.25)  # 0.64
    for draws in (via_guide, via_samples):
        assert draws.shape == (n, 3)
        # 2000 draws: standard error of the mean 0.014, of the sd 0.010; 4.5-5 standard errors
        assert np.all(np.abs(draws.mean(0) - 0.3) < 0.065)
        assert np.all(np.abs(draws.std(0) - sd) < 0.05)
        # each y_new point shares its x: the correlation across points is s^2 / sd^2 = 0.39
        # (standard error 0.019)
        c = np.corrcoef(draws[:, 0], draws[:, 1])[0, 1]
        assert abs(c - 0.16 / 0.41) < 0.08


N = 20
YS = np.random.default_rng(0).normal(1.0, 1.2, size=N).astype(np.float32)


def sub_model(y, batch):
    mu = dg.sample("mu", dist.Normal(0.0, 10.0))
    with dg.plate("data", N, subsample_size=batch) as idx:
        z = dg.sample("z", dist.Normal(mu, 1.0))
        dg.sample("y", dist.Normal(z, 0.5), obs=y[idx])


def sub_guide(y, batch):
    mu_loc = dg.param("mu_loc", 0.0)
    z_loc = dg.param("z_loc", np.zeros(N, dtype=np.float32))
    dg.sample("mu", dist.Normal(mu_loc, 0.1))
    with dg.plate("data", N, subsample_size=batch) as idx:
        dg.sample("z", dist.Normal(z_loc[idx], 0.1))


def test_an_autoguide_with_a_varying_subsample_size_is_a_spec_error(on):
    """NumPyro's autoguide keeps its first subsample size and silently scales the
    likelihood by the model's (a warning), Pyro's raises a ValueError: both raise one
    SpecError naming the plate and the fix."""
    svi = dg.infer.SVI(sub_model, dg.autoguides.AutoNormal(sub_model), 0.05, seed=0)
    assert np.isfinite(svi.step(YS, 10))
    assert np.isfinite(svi.step(YS, 10))
    with pytest.raises(SpecError, match=r"plate 'data': subsample_size=7 but the guide's plate"):
        svi.step(YS, 7)


def test_a_hand_written_guide_takes_a_varying_subsample_size(on):
    """The fix the error names: the guide's own dg.plate follows the model's size."""
    svi = dg.infer.SVI(sub_model, sub_guide, 0.05, seed=0)
    for batch in (10, 7, 20, 5, 10):
        assert np.isfinite(svi.step(YS, batch))
    assert svi.params["z_loc"].shape == (N,)
