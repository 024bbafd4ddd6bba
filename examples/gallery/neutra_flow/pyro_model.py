"""A normalizing-flow guide (IAF) on a banana-shaped posterior, in plain Pyro.

Follows NumPyro's ``examples/neutra.py`` (a flow autoguide fitted to a banana/dual-moon target)
and Pyro's ``AutoIAFNormal`` documentation, small: x1 ~ Normal(0, 1), x2 ~ Normal(x1^2, 0.5)
(no data), ``AutoIAFNormal`` with two flows of hidden width 8.
"""

import json
import time

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Predictive, Trace_ELBO
from pyro.infer.autoguide import AutoIAFNormal
from pyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 2000, "particles": 8, "lr": 0.005}
#: guide draws for the posterior summaries the gallery compares
POSTERIOR_DRAWS = 4000


def model():
    x1 = pyro.sample("x1", dist.Normal(0.0, 1.0))
    pyro.sample("x2", dist.Normal(x1**2, 0.5))


guide = AutoIAFNormal(model, hidden_dim=[8, 8], num_transforms=2)


def run(seed=0):
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    svi = SVI(
        model,
        guide,
        Adam({"lr": SETTINGS["lr"]}),
        loss=Trace_ELBO(num_particles=SETTINGS["particles"], vectorize_particles=False),
    )
    t0 = time.perf_counter()
    for _ in range(SETTINGS["steps"]):
        svi.step()
    wall = time.perf_counter() - t0
    store = pyro.get_param_store()
    out = {"params": {k: v.detach().numpy().tolist() for k, v in store.items()}}
    # a flow's weights differ from fit to fit (random init): compare the posterior it gives
    with torch.no_grad():
        draws = Predictive(
            model,
            guide=guide,
            num_samples=POSTERIOR_DRAWS,
            return_sites=["x1", "x2"],
            parallel=True,
        )()
    out["posterior"] = {
        k: {"mean": v.mean(0).tolist(), "sd": v.std(0, unbiased=False).tolist()}
        for k, v in draws.items()
    }
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
