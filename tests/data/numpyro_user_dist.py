"""A NumPyro program with its own distribution."""

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.distributions.util import validate_sample


class Shifted(dist.Distribution):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    reparametrized_params = ["loc", "scale"]

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = jnp.broadcast_arrays(jnp.asarray(loc), jnp.asarray(scale))
        super().__init__(batch_shape=jnp.shape(self.loc), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        eps = jax.random.normal(key, shape=sample_shape + self.batch_shape)
        return self.loc + eps * self.scale

    @validate_sample
    def log_prob(self, value):
        z = (value - self.loc) / self.scale
        return -0.5 * z**2 - jnp.log(self.scale) - 0.5 * jnp.log(2 * jnp.pi)


class Expo(dist.Distribution):
    arg_constraints = {"rate": constraints.positive}
    support = constraints.positive

    def __init__(self, rate, validate_args=None):
        self.rate = jnp.asarray(rate)
        super().__init__(batch_shape=jnp.shape(self.rate), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        u = jax.random.uniform(key, sample_shape + self.batch_shape, minval=0.0, maxval=1.0)
        return -jnp.log1p(-u) / self.rate

    def log_prob(self, value):
        return jnp.log(self.rate) - self.rate * value


def model():
    z = numpyro.sample("z", dist.Normal(0.0, 1.0))
    numpyro.sample("y", Shifted(z, 1.0), obs=2.0)
    numpyro.sample("t", Expo(2.0), obs=jnp.array([0.5, 1.5]))


def guide():
    m = numpyro.param("m", 0.0)
    s = numpyro.param("s", 1.0, constraint=constraints.positive)
    numpyro.sample("z", dist.Normal(m, s))
