"""A spec file with a model but no guide (for `dualguide check`)."""
import dualguide as dg
from dualguide import distributions as dist


def model():
    dg.sample("x", dist.Normal(0.0, 1.0))


def my_guide_with_another_name():
    dg.sample("x", dist.Normal(0.0, 1.0))
