"""A Bayesian neural network regression (one hidden tanh layer), in plain NumPyro.

Follows NumPyro's ``examples/bnn.py`` (weights with Normal priors, written as matrix products,
a Gamma prior on the noise precision) and Pyro's "Bayesian Neural Networks" tutorial, small:
5 hidden units, 40 synthetic points of y = sin(3x) + noise; ``AutoNormal``.
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

rng = np.random.default_rng(13)
X_np = np.linspace(-1.0, 1.0, 40)[:, None]
y_np = np.sin(3.0 * X_np[:, 0]) + 0.1 * rng.normal(size=40)
X = jnp.array(X_np, dtype=jnp.float32)
y = jnp.array(y_np, dtype=jnp.float32)
H = 5


def model(X, y=None):
    w1 = numpyro.sample("w1", dist.Normal(jnp.zeros((1, H)), 1.0).to_event(2))
    b1 = numpyro.sample("b1", dist.Normal(jnp.zeros(H), 1.0).to_event(1))
    w2 = numpyro.sample("w2", dist.Normal(jnp.zeros(H), 1.0).to_event(1))
    b2 = numpyro.sample("b2", dist.Normal(0.0, 1.0))
    prec = numpyro.sample("prec", dist.Gamma(3.0, 1.0))
    mu = jnp.tanh(X @ w1 + b1) @ w2 + b2
    with numpyro.plate("data", X.shape[0]):
        numpyro.sample("obs", dist.Normal(mu, 1.0 / jnp.sqrt(prec)), obs=y)


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
