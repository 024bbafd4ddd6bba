"""Shared fixtures: one ``backend`` fixture parametrizes every feature test over both backends."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ["numpyro", "pyro"]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Each backend name in turn; tests taking it run once per backend."""
    return request.param


@pytest.fixture
def backend_state():
    """Put back the active and default backend and the param hook after the test."""
    from dualguide import _state

    with _state.preserved():
        yield


@pytest.fixture
def both() -> tuple[str, str]:
    """Both backends side by side, for cross-backend tests."""
    return ("numpyro", "pyro")


def load_example(name: str):
    """Import ``examples/<name>.py`` as a module."""
    path = ROOT / "examples" / f"{name}.py"
    modname = f"_example_{name}"
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(modname, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def seed_gaussian():
    """The seed Gaussian example module (models, guide, fit settings)."""
    return load_example("seed_gaussian")


def is_native(obj, backend: str) -> bool:
    """Whether ``obj`` is an instance of a class of ``backend``'s framework (subclasses count)."""
    return any(c.__module__.split(".")[0] == backend for c in type(obj).__mro__)


def _conjugate_program() -> SimpleNamespace:
    import dualguide as dg
    from dualguide import distributions as dist

    y_obs = np.array([0.5, 1.0, 2.0], dtype=np.float32)
    prec = 1 / 4 + 3 / 0.25

    def model(y):
        x = dg.sample("x", dist.Normal(1.0, 2.0))
        with dg.plate("data", 3):
            dg.sample("y", dist.Normal(x, 0.5), obs=y)

    def guide(y):
        m = dg.param("m", 0.0)
        s = dg.param("s", 1.0, constraint=dg.constraints.positive)
        dg.sample("x", dist.Normal(m, s))

    return SimpleNamespace(
        Y=y_obs, PREC=prec, MEAN=(1.0 / 4 + y_obs.sum() / 0.25) / prec, model=model, guide=guide
    )


@pytest.fixture
def conjugate():
    """The conjugate Normal program of the SVI tests, with an empty param store.

    ``model(y)``: ``x ~ Normal(1, 2)``, ``y_i ~ Normal(x, 0.5)`` in a plate of 3, observed as
    ``Y``; ``guide(y)`` learns ``m`` and a positive ``s`` (init 0 and 1).  The exact
    posterior of ``x`` has precision ``PREC`` and mean ``MEAN``.  The param store is cleared
    before and after the test.
    """
    import dualguide as dg

    dg.clear_param_store()
    yield _conjugate_program()
    dg.clear_param_store()
