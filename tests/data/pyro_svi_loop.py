"""A Pyro program with its own SVI loop, condition and Predictive (input for `dualguide port`)."""

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import SVI, Predictive, Trace_ELBO
from pyro.optim import ClippedAdam

# data loading and other plain Python: kept as it is
raw = np.array([0.5, 1.0, 2.0])
data = torch.tensor(raw)


def model():
    x = pyro.sample("x", dist.Normal(1.0, 2.0))
    with pyro.plate("data", 3):
        pyro.sample("y", dist.Normal(x, 0.5))


def guide():
    m = pyro.param("m", torch.tensor(0.0))
    s = pyro.param("s", torch.tensor(1.0), constraint=dist.constraints.positive)
    pyro.sample("x", dist.Normal(m, s))


conditioned = poutine.condition(model, data={"y": data})

if __name__ == "__main__":
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    optim = ClippedAdam({"lr": 0.05, "lrd": 0.99})
    svi = SVI(conditioned, guide, optim, loss=Trace_ELBO(num_particles=8))
    for step in range(400):
        loss = svi.step()
        if step % 100 == 0:
            print(f"step {step}: loss {loss:.3f}")
    m = pyro.param("m").item()
    s = pyro.param("s").item()
    y_new = Predictive(model, guide=guide, num_samples=400)()["y"]
    print("m", m, "s", s, "E y_new", y_new.mean(0))
    RESULT = {"m": m, "s": s, "y_mean": np.asarray(y_new.mean(0))}
