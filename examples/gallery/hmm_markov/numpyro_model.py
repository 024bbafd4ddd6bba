"""A two-state hidden Markov model with ``markov`` and enumerated states, in plain NumPyro.

Follows the HMM of Pyro's ``examples/hmm.py`` (model_1) and NumPyro's "Enumerate hidden Markov
model" example, trimmed: a Python loop under ``markov``, states enumerated in parallel,
``TraceEnum_ELBO``, a MAP guide (``AutoDelta``) on the transition matrix and the emission
locations; 20 synthetic observations.
"""

import json
import time

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import random
from numpyro.contrib.funsor import markov
from numpyro.handlers import block
from numpyro.infer import SVI, TraceEnum_ELBO
from numpyro.infer.autoguide import AutoDelta
from numpyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 1000, "particles": 1, "lr": 0.05}

rng = np.random.default_rng(10)
z_np = np.zeros(20, dtype=int)
for t in range(1, 20):
    z_np[t] = z_np[t - 1] if rng.uniform() < 0.85 else 1 - z_np[t - 1]
obs_np = np.where(z_np == 1, 1.0, -1.0) + 0.5 * rng.normal(size=20)
obs = jnp.array(obs_np, dtype=jnp.float32)


def model(obs):
    trans = numpyro.sample("trans", dist.Dirichlet(jnp.ones((2, 2))).to_event(1))
    locs = numpyro.sample("locs", dist.Normal(jnp.array([-0.5, 0.5]), 1.0).to_event(1))
    z = 0
    for t in markov(range(obs.shape[0])):
        z = numpyro.sample(f"z_{t}", dist.Categorical(trans[z]), infer={"enumerate": "parallel"})
        numpyro.sample(f"y_{t}", dist.Normal(locs[z], 0.5), obs=obs[t])


guide = AutoDelta(block(model, expose=["trans", "locs"]))


def run(seed=0):
    svi = SVI(model, guide, Adam(SETTINGS["lr"]), TraceEnum_ELBO(max_plate_nesting=0))
    t0 = time.perf_counter()
    result = svi.run(random.PRNGKey(seed), SETTINGS["steps"], obs, progress_bar=False)
    wall = time.perf_counter() - t0
    out = {"params": {k: np.asarray(v).tolist() for k, v in result.params.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
