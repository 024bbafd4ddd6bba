"""Cost of Pyro particles the model never sees (docs/particles.md): microseconds per step.

    python benchmarks/particles.py            # all four ways, both problems
    python benchmarks/particles.py vmap jit   # one way

Ways: ``vectorized`` (Pyro's ``vectorize_particles=True``, the old path: the model sees a
particle dimension), ``vmap`` (dualguide's default), ``loop`` (the fallback: one particle
after another); each with ``jit`` (the fast loop) or ``eager`` (``jit=False``).  Problems:
the seed Gaussian and a plated model with D = 1000 latents, 16 particles each.  CPU time
(``time.process_time``) on one torch thread, the difference of two fits of different
lengths (setup and compilation cancel), best of three.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import dualguide as dg
from dualguide import constraints
from dualguide import distributions as dist

ROOT = Path(__file__).resolve().parents[1]
D, P = 1000, 16
DATA = np.random.default_rng(0).normal(size=D).astype(np.float32)


def plated_model(data):
    with dg.plate("d", D):
        z = dg.sample("z", dist.Normal(0.0, 1.0))
        dg.sample("obs", dist.Normal(z, 1.0), obs=data)


def plated_guide(data):
    loc = dg.param("loc", np.zeros(D, np.float32))
    scale = dg.param("scale", np.ones(D, np.float32), constraint=constraints.positive)
    with dg.plate("d", D):
        dg.sample("z", dist.Normal(loc, scale))


def use(way: str) -> None:
    """Make the Pyro fit run its particles ``way``."""
    from pyro.infer import JitTrace_ELBO, Trace_ELBO

    from dualguide.backends.pyro import particles

    if way == "vectorized":

        def make(n, jit=True):
            cls = JitTrace_ELBO if jit else Trace_ELBO
            return cls(num_particles=n, vectorize_particles=n > 1)

        particles.ParticleELBO = make  # type: ignore[misc,assignment]
        return
    init = particles.ParticleELBO.__init__

    def forced(self, *a, **k):
        init(self, *a, **k)
        if self.mode != "single":
            self.mode = way

    particles.ParticleELBO.__init__ = forced  # type: ignore[method-assign]


def us_per_step(model, guide, args, jit: bool, lengths) -> float:
    cpu = []
    for n in lengths:
        best = np.inf
        for _ in range(3):
            t = time.process_time()
            dg.fit(model, guide, backend="pyro", model_args=args, num_particles=P, num_steps=n,
                   jit=jit, check=False, progress=False)  # fmt: skip
            best = min(best, time.process_time() - t)
        cpu.append(best)
    return (cpu[1] - cpu[0]) / (lengths[1] - lengths[0]) * 1e6


def main(argv) -> None:
    import importlib.util
    import subprocess

    import torch

    if argv:  # one way, in this process
        way, mode = argv
        torch.set_num_threads(1)
        use(way)
        spec = importlib.util.spec_from_file_location("sg", ROOT / "examples/seed_gaussian.py")
        assert spec is not None and spec.loader is not None
        sg = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sg)
        jit = mode == "jit"
        seed = us_per_step(sg.model_nofactor, sg.guide, (), jit, (200, 2200) if jit else (100, 400))
        plated = us_per_step(
            plated_model, plated_guide, (DATA,), jit, (50, 350) if jit else (30, 130)
        )
        print(f"{way:10s} {mode:5s} seed {seed:7.0f} us/step   plated D={D} {plated:7.0f} us/step")
        return
    for way, mode in [("vectorized", "jit"), ("vmap", "jit"), ("loop", "jit"),
                      ("vectorized", "eager"), ("vmap", "eager")]:  # fmt: skip
        subprocess.run([sys.executable, __file__, way, mode], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
