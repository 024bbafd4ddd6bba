"""A Gaussian mixture with enumerated assignments, in plain Pyro.

Follows Pyro's "Gaussian Mixture Model" tutorial (its five data points 0, 1, 10, 11, 12, two
components, ``config_enumerate``, ``TraceEnum_ELBO(max_plate_nesting=1)``, a MAP guide
``AutoDelta`` on the global sites exposed with ``block``).
"""

import json
import time

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import SVI, TraceEnum_ELBO, config_enumerate
from pyro.infer.autoguide import AutoDelta, init_to_value
from pyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 1000, "particles": 1, "lr": 0.05}

data = torch.tensor([0.0, 1.0, 10.0, 11.0, 12.0])
K = 2


@config_enumerate
def model(data):
    weights = pyro.sample("weights", dist.Dirichlet(0.5 * torch.ones(K)))
    scale = pyro.sample("scale", dist.LogNormal(0.0, 2.0))
    with pyro.plate("components", K):
        locs = pyro.sample("locs", dist.Normal(0.0, 10.0))
    with pyro.plate("data", len(data)):
        assignment = pyro.sample("assignment", dist.Categorical(weights))
        pyro.sample("obs", dist.Normal(locs[assignment], scale), obs=data)


init_values = {
    "weights": torch.ones(K) / K,
    "scale": torch.tensor(3.0),
    "locs": torch.tensor([0.0, 10.0]),
}
guide = AutoDelta(
    poutine.block(model, expose=["weights", "locs", "scale"]),
    init_loc_fn=init_to_value(values=init_values),
)


def run(seed=0):
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    svi = SVI(model, guide, Adam({"lr": SETTINGS["lr"]}), loss=TraceEnum_ELBO(max_plate_nesting=1))
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
