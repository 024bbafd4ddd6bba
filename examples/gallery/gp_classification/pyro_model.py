"""Gaussian process classification with a latent-function guide, in plain Pyro.

Follows the GP classification pattern of Pyro's GP tutorial / NumPyro's GP example, written
without a GP library: f ~ MultivariateNormal(0, K) with a fixed RBF kernel (lengthscale 1,
variance 2), y ~ Bernoulli(logits=f); ``AutoMultivariateNormal``; 15 synthetic points.
"""

import json
import time

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoMultivariateNormal, init_to_median
from pyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 3000, "particles": 8, "lr": 0.01}

rng = np.random.default_rng(8)
x_np = np.linspace(-3.0, 3.0, 15)
y_np = (rng.uniform(size=15) < 1.0 / (1.0 + np.exp(-2.0 * np.sin(x_np)))).astype(np.float64)
x = torch.tensor(x_np, dtype=torch.float32)
y = torch.tensor(y_np, dtype=torch.float32)


def model(x, y=None):
    d = x[:, None] - x[None, :]
    K = 2.0 * torch.exp(-0.5 * d**2) + 1e-3 * torch.eye(x.shape[0])
    f = pyro.sample("f", dist.MultivariateNormal(torch.zeros(x.shape[0]), covariance_matrix=K))
    with pyro.plate("data", x.shape[0]):
        pyro.sample("obs", dist.Bernoulli(logits=f), obs=y)


guide = AutoMultivariateNormal(model, init_loc_fn=init_to_median)


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
