"""An AR(1) time series, in plain NumPyro.

Follows the autoregressive models of NumPyro's time-series examples and Pyro's forecasting
tutorials, written as a conditional likelihood: y_t ~ Normal(alpha + beta y_(t-1), sigma) with
beta ~ Uniform(-1, 1); ``AutoNormal``; 80 synthetic steps.
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

rng = np.random.default_rng(7)
y_np = np.zeros(80)
for t in range(1, 80):
    y_np[t] = 0.2 + 0.7 * y_np[t - 1] + 0.5 * rng.normal()
y = jnp.array(y_np, dtype=jnp.float32)


def model(y):
    alpha = numpyro.sample("alpha", dist.Normal(0.0, 1.0))
    beta = numpyro.sample("beta", dist.Uniform(-1.0, 1.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    with numpyro.plate("time", y.shape[0] - 1):
        numpyro.sample("obs", dist.Normal(alpha + beta * y[:-1], sigma), obs=y[1:])


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
