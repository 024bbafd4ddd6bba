"""A neutral guide that uses most primitives, ops and argument conventions (for export tests).

The export of this file must trace to the same sites, values and log densities as
dualguide's own rendering, on each backend, with the same seed.
"""

import dualguide as dg
from dualguide import constraints, ops
from dualguide import distributions as dist

SCALE = 2.0
N = 3


def _init_w():
    return ops.ones(N) / N


def guide():
    # params: a list init, a float with a constraint given positionally, a callable init
    loc = dg.param("loc", [0.0, 1.0, -1.0])
    s = dg.param("s", 0.5, constraints.positive)
    w = dg.param("w", _init_w, constraint=constraints.simplex)
    p = dg.param("p", lambda: 0.3, constraint=constraints.interval(0.0, 1.0))
    with dg.plate("items", N, None, -1):  # dim given positionally (Pyro's 4th arg is subsample)
        z = dg.sample("z", dist.Normal(loc, s))
    t = ops.sum(z, axis=0) + ops.logsumexp(z) + ops.max(z) + ops.mean(z, dim=-1, keepdims=False)
    u = ops.stack([ops.exp(SCALE), ops.log1p(s), ops.sigmoid(t)], axis=0)
    v = ops.concatenate([u, ops.zeros(2), ops.full(1, 0.5)])
    # (samplers that compile quickly in eager JAX: no Gamma, Beta or Dirichlet draws)
    dg.sample("g", dist.LogNormal(ops.exp(s), 1.0))
    dg.sample("c", dist.Categorical(probs=w))
    dg.sample("b", dist.Uniform(0.0, 2.0 * p + 1.0))
    dg.sample("e", dist.Exponential(ops.clip(s, 0.1, 10.0)))
    dg.deterministic("v", ops.sum(v * ops.arange(6)))
    m = ops.matmul(ops.eye(N), ops.expand_dims(z, -1))
    dg.factor("f", -ops.square(t) + ops.logaddexp(t, 0.0) - ops.pi + ops.sum(m), has_rsample=True)
    return ops.where(z > 0, z, ops.zeros_like(z))


def model():
    z = dg.sample("z", dist.Normal(ops.zeros(N), 1.0).to_event(1))
    dg.sample("g", dist.LogNormal(0.0, 1.0))
    dg.sample("c", dist.Categorical(logits=ops.zeros(N)))
    dg.sample("b", dist.Beta(2.0, 2.0))
    dg.sample("e", dist.HalfNormal(1.0))
    return z
