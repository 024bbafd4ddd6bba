"""Gaussian process classification with a latent-function guide, in plain NumPyro.

Follows the GP classification pattern of Pyro's GP tutorial / NumPyro's GP example, written
without a GP library: f ~ MultivariateNormal(0, K) with a fixed RBF kernel (lengthscale 1,
variance 2), y ~ Bernoulli(logits=f); ``AutoMultivariateNormal``; 15 synthetic points.
"""

import json
import time

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import random
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoMultivariateNormal
from numpyro.infer.initialization import init_to_median
from numpyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 3000, "particles": 8, "lr": 0.01}

rng = np.random.default_rng(8)
x_np = np.linspace(-3.0, 3.0, 15)
y_np = (rng.uniform(size=15) < 1.0 / (1.0 + np.exp(-2.0 * np.sin(x_np)))).astype(np.float64)
x = jnp.array(x_np, dtype=jnp.float32)
y = jnp.array(y_np, dtype=jnp.float32)


def model(x, y=None):
    d = x[:, None] - x[None, :]
    K = 2.0 * jnp.exp(-0.5 * d**2) + 1e-3 * jnp.eye(x.shape[0])
    f = numpyro.sample("f", dist.MultivariateNormal(jnp.zeros(x.shape[0]), covariance_matrix=K))
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("obs", dist.Bernoulli(logits=f), obs=y)


guide = AutoMultivariateNormal(model, init_loc_fn=init_to_median)


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
