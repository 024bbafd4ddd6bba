"""Stochastic volatility: a Gaussian random walk for the log-volatility, in plain Pyro.

Follows NumPyro's ``examples/stochastic_volatility.py`` (after Stan's and PyMC's): log-volatility
s is a Gaussian random walk with step size sigma, returns ~ StudentT(nu, 0, exp(s));
``AutoNormal``; 40 synthetic returns instead of the S&P 500 series.  The walk is written as the
cumulative sum of its Normal(0, sigma) increments (non-centered), because NumPyro's
``GaussianRandomWalk`` has no Pyro counterpart: both versions use the same construct.
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

rng = np.random.default_rng(5)
s_np = np.cumsum(0.1 * rng.normal(size=40)) - 1.0
r_np = np.exp(s_np) * rng.standard_t(8.0, size=40)
returns = torch.tensor(r_np, dtype=torch.float32)


def model(returns):
    step_size = pyro.sample("sigma", dist.Exponential(10.0))
    steps = pyro.sample("steps", dist.Normal(torch.zeros(returns.shape[0]), 1.0).to_event(1))
    s = torch.cumsum(step_size * steps, -1)
    nu = pyro.sample("nu", dist.Exponential(0.1))
    pyro.sample("r", dist.StudentT(nu, 0.0, torch.exp(s)).to_event(1), obs=returns)


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
        svi.step(returns)
    wall = time.perf_counter() - t0
    store = pyro.get_param_store()
    out = {"params": {k: v.detach().numpy().tolist() for k, v in store.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
