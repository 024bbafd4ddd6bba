"""A guide that provides the model latent x as deterministic() ("Site x must be sampled in trace")."""
import dualguide as dg
from dualguide import constraints
from dualguide import distributions as dist


def model():
    dg.sample("x", dist.Normal(0.0, 1.0))


def guide():
    s = dg.param("s", 1.0, constraint=constraints.positive)
    u = dg.sample("u", dist.Normal(0.0, 1.0), infer={"is_auxiliary": True})
    dg.deterministic("x", s * u)
