"""An AR(1) time series, in plain Pyro.

Follows the autoregressive models of NumPyro's time-series examples and Pyro's forecasting
tutorials, written as a conditional likelihood: y_t ~ Normal(alpha + beta y_(t-1), sigma) with
beta ~ Uniform(-1, 1); ``AutoNormal``; 80 synthetic steps.
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

rng = np.random.default_rng(7)
y_np = np.zeros(80)
for t in range(1, 80):
    y_np[t] = 0.2 + 0.7 * y_np[t - 1] + 0.5 * rng.normal()
y = torch.tensor(y_np, dtype=torch.float32)


def model(y):
    alpha = pyro.sample("alpha", dist.Normal(0.0, 1.0))
    beta = pyro.sample("beta", dist.Uniform(-1.0, 1.0))
    sigma = pyro.sample("sigma", dist.HalfNormal(1.0))
    with pyro.plate("time", y.shape[0] - 1):
        pyro.sample("obs", dist.Normal(alpha + beta * y[:-1], sigma), obs=y[1:])


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
        svi.step(y)
    wall = time.perf_counter() - t0
    store = pyro.get_param_store()
    out = {"params": {k: v.detach().numpy().tolist() for k, v in store.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
