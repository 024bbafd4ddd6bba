"""Native source export: dualguide programs written out as plain NumPyro / plain Pyro modules.

The exported modules run in a subprocess in which the *other* framework and dualguide
cannot be imported (an import blocker stands in for "not installed"), and must fit to the
same params as dualguide's own fit.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import dualguide as dg
from dualguide.porting.export import ExportError, export

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"

#: top-level modules an exported module must not import, per backend
FORBIDDEN = {
    "numpyro": ("torch", "pyro", "dualguide"),
    "pyro": ("jax", "jaxlib", "numpyro", "dualguide"),
}

# Runs an exported module as __main__ with the forbidden modules blocked, then reports which
# of them ended up in sys.modules (must be none).
RUNNER = textwrap.dedent(
    """
    import importlib.abc, json, runpy, sys
    FORBIDDEN = set(sys.argv[2].split(","))
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in FORBIDDEN:
                raise ImportError(f"{name} is not installed (blocked by the export test)")
            return None
    sys.meta_path.insert(0, Block())
    path = sys.argv[1]
    sys.argv = [path] + sys.argv[3:]
    runpy.run_path(path, run_name="__main__")
    print(json.dumps({"forbidden_loaded": sorted({m.split(".")[0] for m in sys.modules}
                                                  & FORBIDDEN)}))
    """
)


def start_exported(path: Path, backend: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(path), ",".join(FORBIDDEN[backend]), "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(path.parent),
    )


def finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, f"exported module failed:\n{err[-3000:]}"
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    fitted, report = json.loads(lines[-2]), json.loads(lines[-1])
    assert report["forbidden_loaded"] == []
    return fitted


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def assert_plain(text: str, backend: str) -> None:
    """No dualguide import, no import of the other framework."""
    for line in text.splitlines():
        s = line.strip()
        if s.startswith(("import ", "from ")):
            top = s.split()[1].split(".")[0]
            assert top not in FORBIDDEN[backend], line
    compile(text, "<export>", "exec")


# -------------------------------------------------------------------------------------------
# the seed examples, fitted by the exported code and by dualguide
# -------------------------------------------------------------------------------------------
def test_seed_gaussian_export_fits_like_dualguide(backend, seed_gaussian, tmp_path):
    path = tmp_path / f"seed_{backend}.py"
    text = export(ROOT / "examples" / "seed_gaussian.py", backend, out=path)
    assert_plain(text, backend)
    proc = start_exported(path, backend)  # runs while dualguide fits in this process
    ref = dg.fit(
        seed_gaussian.model,
        seed_gaussian.guide,
        backend=backend,
        seed=0,
        progress=False,
        **seed_gaussian.FIT_SETTINGS,
    )
    got = finish(proc)["params"]
    # the seed problem's tolerances (sig1 +- 0.05, sig2 +- 0.1), against the truth and against
    # dualguide's fit; the export runs the same optimizer settings, steps, particles and seed
    # (measured: equal to 1e-6 on both backends)
    for name, truth, tol in (("sig1_q", 1.0, 0.05), ("sig2_q", 2.0, 0.1)):
        assert abs(got[name] - truth) <= tol
        assert abs(got[name] - float(ref.params[name])) <= tol


@pytest.mark.slow
def test_rotated_mixture_export_fits_like_dualguide(backend, tmp_path):
    src = ROOT / "examples" / "rotated_mixture.py"
    if not src.exists():
        pytest.skip("examples/rotated_mixture.py is not there yet")
    ex = load_module(src, "_export_test_rotated_mixture")
    path = tmp_path / f"rot_{backend}.py"
    text = export(src, backend, out=path)
    assert_plain(text, backend)
    # dg.transformed and dualguide's pathwise MixtureSameFamily are written out natively
    assert "def transformed(" in text and "class MixtureSameFamily(" in text
    proc = start_exported(path, backend)
    ref = dg.fit(ex.model, ex.guide, backend=backend, seed=0, progress=False, **ex.FIT_SETTINGS)
    got = finish(proc)["params"]
    # the rotated mixture's tolerances (b +- 0.05, theta +- 0.02), against truth and dualguide
    for name, truth, tol in (("b", 1.5, 0.05), ("theta", 0.6, 0.02)):
        assert abs(got[name] - truth) <= tol
        assert abs(got[name] - float(ref.params[name])) <= tol


# -------------------------------------------------------------------------------------------
# rewriting, checked site by site against dualguide's rendering
# -------------------------------------------------------------------------------------------
def test_exported_guide_traces_like_rendered_guide(backend, tmp_path):
    """Ops (axis/dim, float32 creation), params, plates, factor: same values, same log probs."""
    from dualguide import _state

    path = tmp_path / f"ops_{backend}.py"
    export(DATA / "neutral_ops.py", backend, out=path, settings={"num_steps": 1})
    native = load_module(path, f"_exported_ops_{backend}")
    neutral = load_module(DATA / "neutral_ops.py", "_neutral_ops_src")
    for seed in (0, 1):
        want = dg.trace(neutral.guide, backend=backend, seed=seed)
        got = _state.load(backend).trace(native.guide, (), {}, seed)
        assert list(got) == list(want)
        for name, w in want.items():
            g = got[name]
            assert (g.type, g.dist, g.batch_shape, g.event_shape) == (
                w.type,
                w.dist,
                w.batch_shape,
                w.event_shape,
            ), name
            np.testing.assert_allclose(g.value, w.value, rtol=1e-6, atol=1e-6, err_msg=name)
            assert np.asarray(g.value).dtype == np.asarray(w.value).dtype, name
            if w.log_prob is not None:
                np.testing.assert_allclose(
                    g.log_prob, w.log_prob, rtol=1e-5, atol=1e-5, err_msg=name
                )


def test_pyro_export_keeps_support_masking(tmp_path):
    """A guide draw outside a Uniform prior: log_prob -inf in the export, as in dualguide."""
    path = tmp_path / "seed_pyro.py"
    export(ROOT / "examples" / "seed_gaussian.py", "pyro", out=path)
    mod = load_module(path, "_exported_seed_pyro_mask")
    import torch

    d = mod.masked(mod.dist.Uniform)(-10.0, 10.0)
    assert d.log_prob(torch.tensor(11.0)).item() == -np.inf
    assert d.log_prob(torch.tensor(1.0)).item() == pytest.approx(-np.log(20.0))
    with pytest.raises(ValueError):  # parameters are still validated, as Pyro does
        mod.dist.Normal(0.0, -1.0, validate_args=True)


def test_export_of_a_function_and_cli(seed_gaussian, tmp_path, capsys):
    from dualguide.cli import main

    text = dg.export(seed_gaussian.guide, backend="numpyro")
    assert 'numpyro.param("sig1_q", jnp.array(1.0), constraint=constraints.positive)' in text
    assert (
        main(
            [
                "export",
                str(ROOT / "examples" / "seed_gaussian.py"),
                "--backend",
                "both",
                "-o",
                str(tmp_path / "seed.py"),
            ]
        )
        == 0
    )
    for b in ("numpyro", "pyro"):
        assert_plain((tmp_path / f"seed_{b}.py").read_text(), b)
    assert main(["export", str(ROOT / "examples" / "seed_gaussian.py"), "-b", "pyro"]) == 0
    assert "pyro.factor(" in capsys.readouterr().out


# -------------------------------------------------------------------------------------------
# what cannot be exported: one clear error with file:line
# -------------------------------------------------------------------------------------------
BAD = """\
import dualguide as dg
from dualguide import ops
from dualguide import distributions as dist


