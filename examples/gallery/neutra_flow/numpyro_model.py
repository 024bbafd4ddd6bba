"""A normalizing-flow guide (IAF) on a banana-shaped posterior, in plain NumPyro.

Follows NumPyro's ``examples/neutra.py`` (a flow autoguide fitted to a banana/dual-moon target)
and Pyro's ``AutoIAFNormal`` documentation, small: x1 ~ Normal(0, 1), x2 ~ Normal(x1^2, 0.5)
(no data), ``AutoIAFNormal`` with two flows of hidden width 8.
"""

import json
import time

import jax
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import random
from numpyro.infer import SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoIAFNormal
from numpyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 2000, "particles": 8, "lr": 0.005}
#: guide draws for the posterior summaries the gallery compares
POSTERIOR_DRAWS = 4000


def model():
    x1 = numpyro.sample("x1", dist.Normal(0.0, 1.0))
    numpyro.sample("x2", dist.Normal(x1**2, 0.5))


guide = AutoIAFNormal(model, num_flows=2, hidden_dims=[8, 8])


def run(seed=0):
    svi = SVI(model, guide, Adam(SETTINGS["lr"]), Trace_ELBO(num_particles=SETTINGS["particles"]))
    t0 = time.perf_counter()
    result = svi.run(random.PRNGKey(seed), SETTINGS["steps"], progress_bar=False)
    wall = time.perf_counter() - t0
    tolist = lambda a: np.asarray(a).tolist()
    out = {"params": {k: jax.tree_util.tree_map(tolist, v) for k, v in result.params.items()}}
    # a flow's weights differ from fit to fit (random init): compare the posterior it gives
    draws = Predictive(
        model,
        guide=guide,
        params=result.params,
        num_samples=POSTERIOR_DRAWS,
        return_sites=["x1", "x2"],
    )(random.PRNGKey(seed + 1))
    out["posterior"] = {
        k: {"mean": np.mean(v, 0).tolist(), "sd": np.std(v, 0).tolist()} for k, v in draws.items()
    }
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
