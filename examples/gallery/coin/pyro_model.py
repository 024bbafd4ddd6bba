"""Coin fairness (Beta-Bernoulli) in plain Pyro.

Follows the coin example of Pyro's "SVI Part I: An Introduction to Stochastic Variational
Inference in Pyro" tutorial (a Beta(10, 10) prior on the coin's fairness, ten tosses, a
Beta guide with two positive params).  Exact answer: the posterior is
Beta(10 + heads, 10 + tails).
"""

import json
import time

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 2000, "particles": 8, "lr": 0.01}

data = torch.tensor([1.0] * 6 + [0.0] * 4)


def model(data):
    f = pyro.sample("latent_fairness", dist.Beta(10.0, 10.0))
    with pyro.plate("data", data.shape[0]):
        pyro.sample("obs", dist.Bernoulli(f), obs=data)


def guide(data):
    alpha_q = pyro.param("alpha_q", torch.tensor(15.0), constraint=constraints.positive)
    beta_q = pyro.param("beta_q", torch.tensor(15.0), constraint=constraints.positive)
    pyro.sample("latent_fairness", dist.Beta(alpha_q, beta_q))


def run(seed=0):
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    elbo = Trace_ELBO(num_particles=SETTINGS["particles"], vectorize_particles=True)
    svi = SVI(model, guide, Adam({"lr": SETTINGS["lr"]}), loss=elbo)
    t0 = time.perf_counter()
    for _ in range(SETTINGS["steps"]):
        svi.step(data)
    wall = time.perf_counter() - t0
    params = {k: v.detach().numpy().tolist() for k, v in pyro.get_param_store().items()}
    return {"params": params, "steps_per_second": SETTINGS["steps"] / wall}


if __name__ == "__main__":
    print(json.dumps(run()))
