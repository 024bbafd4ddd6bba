"""Profile Pyro's Trace_ELBO step on the rendered guide against the hand-written one (issue 10).

    python benchmarks/profiles/issue10_profile.py seed plated10 plated1000 [--rounds 15] [--n 300]

Per problem: interleaved timing (rounds of n steps each, hand and rendered in turn, same
process), then cProfile of n steps of each; prints the per-step ratio and the functions whose
cumulative time differs most between the two (per step).  Not part of the test suite.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402

torch.set_num_threads(1)


def build(prob, model, guide, P=1):
    import pyro
    from pyro.infer import SVI, Trace_ELBO

    args = tuple(torch.as_tensor(a) for a in prob.args)
    store = pyro.get_param_store()
    elbo = Trace_ELBO(
        num_particles=P, vectorize_particles=P > 1, max_plate_nesting=prob.max_plate_nesting
    )
    pyro.set_rng_seed(0)
    with store.scope() as state:
        svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.01}), elbo)
        for _ in range(5):
            svi.step(*args)

    def block(n):
        with store.scope(state):
            for _ in range(n):
                svi.step(*args)

    return block


def own_stats(prof, n):
    """{function label: (tottime us/step, cumtime us/step, calls/step)}"""
    st = pstats.Stats(prof)
    out = {}
    for (file, line, fn), (_cc, nc, tt, ct, _callers) in st.stats.items():
        short = file.split("site-packages/")[-1].replace(str(HERE.parents[1]) + "/", "")
        out[f"{short}:{line}({fn})"] = (tt / n * 1e6, ct / n * 1e6, nc / n)
    return out


def main(argv=None) -> int:
    import problems

    import dualguide as dg

    p = argparse.ArgumentParser()
    p.add_argument("problems", nargs="+")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--particles", type=int, default=1, help="P (vectorized when > 1)")
    a = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    for name in a.problems:
        prob = problems.get(name)
        blocks = {
            "hand": build(prob, *prob.native["pyro"](), P=a.particles),
            "rendered": build(
                prob, dg.render(prob.model, "pyro"), dg.render(prob.guide, "pyro"), P=a.particles
            ),
        }
        # wall time, and this thread's CPU time (torch runs on this one thread): on a shared
        # machine the CPU time is far steadier, as it leaves out the time other jobs ran
        wall = {k: [] for k in blocks}
        cpu = {k: [] for k in blocks}
        for _ in range(a.rounds):
            for k, blk in blocks.items():
                t, c = time.perf_counter(), time.thread_time()
                blk(a.n)
                cpu[k].append((time.thread_time() - c) / a.n * 1e6)
                wall[k].append((time.perf_counter() - t) / a.n * 1e6)
        print(
            f"== {name} P={a.particles}: Trace_ELBO, {a.rounds} interleaved rounds of {a.n} steps"
        )
        for what, times in (("wall", wall), ("cpu", cpu)):
            med = {k: statistics.median(v) for k, v in times.items()}
            per_round = statistics.median(r / h for h, r in zip(times["hand"], times["rendered"]))
            print(
                f"   {what:4s} us/step (median): hand {med['hand']:7.1f}, rendered "
                f"{med['rendered']:7.1f}; rendered/hand {med['rendered'] / med['hand']:.3f} "
                f"(median of per-round ratios {per_round:.3f})"
            )
        profs = {}
        for k, blk in blocks.items():
            pr = cProfile.Profile()
            pr.enable()
            blk(a.n)
            pr.disable()
            profs[k] = own_stats(pr, a.n)
        tot = {k: sum(v[0] for v in s.values()) for k, s in profs.items()}
        print(
            f"   cProfile total (with profiler overhead): hand {tot['hand']:.0f}, "
            f"rendered {tot['rendered']:.0f} us/step"
        )
        keys = set(profs["hand"]) | set(profs["rendered"])
        zero = (0.0, 0.0, 0.0)
        rows = []
        for k in keys:
            h, r = profs["hand"].get(k, zero), profs["rendered"].get(k, zero)
            rows.append((r[0] - h[0], r[1] - h[1], h[2], r[2], k))
        print(f"   functions by extra own time per step, rendered - hand (top {a.top}):")
        print("   d_own_us  d_cum_us  calls_hand calls_rend  function")
        for d_own, d_cum, ch, cr, k in sorted(rows, reverse=True)[: a.top]:
            print(f"   {d_own:8.1f}  {d_cum:8.1f}  {ch:9.1f}  {cr:9.1f}   {k}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
