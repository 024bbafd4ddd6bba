"""A 2-D Gaussian with an LKJCholesky prior on its correlation, in plain Pyro.

Follows the LKJ covariance model of NumPyro's ``LKJCholesky`` documentation and Pyro's
"Multivariate Gaussian with LKJ prior" example: scales theta ~ HalfCauchy(1), correlation
Cholesky factor L_omega ~ LKJCholesky(2, 2), y ~ MultivariateNormal(mu, scale_tril =
diag(sqrt theta) L_omega); ``AutoNormal``; 50 synthetic points.
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

rng = np.random.default_rng(6)
cov_np = np.array([[1.0, 0.6], [0.6, 2.0]])
y_np = rng.multivariate_normal([0.5, -0.5], cov_np, size=50)
y = torch.tensor(y_np, dtype=torch.float32)


def model(y):
    mu = pyro.sample("mu", dist.Normal(torch.zeros(2), 5.0).to_event(1))
    theta = pyro.sample("theta", dist.HalfCauchy(torch.ones(2)).to_event(1))
    L_omega = pyro.sample("L_omega", dist.LKJCholesky(2, concentration=2.0))
    L = torch.sqrt(theta)[..., None] * L_omega
    with pyro.plate("obs", y.shape[0]):
        pyro.sample("y", dist.MultivariateNormal(mu, scale_tril=L), obs=y)


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
