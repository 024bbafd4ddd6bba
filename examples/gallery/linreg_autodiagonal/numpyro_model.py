"""Bayesian linear regression with an ``AutoDiagonalNormal`` guide, in plain NumPyro.

Follows the autoguide version of Pyro's "Bayesian Regression - Introduction (Part 1)"
tutorial (``AutoDiagonalNormal``) on the data of ``linreg_hand``, with the mean written as an
elementwise product summed over features (so the model also broadcasts over a particle
dimension).
"""

import json
import time

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import random
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoDiagonalNormal
from numpyro.infer.initialization import init_to_median
from numpyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 2000, "particles": 8, "lr": 0.02}

rng = np.random.default_rng(0)
X_np = rng.normal(size=(40, 2))
y_np = X_np @ np.array([1.0, -0.5]) + 0.3 + 0.5 * rng.normal(size=40)
X = jnp.array(X_np, dtype=jnp.float32)
y = jnp.array(y_np, dtype=jnp.float32)


def model(X, y=None):
    b = numpyro.sample("b", dist.Normal(0.0, 1.0))
    w = numpyro.sample("w", dist.Normal(jnp.zeros(2), 1.0).to_event(1))
    mean = b + jnp.sum(X * w, -1)
    with numpyro.plate("data", X.shape[0]):
        numpyro.sample("obs", dist.Normal(mean, 0.5), obs=y)


guide = AutoDiagonalNormal(model, init_loc_fn=init_to_median)


def run(seed=0):
    svi = SVI(model, guide, Adam(SETTINGS["lr"]), Trace_ELBO(num_particles=SETTINGS["particles"]))
    t0 = time.perf_counter()
    result = svi.run(random.PRNGKey(seed), SETTINGS["steps"], X, y, progress_bar=False)
    wall = time.perf_counter() - t0
    out = {"params": {k: np.asarray(v).tolist() for k, v in result.params.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
