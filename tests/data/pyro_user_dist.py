"""A Pyro program with its own distribution."""

import math

import pyro
import pyro.distributions as dist
import torch
from torch.distributions import constraints
from torch.distributions.utils import broadcast_all


class Shifted(dist.TorchDistribution):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    def rsample(self, sample_shape=torch.Size()):
        eps = torch.randn(self._extended_shape(sample_shape))
        return self.loc + eps * self.scale

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        return -0.5 * z.pow(2) - self.scale.log() - 0.5 * math.log(2 * math.pi)


class Expo(dist.TorchDistribution):
    arg_constraints = {"rate": constraints.positive}
    support = constraints.positive

    def __init__(self, rate, validate_args=None):
        self.rate = torch.as_tensor(rate)
        super().__init__(self.rate.shape, validate_args=validate_args)

    def sample(self, sample_shape=torch.Size()):
        u = torch.rand(self._extended_shape(sample_shape))
        return -torch.log1p(-u) / self.rate

    def log_prob(self, value):
        return torch.log(self.rate) - self.rate * value


def model():
    z = pyro.sample("z", dist.Normal(0.0, 1.0))
    pyro.sample("y", Shifted(z, 1.0), obs=torch.tensor(2.0))
    pyro.sample("t", Expo(2.0), obs=torch.tensor([0.5, 1.5]))


def guide():
    m = pyro.param("m", torch.tensor(0.0))
    s = pyro.param("s", torch.tensor(1.0), constraint=constraints.positive)
    pyro.sample("z", Shifted(m, s))
    pyro.sample("w", Expo(s))
