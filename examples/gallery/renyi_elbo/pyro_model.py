"""A conjugate Normal model fitted with ``RenyiELBO(alpha=0.5)``, in plain Pyro.

Follows the Renyi divergence objective of Pyro's ``RenyiELBO`` / NumPyro's ``RenyiELBO``
documentation (Li and Turner 2016) on the simplest model where the answer is exact:
mu ~ Normal(0, 1), five observations ~ Normal(mu, 1), a Normal guide; the posterior is in the
guide's family, so for every alpha the optimum is the posterior Normal(sum y / 6, 1/sqrt 6).
"""

import json
import time

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.infer import SVI, RenyiELBO
from pyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 2000, "particles": 8, "lr": 0.02}

data = torch.tensor([0.8, 1.3, 0.4, 1.1, 0.9])


def model(data):
    mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
    with pyro.plate("data", data.shape[0]):
        pyro.sample("obs", dist.Normal(mu, 1.0), obs=data)


def guide(data):
    loc = pyro.param("loc", torch.tensor(0.0))
    scale = pyro.param("scale", torch.tensor(1.0), constraint=constraints.positive)
    pyro.sample("mu", dist.Normal(loc, scale))


def run(seed=0):
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    svi = SVI(
        model,
        guide,
        Adam({"lr": SETTINGS["lr"]}),
        loss=RenyiELBO(alpha=0.5, num_particles=SETTINGS["particles"], vectorize_particles=True),
    )
    t0 = time.perf_counter()
    for _ in range(SETTINGS["steps"]):
        svi.step(data)
    wall = time.perf_counter() - t0
    store = pyro.get_param_store()
    out = {"params": {k: v.detach().numpy().tolist() for k, v in store.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
