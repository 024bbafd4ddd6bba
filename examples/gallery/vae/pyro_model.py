"""A variational autoencoder with an amortized (encoder network) guide, in plain Pyro.

Follows Pyro's "Variational Autoencoders" tutorial and NumPyro's ``examples/vae.py``, small:
2 latent dimensions, one hidden layer of 16 units, a Bernoulli decoder, registered with
``pyro.module (torch.nn layers)``; 64 synthetic 8-pixel binary "images" (two prototypes with noise).
"""

import json
import time

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam
from torch import nn

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 2000, "particles": 1, "lr": 0.01}

rng = np.random.default_rng(12)
protos = np.array([[1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1]], dtype=np.float64)
images_np = np.abs(protos[rng.integers(0, 2, size=64)] - (rng.uniform(size=(64, 8)) < 0.1))
images = torch.tensor(images_np, dtype=torch.float32)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc_loc = nn.Linear(16, 2)
        self.fc_scale = nn.Linear(16, 2)

    def forward(self, x):
        h = nn.functional.softplus(self.fc1(x))
        return self.fc_loc(h), torch.exp(self.fc_scale(h))


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 16)
        self.fc2 = nn.Linear(16, 8)

    def forward(self, z):
        return torch.sigmoid(self.fc2(nn.functional.softplus(self.fc1(z))))


encoder = Encoder()
decoder = Decoder()


def model(images):
    pyro.module("decoder", decoder)
    with pyro.plate("data", images.shape[0]):
        z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
        pyro.sample("obs", dist.Bernoulli(decoder(z)).to_event(1), obs=images)


def guide(images):
    pyro.module("encoder", encoder)
    z_loc, z_scale = encoder(images)
    with pyro.plate("data", images.shape[0]):
        pyro.sample("z", dist.Normal(z_loc, z_scale).to_event(1))


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
    losses = [svi.step(images) for _ in range(SETTINGS["steps"])]
    wall = time.perf_counter() - t0
    store = pyro.get_param_store()
    out = {"params": {k: v.detach().numpy().tolist() for k, v in store.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    # a network's weights differ from fit to fit: compare the loss (last 10% of the steps)
    tail = np.asarray(losses)[-max(1, SETTINGS["steps"] // 10) :]
    out["loss"] = {"mean": float(tail.mean()), "sd": float(tail.std())}
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
