"""A conjugate Normal model fitted with ``RenyiELBO(alpha=0.5)``, in plain NumPyro.

Follows the Renyi divergence objective of Pyro's ``RenyiELBO`` / NumPyro's ``RenyiELBO``
documentation (Li and Turner 2016) on the simplest model where the answer is exact:
mu ~ Normal(0, 1), five observations ~ Normal(mu, 1), a Normal guide; the posterior is in the
guide's family, so for every alpha the optimum is the posterior Normal(sum y / 6, 1/sqrt 6).
"""

import json
import time

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import random
from numpyro.distributions import constraints
from numpyro.infer import SVI, RenyiELBO
from numpyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 2000, "particles": 8, "lr": 0.02}

data = jnp.array([0.8, 1.3, 0.4, 1.1, 0.9])


def model(data):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    with numpyro.plate("data", data.shape[0]):
        numpyro.sample("obs", dist.Normal(mu, 1.0), obs=data)


def guide(data):
    loc = numpyro.param("loc", 0.0)
    scale = numpyro.param("scale", 1.0, constraint=constraints.positive)
    numpyro.sample("mu", dist.Normal(loc, scale))


def run(seed=0):
    svi = SVI(
        model,
        guide,
        Adam(SETTINGS["lr"]),
        RenyiELBO(alpha=0.5, num_particles=SETTINGS["particles"]),
    )
    t0 = time.perf_counter()
    result = svi.run(random.PRNGKey(seed), SETTINGS["steps"], data, progress_bar=False)
    wall = time.perf_counter() - t0
    out = {"params": {k: np.asarray(v).tolist() for k, v in result.params.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
