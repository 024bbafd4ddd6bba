"""Negative-binomial (Gamma-Poisson) regression with an AutoNormal guide, in plain NumPyro.

Follows the over-dispersed count GLMs of NumPyro's and Pyro's examples: counts ~
GammaPoisson(phi, phi / mu) with mu = exp(a + b x) and a LogNormal prior on the
concentration phi; ``AutoNormal`` with ``init_to_median``; 50 synthetic counts.
"""

import json
import time

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import random
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal
from numpyro.infer.initialization import init_to_median
from numpyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 2000, "particles": 8, "lr": 0.02}

rng = np.random.default_rng(3)
x_np = np.linspace(-1.0, 1.0, 50)
mu_np = np.exp(1.5 + 0.7 * x_np)
y_np = rng.poisson(rng.gamma(4.0, mu_np / 4.0)).astype(np.float64)
x = jnp.array(x_np, dtype=jnp.float32)
y = jnp.array(y_np, dtype=jnp.float32)


def model(x, y=None):
    a = numpyro.sample("a", dist.Normal(0.0, 2.0))
    b = numpyro.sample("b", dist.Normal(0.0, 1.0))
    phi = numpyro.sample("phi", dist.LogNormal(1.0, 1.0))
    mu = jnp.exp(a + b * x)
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("obs", dist.GammaPoisson(phi, phi / mu), obs=y)


guide = AutoNormal(model, init_loc_fn=init_to_median)


def run(seed=0):
    svi = SVI(model, guide, Adam(SETTINGS["lr"]), Trace_ELBO(num_particles=SETTINGS["particles"]))
    t0 = time.perf_counter()
    result = svi.run(random.PRNGKey(seed), SETTINGS["steps"], x, y, progress_bar=False)
    wall = time.perf_counter() - t0
    out = {"params": {k: np.asarray(v).tolist() for k, v in result.params.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
