"""Autoguide methods in host code: a neutral autoguide fitted or run with model arguments keeps
them, so ``median(params)``, ``quantiles``, ``sample_posterior`` and ``get_posterior`` (NumPyro's
spellings, which a port keeps) work without ``model_args=``; a guide never run asks for them
with a SpecError."""

from __future__ import annotations

import numpy as np
import pytest

import dualguide as dg
from dualguide import distributions as dist
from dualguide.errors import SpecError
from dualguide.porting.port import PortError, port

Y = np.array([0.5, 1.0, 2.0], dtype=np.float32)


def model(y):
    m = dg.sample("m", dist.Normal(0.0, 2.0))
    with dg.plate("n", y.shape[0]):
        dg.sample("y", dist.Normal(m, 0.5), obs=y)


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_fitted_autoguide_methods_default_to_the_fit_s_model_args(backend, backend_state):
    guide = dg.autoguides.AutoLaplaceApproximation(model)
    r = dg.fit(model, guide, model_args=(Y,), backend=backend, num_steps=300, optim=0.05)
    med = guide.median(r.params)
    assert float(med["m"]) == pytest.approx(float(guide.median(r.params, model_args=(Y,))["m"]))
    q = guide.quantiles(r.params, [0.25, 0.75])
    assert q["m"].shape == (2,)
    d = guide.sample_posterior(0, r.params, sample_shape=(5,))
    assert d["m"].shape == (5,)
    post = guide.get_posterior(r.params)
    assert post.loc.shape == (1,) and post.covariance_matrix.shape == (1, 1)
    assert post["loc"] is post.loc
    with pytest.raises(AttributeError, match="not a distribution"):
        post.sample  # noqa: B018
    # explicit model_args win: a model of 30 observations has a narrower posterior
    q30 = guide.quantiles(r.params, [0.25, 0.75], model_args=(np.repeat(Y, 10),))
    assert float(q30["m"][1] - q30["m"][0]) < 0.5 * float(q["m"][1] - q["m"][0])


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_svi_run_autoguide_methods_default_to_the_run_s_model_args(backend, backend_state):
    guide = dg.autoguides.AutoNormal(model)
    dg.clear_param_store()
    svi = dg.infer.SVI(model, guide, dg.optim.Adam(lr=0.05), backend=backend)
    res = svi.run(dg.infer.PRNGKey(0), 200, Y, progress_bar=False)
    assert set(guide.median(res.params)) == {"m"}
    assert guide.quantiles(res.params, [0.5])["m"].shape == (1,)
    dg.clear_param_store()


def test_a_guide_never_run_asks_for_model_args():
    guide = dg.autoguides.AutoNormal(model)
    params = {"m_auto_loc": 0.0, "m_auto_scale": 1.0}
    for call, name in (
        (lambda: guide.median(params), "median"),
        (lambda: guide.quantiles(params, [0.5]), "quantiles"),
        (lambda: guide.sample_posterior(0, params), "sample_posterior"),
    ):
        with pytest.raises(SpecError, match=rf"AutoNormal\.{name}: .*model_args="):
            call()
    assert set(guide.median(params, model_args=(Y,))) == {"m"}


NUMPYRO_LAPLACE = """
import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoLaplaceApproximation
from numpyro.optim import Adam

X = jnp.array([[1.0, -1.0], [1.0, 0.0], [1.0, 0.5], [1.0, 1.5]])
y = jnp.array([-0.9, 1.1, 1.8, 3.9])


def model(X, y=None):
    w = numpyro.sample("w", dist.Normal(jnp.zeros(2), 2.0).to_event(1))
    with numpyro.plate("n", X.shape[0]):
        numpyro.sample("y", dist.Normal(X @ w, 0.5), obs=y)


guide = AutoLaplaceApproximation(model)

if __name__ == "__main__":
    svi = SVI(model, guide, Adam(0.05), Trace_ELBO())
    res = svi.run(jax.random.PRNGKey(0), 300, X, y, progress_bar=False)
    post = guide.get_posterior(res.params)
    draws = guide.sample_posterior(jax.random.PRNGKey(1), res.params, sample_shape=(7,))
    RESULT = {"loc": post.loc, "cov": post.covariance_matrix, "draws": draws["w"],
              "median": guide.median(res.params)["w"], "auto_loc": res.params["auto_loc"]}
"""


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_ported_autoguide_host_code_runs(tmp_path, backend, backend_state):
    path = tmp_path / "laplace.py"
    path.write_text(NUMPYRO_LAPLACE)
    r = port(path)
    assert r.verified, r.report()
    # NumPyro's param names read through the guide's translate (Pyro names them its way)
    assert 'guide.translate(res.params, to="numpyro")["auto_loc"]' in r.source
    assert "not a distribution" in r.report()  # get_posterior's dict, noted
    dg.set_backend(backend)
    dg.clear_param_store()
    namespace = {"__name__": "__main__"}
    exec(compile(r.source, "ported", "exec"), namespace)
    dg.clear_param_store()
    res = namespace["RESULT"]
    assert np.shape(res["loc"]) == (2,) and np.shape(res["cov"]) == (2, 2)
    assert np.shape(res["draws"]) == (7, 2)
    np.testing.assert_allclose(res["median"], res["loc"], atol=1e-5)
    np.testing.assert_allclose(res["auto_loc"], res["loc"], atol=1e-5)


def test_port_refuses_autoguide_methods_the_neutral_guide_lacks(tmp_path):
    path = tmp_path / "base.py"
    path.write_text(
        NUMPYRO_LAPLACE.replace("AutoLaplaceApproximation", "AutoNormal").replace(
            "post = guide.get_posterior(res.params)", "post = guide.get_base_dist()"
        )
    )
    with pytest.raises(PortError, match="the neutral AutoNormal has no get_base_dist"):
        port(path)
