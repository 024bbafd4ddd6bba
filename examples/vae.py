"""A variational autoencoder written once, fitted on NumPyro and on Pyro (amortized inference).

The data: 300 binary 8x8 "blob" images (a filled square of side 3 to 5 at a random place,
5 % of the pixels flipped).  The model: z ~ Normal(0, I) in 2 dims, pixels ~
Bernoulli(decoder(z)); the guide: an encoder network that maps an image to the loc and scale
of its z (Pyro's VAE tutorial and NumPyro's ``examples/vae.py``, small).  Both networks are
``dualguide.nn`` modules, so the same seed gives the same initial weights on both backends.

    python examples/vae.py                       # both backends, 3000 steps, vae_recon.png
    python examples/vae.py --steps 300 --backend pyro --no-plot
    python examples/vae.py --crosscheck          # + dg.crosscheck's lockstep and ELBO check

It prints each backend's final loss and held-out ELBO (with its standard error) and saves
a plot of a few images and their reconstructions (mean of the decoder at the encoder's loc)
from each backend.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import dualguide as dg
from dualguide import distributions as dist
from dualguide import nn, ops

SIDE, LATENT, HIDDEN = 8, 2, 64
D = SIDE * SIDE


def blobs(n: int, seed: int = 0) -> np.ndarray:
    """``n`` flattened 8x8 binary images: a random square of side 3-5, 5 % pixels flipped."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, SIDE, SIDE), np.float32)
    for img in out:
        s = rng.integers(3, 6)
        r, c = rng.integers(0, SIDE - s + 1, size=2)
        img[r : r + s, c : c + s] = 1.0
    flip = rng.uniform(size=out.shape) < 0.05
    return np.abs(out - flip).reshape(n, D).astype(np.float32)


IMAGES = blobs(300, seed=0)
TEST = blobs(100, seed=1)


class Encoder(nn.Module):
    """image -> (loc, scale) of z, as Pyro's tutorial writes it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(D, HIDDEN)
        self.fc_loc = nn.Linear(HIDDEN, LATENT)
        self.fc_scale = nn.Linear(HIDDEN, LATENT)

    def forward(self, x):
        h = ops.softplus(self.fc1(x))
        return self.fc_loc(h), ops.exp(self.fc_scale(h))


nn.manual_seed(0)  # the initial weights: the same on both backends
encoder = Encoder()
decoder = nn.MLP([LATENT, HIDDEN, D], activation=nn.Softplus, output_activation=nn.Sigmoid)


def model(x):
    decode = dg.nn.module("decoder", decoder)
    with dg.plate("data", x.shape[0]):
        z = dg.sample("z", dist.Normal(ops.zeros(LATENT), 1.0).to_event(1))
        dg.sample("obs", dist.Bernoulli(decode(z)).to_event(1), obs=x)


def guide(x):
    encode = dg.nn.module("encoder", encoder)
    loc, scale = encode(x)
    with dg.plate("data", x.shape[0]):
        dg.sample("z", dist.Normal(loc, scale).to_event(1))


def reconstruct(params: dict, x: np.ndarray, backend: str) -> np.ndarray:
    """The decoder's pixel probabilities at the encoder's loc, with fitted ``params``."""
    with dg.use_backend(backend):
        encoder.load(params, name="encoder")
        decoder.load(params, name="decoder")
        loc, _scale = encoder(x)
        return ops.to_numpy(decoder(loc))


def plot(recons: dict, x: np.ndarray, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("data", x)] + list(recons.items())
    fig, axes = plt.subplots(len(rows), len(x), figsize=(1.2 * len(x), 1.3 * len(rows)))
    for i, (label, imgs) in enumerate(rows):
        for j, img in enumerate(imgs):
            ax = axes[i, j]
            ax.imshow(img.reshape(SIDE, SIDE), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i, 0].set_ylabel(label, fontsize=9)
    fig.suptitle("VAE reconstructions: data, then each backend's decoder(encoder loc)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    print(f"saved {path}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=["numpyro", "pyro", "both"], default="both")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", default="vae_recon.png", help="where to save the reconstructions")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--crosscheck", action="store_true", help="also run dg.crosscheck")
    a = p.parse_args(argv)
    backends = ["numpyro", "pyro"] if a.backend == "both" else [a.backend]
    opt = dg.optim.Adam(lr=0.01)
    recons = {}
    for b in backends:
        r = dg.fit(
            model,
            guide,
            backend=b,
            model_args=(IMAGES,),
            num_steps=a.steps,
            optim=opt,
            seed=a.seed,
            progress=False,
        )
        m, se = dg.crosscheck.elbo_estimate(
            model, guide, r.params, backend=b, num_particles=200, model_args=(TEST,)
        )
        print(
            f"{b:8s} loss {r.losses[:50].mean():8.1f} -> {r.losses[-50:].mean():7.1f} "
            f"(per image {r.losses[-50:].mean() / len(IMAGES):.2f} nats); held-out ELBO "
            f"{m:.1f} +- {se:.1f} ({r.wall_time:.1f} s, {r.elbo})"
        )
        recons[b] = reconstruct(r.params, TEST[:10], b)
    if not a.no_plot:
        plot(recons, TEST[:10], a.plot)
    if a.crosscheck:
        rep = dg.crosscheck(
            model,
            guide,
            (IMAGES,),
            optim=opt,
            num_steps=min(a.steps, 500),
            checks=("logdensity", "lockstep"),
            reference=None,
            elbo_particles=500,
            progress=False,
        )
        print(rep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
