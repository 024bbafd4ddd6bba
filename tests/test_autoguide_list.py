"""AutoGuideList in the crosscheck and in save_params / load_params (issue 15, item 4).

NumPyro keeps each part's own param names (``auto_loc``, ``s_auto_loc``); Pyro names them by
position (``AutoGuideList.0.loc``, ``AutoGuideList.1.locs.s``).  The crosscheck compares
under NumPyro's names; load_params translates a file from either backend to the other.
"""

from __future__ import annotations

import numpy as np
import pytest

import dualguide as dg
from dualguide import constraints
from dualguide import distributions as dist

X = np.random.default_rng(0).normal(1.0, 0.5, size=30).astype(np.float32)


def model(x):
    mu = dg.sample("mu", dist.Normal(0.0, 5.0))
    dg.sample("t", dist.Normal(0.0, 1.0).expand([2]).to_event(1))  # no data: its prior
    s = dg.sample("s", dist.LogNormal(0.0, 1.0))
    with dg.plate("d", x.shape[0]):
        dg.sample("x", dist.Normal(mu, s), obs=x)


def make_guide():
    g = dg.autoguides.AutoGuideList(model)
    g.append(dg.autoguides.AutoDiagonalNormal(dg.handlers.block(model, expose=["mu", "t"])))
    g.append(dg.autoguides.AutoNormal(dg.handlers.block(model, expose=["s"])))
    return g


NAMES = {
    "numpyro": {"auto_loc", "auto_scale", "s_auto_loc", "s_auto_scale"},
    "pyro": {
        "AutoGuideList.0.loc",
        "AutoGuideList.0.scale",
        "AutoGuideList.1.locs.s",
        "AutoGuideList.1.scales.s",
    },
}
OTHER = {"numpyro": "pyro", "pyro": "numpyro"}


@pytest.mark.parametrize("source", ["numpyro", "pyro"])
def test_load_params_translates_an_autoguide_list(source, tmp_path):
    g = make_guide()
    r = dg.fit(model, g, backend=source, model_args=(X,), num_steps=20, progress=False)
    assert set(r.params) == NAMES[source]
    path = dg.save_params(tmp_path / "p.npz", r)
    target = OTHER[source]
    p = dg.load_params(path, guide=g, backend=target, model_args=(X,))
    assert set(p) == NAMES[target]
    # a renaming: the packed vector (mu, t) keeps its order, the values are the fit's
    loc = "auto_loc" if source == "numpyro" else "AutoGuideList.0.loc"
    other_loc = "auto_loc" if target == "numpyro" else "AutoGuideList.0.loc"
    np.testing.assert_array_equal(p[other_loc], r.params[loc])
    scales = [k for k in p if "scale" in k]
    assert all(p.info.constraints[k] == constraints.positive for k in scales)
    # and the loaded params start a fit on the other backend
    dg.fit(model, g, backend=target, model_args=(X,), num_steps=2, init_params=p, progress=False)
    # back on the source backend: the same file loads unchanged
    same = dg.load_params(path, guide=g, backend=source, model_args=(X,))
    assert set(same) == NAMES[source]


def test_crosscheck_an_autoguide_list():
    g = make_guide()
    rep = dg.crosscheck(
        model,
        g,
        (X,),
        optim=dg.optim.Adam(lr=0.05),
        num_steps=100,
        checks=("logdensity", "gradient"),
        reference=None,
        elbo_particles=200,
        doctor=False,
        progress=False,
    )
    # both fits compared under NumPyro's names (Pyro's translated part by part)
    assert {p.name for p in rep.params} == NAMES["numpyro"]
    assert all(set(p.values) == {"numpyro", "pyro"} for p in rep.params)
    assert rep.checks["logdensity"].status == "pass", rep.checks["logdensity"].summary
    assert rep.checks["gradient"].status == "pass", rep.checks["gradient"].summary
    # (the fits are short: their params are not judged here, their ELBOs are estimated)
    assert all(r.error is None and r.elbo is not None for r in rep.runs.values())
