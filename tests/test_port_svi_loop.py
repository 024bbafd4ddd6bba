"""The issue's acceptance test: a Pyro program with its own SVI loop, `condition` and
`Predictive` ports with `dualguide port`, runs on both backends, and matches the original."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dualguide as dg
from dualguide.porting.port import port

DATA = Path(__file__).resolve().parent / "data"
Y = np.array([0.5, 1.0, 2.0])
PREC = 1 / 4 + 3 / 0.25
MEAN = (1.0 / 4 + Y.sum() / 0.25) / PREC


def run_as_main(src: str, name: str) -> dict:
    namespace = {"__name__": "__main__"}
    exec(compile(src, name, "exec"), namespace)
    return namespace["RESULT"]


def test_pyro_svi_loop_ports_and_matches_the_original(backend_state, capsys):
    path = DATA / "pyro_svi_loop.py"
    r = port(path)
    assert r.verified, r.report()
    src = r.source
    assert "raw = np.array([0.5, 1.0, 2.0])" in src  # plain code is kept as it was
    assert 'conditioned = dg.handlers.condition(model, data={"y": data})' in src
    assert "svi = dg.infer.SVI(conditioned, guide, optim, loss=dg.infer.Trace_ELBO(" in src
    assert "dg.infer.Predictive(model, guide=guide, num_samples=400)" in src
    assert "dg.clear_param_store()" in src and "dg.set_rng_seed(0)" in src
    original = run_as_main(path.read_text(), "original")
    ported = {}
    for b in ("numpyro", "pyro"):
        dg.set_backend(b)
        ported[b] = run_as_main(src, f"ported_{b}")
    dg.clear_param_store()
    assert "step 300" in capsys.readouterr().out
    # each run reaches the exact posterior (8 particles, lr decayed to 0.05 * 0.99**400 = 0.001:
    # about 0.01 of noise) and the posterior predictive mean (400 draws: 0.027 standard error)
    for res in (original, *ported.values()):
        assert res["m"] == pytest.approx(MEAN, abs=0.05)
        assert res["s"] == pytest.approx(PREC**-0.5, abs=0.04)
        assert np.all(np.abs(res["y_mean"] - MEAN) < 0.05 + 4 * 0.027)
    for res in ported.values():  # and so matches the original within those errors
        assert res["m"] == pytest.approx(original["m"], abs=0.1)


def test_numpyro_functional_svi_loop_ports_and_matches_the_original(backend_state, capsys):
    """NumPyro's functional loop (svi.init, a jitted svi.update in a Python loop, lax.scan and
    lax.fori_loop over svi.update, svi.get_params, svi.run's .params / .losses) ports onto
    dg.infer.SVI, runs on both backends, and reaches what the original reaches."""
    path = DATA / "numpyro_svi_loop.py"
    r = port(path)
    assert r.verified, r.report()
    src = r.source
    assert "raw = np.array([0.5, 1.0, 2.0])" in src  # plain code is kept as it was
    assert "svi = dg.infer.SVI(model, guide, optim, loss=dg.infer.Trace_ELBO(" in src
    assert "state = svi.init(dg.infer.PRNGKey(0), data)" in src
    assert "dg.infer.scan(body, state, None, length=200)" in src
    assert "dg.infer.fori_loop(0, 100," in src
    assert "svi.run(dg.infer.PRNGKey(1), 500, data, progress_bar=False)" in src
    original = run_as_main(path.read_text(), "original")
    ported = {}
    for b in ("numpyro", "pyro"):
        dg.set_backend(b)
        dg.clear_param_store()
        ported[b] = run_as_main(src, f"ported_{b}")
    dg.clear_param_store()
    assert "step 100" in capsys.readouterr().out
    # on NumPyro the port draws the original's keys (init restarts from the init values and
    # takes the seed as NumPyro's PRNGKey): the same numbers, step for step
    for k in ("m", "s", "run_m", "run_s"):
        assert ported["numpyro"][k] == pytest.approx(original[k], abs=1e-5), k
    for k in ("scan_losses", "run_losses"):
        np.testing.assert_allclose(ported["numpyro"][k], original[k], rtol=1e-4, atol=1e-4)
    # every run reaches the exact posterior: Adam at a constant lr 0.02 with 8 particles
    # jitters m by about 0.04 at the optimum (measured over seeds); 0.12 is 3x that
    for res in (original, *ported.values()):
        for m, s in ((res["m"], res["s"]), (res["run_m"], res["run_s"])):
            assert m == pytest.approx(MEAN, abs=0.12)
            assert s == pytest.approx(PREC**-0.5, abs=0.05)
        assert res["scan_losses"].shape == (200,) and res["run_losses"].shape == (500,)
    # Pyro's draws differ: the mean loss of the last scanned steps is the same estimator at
    # the same optimum (the -ELBO is ~5.0 there, its 100-step mean has sd ~0.1)
    assert ported["pyro"]["scan_losses"][-100:].mean() == pytest.approx(
        original["scan_losses"][-100:].mean(), abs=0.5
    )


PYRO_HOST = """
import pyro, pyro.distributions as dist, torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoNormal
from pyro.optim import Adam

def model():
    pyro.sample("x", dist.Normal(0.0, 1.0))

def guide():
    m = pyro.param("m", torch.tensor(0.5))
    pyro.sample("x", dist.Normal(m, 1.0))

auto = AutoNormal(model)

if __name__ == "__main__":
    svi = SVI(model, guide, Adam({"lr": 1e-30}), Trace_ELBO())
    svi.step()
    RESULT = {"m": float(pyro.param("m").data.numpy()), "item": pyro.param("m").item()}
"""


def test_pyro_param_data_in_host_code_is_the_value(tmp_path, backend_state):
    """``pyro.param("m").data.numpy()`` (found porting Pyro programs): the ported code read
    ``dg.param("m").data``, which jax arrays lack, and crashed although the port verified."""
    path = tmp_path / "host.py"
    path.write_text(PYRO_HOST)
    src = port(path).source
    assert ".data" not in src.split("__main__")[1]
    for b in ("numpyro", "pyro"):
        dg.set_backend(b)
        res = run_as_main(src, f"ported_{b}")
        assert res == {"m": 0.5, "item": pytest.approx(0.5)}  # lr 1e-30: the init value
    dg.clear_param_store()


def test_pyro_autoguide_median_of_model_args_is_refused_with_the_fix(tmp_path):
    """Pyro's ``guide.median(*model_args)`` reads the param store; the neutral one takes the
    params: the call was copied unchanged and failed when run, although the port verified."""
    from dualguide.porting.port import PortError

    path = tmp_path / "median.py"
    path.write_text(PYRO_HOST + "    print(auto.median())\n")
    with pytest.raises(PortError, match=r"auto\.median\(params, model_args=\(\.\.\.\)\)"):
        port(path)


def test_optimizer_note_names_the_optimizer_not_the_function_around_it(tmp_path):
    """An optimizer built inline inside a function: the note named the function ("optim=run");
    one bound by its own assignment is named by that name."""
    path = tmp_path / "opt.py"
    path.write_text(
        PYRO_HOST.split("auto = ")[0]
        + "def run():\n    return SVI(model, guide, Adam({'lr': 0.01}), Trace_ELBO())\n"
        + "opt = pyro.optim.ClippedAdam({'lr': 0.01})\n"
    )
    notes = [n for _, n in port(path).notes if "optimizer" in n]
    assert notes == [
        "ported the optimizer: fit with dg.fit(model, guide, optim=dg.optim.Adam(...))",
        "ported the optimizer: fit with dg.fit(model, guide, optim=opt)",
    ]
