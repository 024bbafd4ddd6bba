"""A user distribution."""

import math

import dualguide as dg
from dualguide import constraints, ops
from dualguide import distributions as dist


class Shifted(dist.Distribution):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = ops.broadcast_arrays(ops.asarray(loc), ops.asarray(scale))
        super().__init__(batch_shape=tuple(self.loc.shape), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        shape = tuple(sample_shape) + tuple(self.batch_shape)
        return self.loc + self.scale * key.normal(shape)

    def log_prob(self, value):
        z = (value - self.loc) / self.scale
        return -0.5 * z**2 - ops.log(self.scale) - 0.5 * math.log(2 * math.pi)


def model():
    z = dg.sample("z", dist.Normal(0.0, 1.0))
    dg.sample("y", dist.Normal(z, 1.0), obs=2.0)


def guide():
    m = dg.param("m", 0.0)
    s = dg.param("s", 1.0, constraint=constraints.positive)
    dg.sample("z", Shifted(m, s))
