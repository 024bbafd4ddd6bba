"""A NeuTra-style flow guide on a banana target, fitted on NumPyro and on Pyro, cross-checked.

Target (as NumPyro's ``examples/neutra.py``'s banana, small)::

    x1 ~ Normal(0, 1),   x2 | x1 ~ Normal(x1^2, 0.5)

Its normalizer is 1 (a proper prior, no data), so the best possible ELBO is 0 and the gap
``0 - ELBO`` is the KL divergence from the guide to the target.  A diagonal Normal cannot
bend around the banana; ``dg.autoguides.AutoIAFNormal`` (two inverse autoregressive flows,
hidden layers [8, 8], the same architecture on both backends) can.

    python examples/neutra_banana.py                 # both backends, report + plot
    python examples/neutra_banana.py --steps 300     # quicker

The crosscheck compares the two fits' ELBOs (``ELBO +- se``), the log-density and gradient
parity at a common init (the NumPyro init translated to Pyro), and draws both fitted
densities (``neutra_banana.png``).  Network weights are not compared one by one: two fits of
one network end at different weights that give the same density (hidden units can swap),
even on one backend, so the param tolerance is set wide and the ELBO is the verdict.
"""

from __future__ import annotations

import argparse
import math

import dualguide as dg
from dualguide import distributions as dist

#: the fit both backends run
FIT_SETTINGS = {"num_steps": 2000, "num_particles": 8, "optim": dg.optim.Adam(lr=0.005)}


def model():
    x1 = dg.sample("x1", dist.Normal(0.0, 1.0))
    dg.sample("x2", dist.Normal(x1**2, 0.5))


guide = dg.autoguides.AutoIAFNormal(model, hidden_dim=[8, 8], num_transforms=2)
#: the mean-field baseline the flow should beat
baseline = dg.autoguides.AutoDiagonalNormal(model)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=FIT_SETTINGS["num_steps"])
    ap.add_argument("--plot", default="neutra_banana.png", help="where to save the density plot")
    ap.add_argument("--elbo-particles", type=int, default=20000)
    a = ap.parse_args(argv)
    settings = {**FIT_SETTINGS, "num_steps": a.steps}

    report = dg.crosscheck(
        model,
        guide,
        **settings,
        tolerances={"*": {"abs": math.inf, "rel": 0.0}},  # weights: see the docstring
        elbo_particles=a.elbo_particles,
        reference=None,
    )
    print(report)
    if a.plot:
        report.plot(a.plot)
        print(f"saved {a.plot}")
    out = {}
    for b, run in report.runs.items():
        base = dg.fit(model, baseline, backend=b, **settings)
        base_elbo = -float(base.losses[-200:].mean())
        out[b] = (run.elbo, run.elbo_stderr, base_elbo)
        print(
            f"{b:8s} IAF ELBO {run.elbo:+.4f} +- {run.elbo_stderr:.4f}   "
            f"(log Z = 0; AutoDiagonalNormal reaches {base_elbo:+.3f})"
        )
    print("crosscheck:", "ok" if report.ok else "FAILED")
    return out


if __name__ == "__main__":
    main()
