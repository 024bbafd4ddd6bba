"""The benchmark problems: each as a neutral model and guide, and hand-written natively.

A problem is a small record: the neutral ``model`` and ``guide`` (rendered by
dualguide), the same program written by hand in NumPyro and in Pyro (what a user
of each framework would write), the model arguments, and the max plate nesting
that Pyro's vectorized particles need.  Floors (the same ELBO step in pure JAX /
pure PyTorch) live in ``floors.py``.

Problems:

* ``seed`` -- the seed Gaussian (``examples/seed_gaussian.py``, ``model_nofactor``):
  two scalar latents, two positive params.
* ``mixture`` -- the rotated mixture (``examples/rotated_mixture.py``): a
  reparameterized two-component mixture and a Cauchy mapped to (x, y) through
  ``dg.transformed``.  The hand-written NumPyro guide samples NumPyro's own
  ``MixtureSameFamily`` (JAX differentiates through the selected component) and
  writes the log-det in closed form; the hand-written Pyro guide uses
  ``MixtureOfDiagNormals`` (Pyro's reparameterized Normal mixture) and the same
  closed-form log-det.
* ``plated<D>`` -- mean-field Gaussian over ``D`` latents in a plate:
  ``z_d ~ Normal(0, 1)``, ``y_d ~ Normal(z_d, 1)`` observed; the guide learns a
  ``loc`` and a positive ``scale`` vector of length ``D``.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import dualguide as dg
from dualguide import constraints
from dualguide import distributions as dist

ROOT = Path(__file__).resolve().parents[1]
PLATED_SIZES = (10, 1_000, 100_000)


def load_example(name: str):
    """Import ``examples/<name>.py`` (None when the file is not there)."""
    path = ROOT / "examples" / f"{name}.py"
    if not path.exists():
        return None
    modname = f"_bench_example_{name}"
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(modname, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    spec.loader.exec_module(mod)
    return mod


@dataclass
class Problem:
    name: str
    model: Callable
    guide: Callable
    args: tuple = ()
    max_plate_nesting: int = 0
    size: int = 2  # number of latent numbers (for the plot's x axis)
    note: str = ""
    native: dict = field(default_factory=dict)  # backend -> (model, guide) builder


# ------------------------------------------------------------------------------------------
# seed Gaussian
# ------------------------------------------------------------------------------------------
SIG1, SIG2 = 1.0, 2.0


def _seed_numpyro():
    import numpyro
    import numpyro.distributions as nd

    def model():
        numpyro.sample("x", nd.Normal(0.0, SIG1))
        numpyro.sample("y", nd.Normal(0.0, SIG2))

    def guide():
        s1 = numpyro.param("sig1_q", 1.0, constraint=nd.constraints.positive)
        s2 = numpyro.param("sig2_q", 1.0, constraint=nd.constraints.positive)
        numpyro.sample("x", nd.Normal(0.0, s1))
        numpyro.sample("y", nd.Normal(0.0, s2))

    return model, guide


def _seed_pyro():
    import pyro
    import pyro.distributions as pd
    import torch

    def model():
        pyro.sample("x", pd.Normal(0.0, SIG1))
        pyro.sample("y", pd.Normal(0.0, SIG2))

    def guide():
        s1 = pyro.param("sig1_q", lambda: torch.tensor(1.0), constraint=pd.constraints.positive)
        s2 = pyro.param("sig2_q", lambda: torch.tensor(1.0), constraint=pd.constraints.positive)
        pyro.sample("x", pd.Normal(0.0, s1))
        pyro.sample("y", pd.Normal(0.0, s2))

    return model, guide


def seed_problem() -> Problem:
    sg = load_example("seed_gaussian")
    return Problem(
        "seed",
        sg.model_nofactor,
        sg.guide,
        size=2,
        native={"numpyro": _seed_numpyro, "pyro": _seed_pyro},
    )


# ------------------------------------------------------------------------------------------
# rotated mixture
# ------------------------------------------------------------------------------------------
B_STAR, T_STAR = 1.5, 0.6
INV_SQRT2 = 1.0 / math.sqrt(2.0)


def _target_log_density(ops_mod, x, y):
    """log p(x, y) up to a constant, written with a framework's math module."""
    c, s = math.cos(T_STAR), math.sin(T_STAR)
    u1 = c * x - s * y
    u2 = c * x + s * y
    mix = ops_mod.logaddexp(-((u1 - B_STAR) ** 2), -((u1 + B_STAR) ** 2))
    return mix - ops_mod.log1p(u2**2)


def _mixture_numpyro():
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as nd

    def model():
        x = numpyro.sample("x", nd.ImproperUniform(nd.constraints.real, (), ()))
        y = numpyro.sample("y", nd.ImproperUniform(nd.constraints.real, (), ()))
        numpyro.factor("target", _target_log_density(jnp, x, y))

    def guide():
        b = numpyro.param("b", 0.5, constraint=nd.constraints.positive)
        t = numpyro.param("theta", 0.3, constraint=nd.constraints.interval(0.0, math.pi / 2))
        mix = nd.MixtureSameFamily(
            nd.Categorical(probs=jnp.array([0.5, 0.5])),
            nd.Normal(jnp.stack([-b, b]), INV_SQRT2),
        )
        u1 = numpyro.sample("u1", mix, infer={"is_auxiliary": True})
        u2 = numpyro.sample("u2", nd.Cauchy(0.0, 1.0), infer={"is_auxiliary": True})
        c, s = jnp.cos(t), jnp.sin(t)
        x = (u1 + u2) / (2 * c)
        y = (u2 - u1) / (2 * s)
        logdet = -jnp.log(jnp.abs(2 * c * s))  # log|det d(x,y)/d(u1,u2)| = -log|sin 2t|
        numpyro.sample("x", nd.Delta(x, log_density=-logdet))
        numpyro.sample("y", nd.Delta(y))

    return model, guide


