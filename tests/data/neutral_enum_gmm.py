"""A Gaussian mixture with enumerated assignments and a point mass on the locations."""

import numpy as np

import dualguide as dg
from dualguide import distributions as dist
from dualguide import ops

X = np.array([-0.4, 0.3, 0.9, 4.1, 5.2, 4.7], np.float32)
MODEL_ARGS = (X,)


@dg.config_enumerate
def model(x):
    w = ops.asarray([0.35, 0.65])
    locs = dg.sample("locs", dist.Normal(0.0, 10.0).expand([2]).to_event(1))
    with dg.plate("data", len(x)):
        z = dg.sample("z", dist.Categorical(w))
        dg.sample("x", dist.Normal(ops.Vindex(locs)[..., z], 1.0), obs=x)


def guide(x):
    dg.sample("locs", dist.Delta(dg.param("l", ops.asarray([0.5, 4.0]))).to_event(1))


FIT_SETTINGS = {
    "loss": dg.infer.TraceEnum_ELBO(max_plate_nesting=1),
    "optim": dg.optim.Adam(lr=0.05),
    "num_steps": 30,
}
