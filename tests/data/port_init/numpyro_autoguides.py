"""A native numpyro program whose autoguides give no init_loc_fn (tests/test_port_init_defaults.py)."""

import jax
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoDelta, AutoNormal

Y = np.array([2.9, 3.1, 3.3], np.float32)


def model(y):
    mu = numpyro.sample("mu", dist.Normal(3.0, 0.5))
    s = numpyro.sample("s", dist.LogNormal(0.0, 0.3))
    with numpyro.plate("data", 3):
        numpyro.sample("y", dist.Normal(mu, s), obs=y)


guide = AutoDelta(model)
guide_n = AutoNormal(model)

if __name__ == "__main__":
    svi = SVI(model, guide, numpyro.optim.Adam(0.01), Trace_ELBO())
    r = svi.run(jax.random.PRNGKey(0), 100, Y)
