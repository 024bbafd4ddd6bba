"""A 2-D Gaussian with an LKJCholesky prior on its correlation, in plain NumPyro.

Follows the LKJ covariance model of NumPyro's ``LKJCholesky`` documentation and Pyro's
"Multivariate Gaussian with LKJ prior" example: scales theta ~ HalfCauchy(1), correlation
Cholesky factor L_omega ~ LKJCholesky(2, 2), y ~ MultivariateNormal(mu, scale_tril =
diag(sqrt theta) L_omega); ``AutoNormal``; 50 synthetic points.
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

rng = np.random.default_rng(6)
cov_np = np.array([[1.0, 0.6], [0.6, 2.0]])
y_np = rng.multivariate_normal([0.5, -0.5], cov_np, size=50)
y = jnp.array(y_np, dtype=jnp.float32)


def model(y):
    mu = numpyro.sample("mu", dist.Normal(jnp.zeros(2), 5.0).to_event(1))
    theta = numpyro.sample("theta", dist.HalfCauchy(jnp.ones(2)).to_event(1))
    L_omega = numpyro.sample("L_omega", dist.LKJCholesky(2, concentration=2.0))
    L = jnp.sqrt(theta)[..., None] * L_omega
    with numpyro.plate("obs", y.shape[0]):
        numpyro.sample("y", dist.MultivariateNormal(mu, scale_tril=L), obs=y)


guide = AutoNormal(model, init_loc_fn=init_to_median)


def run(seed=0):
    svi = SVI(model, guide, Adam(SETTINGS["lr"]), Trace_ELBO(num_particles=SETTINGS["particles"]))
    t0 = time.perf_counter()
    result = svi.run(random.PRNGKey(seed), SETTINGS["steps"], y, progress_bar=False)
    wall = time.perf_counter() - t0
    out = {"params": {k: np.asarray(v).tolist() for k, v in result.params.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
