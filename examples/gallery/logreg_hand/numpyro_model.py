"""Bayesian logistic regression with a guide written by hand, in plain NumPyro.

Follows the logistic regression of Pyro's "SVI Part I" / NumPyro's "Bayesian Regression"
material with the guide's params declared by hand (a mean-field Normal on the intercept and
the weights); 60 synthetic points (the same as ``logreg_autonormal``).
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

rng = np.random.default_rng(1)
X_np = rng.normal(size=(60, 2))
p_np = 1.0 / (1.0 + np.exp(-(X_np @ np.array([1.5, -1.0]) + 0.5)))
y_np = (rng.uniform(size=60) < p_np).astype(np.float64)
X = jnp.array(X_np, dtype=jnp.float32)
y = jnp.array(y_np, dtype=jnp.float32)


def model(X, y=None):
    b = numpyro.sample("b", dist.Normal(0.0, 2.0))
    w = numpyro.sample("w", dist.Normal(jnp.zeros(2), 2.0).to_event(1))
    logits = b + jnp.sum(X * w, -1)
    with numpyro.plate("data", X.shape[0]):
        numpyro.sample("obs", dist.Bernoulli(logits=logits), obs=y)


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
