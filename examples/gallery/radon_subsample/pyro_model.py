"""Hierarchical (radon-style) varying-intercept model with a subsampled data plate, in plain Pyro.

Follows the radon varying-intercept model of the hierarchical-model tutorials (Pyro's and
NumPyro's "bayesian hierarchical linear regression" pattern): county intercepts a_j ~
Normal(mu_a, sigma_a), log-radon ~ Normal(a[county] + b floor, sigma_y), the 120
observations seen 30 at a time through ``plate(..., subsample_size=30)``; ``AutoNormal``.
Synthetic data (6 counties).
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
SETTINGS = {"steps": 3000, "particles": 8, "lr": 0.02}

rng = np.random.default_rng(4)
county_np = rng.integers(0, 6, size=120)
floor_np = rng.integers(0, 2, size=120).astype(np.float64)
a_np = rng.normal(1.0, 0.5, size=6)
y_np = a_np[county_np] - 0.6 * floor_np + 0.3 * rng.normal(size=120)
county = torch.tensor(county_np)
floor = torch.tensor(floor_np, dtype=torch.float32)
log_radon = torch.tensor(y_np, dtype=torch.float32)


def model(county, floor, log_radon=None):
    mu_a = pyro.sample("mu_a", dist.Normal(0.0, 5.0))
    sigma_a = pyro.sample("sigma_a", dist.HalfNormal(2.0))
    b = pyro.sample("b", dist.Normal(0.0, 1.0))
    sigma_y = pyro.sample("sigma_y", dist.HalfNormal(1.0))
    with pyro.plate("counties", 6):
        a = pyro.sample("a", dist.Normal(mu_a, sigma_a))
    with pyro.plate("data", floor.shape[0], subsample_size=30) as ind:
        mean = a[county[ind]] + b * floor[ind]
        pyro.sample("obs", dist.Normal(mean, sigma_y), obs=log_radon[ind])


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
        svi.step(county, floor, log_radon)
    wall = time.perf_counter() - t0
    store = pyro.get_param_store()
    out = {"params": {k: v.detach().numpy().tolist() for k, v in store.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
