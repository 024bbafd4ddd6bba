"""Bayesian logistic regression with an AutoNormal guide, in plain NumPyro.

Follows the logistic regression of NumPyro's "Bayesian Regression Using NumPyro" /
Pyro's autoguide examples (Normal priors on intercept and weights, Bernoulli likelihood
with logits, ``AutoNormal`` with ``init_to_median``), with 60 synthetic points.
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

rng = np.random.default_rng(1)
X_np = rng.normal(size=(60, 2))
p_np = 1.0 / (1.0 + np.exp(-(X_np @ np.array([1.5, -1.0]) + 0.5)))
y_np = (rng.uniform(size=60) < p_np).astype(np.float64)
X = jnp.array(X_np, dtype=jnp.float32)
y = jnp.array(y_np, dtype=jnp.float32)


def model(X, y=None):
    b = numpyro.sample("b", dist.Normal(0.0, 2.0))
    w = numpyro.sample("w", dist.Normal(jnp.zeros(2), 2.0).to_event(1))
    with numpyro.plate("data", X.shape[0]):
        numpyro.sample("obs", dist.Bernoulli(logits=b + X @ w), obs=y)


guide = AutoNormal(model, init_loc_fn=init_to_median)


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
