"""Bayesian linear regression in plain NumPyro (after NumPyro's SVI examples): input for the
port -> crosscheck -> export round-trip test."""

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import random
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal, init_to_median
from numpyro.optim import Adam

rng = np.random.default_rng(0)
X = jnp.array(rng.normal(size=(30, 2)), dtype=jnp.float32)
y = jnp.array(X @ np.array([1.0, -0.5]) + 0.5 * rng.normal(size=30))


def model(X, y=None):
    w = numpyro.sample("w", dist.Normal(jnp.zeros(2), 1.0).to_event(1))
    with numpyro.plate("data", X.shape[0]):
        numpyro.sample("obs", dist.Normal(X @ w, 0.5), obs=y)


def guide(X, y=None):
    w_loc = numpyro.param("w_loc", jnp.zeros(2))
    w_scale = numpyro.param("w_scale", 0.1 * jnp.ones(2), constraint=dist.constraints.positive)
    numpyro.sample("w", dist.Normal(w_loc, w_scale).to_event(1))


if __name__ == "__main__":
    auto_guide = AutoNormal(model, init_loc_fn=init_to_median)
    svi = SVI(model, guide, Adam(0.01), Trace_ELBO())
    result = svi.run(random.PRNGKey(0), 2000, X, y=y)
    print(result.params)
