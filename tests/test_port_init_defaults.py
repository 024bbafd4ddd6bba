"""A ported autoguide without ``init_loc_fn`` starts where the original does: the port writes
the framework's own default (NumPyro: init_to_median for AutoDelta, init_to_uniform for the
others; Pyro: init_to_feasible for AutoNormal, init_to_median for AutoDelta and the packed
guides), not dualguide's default "feasible"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dualguide as dg
from dualguide._files import load_file
from dualguide.porting.port import port

DATA = Path(__file__).parent / "data" / "port_init"


def _ported(name: str, tmp_path: Path):
    out = tmp_path / name.replace(".py", "_neutral.py")
    result = port(DATA / name, out=out)
    assert result.verified, result.report()
    return result.source, load_file(str(DATA / name)), load_file(str(out))


def _neutral_init(mod, guide: str, backend: str) -> dict[str, np.ndarray]:
    """The ported program's params after ``svi.init`` with key 0 (its own SVI spelling)."""
    dg.clear_param_store()
    svi = dg.infer.SVI(
        mod.model,
        getattr(mod, guide),
        dg.optim.Adam(lr=0.01),
        dg.infer.Trace_ELBO(),
        backend=backend,
    )
    return svi.get_params(svi.init(dg.infer.PRNGKey(0), mod.Y))


@pytest.fixture(scope="module")
def numpyro_port(tmp_path_factory):
    return _ported("numpyro_autoguides.py", tmp_path_factory.mktemp("np"))


@pytest.fixture(scope="module")
def pyro_port(tmp_path_factory):
    return _ported("pyro_autoguides.py", tmp_path_factory.mktemp("py"))


def test_numpyro_defaults_are_written_out(numpyro_port):
    src, _orig, _mod = numpyro_port
    assert "guide = dg.autoguides.AutoDelta(model, init_loc_fn='median')" in src
    assert "guide_n = dg.autoguides.AutoNormal(model, init_loc_fn='uniform')" in src


@pytest.mark.parametrize("guide", ["guide", "guide_n"])
def test_numpyro_port_starts_at_the_originals_params(numpyro_port, guide):
    import jax
    import numpyro
    from numpyro.infer import SVI, Trace_ELBO

    _src, orig, mod = numpyro_port
    svi = SVI(orig.model, getattr(orig, guide), numpyro.optim.Adam(0.01), Trace_ELBO())
    want = svi.get_params(svi.init(jax.random.PRNGKey(0), orig.Y))
    got = _neutral_init(mod, guide, "numpyro")
    assert sorted(got) == sorted(want)
    for k in want:  # the same native autoguide, init strategy and key: the same numbers
        np.testing.assert_array_equal(got[k], np.asarray(want[k]), err_msg=k)
    if guide == "guide":  # init_to_median of the prior Normal(3, 0.5), not feasible's 0
        assert abs(float(got["mu_auto_loc"]) - 3.0) < 0.5


def test_pyro_defaults_are_written_out(pyro_port):
    src, _orig, _mod = pyro_port
    assert "guide = dg.autoguides.AutoDelta(model, init_loc_fn='median')" in src
    assert "guide_n = dg.autoguides.AutoNormal(model)\n" in src  # Pyro's is init_to_feasible
    assert "guide_d = dg.autoguides.AutoDiagonalNormal(model, init_loc_fn='median')" in src


@pytest.mark.parametrize("guide", ["guide", "guide_n", "guide_d"])
def test_pyro_port_starts_at_the_originals_params(pyro_port, guide):
    import pyro

    _src, orig, mod = pyro_port
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    getattr(orig, guide)(orig.Y)
    want = {k: v.detach().numpy().copy() for k, v in pyro.get_param_store().items()}
    got = _neutral_init(mod, guide, "pyro")
    assert sorted(got) == sorted(want)
    for k in want:  # the same torch seed and init strategy: the same draws
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_an_explicit_init_loc_fn_is_kept(tmp_path):
    src = (DATA / "numpyro_autoguides.py").read_text()
    src = src.replace("AutoNormal(model)", "AutoNormal(model, init_loc_fn=init_to_median)")
    src = src.replace(
        "import AutoDelta, AutoNormal", "import AutoDelta, AutoNormal, init_to_median"
    )
    (tmp_path / "p.py").write_text(src)
    out = port(tmp_path / "p.py", verify=False).source
    assert "AutoNormal(model, init_loc_fn='median')" in out and "'uniform'" not in out
