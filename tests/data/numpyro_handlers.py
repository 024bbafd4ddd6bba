"""A NumPyro model that uses effect handlers inside and outside (input for `dualguide port`)."""

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.infer.reparam import LocScaleReparam


def model(y=None):
    x = numpyro.sample("x", dist.Normal(1.0, 2.0))
    with numpyro.plate("data", 3), handlers.scale(scale=2.0):
        numpyro.sample("y", dist.Normal(x, 0.5), obs=y)


@handlers.reparam(config={"z": LocScaleReparam(centered=0.0)})
def noncentered():
    numpyro.sample("z", dist.Normal(1.0, 2.0))


conditioned = handlers.condition(model, data={"x": jnp.array(0.25)})
