"""A neutral program on the distributions Pyro and NumPyro share (issue 12), for export/port."""

import dualguide as dg
from dualguide import constraints, ops
from dualguide import distributions as dist


def model():
    rate = dg.sample("rate", dist.InverseGamma(3.0, 2.0))
    w = dg.sample("w", dist.Weibull(1.5, 2.0))
    chol = ops.asarray([[1.0, 0.0], [0.6, 0.8]])
    dg.sample("chol", dist.LKJCholesky(dim=2, concentration=w), obs=chol)
    dg.sample("S", dist.Wishart(df=4.0, scale_tril=chol), obs=ops.asarray([[3.0, 0.5], [0.5, 2.0]]))
    with dg.plate("n", 4):
        base = dist.Poisson(rate)
        dg.sample(
            "k",
            dist.ZeroInflatedDistribution(base, gate=0.2),
            obs=ops.asarray([1.0, 3.0, 0.0, 2.0]),
        )
        dg.sample("y", dist.Gumbel(w, 1.0), obs=ops.asarray([0.5, 1.0, -0.3, 2.0]))


def guide():
    a = dg.param("a", 0.0)
    b = dg.param("b", 0.5, constraint=constraints.positive)
    c = dg.param("c", 2.0, constraint=constraints.positive)
    dg.sample("rate", dist.LogNormal(a, b))
    dg.sample("w", dist.Gamma(c, 1.0))
