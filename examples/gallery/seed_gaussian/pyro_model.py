"""The seed Gaussian (examples/seed_gaussian.py, the ``nofactor`` model), in plain Pyro.

Follows dualguide's own seed problem, written natively: x ~ Normal(0, 1), y ~ Normal(0, 2) and a
guide that learns the two scales ``sig1_q``, ``sig2_q`` (exact answer: 1 and 2).
"""

import json
import time

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 3000, "particles": 16, "lr": 0.02}


def model():
    pyro.sample("x", dist.Normal(0.0, 1.0))
    pyro.sample("y", dist.Normal(0.0, 2.0))


def guide():
    sig1_q = pyro.param("sig1_q", torch.tensor(1.0), constraint=constraints.positive)
    sig2_q = pyro.param("sig2_q", torch.tensor(1.0), constraint=constraints.positive)
    pyro.sample("x", dist.Normal(0.0, sig1_q))
    pyro.sample("y", dist.Normal(0.0, sig2_q))


def run(seed=0):
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    svi = SVI(
        model,
        guide,
        Adam({"lr": SETTINGS["lr"]}),
        loss=Trace_ELBO(num_particles=SETTINGS["particles"], vectorize_particles=True),
    )
    t0 = time.perf_counter()
    for _ in range(SETTINGS["steps"]):
        svi.step()
    wall = time.perf_counter() - t0
    store = pyro.get_param_store()
    out = {"params": {k: v.detach().numpy().tolist() for k, v in store.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
