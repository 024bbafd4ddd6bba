"""A port that drops the model or guide the original fits (here a reparam config with
TransformReparam, which has no neutral counterpart, takes the reparameterized model, the
autoguide over it and the __main__ block with it) is a partial port: the report says what was
dropped, it is not verified, and ``dualguide port`` exits with status 1."""

from __future__ import annotations

from dualguide.cli import main
from dualguide.porting.port import port

SRC = """
import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import transforms
from numpyro.handlers import reparam
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal
from numpyro.infer.reparam import TransformReparam
from numpyro.optim import Adam

y = jnp.array([0.5, 1.0, 2.0])


def model(y):
    eta = numpyro.sample(
        "eta",
        dist.TransformedDistribution(dist.Normal(0.0, 1.0), transforms.AffineTransform(0.0, 2.0)),
    )
    with numpyro.plate("n", y.shape[0]):
        numpyro.sample("y", dist.Normal(eta, 0.5), obs=y)


reparam_model = reparam(model, config={"eta": TransformReparam()})
guide = AutoNormal(reparam_model)

if __name__ == "__main__":
    svi = SVI(reparam_model, guide, Adam(0.02), Trace_ELBO())
    svi.run(jax.random.PRNGKey(0), 10, y)
"""


def test_a_port_that_drops_the_fitted_model_and_guide_is_partial(tmp_path):
    path = tmp_path / "partial.py"
    path.write_text(SRC)
    r = port(path)
    assert [name for _ln, name in r.dropped] == ["reparam_model", "guide"]
    assert r.traced == ["model"] and not r.verified
    text = r.report()
    assert "PARTIAL port: dropped what the original fits" in text
    lines = SRC.splitlines()
    at = [lines.index(ln) + 1 for ln in lines if ln.startswith(("reparam_model =", "guide ="))]
    assert f"reparam_model (line {at[0]}), guide (line {at[1]})" in text
    assert text.rstrip().endswith("verified: NO (a partial port; traced and matching: model)")
    assert main(["port", str(path), "-o", str(tmp_path / "out.py")]) == 1
    assert main(["port", str(path), "--no-verify"]) == 1


def test_a_complete_port_drops_nothing(tmp_path):
    path = tmp_path / "complete.py"
    path.write_text(
        SRC.replace('reparam_model = reparam(model, config={"eta": TransformReparam()})\n', "")
        .replace("reparam_model", "model")
        .replace("from numpyro.infer.reparam import TransformReparam\n", "")
    )
    r = port(path)
    assert r.dropped == [] and r.verified, r.report()
