"""A Bayesian neural network regression (one hidden tanh layer), in plain Pyro.

Follows NumPyro's ``examples/bnn.py`` (weights with Normal priors, written as matrix products,
a Gamma prior on the noise precision) and Pyro's "Bayesian Neural Networks" tutorial, small:
5 hidden units, 40 synthetic points of y = sin(3x) + noise; ``AutoNormal``.
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

rng = np.random.default_rng(13)
X_np = np.linspace(-1.0, 1.0, 40)[:, None]
y_np = np.sin(3.0 * X_np[:, 0]) + 0.1 * rng.normal(size=40)
X = torch.tensor(X_np, dtype=torch.float32)
y = torch.tensor(y_np, dtype=torch.float32)
H = 5


def model(X, y=None):
    w1 = pyro.sample("w1", dist.Normal(torch.zeros((1, H)), 1.0).to_event(2))
    b1 = pyro.sample("b1", dist.Normal(torch.zeros(H), 1.0).to_event(1))
    w2 = pyro.sample("w2", dist.Normal(torch.zeros(H), 1.0).to_event(1))
    b2 = pyro.sample("b2", dist.Normal(0.0, 1.0))
    prec = pyro.sample("prec", dist.Gamma(3.0, 1.0))
    mu = torch.tanh(X @ w1 + b1) @ w2 + b2
    with pyro.plate("data", X.shape[0]):
        pyro.sample("obs", dist.Normal(mu, 1.0 / torch.sqrt(prec)), obs=y)


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
