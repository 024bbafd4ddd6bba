"""A two-state hidden Markov model with ``markov`` and enumerated states, in plain Pyro.

Follows the HMM of Pyro's ``examples/hmm.py`` (model_1) and NumPyro's "Enumerate hidden Markov
model" example, trimmed: a Python loop under ``markov``, states enumerated in parallel,
``TraceEnum_ELBO``, a MAP guide (``AutoDelta``) on the transition matrix and the emission
locations; 20 synthetic observations.
"""

import json
import time

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import SVI, TraceEnum_ELBO
from pyro.infer.autoguide import AutoDelta
from pyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 1000, "particles": 1, "lr": 0.05}

rng = np.random.default_rng(10)
z_np = np.zeros(20, dtype=int)
for t in range(1, 20):
    z_np[t] = z_np[t - 1] if rng.uniform() < 0.85 else 1 - z_np[t - 1]
obs_np = np.where(z_np == 1, 1.0, -1.0) + 0.5 * rng.normal(size=20)
obs = torch.tensor(obs_np, dtype=torch.float32)


def model(obs):
    trans = pyro.sample("trans", dist.Dirichlet(torch.ones((2, 2))).to_event(1))
    locs = pyro.sample("locs", dist.Normal(torch.tensor([-0.5, 0.5]), 1.0).to_event(1))
    z = 0
    for t in pyro.markov(range(obs.shape[0])):
        z = pyro.sample(f"z_{t}", dist.Categorical(trans[z]), infer={"enumerate": "parallel"})
        pyro.sample(f"y_{t}", dist.Normal(locs[z], 0.5), obs=obs[t])


guide = AutoDelta(poutine.block(model, expose=["trans", "locs"]))


def run(seed=0):
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    svi = SVI(model, guide, Adam({"lr": SETTINGS["lr"]}), loss=TraceEnum_ELBO(max_plate_nesting=0))
    t0 = time.perf_counter()
    for _ in range(SETTINGS["steps"]):
        svi.step(obs)
    wall = time.perf_counter() - t0
    store = pyro.get_param_store()
    out = {"params": {k: v.detach().numpy().tolist() for k, v in store.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
