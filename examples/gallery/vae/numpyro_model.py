"""A variational autoencoder with an amortized (encoder network) guide, in plain NumPyro.

Follows Pyro's "Variational Autoencoders" tutorial and NumPyro's ``examples/vae.py``, small:
2 latent dimensions, one hidden layer of 16 units, a Bernoulli decoder, registered with
``numpyro.module (stax layers)``; 64 synthetic 8-pixel binary "images" (two prototypes with noise).
"""

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import random
from jax.example_libraries import stax
from numpyro.infer import SVI, Trace_ELBO
from numpyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 2000, "particles": 1, "lr": 0.01}

rng = np.random.default_rng(12)
protos = np.array([[1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1]], dtype=np.float64)
images_np = np.abs(protos[rng.integers(0, 2, size=64)] - (rng.uniform(size=(64, 8)) < 0.1))
images = jnp.array(images_np, dtype=jnp.float32)

encoder = stax.serial(
    stax.Dense(16),
    stax.Softplus,
    stax.FanOut(2),
    stax.parallel(stax.Dense(2), stax.serial(stax.Dense(2), stax.Exp)),
)
decoder = stax.serial(stax.Dense(16), stax.Softplus, stax.Dense(8), stax.Sigmoid)


def model(images):
    decode = numpyro.module("decoder", decoder, (images.shape[0], 2))
    with numpyro.plate("data", images.shape[0]):
        z = numpyro.sample("z", dist.Normal(jnp.zeros(2), 1.0).to_event(1))
        numpyro.sample("obs", dist.Bernoulli(decode(z)).to_event(1), obs=images)


def guide(images):
    encode = numpyro.module("encoder", encoder, (images.shape[0], 8))
    z_loc, z_scale = encode(images)
    with numpyro.plate("data", images.shape[0]):
        numpyro.sample("z", dist.Normal(z_loc, z_scale).to_event(1))


def run(seed=0):
    svi = SVI(model, guide, Adam(SETTINGS["lr"]), Trace_ELBO(num_particles=SETTINGS["particles"]))
    t0 = time.perf_counter()
    result = svi.run(random.PRNGKey(seed), SETTINGS["steps"], images, progress_bar=False)
    wall = time.perf_counter() - t0
    tolist = lambda a: np.asarray(a).tolist()
    out = {"params": {k: jax.tree_util.tree_map(tolist, v) for k, v in result.params.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    # a network's weights differ from fit to fit: compare the loss (last 10% of the steps)
    tail = np.asarray(result.losses)[-max(1, SETTINGS["steps"] // 10) :]
    out["loss"] = {"mean": float(tail.mean()), "sd": float(tail.std())}
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
