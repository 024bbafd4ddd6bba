"""NumPyro fit / floor on the plated rows: where the step's extra time is.

    PYTHONPATH=$PWD python benchmarks/profiles/numpyro_fit_floor.py plated100000 1

Counts the full-size (D-element or larger) operations of one step in the jaxpr of the
pure-JAX floor (``benchmarks/floors.py``), of NumPyro's ``svi.update`` (Trace_ELBO) on the
hand-written and on the rendered program, and times, interleaved in this process, the
floor, the hand-written ``svi.update`` scan, the rendered one and ``dualguide.fit``'s
compiled chunk (µs per step, median of the rounds).
"""

from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.optim
import problems
from floors import jax_floor
from jax import lax
from numpyro.infer import SVI, Trace_ELBO

import dualguide as dg
from dualguide import _state
from dualguide.backends.numpyro import fitloop


def big_ops(jaxpr, D: int) -> collections.Counter:
    """Primitives of ``jaxpr`` (nested jaxprs included) with an output of >= D elements."""
    out: collections.Counter = collections.Counter()

    def walk(j):
        for e in j.eqns:
            for p in e.params.values():
                for sub in p if isinstance(p, (list, tuple)) else [p]:
                    if hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
                        walk(sub.jaxpr)
                    elif hasattr(sub, "eqns"):
                        walk(sub)
            if any(int(np.prod(getattr(v.aval, "shape", ()))) >= D for v in e.outvars):
                out[e.primitive.name] += 1

    walk(jaxpr.jaxpr)
    return out


def main(name: str, P: int, rounds: int = 9) -> None:
    D = int(name[len("plated") :])
    prob = problems.get(name)
    b = _state.resolve("numpyro")
    args = tuple(b.to_array(a) for a in prob.args)
    N = max(20, int(2e5 / D))
    svis = {
        "hand": SVI(*prob.native["numpyro"](), numpyro.optim.Adam(0.01), Trace_ELBO(P)),
        "rendered": SVI(
            dg.render(prob.model, b),
            dg.render(prob.guide, b),
            b.optimizer(dg.optim.Adam(lr=0.01)),
            Trace_ELBO(P),
        ),
    }
    run, carry = jax_floor(name, P, N)
    print(f"{name} P={P}: full-size ops in one step's jaxpr (value and gradient and Adam)")
    counts = {"floor": big_ops(jax.make_jaxpr(run)(carry), D)}
    states = {k: s.init(jax.random.PRNGKey(0), *args) for k, s in svis.items()}
    for k, s in svis.items():
        counts[k] = big_ops(jax.make_jaxpr(lambda st, s=s: s.update(st, *args))(states[k]), D)
    for k, c in counts.items():
        top = ", ".join(f"{p} x{n}" for p, n in c.most_common(8))
        print(f"  {k:9s} {sum(c.values()):4d} ops: {top}")

    blocks = {}
    fc = run.lower(carry).compile()
    blocks["floor"] = lambda: jax.block_until_ready(fc(carry))
    for k, s in svis.items():
        c = (
            jax.jit(lambda st, a, s=s: lax.scan(lambda x, _: s.update(x, *a), st, None, length=N))
            .lower(states[k], args)
            .compile()
        )
        blocks[k] = lambda c=c, st=states[k]: jax.block_until_ready(c(st, args))
    dyn, info, leaves = fitloop._split_args(args, {})
    st = states["rendered"]
    ex = (st, jnp.int32(0), jnp.int32(N), dyn)
    small = 2 * D <= fitloop.SMALL_MODEL
    chunk = fitloop._compile(fitloop._build(svis["rendered"], False, info, leaves), ex, small)
    blocks["fit chunk"] = lambda: jax.block_until_ready(chunk(*ex))
    for f in blocks.values():
        f()
    times: dict = {k: [] for k in blocks}
    for _ in range(rounds):
        for k, f in blocks.items():
            t = time.perf_counter()
            f()
            times[k].append((time.perf_counter() - t) / N * 1e6)
    floor = float(np.median(times["floor"]))
    print(f"  interleaved, {rounds} rounds of {N} steps (us/step, median; ratio to the floor):")
    for k, v in times.items():
        print(f"  {k:9s} {np.median(v):10.1f}  {np.median(v) / floor:.2f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