def guide():
    x = dg.sample("x", dist.Normal(0.0, 1.0))
    fitted = dg.fit(guide, guide)
    return fitted
"""


def test_unexportable_guide_names_file_and_line(tmp_path):
    f = tmp_path / "bad.py"
    f.write_text(BAD)
    with pytest.raises(ExportError) as e:
        export(f, "numpyro")
    assert f"{f}:8: dualguide.fit has no native counterpart" in str(e.value)
    assert e.value.problems[0][1] == 8


HANDLER_IN_MODEL = """\
import dualguide as dg
from dualguide import distributions as dist


def model(y):
    with dg.handlers.scale(scale=2.0):
        dg.sample("y", dist.Normal(0.0, 1.0), obs=y)
"""


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_a_handler_in_a_model_is_refused_naming_its_native_counterparts(tmp_path, backend):
    """The refusal said ``dualguide.handlers.scale has no native counterpart``: both
    frameworks have one (found porting ``poutine.scale``, then exporting the port)."""
    f = tmp_path / "scaled.py"
    f.write_text(HANDLER_IN_MODEL)
    with pytest.raises(ExportError) as e:
        export(f, backend)
    msg = str(e.value)
    assert "dualguide.handlers.scale inside a model or guide is not exported" in msg
    assert "numpyro.handlers.scale" in msg and "pyro.poutine.scale" in msg
    assert "has no native counterpart" not in msg


def test_unexportable_op_for_one_backend(tmp_path):
    f = tmp_path / "prod.py"
    f.write_text(
        BAD.replace(
            "fitted = dg.fit(guide, guide)", "fitted = ops.prod(ops.stack([x, x]), axis=(0,))"
        )
    )
    assert "jnp.prod" in export(f, "numpyro")  # numpy-style tuple axes are fine in jax
    with pytest.raises(ExportError, match=rf"{f.name}:8: ops.prod over a tuple of axes"):
        export(f, "pyro")


def test_unexportable_schedule_and_missing_guide(tmp_path):
    f = tmp_path / "sched.py"
    f.write_text(
        BAD.replace("    fitted = dg.fit(guide, guide)\n", "    fitted = x\n")
        + "\nFIT_SETTINGS = dict(optim=dg.optim.Adam(lr=lambda t: 0.01 / (1 + t)))\n"
    )
    with pytest.raises(ExportError, match="learning-rate schedule"):
        export(f, "pyro")
    # a named schedule is written out: numpyro as a step_size function, pyro as ClippedAdam lrd
    f.write_text(
        f.read_text().replace(
            "lambda t: 0.01 / (1 + t)", "dg.optim.exponential_decay(0.01, 0.5, 100)"
        )
    )
    assert "step_size=lambda i: 0.01 * 0.5 ** (i / 100.0)" in export(f, "numpyro")
    assert '"lrd": ' in export(f, "pyro")
    with pytest.raises(ExportError, match="no exportable guide 'nope'"):
        export(f, "numpyro", guide="nope")


def test_docs_examples_run():
    """Every ```python block of docs/export_and_port.md runs from the repository root."""
    import re

    doc = (ROOT / "docs" / "export_and_port.md").read_text()
    blocks = re.findall(r"```python\n(.*?)\n```", doc, re.S)
    assert len(blocks) >= 5
    # one interpreter, each block in a fresh namespace (saves the framework imports)
    script = (
        "import sys\nBLOCKS = "
        + repr(blocks)
        + (
            "\nfor i, code in enumerate(BLOCKS):\n"
            "    print(f'--- block {i}', file=sys.stderr)\n"
            "    exec(compile(code, f'<docs block {i}>', 'exec'), {'__name__': '__docs__'})\n"
        )
    )
    r = subprocess.run(
        [sys.executable, "-c", script], cwd=str(ROOT), capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr[-3000:]
