"""Negative-binomial (Gamma-Poisson) regression with an AutoNormal guide, in plain Pyro.

Follows the over-dispersed count GLMs of NumPyro's and Pyro's examples: counts ~
GammaPoisson(phi, phi / mu) with mu = exp(a + b x) and a LogNormal prior on the
concentration phi; ``AutoNormal`` with ``init_to_median``; 50 synthetic counts.
"""

import json
import time

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoNormal, init_to_median
from pyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 2000, "particles": 8, "lr": 0.02}

rng = np.random.default_rng(3)
x_np = np.linspace(-1.0, 1.0, 50)
mu_np = np.exp(1.5 + 0.7 * x_np)
y_np = rng.poisson(rng.gamma(4.0, mu_np / 4.0)).astype(np.float64)
x = torch.tensor(x_np, dtype=torch.float32)
y = torch.tensor(y_np, dtype=torch.float32)


def model(x, y=None):
    a = pyro.sample("a", dist.Normal(0.0, 2.0))
    b = pyro.sample("b", dist.Normal(0.0, 1.0))
    phi = pyro.sample("phi", dist.LogNormal(1.0, 1.0))
    mu = torch.exp(a + b * x)
    with pyro.plate("data", x.shape[0]):
        pyro.sample("obs", dist.GammaPoisson(phi, phi / mu), obs=y)


guide = AutoNormal(model, init_loc_fn=init_to_median)


def run(seed=0):
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    svi = SVI(
        model,
        guide,
        Adam({"lr": SETTINGS["lr"]}),
        loss=Trace_ELBO(num_particles=SETTINGS["particles"], vectorize_particles=False),
    )
    t0 = time.perf_counter()
    for _ in range(SETTINGS["steps"]):
        svi.step(x, y)
    wall = time.perf_counter() - t0
    store = pyro.get_param_store()
    out = {"params": {k: v.detach().numpy().tolist() for k, v in store.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
