"""A mixed-membership topic model (LDA with the word topics summed out), in plain NumPyro.

Follows the LDA of Pyro's "Probabilistic Topic Modeling" / ``examples/lda.py`` and NumPyro's
ProdLDA example, small and without a network: topic-word probabilities phi_k ~ Dirichlet(0.5),
document-topic weights theta_d ~ Dirichlet(0.5), each word ~ Categorical(theta_d phi) (the
per-word topic summed out analytically); ``AutoNormal``; 8 synthetic documents of 15 words
over a vocabulary of 6.
"""

import json
import time

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import random
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal
from numpyro.infer.initialization import init_to_median
from numpyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 2000, "particles": 4, "lr": 0.02}

rng = np.random.default_rng(11)
phi_np = np.array([[0.4, 0.3, 0.2, 0.05, 0.03, 0.02], [0.02, 0.03, 0.05, 0.2, 0.3, 0.4]])
theta_np = rng.dirichlet([0.5, 0.5], size=8)
words_np = np.stack([rng.choice(6, size=15, p=theta_np[d] @ phi_np) for d in range(8)])
words = jnp.array(words_np.T)  # (words per doc, docs)


def model(words):
    with numpyro.plate("topics", 2):
        phi = numpyro.sample("phi", dist.Dirichlet(0.5 * jnp.ones(6)))
    with numpyro.plate("docs", words.shape[1]):
        theta = numpyro.sample("theta", dist.Dirichlet(0.5 * jnp.ones(2)))
        with numpyro.plate("words", words.shape[0]):
            numpyro.sample("w", dist.Categorical(probs=theta @ phi), obs=words)


guide = AutoNormal(model, init_loc_fn=init_to_median)


def run(seed=0):
    svi = SVI(model, guide, Adam(SETTINGS["lr"]), Trace_ELBO(num_particles=SETTINGS["particles"]))
    t0 = time.perf_counter()
    result = svi.run(random.PRNGKey(seed), SETTINGS["steps"], words, progress_bar=False)
    wall = time.perf_counter() - t0
    out = {"params": {k: np.asarray(v).tolist() for k, v in result.params.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
