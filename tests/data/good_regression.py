"""A correct regression model and guide with data via MODEL_ARGS (`dualguide check` exits 0)."""
import numpy as np

import dualguide as dg
from dualguide import constraints, ops
from dualguide import distributions as dist

X = np.linspace(-1.0, 1.0, 20).reshape(10, 2).astype(np.float32)
Y = (X @ np.array([1.0, -2.0], dtype=np.float32)).astype(np.float32)
MODEL_ARGS = (X, Y)


def model(x, y):
    w = dg.sample("w", dist.Normal(ops.zeros(2), 1.0).to_event(1))
    with dg.plate("data", 10):
        dg.sample("obs", dist.Normal(ops.matmul(x, w), 0.5), obs=y)


def guide(x, y):
    loc = dg.param("w_loc", np.zeros(2, dtype=np.float32))
    scale = dg.param("w_scale", np.ones(2, dtype=np.float32), constraint=constraints.positive)
    dg.sample("w", dist.Normal(loc, scale).to_event(1))
