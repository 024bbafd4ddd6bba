"""The rotated mixture (examples/rotated_mixture.py), in plain NumPyro.

Follows dualguide's second seed problem, written natively: improper flat priors on x, y and the target
as a ``factor``; the guide draws u1 from an equal-weight Normal mixture (``MixtureSameFamily``)
and u2 from a Cauchy as auxiliary sites, maps them to (x, y) with the inverse of the seed's map
as ``Delta`` sites and adds log|det| = log sin(2 theta) as the Delta's ``log_density``.
Exact answer: b = 1.5, theta = 0.6.  Fitted with a learning rate that decays over the fit
(``SETTINGS["lr_decay"]``): with a constant one the params keep wandering.  In Pyro,
``MixtureSameFamily`` has no ``rsample``, so the native Pyro original's ``Trace_ELBO`` takes a
score-function gradient for u1 and does not reach the exact answer at these settings (measured:
b 1.0-1.4 over seeds 0..3 at 300 steps, 1.37 at 3000 steps with seed 0); dualguide's Pyro
backend gives the mixture a pathwise gradient, as NumPyro's has, and its fit reaches it (the
gallery's scoreboard checks seeds 0..3).
"""

import json
import time

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import random
from numpyro.distributions import constraints
from numpyro.infer import SVI, Trace_ELBO
from numpyro.optim import ClippedAdam

#: fitting settings shared by both native versions and the gallery's crosscheck
#: (lr_decay: the learning rate falls by this factor over the fit -- ClippedAdam with the
#: per-step decay lrd = lr_decay ** (1 / steps), as Pyro's ClippedAdam applies it.  With a
#: constant step size the params keep wandering: far from theta 0.6 the ELBO gradient
#: estimate is very noisy)
SETTINGS = {"steps": 3000, "particles": 32, "lr": 0.1, "lr_decay": 0.01}

B_TRUE, THETA_TRUE = 1.5, 0.6
C, S = np.cos(THETA_TRUE), np.sin(THETA_TRUE)


def log_target(u1, u2):
    return jnp.logaddexp(-((u1 - B_TRUE) ** 2), -((u1 + B_TRUE) ** 2)) - jnp.log1p(u2**2)


def model():
    x = numpyro.sample("x", dist.ImproperUniform(constraints.real, (), ()))
    y = numpyro.sample("y", dist.ImproperUniform(constraints.real, (), ()))
    numpyro.factor("target", log_target(C * x - S * y, C * x + S * y))


def guide():
    b = numpyro.param("b", 0.5, constraint=constraints.positive)
    theta = numpyro.param("theta", 0.3, constraint=constraints.interval(0.0, np.pi / 2))
    mix = dist.MixtureSameFamily(
        dist.Categorical(probs=jnp.array([0.5, 0.5])),
        dist.Normal(jnp.stack([-b, b]), 1.0 / np.sqrt(2.0)),
    )
    u1 = numpyro.sample("u1", mix, infer={"is_auxiliary": True})
    u2 = numpyro.sample("u2", dist.Cauchy(0.0, 1.0), infer={"is_auxiliary": True})
    c, s = jnp.cos(theta), jnp.sin(theta)
    numpyro.sample("x", dist.Delta((u1 + u2) / (2 * c), log_density=jnp.log(jnp.sin(2 * theta))))
    numpyro.sample("y", dist.Delta((u2 - u1) / (2 * s)))


def run(seed=0):
    lr, lrd = SETTINGS["lr"], SETTINGS["lr_decay"] ** (1 / SETTINGS["steps"])
    # step i (from 0) uses lr * lrd ** (i + 1), as Pyro's ClippedAdam({"lr", "lrd"}) does
    optim = ClippedAdam(step_size=lambda i: lr * lrd ** (i + 1))
    svi = SVI(model, guide, optim, Trace_ELBO(num_particles=SETTINGS["particles"]))
    t0 = time.perf_counter()
    result = svi.run(random.PRNGKey(seed), SETTINGS["steps"], progress_bar=False)
    wall = time.perf_counter() - t0
    out = {"params": {k: np.asarray(v).tolist() for k, v in result.params.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
