"""Eight schools, non-centered, with an AutoNormal guide, in plain Pyro.

Follows the eight schools model of NumPyro's "Getting Started" page (and Pyro's
``examples/eight_schools``): mu ~ Normal(0, 5), tau ~ HalfCauchy(5), theta ~ Normal(mu, tau)
per school, non-centered with ``reparam`` and ``LocScaleReparam(centered=0.0)``; the eight schools' published effects and standard errors.
"""

import json
import time

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoNormal, init_to_median
from pyro.infer.reparam import LocScaleReparam
from pyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 3000, "particles": 8, "lr": 0.02}

y = torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
sigma = torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def model(sigma, y=None):
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(5.0))
    with pyro.plate("schools", 8):
        theta = pyro.sample("theta", dist.Normal(mu, tau))
        pyro.sample("obs", dist.Normal(theta, sigma), obs=y)


reparam_model = poutine.reparam(model, config={"theta": LocScaleReparam(centered=0.0)})
guide = AutoNormal(reparam_model, init_loc_fn=init_to_median)


def run(seed=0):
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    svi = SVI(
        reparam_model,
        guide,
        Adam({"lr": SETTINGS["lr"]}),
        loss=Trace_ELBO(num_particles=SETTINGS["particles"], vectorize_particles=False),
    )
    t0 = time.perf_counter()
    for _ in range(SETTINGS["steps"]):
        svi.step(sigma, y)
    wall = time.perf_counter() - t0
    store = pyro.get_param_store()
    out = {"params": {k: v.detach().numpy().tolist() for k, v in store.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
