"""A NumPyro HMM with its hidden chain enumerated (NumPyro's enumeration/HMM example, trimmed)."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.contrib.funsor import config_enumerate, markov
from numpyro.distributions import constraints
from numpyro.infer import SVI, TraceEnum_ELBO
from numpyro.ops.indexing import Vindex

YS = np.array([-2.1, 0.2, 2.2, 2.9, -2.4], np.float32)


@config_enumerate
def model(ys):
    init = numpyro.param("init", jnp.array([0.6, 0.3, 0.1]), constraint=constraints.simplex)
    trans = numpyro.param(
        "trans",
        jnp.array([[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]),
        constraint=constraints.simplex,
    )
    means = numpyro.param("means", jnp.array([-2.0, 0.0, 2.5]))
    z = None
    for t in markov(range(len(ys))):
        probs = init if z is None else Vindex(trans)[z, :]
        z = numpyro.sample(f"z_{t}", dist.Categorical(probs))
        numpyro.sample(f"y_{t}", dist.Normal(means[z], 0.7), obs=ys[t])


def guide(ys):
    pass


if __name__ == "__main__":
    svi = SVI(model, guide, numpyro.optim.Adam(0.02), TraceEnum_ELBO(max_plate_nesting=0))
    result = svi.run(jax.random.PRNGKey(0), 20, YS)
    print(result.params)
