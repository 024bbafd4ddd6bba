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


def assert_traced_matches_eager(f) -> None:
    """``torch.jit.trace`` of ``f(u, p)`` gives the eager value and ``d/dp`` at fresh inputs.

    ``f`` takes a (2, 3) tensor ``u`` (entries in [0.2, 0.7)) and a scalar tensor ``p`` that
    requires grad, and returns a scalar tensor.  It is traced at one draw of ``u`` and
    ``p = 1.1`` and compared with the eager call at another draw and ``p = 0.8``, so a graph
    that baked in the first inputs' values (or a wrong derivative formula) cannot hide.
    """
    import warnings

    import torch

    g = torch.Generator().manual_seed(0)
    u0 = 0.2 + 0.5 * torch.rand(2, 3, generator=g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(f, (u0, torch.tensor(1.1, requires_grad=True)), check_trace=False)
    u1 = 0.2 + 0.5 * torch.rand(2, 3, generator=g)
    p1 = torch.tensor(0.8, requires_grad=True)
    a, b = traced(u1, p1), f(u1, p1)
    (ga,) = torch.autograd.grad(a, p1)
    (gb,) = torch.autograd.grad(b, p1)
    # float32: the same formulas, possibly in another order of operations
    assert a.item() == pytest.approx(b.item(), rel=1e-5, abs=1e-5)
    assert float(ga) == pytest.approx(float(gb), rel=1e-4, abs=1e-4)


def fit_small_on_pyro(model, guide, seed: int, lr: float = 0.1):
    """Fit on Pyro for 4 steps of 2 particles with Adam(``lr``), no checks, no progress bar."""
    import dualguide as dg

    return dg.fit(
        model,
        guide,
        backend="pyro",
        num_steps=4,
        num_particles=2,
        optim=dg.optim.Adam(lr=lr),
        check=False,
        progress=False,
        seed=seed,
    )


def assert_fit_keeps_the_jit(model, guide, seed: int, lr: float = 0.1):
    """:func:`fit_small_on_pyro`, failing on any JIT fallback warning; returns the result.

    Asserts the fit ran under ``JitTrace_ELBO`` with finite losses.
    """
    import warnings

    from dualguide.backends.pyro import fitloop

    with warnings.catch_warnings():
        warnings.simplefilter("error", fitloop.JitFallbackWarning)
        r = fit_small_on_pyro(model, guide, seed, lr)
    assert r.elbo == "JitTrace_ELBO"
    assert np.all(np.isfinite(r.losses))
    return r
