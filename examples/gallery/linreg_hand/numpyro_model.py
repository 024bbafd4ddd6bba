"""Bayesian linear regression with a guide written by hand, in plain NumPyro.

Follows the Bayesian regression of Pyro's "Bayesian Regression - Introduction (Part 1)"
tutorial (Normal priors on the intercept and weights, a mean-field Normal guide with its
params declared by hand), with 40 synthetic points.  Exact answer: the posterior is Gaussian
and the mean-field guide's optimal means are its means.
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

rng = np.random.default_rng(0)
X_np = rng.normal(size=(40, 2))
y_np = X_np @ np.array([1.0, -0.5]) + 0.3 + 0.5 * rng.normal(size=40)
X = jnp.array(X_np, dtype=jnp.float32)
y = jnp.array(y_np, dtype=jnp.float32)


def model(X, y=None):
    b = numpyro.sample("b", dist.Normal(0.0, 1.0))
    w = numpyro.sample("w", dist.Normal(jnp.zeros(2), 1.0).to_event(1))
    with numpyro.plate("data", X.shape[0]):
        numpyro.sample("obs", dist.Normal(b + X @ w, 0.5), obs=y)


def guide(X, y=None):
    b_loc = numpyro.param("b_loc", 0.0)
    b_scale = numpyro.param("b_scale", 0.1, constraint=constraints.positive)
    w_loc = numpyro.param("w_loc", jnp.zeros(2))
    w_scale = numpyro.param("w_scale", 0.1 * jnp.ones(2), constraint=constraints.positive)
    numpyro.sample("b", dist.Normal(b_loc, b_scale))
    numpyro.sample("w", dist.Normal(w_loc, w_scale).to_event(1))


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
