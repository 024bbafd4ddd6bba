"""A non-reparameterizable (discrete) latent fitted with ``TraceGraph_ELBO``, in plain NumPyro.

Follows the score-function estimator of Pyro's "SVI Part III: ELBO Gradient Estimators"
tutorial: a Bernoulli switch z picks the data's mean (0 or 3), the guide is Bernoulli(q) and
the gradient of q comes from the score function (``TraceGraph_ELBO``).  Exact answer: q =
P(z = 1 | data) = 1 / (1 + exp(0.3)) = 0.4256 for the data 1.2, 1.7, 1.5.
"""

import json
import time

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import random
from numpyro.distributions import constraints
from numpyro.infer import SVI, TraceGraph_ELBO
from numpyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 3000, "particles": 16, "lr": 0.01}

data = jnp.array([1.2, 1.7, 1.5])


def model(data):
    z = numpyro.sample("z", dist.Bernoulli(0.5))
    with numpyro.plate("data", data.shape[0]):
        numpyro.sample("obs", dist.Normal(3.0 * z, 1.0), obs=data)


def guide(data):
    q = numpyro.param("q", 0.5, constraint=constraints.unit_interval)
    numpyro.sample("z", dist.Bernoulli(q))


def run(seed=0):
    svi = SVI(
        model, guide, Adam(SETTINGS["lr"]), TraceGraph_ELBO(num_particles=SETTINGS["particles"])
    )
    t0 = time.perf_counter()
    result = svi.run(random.PRNGKey(seed), SETTINGS["steps"], data, progress_bar=False)
    wall = time.perf_counter() - t0
    out = {"params": {k: np.asarray(v).tolist() for k, v in result.params.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
