"""The rotated mixture (examples/rotated_mixture.py), in plain Pyro.

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

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import ClippedAdam

#: fitting settings shared by both native versions and the gallery's crosscheck
#: (lr_decay: the learning rate falls by this factor over the fit -- ClippedAdam with the
#: per-step decay lrd = lr_decay ** (1 / steps), as Pyro's ClippedAdam applies it.  With a
#: constant step size the params keep wandering: far from theta 0.6 the ELBO gradient
#: estimate is very noisy)
SETTINGS = {"steps": 3000, "particles": 32, "lr": 0.1, "lr_decay": 0.01}

B_TRUE, THETA_TRUE = 1.5, 0.6
C, S = np.cos(THETA_TRUE), np.sin(THETA_TRUE)


def log_target(u1, u2):
    return torch.logaddexp(-((u1 - B_TRUE) ** 2), -((u1 + B_TRUE) ** 2)) - torch.log1p(u2**2)


def model():
    x = pyro.sample("x", dist.ImproperUniform(constraints.real, (), ()))
    y = pyro.sample("y", dist.ImproperUniform(constraints.real, (), ()))
    pyro.factor("target", log_target(C * x - S * y, C * x + S * y))


def guide():
    b = pyro.param("b", torch.tensor(0.5), constraint=constraints.positive)
    theta = pyro.param("theta", torch.tensor(0.3), constraint=constraints.interval(0.0, np.pi / 2))
    mix = dist.MixtureSameFamily(
        dist.Categorical(probs=torch.tensor([0.5, 0.5])),
        dist.Normal(torch.stack([-b, b]), 1.0 / np.sqrt(2.0)),
    )
    u1 = pyro.sample("u1", mix, infer={"is_auxiliary": True})
    u2 = pyro.sample("u2", dist.Cauchy(0.0, 1.0), infer={"is_auxiliary": True})
    c, s = torch.cos(theta), torch.sin(theta)
    pyro.sample("x", dist.Delta((u1 + u2) / (2 * c), log_density=torch.log(torch.sin(2 * theta))))
    pyro.sample("y", dist.Delta((u2 - u1) / (2 * s)))


def run(seed=0):
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    lrd = SETTINGS["lr_decay"] ** (1 / SETTINGS["steps"])
    svi = SVI(
        model,
        guide,
        ClippedAdam({"lr": SETTINGS["lr"], "lrd": lrd}),
        loss=Trace_ELBO(num_particles=SETTINGS["particles"], vectorize_particles=False),
    )
    t0 = time.perf_counter()
    for _ in range(SETTINGS["steps"]):
        svi.step()
    wall = time.perf_counter() - t0
    store = pyro.get_param_store()
    out = {"params": {k: v.detach().numpy().tolist() for k, v in store.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
