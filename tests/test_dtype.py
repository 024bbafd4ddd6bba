"""float64: one switch (dg.set_dtype / dg.use_dtype / fit(dtype=) / $DUALGUIDE_DTYPE) on both backends.

float32 stays the default; every test that switches takes ``backend_state`` (``_state.preserved``
restores the dtype and the frameworks' settings).  Exact answers are compared to 1e-12, which
float32 (6e-8 relative) could not meet, so a test passing here really ran in float64.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dualguide as dg
from dualguide import _state, constraints
from dualguide import distributions as dist
from dualguide.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]


def model():
    dg.sample("x", dist.Normal(0.0, 2.0))
    dg.sample("y", dist.Normal(1.0, 0.5))


def guide():
    s = dg.param("s", 1.0, constraint=constraints.positive)
    m = dg.param("m", 0.0)
    dg.sample("x", dist.Normal(0.0, s))
    dg.sample("y", dist.Normal(m, 0.3))


def _framework_dtypes():
    import jax
    import torch

    return bool(jax.config.jax_enable_x64), torch.get_default_dtype()


def test_float32_is_the_default(backend):
    r = dg.fit(model, guide, backend=backend, num_steps=3)
    assert dg.get_dtype() == "float32"
    assert r.params["s"].dtype == np.float32 and r.losses.dtype == np.float32


def test_fit_and_log_prob_in_float64(backend, backend_state):
    dg.set_dtype("float64")
    r = dg.fit(model, guide, backend=backend, num_steps=20, num_particles=4)
    assert all(v.dtype == np.float64 for v in r.params.values()) and r.losses.dtype == np.float64

    def observed():
        dg.sample("z", dist.Normal(0.1, 0.3), obs=np.float64(0.7))
        dg.sample("w", dist.Normal(np.float64(0.1), 0.3), obs=0.7)

    s = dg.trace(observed, backend=backend)
    exact = -0.5 * (0.6 / 0.3) ** 2 - math.log(0.3) - 0.5 * math.log(2 * math.pi)
    for k in ("z", "w"):
        assert s[k].value.dtype == np.float64 and s[k].log_prob.dtype == np.float64
        assert abs(float(s[k].log_prob) - exact) < 1e-12  # float32 would be off by ~1e-7
    p = dg.trace(lambda: dg.param("p", [1, 2]), backend=backend)["p"]
    assert p.value.dtype == np.float64


def test_lockstep_agrees_to_1e_12_in_float64(backend_state):
    # the same noise and the same Adam on both backends: in float64 the trajectories agree to
    # float64 rounding (seen: 8e-17); in float32 they part at ~1e-7 (seen: 5e-8)
    with dg.use_dtype("float64"):
        r = dg.crosscheck.lockstep(model, guide, num_steps=50)
    assert r.status == "pass"
    assert r.details["max_param_dev"] < 1e-12 and r.details["max_loss_dev"] < 1e-12
    r32 = dg.crosscheck.lockstep(model, guide, num_steps=50)
    assert r32.status == "pass" and r32.details["max_param_dev"] > 1e-12


def test_use_dtype_and_fit_dtype_restore(backend, backend_state):
    dg.fit(model, guide, backend=backend, num_steps=2)  # the backend is loaded
    before = _framework_dtypes()
    with dg.use_dtype("float64") as dt:
        assert dt == "float64" and dg.get_dtype() == "float64"
        import torch

        assert _framework_dtypes() == (True, torch.float64)
    assert dg.get_dtype() == "float32" and _framework_dtypes() == before
    r = dg.fit(model, guide, backend=backend, num_steps=2, dtype="float64")
    assert r.params["s"].dtype == np.float64
    assert dg.get_dtype() == "float32" and _framework_dtypes() == before


def test_preserved_restores_a_set_dtype(backend):
    dg.fit(model, guide, backend=backend, num_steps=2)
    before = _framework_dtypes()
    with _state.preserved():
        dg.set_dtype("float64")
        assert _framework_dtypes()[0] is True
    assert dg.get_dtype() == "float32" and _framework_dtypes() == before


@pytest.mark.parametrize("bad", ["float16", "int32", "double"])
def test_an_unknown_dtype_is_refused(bad):
    with pytest.raises(SpecError) as ei:
        dg.set_dtype(bad)
    assert str(ei.value).startswith(f"dtype {bad!r} is not supported: choose 'float32'")
    with pytest.raises(SpecError, match="is not supported"):
        dg.fit(model, guide, num_steps=2, dtype=bad)
    assert dg.get_dtype() == "float32"


def test_the_environment_variable():
    code = (
        "import dualguide as dg, numpy as np\n"
        "from dualguide import distributions as dist\n"
        "def m():\n"
        "    dg.sample('x', dist.Normal(0.0, 1.0), obs=0.5)\n"
        "for b in ('numpyro', 'pyro'):\n"
        "    s = dg.trace(m, backend=b)['x']\n"
        "    print(dg.get_dtype(), s.value.dtype, s.log_prob.dtype)\n"
    )
    env = dict(os.environ, DUALGUIDE_DTYPE="float64", PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["float64 float64 float64"] * 2


def test_autoguide_and_check_in_float64(backend, backend_state):
    with dg.use_dtype("float64"):
        g = dg.autoguides.AutoNormal(model)
        r = dg.fit(model, g, backend=backend, num_steps=5)
        assert all(v.dtype == np.float64 for v in r.params.values())
        other = "pyro" if backend == "numpyro" else "numpyro"
        assert all(v.dtype == np.float64 for v in g.translate(r.params, to=other).values())
        rep = dg.check(model, guide, backend=backend)
        assert not rep.errors
