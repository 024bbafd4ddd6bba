"""The seed's guide_factor mistake: a param-free Uniform sampler "shaped" by a guide factor.

`dualguide check tests/data/bad_factor_guide.py` exits 1 and says, for x and y, that a factor
in a guide does not change what the guide samples.
"""
import dualguide as dg
from dualguide import constraints, ops
from dualguide import distributions as dist


def model():
    dg.sample("x", dist.Normal(0.0, 1.0))
    dg.sample("y", dist.Normal(0.0, 2.0))


def guide():
    s1 = dg.param("s1", 1.0, constraint=constraints.positive)
    s2 = dg.param("s2", 1.0, constraint=constraints.positive)
    x = dg.sample("x", dist.Uniform(-10.0, 10.0))
    y = dg.sample("y", dist.Uniform(-10.0, 10.0))
    dg.factor("q", -0.5 * ((x / s1) ** 2 + (y / s2) ** 2) - ops.log(s1 * s2))
