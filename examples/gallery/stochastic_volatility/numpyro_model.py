"""Stochastic volatility: a Gaussian random walk for the log-volatility, in plain NumPyro.

Follows NumPyro's ``examples/stochastic_volatility.py`` (after Stan's and PyMC's): log-volatility
s is a Gaussian random walk with step size sigma, returns ~ StudentT(nu, 0, exp(s));
``AutoNormal``; 40 synthetic returns instead of the S&P 500 series.  The walk is written as the
cumulative sum of its Normal(0, sigma) increments (non-centered), because NumPyro's
``GaussianRandomWalk`` has no Pyro counterpart: both versions use the same construct.
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

rng = np.random.default_rng(5)
s_np = np.cumsum(0.1 * rng.normal(size=40)) - 1.0
r_np = np.exp(s_np) * rng.standard_t(8.0, size=40)
returns = jnp.array(r_np, dtype=jnp.float32)


def model(returns):
    step_size = numpyro.sample("sigma", dist.Exponential(10.0))
    steps = numpyro.sample("steps", dist.Normal(jnp.zeros(returns.shape[0]), 1.0).to_event(1))
    s = jnp.cumsum(step_size * steps, -1)
    nu = numpyro.sample("nu", dist.Exponential(0.1))
    numpyro.sample("r", dist.StudentT(nu, 0.0, jnp.exp(s)).to_event(1), obs=returns)


guide = AutoNormal(model, init_loc_fn=init_to_median)


def run(seed=0):
    svi = SVI(model, guide, Adam(SETTINGS["lr"]), Trace_ELBO(num_particles=SETTINGS["particles"]))
    t0 = time.perf_counter()
    result = svi.run(random.PRNGKey(seed), SETTINGS["steps"], returns, progress_bar=False)
    wall = time.perf_counter() - t0
    out = {"params": {k: np.asarray(v).tolist() for k, v in result.params.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
