"""A Bayesian neural network regression written once, fitted on NumPyro and on Pyro.

y = sin(3x) + noise at 40 points; the network 1 -> 10 (tanh) -> 1 has a Normal(0, 1) prior on
every weight (``dg.nn.random_module``, Pyro's ``random_module`` / ``PyroSample`` layers), the
noise scale a LogNormal prior.  The guide is ``AutoNormal`` (mean field).  Follows NumPyro's
``examples/bnn.py`` and Pyro's "Bayesian Neural Networks" tutorial, small.

    python examples/bnn.py                    # both backends, prints the fit and the ELBOs
    python examples/bnn.py --steps 500 --backend numpyro
    python examples/bnn.py --crosscheck       # + dg.crosscheck (ELBO within MC error)

Prints, per backend, the posterior-mean prediction's RMSE against sin(3x), the fitted noise
scale and the ELBO with its standard error; the two backends' ELBOs agree within MC error.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import dualguide as dg
from dualguide import distributions as dist
from dualguide import nn

rng = np.random.default_rng(13)
X = np.linspace(-1.0, 1.0, 40, dtype=np.float32)[:, None]
Y = (np.sin(3.0 * X[:, 0]) + 0.1 * rng.normal(size=40)).astype(np.float32)

net = nn.MLP([1, 10, 1], activation=nn.Tanh, seed=0)
PRIOR = nn.Sample(dist.Normal, 0.0, 1.0)


def model(x, y=None):
    f = dg.nn.random_module("bnn", net, PRIOR)  # sites bnn.0.weight, bnn.0.bias, ...
    sigma = dg.sample("sigma", dist.LogNormal(-2.0, 1.0))
    mu = f(x)[..., 0]
    dg.deterministic("mu", mu)
    with dg.plate("data", x.shape[0]):
        dg.sample("y", dist.Normal(mu, sigma), obs=y)


guide = dg.autoguides.AutoNormal(model)


def predict(params: dict, backend: str, x: np.ndarray) -> np.ndarray:
    """The network at the guide's median weights (the posterior means of AutoNormal)."""
    med = guide.median(params, backend=backend, model_args=(X, Y))
    weights = {k[len("bnn.") :]: v for k, v in med.items() if k.startswith("bnn.")}
    with dg.use_backend(backend):
        return dg.ops.to_numpy(net.load(weights)(x))[..., 0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=["numpyro", "pyro", "both"], default="both")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--crosscheck", action="store_true")
    a = p.parse_args(argv)
    backends = ["numpyro", "pyro"] if a.backend == "both" else [a.backend]
    opt = dg.optim.Adam(lr=0.02)
    for b in backends:
        r = dg.fit(
            model,
            guide,
            backend=b,
            model_args=(X, Y),
            num_steps=a.steps,
            num_particles=4,
            optim=opt,
            seed=a.seed,
            progress=False,
        )
        pred = predict(r.params, b, X)
        rmse = float(np.sqrt(np.mean((pred - np.sin(3.0 * X[:, 0])) ** 2)))
        sigma = float(guide.median(r.params, backend=b, model_args=(X, Y))["sigma"])
        m, se = dg.crosscheck.elbo_estimate(
            model, guide, r.params, backend=b, num_particles=2000, model_args=(X, Y)
        )
        print(
            f"{b:8s} RMSE vs sin(3x) {rmse:.3f}  sigma {sigma:.3f} (truth 0.1)  "
            f"ELBO {m:.2f} +- {se:.2f}  ({r.wall_time:.1f} s, {r.elbo})"
        )
    if a.crosscheck:
        print(
            dg.crosscheck(
                model,
                guide,
                (X, Y),
                optim=opt,
                num_steps=a.steps,
                num_particles=4,
                reference=None,
                progress=False,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
