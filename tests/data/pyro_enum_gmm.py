"""Pyro's Gaussian-mixture tutorial, trimmed: enumerated assignments, MAP locations."""

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, TraceEnum_ELBO, config_enumerate
from pyro.optim import Adam

data = torch.tensor([-0.4, 0.3, 0.9, 4.1, 5.2, 4.7])


@config_enumerate
def model(data):
    weights = torch.tensor([0.35, 0.65])
    locs = pyro.sample("locs", dist.Normal(0.0, 10.0).expand([2]).to_event(1))
    with pyro.plate("data", len(data)):
        assignment = pyro.sample("assignment", dist.Categorical(weights))
        pyro.sample("obs", dist.Normal(locs[assignment], 1.0), obs=data)


def guide(data):
    loc = pyro.param("loc", torch.tensor([0.5, 4.0]))
    pyro.sample("locs", dist.Delta(loc).to_event(1))


if __name__ == "__main__":
    pyro.clear_param_store()
    svi = SVI(model, guide, Adam({"lr": 0.05}), loss=TraceEnum_ELBO(max_plate_nesting=1))
    for _step in range(30):
        loss = svi.step(data)
    print(pyro.param("loc"))
