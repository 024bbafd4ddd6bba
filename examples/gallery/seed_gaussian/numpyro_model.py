"""The seed Gaussian (examples/seed_gaussian.py, the ``nofactor`` model), in plain NumPyro.

Follows dualguide's own seed problem, written natively: x ~ Normal(0, 1), y ~ Normal(0, 2) and a
guide that learns the two scales ``sig1_q``, ``sig2_q`` (exact answer: 1 and 2).
"""

import json
import time

import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import random
from numpyro.distributions import constraints
from numpyro.infer import SVI, Trace_ELBO
from numpyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 3000, "particles": 16, "lr": 0.02}


def model():
    numpyro.sample("x", dist.Normal(0.0, 1.0))
    numpyro.sample("y", dist.Normal(0.0, 2.0))


def guide():
    sig1_q = numpyro.param("sig1_q", 1.0, constraint=constraints.positive)
    sig2_q = numpyro.param("sig2_q", 1.0, constraint=constraints.positive)
    numpyro.sample("x", dist.Normal(0.0, sig1_q))
    numpyro.sample("y", dist.Normal(0.0, sig2_q))


def run(seed=0):
    svi = SVI(model, guide, Adam(SETTINGS["lr"]), Trace_ELBO(num_particles=SETTINGS["particles"]))
    t0 = time.perf_counter()
    result = svi.run(random.PRNGKey(seed), SETTINGS["steps"], progress_bar=False)
    wall = time.perf_counter() - t0
    out = {"params": {k: np.asarray(v).tolist() for k, v in result.params.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
