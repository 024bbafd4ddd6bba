"""A Pyro model that uses poutine handlers inside and outside."""

import torch
import pyro
import pyro.distributions as dist
from pyro import poutine
from pyro.infer.reparam import LocScaleReparam

data = torch.tensor([0.5, 1.0, 2.0])


def model(y=None):
    x = pyro.sample("x", dist.Normal(1.0, 2.0))
    with pyro.plate("data", 3), poutine.scale(scale=2.0):
        pyro.sample("y", dist.Normal(x, 0.5), obs=y)


@poutine.reparam(config={"z": LocScaleReparam(centered=0.0)})
def noncentered():
    pyro.sample("z", dist.Normal(1.0, 2.0))


conditioned = poutine.condition(model, data={"x": torch.tensor(0.25)})


def guide(y=None):
    loc = pyro.param("loc", torch.tensor(0.0))
    pyro.sample("x", dist.Normal(loc, 1.0))
