"""A mixed-membership topic model (LDA with the word topics summed out), in plain Pyro.

Follows the LDA of Pyro's "Probabilistic Topic Modeling" / ``examples/lda.py`` and NumPyro's
ProdLDA example, small and without a network: topic-word probabilities phi_k ~ Dirichlet(0.5),
document-topic weights theta_d ~ Dirichlet(0.5), each word ~ Categorical(theta_d phi) (the
per-word topic summed out analytically); ``AutoNormal``; 8 synthetic documents of 15 words
over a vocabulary of 6.
"""

import json
import time

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoNormal, init_to_median
from pyro.optim import Adam

#: fitting settings shared by both native versions and the gallery's crosscheck
SETTINGS = {"steps": 2000, "particles": 4, "lr": 0.02}

rng = np.random.default_rng(11)
phi_np = np.array([[0.4, 0.3, 0.2, 0.05, 0.03, 0.02], [0.02, 0.03, 0.05, 0.2, 0.3, 0.4]])
theta_np = rng.dirichlet([0.5, 0.5], size=8)
words_np = np.stack([rng.choice(6, size=15, p=theta_np[d] @ phi_np) for d in range(8)])
words = torch.tensor(words_np.T)  # (words per doc, docs)


def model(words):
    with pyro.plate("topics", 2):
        phi = pyro.sample("phi", dist.Dirichlet(0.5 * torch.ones(6)))
    with pyro.plate("docs", words.shape[1]):
        theta = pyro.sample("theta", dist.Dirichlet(0.5 * torch.ones(2)))
        with pyro.plate("words", words.shape[0]):
            pyro.sample("w", dist.Categorical(probs=theta @ phi), obs=words)


guide = AutoNormal(model, init_loc_fn=init_to_median)


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
        svi.step(words)
    wall = time.perf_counter() - t0
    store = pyro.get_param_store()
    out = {"params": {k: v.detach().numpy().tolist() for k, v in store.items()}}
    out["steps_per_second"] = SETTINGS["steps"] / wall
    return out


if __name__ == "__main__":
    print(json.dumps(run()))
