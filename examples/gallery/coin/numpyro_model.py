"""Coin fairness (Beta-Bernoulli) in plain NumPyro.

Follows the coin example of Pyro's "SVI Part I: An Introduction to Stochastic Variational
Inference in Pyro" tutorial (a Beta(10, 10) prior on the coin's fairness, ten tosses, a
Beta guide with two positive params), written natively in NumPyro.  Exact answer: the
posterior is Beta(10 + heads, 10 + tails).
"""

import json
import time

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import random
from numpyro.distributions import constraints
from numpyro.infer import SVI, Trace_ELBO
from numpyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 2000, "particles": 8, "lr": 0.01}

data = jnp.array([1.0] * 6 + [0.0] * 4)


def model(data):
    f = numpyro.sample("latent_fairness", dist.Beta(10.0, 10.0))
    with numpyro.plate("data", data.shape[0]):
        numpyro.sample("obs", dist.Bernoulli(f), obs=data)


def guide(data):
    alpha_q = numpyro.param("alpha_q", 15.0, constraint=constraints.positive)
    beta_q = numpyro.param("beta_q", 15.0, constraint=constraints.positive)
    numpyro.sample("latent_fairness", dist.Beta(alpha_q, beta_q))


def run(seed=0):
    svi = SVI(model, guide, Adam(SETTINGS["lr"]), Trace_ELBO(num_particles=SETTINGS["particles"]))
    t0 = time.perf_counter()
    result = svi.run(random.PRNGKey(seed), SETTINGS["steps"], data, progress_bar=False)
    wall = time.perf_counter() - t0
    params = {k: np.asarray(v).tolist() for k, v in result.params.items()}
    return {"params": params, "steps_per_second": SETTINGS["steps"] / wall}


if __name__ == "__main__":
    print(json.dumps(run()))