def _mixture_pyro():
    import pyro
    import pyro.distributions as pd
    import torch

    def model():
        x = pyro.sample("x", pd.ImproperUniform(pd.constraints.real, (), ()))
        y = pyro.sample("y", pd.ImproperUniform(pd.constraints.real, (), ()))
        pyro.factor("target", _target_log_density(torch, x, y))

    def guide():
        b = pyro.param("b", lambda: torch.tensor(0.5), constraint=pd.constraints.positive)
        t = pyro.param(
            "theta", lambda: torch.tensor(0.3), constraint=pd.constraints.interval(0.0, math.pi / 2)
        )
        locs = torch.stack([-b, b]).unsqueeze(-1)
        mix = pd.MixtureOfDiagNormals(locs, torch.full((2, 1), INV_SQRT2), torch.zeros(2))
        u1 = pyro.sample("u1", mix, infer={"is_auxiliary": True})[..., 0]
        u2 = pyro.sample("u2", pd.Cauchy(0.0, 1.0), infer={"is_auxiliary": True})
        c, s = torch.cos(t), torch.sin(t)
        x = (u1 + u2) / (2 * c)
        y = (u2 - u1) / (2 * s)
        logdet = -torch.log(torch.abs(2 * c * s))
        pyro.sample("x", pd.Delta(x, log_density=-logdet))
        pyro.sample("y", pd.Delta(y))

    return model, guide


def mixture_problem() -> Problem | None:
    rm = load_example("rotated_mixture")
    if rm is None or not hasattr(rm, "model") or not hasattr(rm, "guide"):
        return None
    return Problem(
        "mixture",
        rm.model,
        rm.guide,
        size=2,
        native={"numpyro": _mixture_numpyro, "pyro": _mixture_pyro},
    )


# ------------------------------------------------------------------------------------------
# plated mean-field
# ------------------------------------------------------------------------------------------
def plated_data(D: int) -> np.ndarray:
    return np.random.RandomState(0).normal(1.0, 1.5, size=D).astype(np.float32)


def plated_model(y):
    with dg.plate("d", y.shape[0]):
        z = dg.sample("z", dist.Normal(0.0, 1.0))
        dg.sample("y", dist.Normal(z, 1.0), obs=y)


def plated_guide(y):
    D = y.shape[0]
    loc = dg.param("loc", lambda: np.zeros(D, np.float32))
    scale = dg.param("scale", lambda: np.ones(D, np.float32), constraint=constraints.positive)
    with dg.plate("d", D):
        dg.sample("z", dist.Normal(loc, scale))


def _plated_numpyro():
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as nd

    def model(y):
        with numpyro.plate("d", y.shape[0]):
            z = numpyro.sample("z", nd.Normal(0.0, 1.0))
            numpyro.sample("y", nd.Normal(z, 1.0), obs=y)

    def guide(y):
        D = y.shape[0]
        loc = numpyro.param("loc", jnp.zeros(D))
        scale = numpyro.param("scale", jnp.ones(D), constraint=nd.constraints.positive)
        with numpyro.plate("d", D):
            numpyro.sample("z", nd.Normal(loc, scale))

    return model, guide


def _plated_pyro():
    import pyro
    import pyro.distributions as pd
    import torch

    def model(y):
        with pyro.plate("d", y.shape[0]):
            z = pyro.sample("z", pd.Normal(0.0, 1.0))
            pyro.sample("y", pd.Normal(z, 1.0), obs=y)

    def guide(y):
        D = y.shape[0]
        loc = pyro.param("loc", lambda: torch.zeros(D))
        scale = pyro.param("scale", lambda: torch.ones(D), constraint=pd.constraints.positive)
        with pyro.plate("d", D):
            pyro.sample("z", pd.Normal(loc, scale))

    return model, guide


def plated_problem(D: int) -> Problem:
    return Problem(
        f"plated{D}",
        plated_model,
        plated_guide,
        args=(plated_data(D),),
        max_plate_nesting=1,
        size=D,
        native={"numpyro": _plated_numpyro, "pyro": _plated_pyro},
    )


def get(name: str) -> Problem | None:
    """The problem called ``name`` (``seed``, ``mixture``, ``plated10`` ...), or None."""
    if name == "seed":
        return seed_problem()
    if name == "mixture":
        return mixture_problem()
    if name.startswith("plated"):
        return plated_problem(int(name[len("plated") :]))
    raise KeyError(name)


def all_names() -> list[str]:
    return ["seed", "mixture", *(f"plated{D}" for D in PLATED_SIZES)]
