"""Backend choice: env var at import, set_backend, context manager, per-call backend=, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import dualguide as dg
from dualguide import _state
from dualguide import distributions as dist

from .conftest import is_native


def _run(code: str, env_backend: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DUALGUIDE_BACKEND"}
    if env_backend is not None:
        env["DUALGUIDE_BACKEND"] = env_backend
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


def test_import_is_light():
    # import dualguide must not import jax or torch (nor numpyro/pyro)
    r = _run(
        "import sys, dualguide, dualguide.distributions, dualguide.ops, dualguide.optim;"
        "print(sorted(m for m in ('jax','torch','numpyro','pyro') if m in sys.modules))"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_using_one_backend_imports_only_its_framework():
    r = _run(
        "import sys, dualguide as dg; dg.set_backend('pyro');"
        "print('jax' in sys.modules, 'torch' in sys.modules)"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True"]


@pytest.mark.parametrize("name", ["numpyro", "pyro"])
def test_env_var_picks_backend(name):
    r = _run("import dualguide as dg; print(dg.get_backend())", env_backend=name)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == name


def test_default_is_numpyro_when_both_installed():
    r = _run("import dualguide as dg; print(dg.get_backend())")
    assert r.stdout.strip() == "numpyro"


def test_env_var_unknown_name_is_a_clear_error():
    r = _run("import dualguide as dg; dg.get_backend()", env_backend="tensorflow")
    assert r.returncode != 0
    assert "unknown backend 'tensorflow'" in r.stderr
    assert "numpyro, pyro" in r.stderr


def test_unknown_backend_error_names_choices():
    with pytest.raises(
        dg.BackendError, match=r"unknown backend 'jaxx': choose one of numpyro, pyro"
    ):
        dg.set_backend("jaxx")


def test_not_installed_backend_names_the_extra(monkeypatch):
    monkeypatch.setattr(_state, "installed", lambda name: name != "pyro")
    monkeypatch.setattr(_state, "_loaded", {})
    with pytest.raises(dg.BackendError, match=r"pip install 'dualguide\[pyro\]'"):
        dg.render(lambda: None, backend="pyro")


def test_set_backend_and_context_manager(backend):
    other = "pyro" if backend == "numpyro" else "numpyro"
    prev = dg.get_backend()
    try:
        dg.set_backend(backend)
        assert dg.get_backend() == backend
        with dg.use_backend(other) as name:
            assert name == other
            assert dg.get_backend() == other
            d = dist.Normal(0.0, 1.0)
            assert is_native(d, other)
        assert dg.get_backend() == backend
    finally:
        dg.set_backend(prev)


def test_context_manager_restores_on_error():
    prev = dg.get_backend()
    with pytest.raises(RuntimeError):
        with dg.use_backend("pyro"):
            raise RuntimeError("boom")
    assert dg.get_backend() == prev


def test_per_call_backend_beats_active_one(backend):
    other = "pyro" if backend == "numpyro" else "numpyro"

    def prog():
        return dist.Normal(0.0, 1.0)

    with dg.use_backend(other):
        assert is_native(dg.render(prog, backend=backend)(), backend)
        # the active backend is restored after the rendered call
        assert dg.get_backend() == other
