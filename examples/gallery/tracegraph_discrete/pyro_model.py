"""A non-reparameterizable (discrete) latent fitted with ``TraceGraph_ELBO``, in plain Pyro.

Follows the score-function estimator of Pyro's "SVI Part III: ELBO Gradient Estimators"
tutorial: a Bernoulli switch z picks the data's mean (0 or 3), the guide is Bernoulli(q) and
the gradient of q comes from the score function (``TraceGraph_ELBO``).  Exact answer: q =
P(z = 1 | data) = 1 / (1 + exp(0.3)) = 0.4256 for the data 1.2, 1.7, 1.5.
"""

import json
import time

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.infer import SVI, TraceGraph_ELBO
from pyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 3000, "particles": 16, "lr": 0.01}

data = torch.tensor([1.2, 1.7, 1.5])


def model(data):
    z = pyro.sample("z", dist.Bernoulli(0.5))
    with pyro.plate("data", data.shape[0]):
        pyro.sample("obs", dist.Normal(3.0 * z, 1.0), obs=data)


def guide(data):
    q = pyro.param("q", torch.tensor(0.5), constraint=constraints.unit_interval)
    pyro.sample("z", dist.Bernoulli(q))


def run(seed=0):
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    svi = SVI(
        model,
        guide,
        Adam({"lr": SETTINGS["lr"]}),
        loss=TraceGraph_ELBO(num_particles=SETTINGS["particles"], vectorize_particles=True),
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
