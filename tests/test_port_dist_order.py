"""A distribution whose framework's positional order is not the neutral one is ported by
keyword (NumPyro's ``ZeroInflatedPoisson(gate, rate)``; the neutral order is Pyro's
``(rate, gate=...)``), and the verification compares distributions by what they are
(NumPyro's ZeroInflatedPoisson is the ZeroInflatedProbs dualguide builds)."""

from __future__ import annotations

import inspect

import numpyro.distributions as nd
import pyro.distributions as pd
import pytest

from dualguide import _table
from dualguide.porting._verify import Verification
from dualguide.porting.port import PortResult, port


def _positional(obj) -> list[str]:
    f = obj.__init__ if inspect.isclass(obj) else obj
    sig = inspect.signature(f)
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind in kinds]


@pytest.mark.parametrize("framework", ["numpyro", "pyro"])
def test_table_positional_orders_are_the_frameworks(framework):
    """Every row's neutral order (or its ``native_args``) is the framework's own positional
    order, so a port may copy positional arguments exactly where the table says so."""
    mod = nd if framework == "numpyro" else pd
    wrong = []
    for name, spec in _table.DISTRIBUTIONS.items():
        cls = getattr(mod, getattr(spec, framework), None)
        if cls is None or not spec.args:
            continue
        try:
            native = _positional(cls)
        except (TypeError, ValueError):
            continue
        rename = spec.rename if framework == "numpyro" else {}
        want = spec.native_args.get(framework) or tuple(rename.get(a, a) for a in spec.args)
        n = min(len(native), len(want))
        if native[:n] != list(want[:n]):
            wrong.append(f"{name}: {framework} {native[:n]}, table {list(want[:n])}")
    assert not wrong, wrong


ZIP = """
import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoDelta
from numpyro.optim import Adam

x = jnp.array([0.0, 0.5, 1.0, 1.5])
counts = jnp.array([0.0, 2.0, 0.0, 4.0])


def model(x, counts=None):
    b = numpyro.sample("b", dist.Normal(0.0, 1.0))
    gate = numpyro.sample("gate", dist.Beta(1.0, 1.0))
    with numpyro.plate("n", x.shape[0]):
        numpyro.sample("counts", dist.ZeroInflatedPoisson(CALL), obs=counts)


guide = AutoDelta(model)

if __name__ == "__main__":
    svi = SVI(model, guide, Adam(0.05), Trace_ELBO())
    svi.run(jax.random.PRNGKey(0), 10, x, counts)
"""


def test_numpyro_positional_zero_inflated_poisson_is_ported_by_keyword(tmp_path):
    path = tmp_path / "zip.py"
    path.write_text(ZIP.replace("CALL", "gate, jnp.exp(b * x)"))
    r = port(path)
    assert "dist.ZeroInflatedPoisson(gate=gate, rate=ops.exp(b * x))" in r.source
    assert r.verified, r.report()


def test_zero_inflated_poisson_by_keyword_verifies(tmp_path):
    path = tmp_path / "zip_kw.py"
    path.write_text(ZIP.replace("CALL", "gate=gate, rate=jnp.exp(b * x)"))
    r = port(path)
    assert r.verified, r.report()


def test_same_dist_reads_the_alias_table():
    assert _table.same_dist("ZeroInflatedPoisson", "ZeroInflatedProbs")
    assert _table.same_dist("BernoulliLogits", "Bernoulli")
    assert not _table.same_dist("ZeroInflatedPoisson", "Poisson")
    assert not _table.same_dist("Normal", "Cauchy")


def test_report_gives_the_reason_of_a_failed_verification():
    failed = Verification(
        "model", "numpyro vs original", False, ["x"], "site 'x': value differs (1.0 vs 2.0)"
    )
    r = PortResult("", "numpyro", "f.py", functions=["model"], verification=[failed])
    text = r.report()
    assert "FAILED" in text and "site 'x': value differs (1.0 vs 2.0)" in text
    assert text.rstrip().endswith("verified: NO")


def test_crosscheck_of_a_zero_inflated_poisson_sees_one_distribution(backend_state):
    """dualguide's ZeroInflatedPoisson is a ZeroInflatedProbs on NumPyro and Pyro's own class on
    Pyro: crosscheck's structure check compares them through the table (a false FAIL before)."""
    import numpy as np

    import dualguide as dg
    from dualguide import distributions as dist

    x = np.array([0.0, 0.5, 1.0, 1.5], dtype=np.float32)
    counts = np.array([0.0, 2.0, 0.0, 4.0], dtype=np.float32)

    def model(x, counts):
        b = dg.sample("b", dist.Normal(0.0, 1.0))
        with dg.plate("n", x.shape[0]):
            dg.sample("counts", dist.ZeroInflatedPoisson(dg.ops.exp(b * x), gate=0.3), obs=counts)

    guide = dg.autoguides.AutoDelta(model)
    rep = dg.crosscheck(
        model, guide, (x, counts), num_steps=20, elbo_particles=100, checks=("logdensity",)
    )
    text = str(rep)
    assert "ZeroInflatedProbs in numpyro" not in text, text


NEUTRAL_ZIP = """import dualguide as dg
from dualguide import constraints
from dualguide import distributions as dist


def model():
    r = dg.sample("r", dist.Gamma(2.0, 1.0))
    dg.sample("d", dist.ZeroInflatedPoisson(r, gate=0.3), obs=0.0)


def guide():
    dg.sample("r", dist.Gamma(dg.param("a", 2.0, constraint=constraints.positive), 1.0))
"""


def test_an_export_s_inlined_zero_inflated_poisson_ports_back_in_the_neutral_order(tmp_path):
    """The NumPyro export inlines a ZeroInflatedPoisson class in the neutral (Pyro) order: its
    positional rate is not NumPyro's gate."""
    import dualguide as dg

    src = tmp_path / "zip_neutral.py"
    src.write_text(NEUTRAL_ZIP)
    dg.export(src, backend="numpyro", out=tmp_path / "zip_numpyro.py")
    r = port(tmp_path / "zip_numpyro.py")
    assert "dist.ZeroInflatedPoisson(r, gate=0.3)" in r.source
    assert r.verified, r.report()
