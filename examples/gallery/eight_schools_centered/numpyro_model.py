"""Eight schools, centered, with an AutoNormal guide, in plain NumPyro.

Follows the eight schools model of NumPyro's "Getting Started" page (and Pyro's
``examples/eight_schools``): mu ~ Normal(0, 5), tau ~ HalfCauchy(5), theta ~ Normal(mu, tau)
per school; the eight schools' published effects and standard errors.
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

y = jnp.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
sigma = jnp.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def model(sigma, y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("schools", 8):
        theta = numpyro.sample("theta", dist.Normal(mu, tau))
        numpyro.sample("obs", dist.Normal(theta, sigma), obs=y)


guide = AutoNormal(model, init_loc_fn=init_to_median)


def run(seed=0):
    svi = SVI(model, guide, Adam(SETTINGS["lr"]), Trace_ELBO(num_particles=SETTINGS["particles"]))
    t0 = time.perf_counter()
    result = svi.run(random.PRNGKey(seed), SETTINGS["steps"], sigma, y, progress_bar=False)
    wall = time.perf_counter() - t0
    out = {"params": {k: np.asarray(v).tolist() for k, v in result.params.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
