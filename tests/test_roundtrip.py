"""``port`` -> ``crosscheck`` -> ``export`` as one round trip (issue 11, item 4).

Native Bayesian linear regressions, one written in plain NumPyro and one in plain Pyro, with
module-level data and the fit in the file's own SVI loop, are ported; the ported neutral
program is cross-checked; and each export runs in a subprocess where only its own framework
can be imported.  The posterior is Gaussian, so the mean-field guide's optimal means are the
exact posterior mean, which every fit is checked against.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dualguide as dg
from dualguide._files import load_file
from dualguide.porting.export import export
from dualguide.porting.port import port

DATA = Path(__file__).parent / "data" / "roundtrip"
NATIVE = ["numpyro_linreg.py", "pyro_linreg.py"]
#: modules hidden from an exported script: it must need only its own framework
OTHER = {
    "numpyro": ["torch", "pyro", "dualguide"],
    "pyro": ["jax", "jaxlib", "numpyro", "dualguide"],
}
#: the posterior sd of each weight is ~0.5/sqrt(30) ~ 0.09; 1500 Adam(0.01) steps with 8
#: particles leave the means within ~0.02 of the optimum for every seed tried (0-4), so 0.05
#: (about half a posterior sd) separates "converged to the exact mean" from a wrong program
TOL = 0.05


def exact_mean(X: np.ndarray, y: np.ndarray, sigma: float = 0.5) -> np.ndarray:
    """Posterior mean of w for w ~ N(0, I), y ~ N(X w, sigma^2)."""
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    A = np.eye(X.shape[1]) + X.T @ X / sigma**2
    return np.linalg.solve(A, X.T @ y / sigma**2)


@pytest.fixture(scope="module", params=NATIVE)
def ported(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("rt") / request.param.replace(".py", "_neutral.py")
    result = port(DATA / request.param, out=out)
    return result, out, load_file(str(out))


def test_port_writes_model_args_keeps_numpy_data_and_verifies(ported):
    result, _path, mod = ported
    assert result.verified, result.report()
    assert result.traced == ["guide", "model"]  # both take arguments: traced with MODEL_ARGS
    assert result.untraced == []
    # the data stay numpy at import time (no framework array is made by importing the file)
    assert type(mod.X) is np.ndarray and type(mod.y) is np.ndarray
    assert "ops.asarray" not in result.source.split("def model")[0]
    assert len(mod.MODEL_ARGS) in (1, 2) and mod.MODEL_ARGS[0] is mod.X
    args = {**dict(enumerate(mod.MODEL_ARGS)), **mod.MODEL_KWARGS}
    assert any(v is mod.y for v in args.values())


def test_port_keeps_a_guide_made_in_the_main_block():
    result = port(DATA / "numpyro_linreg.py", verify=False)
    assert "auto_guide = dg.autoguides.AutoNormal(model, init_loc_fn='median')" in result.source
    assert "verification was skipped" in result.report()
    assert not result.verified


def test_crosscheck_of_the_ported_program(ported):
    _result, _path, mod = ported
    report = dg.crosscheck(
        mod.model,
        mod.guide,
        mod.MODEL_ARGS,
        mod.MODEL_KWARGS,
        optim=0.01,
        num_steps=1500,
        num_particles=8,
        checks=("logdensity", "gradient"),
        reference=None,
        elbo_particles=2000,
        progress=False,
    )
    assert report.ok, str(report)
    want = exact_mean(mod.X, mod.y)
    for b in ("numpyro", "pyro"):
        np.testing.assert_allclose(report.runs[b].fit.params["w_loc"], want, atol=TOL)


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_export_runs_with_only_its_framework(ported, backend, tmp_path):
    _result, path, mod = ported
    script = tmp_path / f"exported_{backend}.py"
    export(path, backend, out=script)
    hide = "".join(f"sys.modules[{m!r}] = None\n" for m in OTHER[backend])
    code = (
        f"import runpy, sys\n{hide}"
        f"sys.argv = [{str(script)!r}, '--steps', '1500', '--particles', '8', '--json']\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    params = json.loads(proc.stdout.strip().splitlines()[-1])["params"]
    np.testing.assert_allclose(params["w_loc"], exact_mean(mod.X, mod.y), atol=TOL)


# --- an export ports back (issue 12): the generated helpers read back as the neutral API ------
def _without_port_line(text: str) -> str:
    return "\n".join(ln for ln in text.splitlines() if not ln.startswith("# Ported from"))


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_an_export_ports_back_to_the_neutral_source(backend, tmp_path):
    """neutral -> export -> port is the identity (but the "Ported from" line): on Pyro the
    export's masked(dist.X)(...), _obs(y), torch.tensor(0.2) arguments and the inlined
    LKJCholesky class read back as dist.X(...), y, 0.2 and dist.LKJCholesky; the helper and
    fitting sections are dropped; the original docstring comes back whole."""
    src = Path(__file__).parent / "data" / "neutral_shared_dists.py"
    native = tmp_path / f"shared_{backend}.py"
    export(src, backend, out=native)
    text = native.read_text()
    if backend == "pyro":
        assert "masked(dist.InverseGamma)" in text and "class LKJCholesky(" in text
        assert "gate=torch.tensor(0.2)" in text and "obs=_obs(" in text
    result = port(native, out=tmp_path / "back.py")
    assert result.verified, result.report()
    assert _without_port_line(result.source) == src.read_text().rstrip("\n")


def test_port_export_port_is_identity(tmp_path):
    """numpyro -> neutral -> Pyro export -> neutral: the same models, guides, data and
    MODEL_ARGS as the first port (comments aside)."""
    first = port(DATA / "numpyro_linreg.py", out=tmp_path / "n1.py", verify=False)
    export(tmp_path / "n1.py", "pyro", out=tmp_path / "n1_pyro.py")
    second = port(tmp_path / "n1_pyro.py", out=tmp_path / "n2.py")
    assert second.verified, second.report()

    def code(text: str) -> list[str]:
        """The code lines, without comments and without a kept ``__main__`` block (the first
        port keeps the original's fitting code; an export writes its own and port drops it),
        nor ``FIT_SETTINGS`` (the first port writes the original's optimizer there; an export
        does not carry it: docs/export_and_port.md)."""
        out, in_main = [], False
        for ln in text.splitlines():
            if ln.startswith("FIT_SETTINGS = "):
                continue
            if ln.startswith('if __name__ == "__main__":'):
                in_main = True
                continue
            if in_main and (ln.startswith(" ") or not ln.strip()):
                continue
            in_main = False
            if ln.strip() and not ln.startswith("#"):
                out.append(ln)
        return out

    assert code(second.source) == code(first.source)
