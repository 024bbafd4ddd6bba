"""Bayesian logistic regression with an AutoNormal guide, in plain Pyro.

Follows the logistic regression of NumPyro's "Bayesian Regression Using NumPyro" /
Pyro's autoguide examples (Normal priors on intercept and weights, Bernoulli likelihood
with logits, ``AutoNormal`` with ``init_to_median``), with 60 synthetic points.
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

rng = np.random.default_rng(1)
X_np = rng.normal(size=(60, 2))
p_np = 1.0 / (1.0 + np.exp(-(X_np @ np.array([1.5, -1.0]) + 0.5)))
y_np = (rng.uniform(size=60) < p_np).astype(np.float64)
X = torch.tensor(X_np, dtype=torch.float32)
y = torch.tensor(y_np, dtype=torch.float32)


def model(X, y=None):
    b = pyro.sample("b", dist.Normal(0.0, 2.0))
    w = pyro.sample("w", dist.Normal(torch.zeros(2), 2.0).to_event(1))
    with pyro.plate("data", X.shape[0]):
        pyro.sample("obs", dist.Bernoulli(logits=b + X @ w), obs=y)


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
        svi.step(X, y)
    wall = time.perf_counter() - t0
    store = pyro.get_param_store()
    out = {"params": {k: v.detach().numpy().tolist() for k, v in store.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
