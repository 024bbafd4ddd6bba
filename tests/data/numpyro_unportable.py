"""A NumPyro guide with constructs that have no neutral counterpart (input for `dualguide port`)."""

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax import lax
from numpyro import handlers


def guide():
    loc = numpyro.param("loc", jnp.zeros(3))
    with handlers.scale(scale=0.5):
        x = numpyro.sample("x", dist.Normal(loc, 1.0))
    y = lax.fori_loop(0, 3, lambda i, v: v + 1.0, x)
    noise = jax.random.normal(numpyro.prng_key(), (3,))
    numpyro.sample("n", dist.Gompertz(jnp.exp(y + noise)))
    numpyro.sample("z", dist.Normal(0.0, 1.0), sample_shape=(3,))
