"""A posterior predictive check with ``condition`` and ``Predictive``, in plain Pyro.

Follows the posterior-predictive pattern of Pyro's "Bayesian Regression (Part 1)" tutorial and
NumPyro's "Bayesian Regression" notebook: a generative linear model with no ``obs=``, conditioned
on the data with ``condition``, fitted with a hand guide, then ``Predictive`` draws replicated
data whose mean is compared with the observed mean.  30 synthetic points.
"""

import json
import time

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.infer import SVI, Predictive, Trace_ELBO
from pyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 2000, "particles": 8, "lr": 0.02}

rng = np.random.default_rng(9)
x_np = np.linspace(-1.0, 1.0, 30)
y_np = 0.5 + 1.2 * x_np + 0.3 * rng.normal(size=30)
x = torch.tensor(x_np, dtype=torch.float32)
y = torch.tensor(y_np, dtype=torch.float32)


def model(x):
    a = pyro.sample("a", dist.Normal(0.0, 1.0))
    b = pyro.sample("b", dist.Normal(0.0, 1.0))
    with pyro.plate("data", x.shape[0]):
        return pyro.sample("obs", dist.Normal(a + b * x, 0.3))


conditioned_model = pyro.condition(model, data={"obs": y})


def guide(x):
    a_loc = pyro.param("a_loc", torch.tensor(0.0))
    a_scale = pyro.param("a_scale", torch.tensor(0.1), constraint=constraints.positive)
    b_loc = pyro.param("b_loc", torch.tensor(0.0))
    b_scale = pyro.param("b_scale", torch.tensor(0.1), constraint=constraints.positive)
    pyro.sample("a", dist.Normal(a_loc, a_scale))
    pyro.sample("b", dist.Normal(b_loc, b_scale))


def run(seed=0):
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    svi = SVI(
        conditioned_model,
        guide,
        Adam({"lr": SETTINGS["lr"]}),
        loss=Trace_ELBO(num_particles=SETTINGS["particles"], vectorize_particles=False),
    )
    t0 = time.perf_counter()
    for _ in range(SETTINGS["steps"]):
        svi.step(x)
    wall = time.perf_counter() - t0
    store = pyro.get_param_store()
    out = {"params": {k: v.detach().numpy().tolist() for k, v in store.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    pred = Predictive(model, guide=guide, num_samples=500, return_sites=["obs"])
    rep = pred(x)["obs"]
    out["ppc_mean_gap"] = float(rep.mean() - y.mean())
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
