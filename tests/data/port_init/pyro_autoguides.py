"""A native pyro program whose autoguides give no init_loc_fn (tests/test_port_init_defaults.py)."""

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoDelta, AutoDiagonalNormal, AutoNormal

Y = torch.tensor([2.9, 3.1, 3.3])


def model(y):
    mu = pyro.sample("mu", dist.Normal(3.0, 0.5))
    s = pyro.sample("s", dist.LogNormal(0.0, 0.3))
    with pyro.plate("data", 3):
        pyro.sample("y", dist.Normal(mu, s), obs=y)


guide = AutoDelta(model)
guide_n = AutoNormal(model)
guide_d = AutoDiagonalNormal(model)

if __name__ == "__main__":
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.01}), Trace_ELBO())
    for _ in range(100):
        svi.step(Y)
