"""Shared fixtures: one ``backend`` fixture parametrizes every feature test over both backends."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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
