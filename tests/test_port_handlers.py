"""`dualguide port` turns native effect handlers into dg.handlers; the port runs on both backends."""

from __future__ import annotations

import math
import types
from pathlib import Path

import numpy as np
import pytest

import dualguide as dg
from dualguide.porting.port import port

DATA = Path(__file__).resolve().parent / "data"
Y = np.array([0.5, 1.0, 2.0], dtype=np.float32)


def lognormal(x, loc, scale):
    return -0.5 * ((x - loc) / scale) ** 2 - math.log(scale) - 0.5 * math.log(2 * math.pi)


@pytest.mark.parametrize("name", ["pyro_handlers", "numpyro_handlers"])
def test_handlers_port_and_run_on_both_backends(name, backend_state):
    r = port(DATA / f"{name}.py")
    assert r.verified, r.report()
    src = r.source
    assert "dg.handlers.scale(scale=2.0)" in src
    assert '@dg.handlers.reparam(config={"z": dg.reparam.LocScaleReparam(centered=0.0)})' in src
    assert "conditioned = dg.handlers.condition(model, data=" in src
    mod = types.ModuleType(f"_ported_{name}")
    exec(compile(src, name, "exec"), mod.__dict__)
    # x conditioned to 0.25, y's density scaled by 2: exact on both backends
    want = lognormal(0.25, 1.0, 2.0) + 2 * sum(lognormal(v, 0.25, 0.5) for v in Y)
    for b in ("numpyro", "pyro"):
        with dg.use_backend(b):
            tr = dg.handlers.trace(mod.conditioned).get_trace(Y)
            assert tr.log_prob_sum() == pytest.approx(want, abs=1e-4)
            assert sorted(dg.handlers.trace(mod.noncentered).get_trace()) == ["z", "z_decentered"]


def test_pyro_top_level_condition_and_do_port(tmp_path):
    # pyro re-exports poutine's condition and do at its top level (pyro.condition, pyro.do)
    src = tmp_path / "top_level.py"
    src.write_text(
        "import torch\nimport pyro\nimport pyro.distributions as dist\n\n\n"
        "def model():\n"
        '    x = pyro.sample("x", dist.Normal(1.0, 2.0))\n'
        '    pyro.sample("y", dist.Normal(x, 0.5))\n\n\n'
        'conditioned = pyro.condition(model, data={"y": torch.tensor(0.5)})\n'
        'intervened = pyro.do(model, data={"x": torch.tensor(0.25)})\n',
        encoding="utf-8",
    )
    r = port(src)
    assert r.verified, r.report()
    assert "conditioned = dg.handlers.condition(model, data=" in r.source
    assert "intervened = dg.handlers.do(model, data=" in r.source
    mod = types.ModuleType("_ported_top_level")
    exec(compile(r.source, "top_level", "exec"), mod.__dict__)
    for b in ("numpyro", "pyro"):
        with dg.use_backend(b):
            tr = dg.handlers.trace(mod.conditioned).get_trace()
            assert tr["y"].is_observed and float(tr["y"].value) == pytest.approx(0.5)
