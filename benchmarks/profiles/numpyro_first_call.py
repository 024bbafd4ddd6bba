"""NumPyro: where a first ``dualguide.fit`` call's time goes, next to ``SVI.run``'s compile.

    PYTHONPATH=$PWD python benchmarks/profiles/numpyro_first_call.py plated1000 1

In a fresh process (one warm-up fit of another program first, as ``benchmarks/worker.py``
does), times the first ``dg.fit`` of ``problem`` with ``P`` particles: when its two XLA
compiles (the init program, in a thread, and the loop) start and how long they take, and
the loop's trace / lower / compile split and HLO size.  Then, for the hand-written and the
rendered program, the same split for the ``jit(scan of svi.update)`` that ``SVI.run``
compiles on every call.  One intra-op thread (``DG_BENCH_THREADS=1``, as the benchmark page).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DG_BENCH_THREADS", "1")

import worker

worker._set_threads()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpyro.optim  # noqa: E402
import problems  # noqa: E402
from jax import lax  # noqa: E402
from numpyro.infer import SVI, Trace_ELBO  # noqa: E402

import dualguide as dg  # noqa: E402
from dualguide.backends.numpyro import fitloop  # noqa: E402


def main(name: str, P: int, steps: int = 100) -> None:
    prob = problems.get(name)
    worker._warm_up_fit(dg, "numpyro")
    t0 = time.perf_counter()
    compiles: list[str] = []
    real_compile_lowered = fitloop._compile_lowered

    def compile_lowered(lowered, small):
        t = time.perf_counter()
        out = real_compile_lowered(lowered, small)
        compiles.append(f"{t - t0:.3f} s + {time.perf_counter() - t:.3f} s")
        return out

    def compile_loop(fn, example, small, lowered_hook=None):
        t = time.perf_counter()
        traced = jax.jit(fn).trace(*example)
        t1 = time.perf_counter()
        lowered = traced.lower()
        t2 = time.perf_counter()
        if lowered_hook is not None:
            lowered_hook()
        out = compile_lowered(lowered, small)
        print(
            f"  fit's loop: trace {t1 - t:.3f} s, lower {t2 - t1:.3f} s, compile "
            f"{time.perf_counter() - t2:.3f} s, HLO {lowered.as_text().count(chr(10))} lines"
        )
        return out

    fitloop._compile_lowered = compile_lowered
    fitloop._compile = compile_loop
    kw = worker._fit_kw(prob, "numpyro", P, dg)
    t0 = time.perf_counter()
    dg.fit(prob.model, prob.guide, num_steps=steps, **kw)
    first = time.perf_counter() - t0
    t = time.perf_counter()
    dg.fit(prob.model, prob.guide, num_steps=steps, **kw)
    print(
        f"{name} P={P}: first fit {first:.3f} s (compiles, start + duration: "
        f"{'; '.join(compiles)}), second fit {time.perf_counter() - t:.3f} s"
    )
    args = tuple(jnp.asarray(a) for a in prob.args)
    pairs = {
        "hand": prob.native["numpyro"](),
        "rendered": (dg.render(prob.model, "numpyro"), dg.render(prob.guide, "numpyro")),
    }
    for rep in range(2):
        for what, (m, g) in pairs.items():
            svi = SVI(m, g, numpyro.optim.Adam(0.01), Trace_ELBO(num_particles=P))
            state = svi.init(jax.random.PRNGKey(0), *args)
            fn = jax.jit(
                lambda s, a, svi=svi, n=steps + rep: lax.scan(
                    lambda c, _: svi.update(c, *a), s, None, length=n
                )
            )
            t = time.perf_counter()
            traced = fn.trace(state, args)
            t1 = time.perf_counter()
            lowered = traced.lower()
            t2 = time.perf_counter()
            lowered.compile()
            print(
                f"  SVI.run's scan, {what}: trace {t1 - t:.3f} s, lower {t2 - t1:.3f} s, "
                f"compile {time.perf_counter() - t2:.3f} s, "
                f"HLO {lowered.as_text().count(chr(10))} lines"
            )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
