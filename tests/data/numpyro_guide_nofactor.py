"""The seed Gaussian written in plain NumPyro, as the seed user had it (input for `dualguide port`)."""

import jax
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.infer import SVI, Trace_ELBO

sig1 = 1.0
sig2 = 2.0


def model_nofactor():
    numpyro.sample("x", dist.Normal(0, sig1))
    numpyro.sample("y", dist.Normal(0, sig2))


def guide_nofactor():
    sig1_q = numpyro.param("sig1_q", 1.0, constraint=constraints.positive)
    sig2_q = numpyro.param("sig2_q", 1.0, constraint=constraints.positive)
    numpyro.sample("x", dist.Normal(0, sig1_q))
    numpyro.sample("y", dist.Normal(0, sig2_q))


optimizer = numpyro.optim.Adam(step_size=0.01)
svi = SVI(model_nofactor, guide_nofactor, optimizer, loss=Trace_ELBO())

if __name__ == "__main__":
    svi_result = svi.run(jax.random.PRNGKey(1), 5000)
    print(svi_result.params)
