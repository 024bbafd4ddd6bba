"""Poisson regression (a GLM with a log link) with a hand guide, in plain NumPyro.

Follows the count-regression pattern of NumPyro's and Pyro's GLM examples: Normal priors on
intercept and slope, counts ~ Poisson(exp(a + b x)), a mean-field Normal guide; 40
synthetic counts.
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
SETTINGS = {"steps": 2000, "particles": 8, "lr": 0.02}

rng = np.random.default_rng(2)
x_np = np.linspace(-1.0, 1.0, 40)
y_np = rng.poisson(np.exp(1.0 + 0.8 * x_np)).astype(np.float64)
x = jnp.array(x_np, dtype=jnp.float32)
y = jnp.array(y_np, dtype=jnp.float32)


def model(x, y=None):
    a = numpyro.sample("a", dist.Normal(0.0, 1.0))
    b = numpyro.sample("b", dist.Normal(0.0, 1.0))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("obs", dist.Poisson(jnp.exp(a + b * x)), obs=y)


def guide(x, y=None):
    a_loc = numpyro.param("a_loc", 0.0)
    a_scale = numpyro.param("a_scale", 0.1, constraint=constraints.positive)
    b_loc = numpyro.param("b_loc", 0.0)
    b_scale = numpyro.param("b_scale", 0.1, constraint=constraints.positive)
    numpyro.sample("a", dist.Normal(a_loc, a_scale))
    numpyro.sample("b", dist.Normal(b_loc, b_scale))


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
