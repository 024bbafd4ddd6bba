"""Porting native NumPyro / Pyro code into the neutral API (``dualguide port``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import dualguide as dg
from dualguide.porting.port import PortError, port

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def assert_neutral(text: str) -> None:
    for line in text.splitlines():
        if line.startswith(("import ", "from ")):
            assert line.split()[1].split(".")[0] not in ("numpyro", "jax", "pyro", "torch"), line


def test_numpyro_seed_guide_ports_without_edits(tmp_path):
    out = tmp_path / "guide_neutral.py"
    r = port(DATA / "numpyro_guide_nofactor.py", out=out)
    assert_neutral(r.source)
    assert r.framework == "numpyro"
    assert 'dg.param("sig1_q", 1.0, constraint=constraints.positive)' in r.source
    assert 'dg.sample("x", dist.Normal(0, sig1_q))' in r.source
    assert "optimizer = dg.optim.Adam(lr=0.01)" in r.source
    # traced on both backends, and on NumPyro identical to the original site by site
    assert r.verified, r.report()
    checked = {(v.function, v.backend) for v in r.verification}
    assert ("guide_nofactor", "pyro") in checked
    assert ("guide_nofactor", "numpyro vs original") in checked
    # NumPyro's SVI set-up and the __main__ block's svi.run port onto dg.infer.SVI
    assert (
        "svi = dg.infer.SVI(model_nofactor, guide_nofactor, optimizer, loss=dg.infer.Trace_ELBO())"
        in r.source
    )
    assert "svi_result = svi.run(dg.infer.PRNGKey(1), 5000)" in r.source
    # the ported file is a neutral program: it fits on both backends with dg.fit
    mod = load(out, "_ported_seed")
    for b in ("numpyro", "pyro"):
        fit = dg.fit(
            mod.model_nofactor,
            mod.guide_nofactor,
            backend=b,
            num_steps=50,
            num_particles=4,
            optim=mod.optimizer,
            progress=False,
        )
        assert set(fit.params) == {"sig1_q", "sig2_q"}
        assert fit.constraints["sig1_q"] == dg.constraints.positive
        assert np.all(np.isfinite(fit.losses))


def test_pyro_guide_ports(tmp_path):
    r = port(DATA / "pyro_guide.py")
    assert_neutral(r.source)
    assert r.framework == "pyro"
    src = r.source
    # param init conventions: torch tensors of literals become plain numbers and lists
    assert 'dg.param("loc_q", [-1.0, 0.0, 1.0])' in src
    assert 'dg.param("z_loc", ops.zeros((2, K)))' in src  # torch.zeros(2, K, requires_grad=True)
    assert "lambda: ops.full((K,), 0.5)" in src
    # torch math -> neutral ops, dim/keepdim kept as the neutral alias, methods -> ops
    assert "ops.sum(z, dim=-1, keepdims=False)" in src
    assert "ops.exp(log_scale_q)" in src and "ops.softplus(loc_q)" in src
    assert "ops.clip((z ** 2).sum(), max=100.0)" in src
    assert "ops.logsumexp(total, dim=0) + ops.pi" in src
    assert 'dg.factor("prior_on_z", -0.5 * (z**2).sum())' in src  # has_rsample=True dropped
    assert r.verified, r.report()
    mod = load_source(src, "_ported_pyro")
    assert mod.optim == dg.optim.ClippedAdam(lr=0.01, betas=(0.9, 0.999), lrd=0.999)


def load_source(src: str, name: str):
    import types

    mod = types.ModuleType(name)
    exec(compile(src, name, "exec"), mod.__dict__)
    return mod


def test_numpyro_conventions_port(tmp_path):
    f = tmp_path / "np_guide.py"
    f.write_text(
        "import jax.numpy as jnp\n"
        "import numpyro\n"
        "import numpyro.distributions as dist\n"
        "from numpyro.distributions import constraints\n"
        "from numpyro.optim import Adam\n"
        "\n"
        "\n"
        "def guide():\n"
        "    w = numpyro.param('w', lambda rng_key: jnp.ones(2) / 2, constraint=constraints.simplex)\n"
        "    loc = numpyro.param('loc', jnp.array([-1.0, 1.0]))\n"
        "    mix = dist.MixtureSameFamily(mixing_distribution=dist.Categorical(probs=w),\n"
        "                                 component_distribution=dist.Normal(loc, 1.0))\n"
        "    x = numpyro.sample('x', mix)\n"
        "    numpyro.deterministic('c', jnp.clip(x, -3.0, 3.0) * jnp.pi)\n"
        "\n"
        "\n"
        "opt = Adam(0.02, b1=0.8)\n"
    )
    r = port(f)
    src = r.source
    assert "dg.param('w', lambda: ops.ones(2) / 2, constraint=constraints.simplex)" in src
    assert "dg.param('loc', [-1.0, 1.0])" in src
    assert "mixture_distribution=dist.Categorical(probs=w)" in src  # NumPyro's keyword renamed
    assert "ops.clip(x, -3.0, 3.0) * ops.pi" in src
    assert "opt = dg.optim.Adam(lr=0.02, betas=(0.8, 0.999))" in src
    assert r.verified, r.report()


def test_unportable_numpyro_constructs_are_listed_with_lines():
    with pytest.raises(PortError) as e:
        port(DATA / "numpyro_unportable.py")
    lines = {ln: msg for _f, ln, msg in e.value.problems}
    assert set(lines) == {15, 16, 17, 18}  # line 13's handlers.scale ports to dg.handlers
    assert "jax.lax.fori_loop" in lines[15]
    assert "jax.random.normal" in lines[16]
    assert "numpyro.distributions.Gompertz" in lines[17]
    assert "sample_shape=" in lines[18]
    assert "numpyro_unportable.py:15: jax.lax.fori_loop has no neutral counterpart" in str(e.value)


def test_unportable_pyro_constructs(tmp_path):
    f = tmp_path / "bad_pyro.py"
    f.write_text(
        "import torch\n"
        "import pyro\n"
        "import pyro.distributions as dist\n"
        "from pyro import poutine\n"
        "\n"
        "\n"
        "def guide():\n"
        "    x = pyro.sample('x', dist.Normal(torch.zeros(4), 1.0).to_event(1))\n"
        "    y = x.view(2, 2)\n"
        "    with poutine.scale(scale=2.0):\n"
        "        pyro.sample('y', dist.Normal(0.0, 1.0))\n"
        "    with pyro.plate('p', 10, subsample=torch.arange(3)):\n"
        "        pyro.factor('f', y.sum(), has_rsample=False)\n"
        "    return torch.max(x, -1)\n"
    )
    with pytest.raises(PortError) as e:
        port(f)
    lines = {ln for _f, ln, _m in e.value.problems}
    assert lines == {9, 12, 13, 14}  # line 10's poutine.scale ports to dg.handlers.scale


def test_cli_port(tmp_path, capsys):
    from dualguide.cli import main

    out = tmp_path / "ported.py"
    assert main(["port", str(DATA / "numpyro_guide_nofactor.py"), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "verified: yes" in err and out.exists()
    assert main(["port", str(DATA / "numpyro_unportable.py"), "--no-verify"]) == 1
    err = capsys.readouterr().err
    assert "numpyro_unportable.py:17: numpyro.distributions.Gompertz" in err


def test_export_then_port_round_trip(tmp_path):
    """A NumPyro export of the seed example ports back to a neutral program that verifies."""
    exported = tmp_path / "seed_numpyro.py"
    dg.export(ROOT / "examples" / "seed_gaussian.py", backend="numpyro", out=exported)
    r = port(exported)
    assert 'dg.param("sig1_q", 1.0, constraint=constraints.positive)' in r.source
    assert r.verified, r.report()
    notes = " ".join(m for _l, m in r.notes)
    assert "generated helpers and fitting code are dropped" in notes  # (an export: issue 12)


CLASHING_NAMES = """
import pyro, pyro.distributions as dist, torch

def model():
    with pyro.plate("y", 3):
        pyro.sample("y", dist.Normal(0.0, 1.0))
"""


def test_a_model_that_cannot_run_reports_the_originals_error(tmp_path):
    """A model whose plate and sample site share a name cannot run, the original neither: the
    report said only "(RuntimeError); e.g. a model with improper priors", hiding the real
    reason (found porting a Pyro program).  It quotes the original's error now."""
    path = tmp_path / "clash.py"
    path.write_text(CLASHING_NAMES)
    text = port(path).report()
    assert "not traced: cannot run standalone, like the original" in text
    assert "Multiple sample sites named 'y'" in text
