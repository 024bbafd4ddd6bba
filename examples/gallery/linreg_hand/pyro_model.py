"""Bayesian linear regression with a guide written by hand, in plain Pyro.

Follows the Bayesian regression of Pyro's "Bayesian Regression - Introduction (Part 1)"
tutorial (Normal priors on the intercept and weights, a mean-field Normal guide with its
params declared by hand), with 40 synthetic points.  Exact answer: the posterior is Gaussian
and the mean-field guide's optimal means are its means.
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

rng = np.random.default_rng(0)
X_np = rng.normal(size=(40, 2))
y_np = X_np @ np.array([1.0, -0.5]) + 0.3 + 0.5 * rng.normal(size=40)
X = torch.tensor(X_np, dtype=torch.float32)
y = torch.tensor(y_np, dtype=torch.float32)


def model(X, y=None):
    b = pyro.sample("b", dist.Normal(0.0, 1.0))
    w = pyro.sample("w", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    with pyro.plate("data", X.shape[0]):
        pyro.sample("obs", dist.Normal(b + X @ w, 0.5), obs=y)


def guide(X, y=None):
    b_loc = pyro.param("b_loc", torch.tensor(0.0))
    b_scale = pyro.param("b_scale", torch.tensor(0.1), constraint=constraints.positive)
    w_loc = pyro.param("w_loc", torch.zeros(2))
    w_scale = pyro.param("w_scale", 0.1 * torch.ones(2), constraint=constraints.positive)
    pyro.sample("b", dist.Normal(b_loc, b_scale))
    pyro.sample("w", dist.Normal(w_loc, w_scale).to_event(1))


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
        svi.step(X, y)
    wall = time.perf_counter() - t0
    store = pyro.get_param_store()
    out = {"params": {k: v.detach().numpy().tolist() for k, v in store.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
