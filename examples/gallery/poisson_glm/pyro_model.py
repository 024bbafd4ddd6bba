"""Poisson regression (a GLM with a log link) with a hand guide, in plain Pyro.

Follows the count-regression pattern of NumPyro's and Pyro's GLM examples: Normal priors on
intercept and slope, counts ~ Poisson(exp(a + b x)), a mean-field Normal guide; 40
synthetic counts.
"""

import json
import time

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 2000, "particles": 8, "lr": 0.02}

rng = np.random.default_rng(2)
x_np = np.linspace(-1.0, 1.0, 40)
y_np = rng.poisson(np.exp(1.0 + 0.8 * x_np)).astype(np.float64)
x = torch.tensor(x_np, dtype=torch.float32)
y = torch.tensor(y_np, dtype=torch.float32)


def model(x, y=None):
    a = pyro.sample("a", dist.Normal(0.0, 1.0))
    b = pyro.sample("b", dist.Normal(0.0, 1.0))
    with pyro.plate("data", x.shape[0]):
        pyro.sample("obs", dist.Poisson(torch.exp(a + b * x)), obs=y)


def guide(x, y=None):
    a_loc = pyro.param("a_loc", torch.tensor(0.0))
    a_scale = pyro.param("a_scale", torch.tensor(0.1), constraint=constraints.positive)
    b_loc = pyro.param("b_loc", torch.tensor(0.0))
    b_scale = pyro.param("b_scale", torch.tensor(0.1), constraint=constraints.positive)
    pyro.sample("a", dist.Normal(a_loc, a_scale))
    pyro.sample("b", dist.Normal(b_loc, b_scale))


def run(seed=0):
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    svi = SVI(
        model,
        guide,
        Adam({"lr": SETTINGS["lr"]}),
        loss=Trace_ELBO(num_particles=SETTINGS["particles"], vectorize_particles=True),
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
