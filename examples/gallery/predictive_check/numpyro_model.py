"""A posterior predictive check with ``condition`` and ``Predictive``, in plain NumPyro.

Follows the posterior-predictive pattern of Pyro's "Bayesian Regression (Part 1)" tutorial and
NumPyro's "Bayesian Regression" notebook: a generative linear model with no ``obs=``, conditioned
on the data with ``condition``, fitted with a hand guide, then ``Predictive`` draws replicated
data whose mean is compared with the observed mean.  30 synthetic points.
"""

import json
import time

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import random
from numpyro.distributions import constraints
from numpyro.handlers import condition
from numpyro.infer import SVI, Predictive, Trace_ELBO
from numpyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 2000, "particles": 8, "lr": 0.02}

rng = np.random.default_rng(9)
x_np = np.linspace(-1.0, 1.0, 30)
y_np = 0.5 + 1.2 * x_np + 0.3 * rng.normal(size=30)
x = jnp.array(x_np, dtype=jnp.float32)
y = jnp.array(y_np, dtype=jnp.float32)


def model(x):
    a = numpyro.sample("a", dist.Normal(0.0, 1.0))
    b = numpyro.sample("b", dist.Normal(0.0, 1.0))
    with numpyro.plate("data", x.shape[0]):
        return numpyro.sample("obs", dist.Normal(a + b * x, 0.3))


conditioned_model = condition(model, data={"obs": y})


def guide(x):
    a_loc = numpyro.param("a_loc", 0.0)
    a_scale = numpyro.param("a_scale", 0.1, constraint=constraints.positive)
    b_loc = numpyro.param("b_loc", 0.0)
    b_scale = numpyro.param("b_scale", 0.1, constraint=constraints.positive)
    numpyro.sample("a", dist.Normal(a_loc, a_scale))
    numpyro.sample("b", dist.Normal(b_loc, b_scale))


def run(seed=0):
    svi = SVI(
        conditioned_model,
        guide,
        Adam(SETTINGS["lr"]),
        Trace_ELBO(num_particles=SETTINGS["particles"]),
    )
    t0 = time.perf_counter()
    result = svi.run(random.PRNGKey(seed), SETTINGS["steps"], x, progress_bar=False)
    wall = time.perf_counter() - t0
    out = {"params": {k: np.asarray(v).tolist() for k, v in result.params.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    pred = Predictive(model, guide=guide, params=result.params, num_samples=500)
    rep = pred(random.PRNGKey(seed + 1), x)["obs"]
    out["ppc_mean_gap"] = float(rep.mean() - y.mean())
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
