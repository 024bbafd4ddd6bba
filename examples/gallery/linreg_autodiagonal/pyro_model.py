"""Bayesian linear regression with an ``AutoDiagonalNormal`` guide, in plain Pyro.

Follows the autoguide version of Pyro's "Bayesian Regression - Introduction (Part 1)"
tutorial (``AutoDiagonalNormal``) on the data of ``linreg_hand``, with the mean written as an
elementwise product summed over features (so the model also broadcasts over a particle
dimension).
"""

import json
import time

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoDiagonalNormal, init_to_median
from pyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 2000, "particles": 8, "lr": 0.02}

rng = np.random.default_rng(0)
X_np = rng.normal(size=(40, 2))
y_np = X_np @ np.array([1.0, -0.5]) + 0.3 + 0.5 * rng.normal(size=40)
X = torch.tensor(X_np, dtype=torch.float32)
y = torch.tensor(y_np, dtype=torch.float32)


def model(X, y=None):
    b = pyro.sample("b", dist.Normal(0.0, 1.0))
    w = pyro.sample("w", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    mean = b + torch.sum(X * w, -1)
    with pyro.plate("data", X.shape[0]):
        pyro.sample("obs", dist.Normal(mean, 0.5), obs=y)


guide = AutoDiagonalNormal(model, init_loc_fn=init_to_median)


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
        svi.step(X, y)
    wall = time.perf_counter() - t0
    store = pyro.get_param_store()
    out = {"params": {k: v.detach().numpy().tolist() for k, v in store.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
