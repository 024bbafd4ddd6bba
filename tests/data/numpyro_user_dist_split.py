"""A NumPyro distribution that splits its key: the sum of two independent normal draws."""

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints


class SumOfTwo(dist.Distribution):
    arg_constraints = {"loc": constraints.real}
    support = constraints.real

    def __init__(self, loc, validate_args=None):
        self.loc = jnp.asarray(loc)
        super().__init__(batch_shape=jnp.shape(self.loc), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        k1, k2 = jax.random.split(key)
        shape = sample_shape + self.batch_shape
        return self.loc + jax.random.normal(k1, shape) + jax.random.normal(k2, shape)

    def log_prob(self, value):
        return -0.25 * (value - self.loc) ** 2 - 0.5 * jnp.log(4 * jnp.pi)


def model():
    numpyro.sample("x", SumOfTwo(1.0), obs=0.5)


def guide():
    pass
