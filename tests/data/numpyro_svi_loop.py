"""A NumPyro program with its own functional SVI loop (input for `dualguide port`):
svi.init / jitted svi.update in a Python loop, lax.scan and lax.fori_loop over svi.update,
svi.get_params, and svi.run's .params / .losses."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import lax, random
from numpyro.distributions import constraints
from numpyro.infer import SVI, Trace_ELBO

# data loading and other plain Python: kept as it is
raw = np.array([0.5, 1.0, 2.0])
data = jnp.array(raw)


def model(y):
    x = numpyro.sample("x", dist.Normal(1.0, 2.0))
    with numpyro.plate("data", 3):
        numpyro.sample("y", dist.Normal(x, 0.5), obs=y)


def guide(y):
    m = numpyro.param("m", 0.0)
    s = numpyro.param("s", 1.0, constraint=constraints.positive)
    numpyro.sample("x", dist.Normal(m, s))


def body(state, _):
    return svi.update(state, data)


if __name__ == "__main__":
    optim = numpyro.optim.Adam(step_size=0.02)
    svi = SVI(model, guide, optim, loss=Trace_ELBO(num_particles=8))
    state = svi.init(random.PRNGKey(0), data)
    update = jax.jit(svi.update)
    for step in range(200):
        state, loss = update(state, data)
        if step % 100 == 0:
            print(f"step {step}: loss {loss:.3f}")
    state, losses = lax.scan(body, state, None, length=200)
    state = lax.fori_loop(0, 100, lambda i, s: svi.update(s, data)[0], state)
    params = svi.get_params(state)
    result = svi.run(random.PRNGKey(1), 500, data, progress_bar=False)
    print("m", params["m"], "run m", result.params["m"], "last losses", jnp.mean(losses[-50:]))
    RESULT = {
        "m": float(params["m"]),
        "s": float(params["s"]),
        "run_m": float(result.params["m"]),
        "run_s": float(result.params["s"]),
        "scan_losses": np.asarray(losses),
        "run_losses": np.asarray(result.losses),
    }
