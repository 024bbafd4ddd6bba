"""Bayesian linear regression in plain Pyro (after Pyro's SVI tutorial): input for the
port -> crosscheck -> export round-trip test."""

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam

rng = np.random.default_rng(0)
X = torch.tensor(rng.normal(size=(30, 2)), dtype=torch.float32)
y = torch.tensor(X.numpy() @ np.array([1.0, -0.5]) + 0.5 * rng.normal(size=30), dtype=torch.float32)


def model(X, y=None):
    w = pyro.sample("w", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    with pyro.plate("data", X.shape[0]):
        pyro.sample("obs", dist.Normal(X @ w, 0.5), obs=y)


def guide(X, y=None):
    w_loc = pyro.param("w_loc", torch.zeros(2))
    w_scale = pyro.param("w_scale", 0.1 * torch.ones(2), constraint=constraints.positive)
    pyro.sample("w", dist.Normal(w_loc, w_scale).to_event(1))


svi = SVI(model, guide, Adam({"lr": 0.01}), loss=Trace_ELBO())

if __name__ == "__main__":
    for step in range(2000):
        svi.step(X, y)
    print({k: v.detach().numpy() for k, v in pyro.get_param_store().items()})
