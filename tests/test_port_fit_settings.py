"""The optimizer the original's SVI takes is written into the port's ``FIT_SETTINGS["optim"]``
(the ported ``dg.optim`` constructor, when its arguments are literals), so ``crosscheck``
and ``export`` of the ported file fit with the original's optimizer, not Adam(lr=0.01)."""

from __future__ import annotations

import argparse

import dualguide as dg
from dualguide._cli.crosscheck import _settings
from dualguide._files import load_file
from dualguide.porting.port import port

SRC = """
import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.infer import SVI, Trace_ELBO, TraceMeanField_ELBO
from numpyro.infer.autoguide import AutoNormal
from numpyro.optim import Adam, ClippedAdam

y = jnp.array([0.5, 1.0, 2.0])


def model(y):
    m = numpyro.sample("m", dist.Normal(0.0, 2.0))
    with numpyro.plate("n", y.shape[0]):
        numpyro.sample("y", dist.Normal(m, 0.5), obs=y)


guide = AutoNormal(model)

if __name__ == "__main__":
    OPTIM
    svi = SVI(model, guide, optimizer, LOSS)
    svi.run(jax.random.PRNGKey(0), 10, y)
"""


def _port(tmp_path, optim: str, loss: str = "Trace_ELBO()"):
    path = tmp_path / "fit.py"
    path.write_text(SRC.replace("OPTIM", optim).replace("LOSS", loss))
    out = tmp_path / "fit_neutral.py"
    r = port(path, out=out)
    assert r.verified, r.report()
    return r, load_file(str(out))


def _crosscheck_settings(mod) -> dict:
    ns = argparse.Namespace(file="f.py", steps=None, loss=None, particles=None, seed=None, lr=None)
    return _settings(mod, ns)


def test_the_original_optimizer_is_written_into_fit_settings(tmp_path):
    r, mod = _port(tmp_path, "optimizer = ClippedAdam(step_size=0.02, clip_norm=10.0)")
    assert 'FIT_SETTINGS = {"optim": dg.optim.ClippedAdam(lr=0.02, clip_norm=10.0)}' in r.source
    optim = _crosscheck_settings(mod)["optim"]
    assert (optim.name, optim.lr, optim.clip_norm) == ("ClippedAdam", 0.02, 10.0)


def test_with_a_loss_both_are_written(tmp_path):
    r, mod = _port(tmp_path, "optimizer = Adam(0.02)", "TraceMeanField_ELBO(num_particles=4)")
    settings = _crosscheck_settings(mod)
    assert settings["optim"] == dg.optim.Adam(lr=0.02)
    assert settings["loss"].name == "TraceMeanField_ELBO"


def test_a_schedule_is_not_written_and_noted(tmp_path):
    r, mod = _port(tmp_path, "optimizer = Adam(step_size=lambda i: 0.02 * 0.99**i)")
    assert "FIT_SETTINGS" not in r.source
    assert "FIT_SETTINGS['optim'] not written" in r.report()


def test_a_top_level_optimizer_is_named(tmp_path):
    path = tmp_path / "top.py"
    src = SRC.replace(
        "guide = AutoNormal(model)\n", "guide = AutoNormal(model)\noptimizer = Adam(0.03)\n"
    )
    path.write_text(src.replace("    OPTIM\n", "").replace("LOSS", "Trace_ELBO()"))
    r = port(path)
    assert 'FIT_SETTINGS = {"optim": optimizer}' in r.source
    assert r.verified, r.report()
