"""Hierarchical (radon-style) varying-intercept model with a subsampled data plate, in plain NumPyro.

Follows the radon varying-intercept model of the hierarchical-model tutorials (Pyro's and
NumPyro's "bayesian hierarchical linear regression" pattern): county intercepts a_j ~
Normal(mu_a, sigma_a), log-radon ~ Normal(a[county] + b floor, sigma_y), the 120
observations seen 30 at a time through ``plate(..., subsample_size=30)``; ``AutoNormal``.
Synthetic data (6 counties).
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
SETTINGS = {"steps": 3000, "particles": 8, "lr": 0.02}

rng = np.random.default_rng(4)
county_np = rng.integers(0, 6, size=120)
floor_np = rng.integers(0, 2, size=120).astype(np.float64)
a_np = rng.normal(1.0, 0.5, size=6)
y_np = a_np[county_np] - 0.6 * floor_np + 0.3 * rng.normal(size=120)
county = jnp.array(county_np)
floor = jnp.array(floor_np, dtype=jnp.float32)
log_radon = jnp.array(y_np, dtype=jnp.float32)


def model(county, floor, log_radon=None):
    mu_a = numpyro.sample("mu_a", dist.Normal(0.0, 5.0))
    sigma_a = numpyro.sample("sigma_a", dist.HalfNormal(2.0))
    b = numpyro.sample("b", dist.Normal(0.0, 1.0))
    sigma_y = numpyro.sample("sigma_y", dist.HalfNormal(1.0))
    with numpyro.plate("counties", 6):
        a = numpyro.sample("a", dist.Normal(mu_a, sigma_a))
    with numpyro.plate("data", floor.shape[0], subsample_size=30) as ind:
        mean = a[county[ind]] + b * floor[ind]
        numpyro.sample("obs", dist.Normal(mean, sigma_y), obs=log_radon[ind])


guide = AutoNormal(model, init_loc_fn=init_to_median)


def run(seed=0):
    svi = SVI(model, guide, Adam(SETTINGS["lr"]), Trace_ELBO(num_particles=SETTINGS["particles"]))
    t0 = time.perf_counter()
    result = svi.run(
        random.PRNGKey(seed), SETTINGS["steps"], county, floor, log_radon, progress_bar=False
    )
    wall = time.perf_counter() - t0
    out = {"params": {k: np.asarray(v).tolist() for k, v in result.params.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
