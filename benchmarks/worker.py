"""One comparison in one process: ``python benchmarks/worker.py <backend> <problem> <particles>``.

Prints one JSON object on its last line of stdout.  ``benchmarks/run.py`` starts
one worker per comparison, so every ratio is taken between variants that ran
side by side (interleaved, round after round) in the same process.

NumPyro variants (µs per step in steady state; compile time apart):
  hand      native ``SVI`` + ``Trace_ELBO`` on the hand-written NumPyro model/guide,
            ``svi.update`` under ``jit`` + ``lax.scan``
  rendered  the same, on the dualguide model/guide rendered for NumPyro
  floor     the same ELBO step in pure JAX (``floors.py``)
  fit       ``dualguide.fit``: marginal cost per step, from fits of N and 2N steps
  svi.run   NumPyro's ``SVI.run`` (it compiles on every call): seconds per call

Pyro variants (µs per step):
  hand_trace / rendered_trace   native ``SVI.step`` with ``Trace_ELBO``
  hand_jit / rendered_jit       native ``SVI.step`` with ``JitTrace_ELBO``
  floor                         the same ELBO step in pure PyTorch
  fit                           ``dualguide.fit``, marginal cost per step (N and 2N)

``worker.py seeds <backend> <problem>`` times ``dualguide.fit(seeds=range(32))`` (one
program) against 32 sequential ``dualguide.fit(seed=s)`` calls, both warm, interleaved.

``worker.py memory <backend> <variant>`` (variant ``fit`` or ``floor``; D=100,000, 16
particles) reports the peak resident memory during steps above the resident memory just
before them, sampled every millisecond by a thread (glibc's mmap threshold is pinned low by
run.py so freed arrays leave the resident set at once).

``worker.py import`` times ``import dualguide`` (with and without loading each
backend) against importing the frameworks alone, each in fresh subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

LR = 0.01


def _settings(quick: bool) -> dict:
    # many short interleaved rounds: on a shared machine their median is steadier than a few
    # long ones
    return {
        "block_s": 0.04 if quick else 0.1,
        "rounds": 5 if quick else 11,
        "budget_s": 6.0 if quick else 25.0,
    }


def _calibrate(fn, n: int, tries: int = 5) -> float:
    """Seconds per step of ``fn`` (which runs n steps): the fastest of a few tries."""
    import time as _t

    best = float("inf")
    for _ in range(tries):
        t = _t.perf_counter()
        fn()
        best = min(best, _t.perf_counter() - t)
    return best / n


def _choose_n(per_step_s: float, block_s: float, lo: int = 5, hi: int = 20_000) -> int:
    n = int(block_s / max(per_step_s, 1e-9))
    return max(lo, min(hi, n))


def _us(seconds_list, n):
    from timing import stats

    return stats([s / n * 1e6 for s in seconds_list])


def _fit_slope(t_n, t_2n, n):
    """Marginal µs/step and fixed seconds per call, from fits of n and 2n steps (medians)."""
    import numpy as np

    a, b = float(np.median(t_n)), float(np.median(t_2n))
    slope = (b - a) / n
    # per-round slopes give the spread
    per_round = [(y - x) / n * 1e6 for x, y in zip(t_n, t_2n)]
    from timing import stats

    s = stats(per_round)
    s["median"] = slope * 1e6
    return s, a - n * slope


# ------------------------------------------------------------------------------------------
# NumPyro
# ------------------------------------------------------------------------------------------
def _fit_kw(prob, backend, P, dg):
    return dict(
        backend=backend,
        model_args=prob.args,
        num_particles=P,
        optim=dg.optim.Adam(lr=LR),
        progress=False,
        seed=0,
        check=False,  # the guide doctor's checks are timed apart (fit_check_s)
    )


def _warm_up_fit(dg, backend):
    """One fit of an unrelated tiny program: the process-wide one-time costs of fit (module
    imports, PRNG registration) stay out of the first-call figure, as they stay out of the
    framework's (measured in an already warm process)."""
    from dualguide import constraints
    from dualguide import distributions as dist

    def model():
        dg.sample("w", dist.Normal(0.0, 1.0))

    def guide():
        dg.sample(
            "w",
            dist.Normal(
                dg.param("w_loc", 0.0), dg.param("w_s", 1.0, constraint=constraints.positive)
            ),
        )

    dg.fit(model, guide, backend=backend, num_steps=3, progress=False, check=False)


def _add_fit_blocks(blocks, prob, fit_kw, n, dg, timed):
    """First call (compile/trace), then fit blocks of n and 2n steps for the interleave."""
    _warm_up_fit(dg, fit_kw["backend"])
    t_first, r = timed(lambda: dg.fit(prob.model, prob.guide, num_steps=n, **fit_kw))
    blocks["fit_N"] = lambda: dg.fit(prob.model, prob.guide, num_steps=n, **fit_kw)
    blocks["fit_2N"] = lambda: dg.fit(prob.model, prob.guide, num_steps=2 * n, **fit_kw)
    return t_first, r


def _fit_results(times, n, t_first, prob, fit_kw, dg, timed, rounds):
    import numpy as np

    slope, fixed = _fit_slope(times["fit_N"], times["fit_2N"], n)
    t_fit_n = float(np.median(times["fit_N"]))
    # the guide doctor's cheap checks (fit(check=True), the default): a one-step fit with and
    # without them
    one = lambda chk: dg.fit(prob.model, prob.guide, num_steps=1, **{**fit_kw, "check": chk})
    one(True)
    with_c = [timed(one, True)[0] for _ in range(max(2, rounds // 3))]
    without = [timed(one, False)[0] for _ in range(max(2, rounds // 3))]
    return slope, {
        # first dg.fit call in this process, minus a warm call of the same length
        "fit_first_call": t_first - t_fit_n,
        # the first call minus its steps: its whole fixed cost (Pyro has no per-process
        # compile, so there the figure of interest is this, not the difference above)
        "fit_first_fixed": t_first - slope["median"] * 1e-6 * n,
        # a warm dg.fit call, minus its steps: init, tracing, transfers
        "fit_warm_call": fixed,
        "fit_check_s": float(np.median(with_c) - np.median(without)),
    }


# ------------------------------------------------------------------------------------------
# NumPyro
# ------------------------------------------------------------------------------------------
def bench_numpyro(prob, P: int, quick: bool) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import numpyro.optim
    from floors import jax_floor
    from jax import lax
    from numpyro.infer import SVI, Trace_ELBO
    from timing import interleave, timed

    import dualguide as dg

    cfg = _settings(quick)
    args = tuple(jnp.asarray(a) for a in prob.args)
    pairs = {
        "hand": prob.native["numpyro"](),
        "rendered": (dg.render(prob.model, "numpyro"), dg.render(prob.guide, "numpyro")),
    }

    def build(model, guide, n):
        svi = SVI(model, guide, numpyro.optim.Adam(LR), Trace_ELBO(num_particles=P))
        state = svi.init(jax.random.PRNGKey(0), *args)
        fn = jax.jit(lambda s, a: lax.scan(lambda c, _: svi.update(c, *a), s, None, length=n))
        tc, compiled = timed(lambda: fn.lower(state, args).compile())
        return svi, state, compiled, tc

    # calibrate N on the hand-written guide
    n_cal = 10  # a rough first look, then a longer one for fast steps
    while True:
        _, st, c, _ = build(*pairs["hand"], n_cal)
        jax.block_until_ready(c(st, args))
        per_step = _calibrate(lambda c=c, st=st: jax.block_until_ready(c(st, args)), n_cal, tries=3)
        if n_cal >= 200 or per_step * n_cal > 0.01:
            break
        n_cal = 200
    N = _choose_n(per_step, cfg["block_s"], lo=5)

    blocks, compile_s, svis = {}, {}, {}
    for name, (m, g) in pairs.items():
        svi, st, c, tc = build(m, g, N)
        compile_s[name] = tc
        svis[name] = svi
        jax.block_until_ready(c(st, args))
        blocks[name] = lambda c=c, st=st: jax.block_until_ready(c(st, args))
    run, carry = jax_floor(prob.name, P, N)
    tc, fc = timed(lambda: run.lower(carry).compile())
    compile_s["floor"] = tc
    jax.block_until_ready(fc(carry))
    blocks["floor"] = lambda: jax.block_until_ready(fc(carry))

    fit_kw = _fit_kw(prob, "numpyro", P, dg)
    t_first, r = _add_fit_blocks(blocks, prob, fit_kw, N, dg, timed)
    times = interleave(blocks, cfg["rounds"], cfg["budget_s"])
    out = {k: _us(times[k], N) for k in ("hand", "rendered", "floor")}
    out["fit"], fit_compile = _fit_results(
        times, N, t_first, prob, fit_kw, dg, timed, cfg["rounds"]
    )

    # NumPyro's SVI.run compiles on every call: its time minus N steady steps (a few calls)
    svi_h = svis["hand"]
    t_run = [
        timed(
            lambda: jax.block_until_ready(
                svi_h.run(jax.random.PRNGKey(0), N, *args, progress_bar=False).losses
            )
        )[0]
        for _ in range(2 if quick else 3)
    ]
    steady = out["hand"]["median"] * 1e-6 * N
    return {
        "N": N,
        "us_per_step": out,
        "compile_s": {
            **compile_s,
            "svi.run_per_call": float(np.median(t_run)) - steady,
            **fit_compile,
        },
        "fit_elbo": r.elbo,
    }


# ------------------------------------------------------------------------------------------
# Pyro
# ------------------------------------------------------------------------------------------
def bench_pyro(prob, P: int, quick: bool) -> dict:
    import pyro
    import torch
    from floors import torch_floor
    from pyro.infer import SVI, JitTrace_ELBO, Trace_ELBO
    from timing import interleave, timed

    import dualguide as dg

    warnings.filterwarnings("ignore")
    cfg = _settings(quick)
    args = tuple(torch.as_tensor(a) for a in prob.args)
    store = pyro.get_param_store()
    pairs = {
        "hand": prob.native["pyro"](),
        "rendered": (dg.render(prob.model, "pyro"), dg.render(prob.guide, "pyro")),
    }

    def build(model, guide, jit):
        kw = dict(
            num_particles=P,
            vectorize_particles=P > 1,
            max_plate_nesting=prob.max_plate_nesting,
        )
        elbo = JitTrace_ELBO(ignore_jit_warnings=True, **kw) if jit else Trace_ELBO(**kw)
        pyro.set_rng_seed(0)
        with store.scope() as state:
            svi = SVI(model, guide, pyro.optim.Adam({"lr": LR}), elbo)
            t_first, _ = timed(svi.step, *args)
            for _ in range(3):
                svi.step(*args)

        def block(n):
            with store.scope(state):
                for _ in range(n):
                    svi.step(*args)

        return block, t_first

    built, compile_s, unavailable = {}, {}, {}
    for name, (m, g) in pairs.items():
        for jit in (False, True):
            key = f"{name}_{'jit' if jit else 'trace'}"
            try:
                built[key], t_first = build(m, g, jit)
            except Exception as e:  # e.g. a custom autograd.Function that torch.jit cannot trace
                unavailable[key] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
                continue
            if jit:
                compile_s[key] = t_first
    step = torch_floor(prob.name, P)
    for _ in range(3):
        step()

    def floor_block(n):
        for _ in range(n):
            step()

    # one N for the Trace_ELBO variants, one for the faster ones (per-step figures either way)
    slow = next(k for k in ("hand_trace", "rendered_trace") if k in built)
    n_slow = _choose_n(_calibrate(lambda: built[slow](3), 3, tries=3), cfg["block_s"], hi=5000)
    fast = next((k for k in ("hand_jit", "rendered_jit") if k in built), None)
    fast_fn = built[fast] if fast else floor_block
    n_fast = _choose_n(_calibrate(lambda: fast_fn(5), 5, tries=3), cfg["block_s"], hi=20000)
    ns = {}
    blocks = {}
    for key, blk in built.items():
        ns[key] = n_slow if key.endswith("_trace") else n_fast
        blocks[key] = lambda blk=blk, n=ns[key]: blk(n)
    ns["floor"] = n_fast
    blocks["floor"] = lambda: floor_block(n_fast)
    # fit blocks: long enough that the per-call tracing does not drown the per-step slope, and
    # (both N and 2N) than fit's threshold for recording the vectorized particles' step
    from dualguide.backends.pyro import fitloop

    n_fit = max(4 * n_fast, fitloop.RECORD_MIN_STEPS + 1)
    fit_kw = _fit_kw(prob, "pyro", P, dg)
    t_first, r = _add_fit_blocks(blocks, prob, fit_kw, n_fit, dg, timed)
    times = interleave(blocks, cfg["rounds"], cfg["budget_s"])
    out = {k: _us(v, ns[k]) for k, v in times.items() if not k.startswith("fit_")}
    out["fit"], fit_compile = _fit_results(
        times, n_fit, t_first, prob, fit_kw, dg, timed, cfg["rounds"]
    )
    return {
        "N": {"trace": n_slow, "jit_floor": n_fast, "fit": n_fit},
        "us_per_step": out,
        "compile_s": {**compile_s, **fit_compile},
        "fit_elbo": r.elbo,
        "unavailable": unavailable,
    }


# ------------------------------------------------------------------------------------------
# import time
# ------------------------------------------------------------------------------------------
IMPORTS = {
    "numpyro": "import numpyro, numpyro.distributions, numpyro.infer",
    "dualguide[numpyro]": "import dualguide; dualguide.set_backend('numpyro')",
    "pyro": "import pyro, pyro.distributions, pyro.infer",
    "dualguide[pyro]": "import dualguide; dualguide.set_backend('pyro')",
    "dualguide": "import dualguide",
}


def bench_import(quick: bool) -> dict:
    from timing import stats

    rounds = 3 if quick else 7
    code = (
        "import time, sys; t = time.perf_counter(); exec(sys.argv[1]); "
        "print(time.perf_counter() - t)"
    )
    env = {k: v for k, v in os.environ.items() if k != "DUALGUIDE_BACKEND"}
    samples = {k: [] for k in IMPORTS}
    for _ in range(rounds):
        for k, stmt in IMPORTS.items():
            res = subprocess.run(
                [sys.executable, "-c", code, stmt], capture_output=True, text=True, env=env
            )
            if res.returncode != 0:
                raise RuntimeError(f"import benchmark {k!r} failed:\n{res.stderr}")
            samples[k].append(float(res.stdout.strip().splitlines()[-1]))
    return {"import_s": {k: stats(v) for k, v in samples.items()}}


# ------------------------------------------------------------------------------------------
# many seeds in one program
# ------------------------------------------------------------------------------------------
SEEDS = 32


def bench_seeds(backend: str, prob, quick: bool) -> dict:
    import numpy as np
    from timing import interleave, stats, timed

    import dualguide as dg

    n = 100 if quick else 300
    kw = {**_fit_kw(prob, backend, 1, dg), "num_steps": n}
    kw.pop("seed")
    seeds = list(range(SEEDS))
    t_first, _ = timed(lambda: dg.fit(prob.model, prob.guide, seeds=seeds, **kw))
    dg.fit(prob.model, prob.guide, seed=0, **kw)  # compile / trace the sequential one too

    blocks = {
        "vectorized": lambda: dg.fit(prob.model, prob.guide, seeds=seeds, **kw),
        "sequential": lambda: [dg.fit(prob.model, prob.guide, seed=s, **kw) for s in seeds],
    }
    times = interleave(blocks, 3 if quick else 5, budget_s=60.0 if quick else 240.0)
    return {
        "seeds": SEEDS,
        "steps": n,
        "seconds": {k: stats(v) for k, v in times.items()},
        "speedup": float(np.median(times["sequential"]) / np.median(times["vectorized"])),
        "vectorized_first_call_s": t_first,
    }


# ------------------------------------------------------------------------------------------
# a batch of datasets / settings in one program
# ------------------------------------------------------------------------------------------
MEMBERS = 32


def batch_members(prob, dg) -> tuple[str, list[dict]]:
    """What the 32 members vary: the data (problems with data: each member's observations
    shifted by its own offset), else the learning rate (0.005 .. 0.02)."""
    import numpy as np

    if prob.args:
        (y,) = prob.args
        return "datasets", [
            {"model_args": ((y + np.float32(0.1 * i)).astype(np.float32),)} for i in range(MEMBERS)
        ]
    lrs = np.linspace(0.005, 0.02, MEMBERS)
    return "learning rates", [{"optim": dg.optim.Adam(lr=float(lr))} for lr in lrs]


def bench_batch(backend: str, prob, quick: bool) -> dict:
    """``dualguide.fit(batch=[32 members])`` (one program) against the 32 separate fits."""
    import numpy as np
    from timing import interleave, stats, timed

    import dualguide as dg

    n = 100 if quick else 300
    kw = {**_fit_kw(prob, backend, 1, dg), "num_steps": n}
    varies, members = batch_members(prob, dg)

    def one(m):
        return dg.fit(prob.model, prob.guide, **{**kw, **m})

    t_first, _ = timed(lambda: dg.fit(prob.model, prob.guide, batch=members, **kw))
    one(members[0])  # compile / trace the sequential one too
    blocks = {
        "vectorized": lambda: dg.fit(prob.model, prob.guide, batch=members, **kw),
        "sequential": lambda: [one(m) for m in members],
    }
    times = interleave(blocks, 3 if quick else 5, budget_s=60.0 if quick else 240.0)
    return {
        "members": MEMBERS,
        "varies": varies,
        "steps": n,
        "seconds": {k: stats(v) for k, v in times.items()},
        "speedup": float(np.median(times["sequential"]) / np.median(times["vectorized"])),
        "vectorized_first_call_s": t_first,
    }


# ------------------------------------------------------------------------------------------
# memory
# ------------------------------------------------------------------------------------------
MEM_D, MEM_P = 100_000, 16


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_during(fn) -> tuple[int, int]:
    """(resident bytes before ``fn()``, peak resident bytes while it ran)."""
    import threading

    base = _rss()
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.001)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        fn()
    finally:
        stop.set()
        th.join()
    return base, max(peak[0], _rss())


def bench_memory(backend: str, variant: str, quick: bool) -> dict:
    import gc

    import problems

    prob = problems.plated_problem(MEM_D)
    n = 20 if quick else 50
    if variant == "floor":
        import floors

        if backend == "numpyro":
            import jax

            run, carry = floors.jax_floor(prob.name, MEM_P, n)
            jax.block_until_ready(run(carry))  # compile

            def steps():
                jax.block_until_ready(run(carry))

        else:
            step = floors.torch_floor(prob.name, MEM_P)
            for _ in range(3):
                step()

            def steps():
                for _ in range(n):
                    step()

    else:
        import dualguide as dg

        kw = {**_fit_kw(prob, backend, MEM_P, dg), "num_steps": n}
        if backend == "pyro":
            return _pyro_fit_memory(prob, dg, kw, quick)
        dg.fit(prob.model, prob.guide, **kw)  # compile / trace and warm

        def steps():
            dg.fit(prob.model, prob.guide, **kw)

    peaks = []
    for _ in range(3 if quick else 5):
        gc.collect()
        base, peak = _peak_during(steps)
        peaks.append(peak - base)
    from timing import stats

    return {
        "D": MEM_D,
        "P": MEM_P,
        "variant": variant,
        "peak_mb": stats([p / 2**20 for p in peaks]),
    }


def _pyro_fit_memory(prob, dg, kw, quick: bool) -> dict:
    """Pyro's fit: the peak while its steps run (from the loop's second step, after the first
    step's JitTrace_ELBO trace, to its end), as the floor's is taken, in a fit long enough
    for the step to be recorded as one program (``fitloop.RECORD_MIN_STEPS``); and the peak
    of the whole call (trace, first step, recording) apart."""
    import gc
    import threading

    from timing import stats

    from dualguide.backends.pyro import fitloop

    kw = {**kw, "num_steps": fitloop.RECORD_MIN_STEPS + 10}
    live: dict = {}
    step, write_back = fitloop._JitLoop.step, fitloop._JitLoop.write_back

    def sample(ev):
        while not ev.is_set():
            live["peak"] = max(live["peak"], _rss())
            time.sleep(0.001)

    def hooked_step(self):
        if "ev" not in live:
            gc.collect()
            live["base"] = live["peak"] = _rss()
            live["ev"] = threading.Event()
            live["th"] = threading.Thread(target=sample, args=(live["ev"],), daemon=True)
            live["th"].start()
        return step(self)

    def hooked_write_back(self):
        if "ev" in live:
            live.pop("ev").set()
            live.pop("th").join()
            live["steps"] = live["peak"] - live["base"]
        return write_back(self)

    fitloop._JitLoop.step = hooked_step  # type: ignore[method-assign]
    fitloop._JitLoop.write_back = hooked_write_back  # type: ignore[method-assign]
    dg.fit(prob.model, prob.guide, **kw)  # warm
    steps_peaks, call_peaks = [], []
    for _ in range(2 if quick else 3):
        gc.collect()
        base, peak = _peak_during(lambda: dg.fit(prob.model, prob.guide, **kw))
        call_peaks.append(peak - base)
        steps_peaks.append(live["steps"])
    return {
        "D": MEM_D,
        "P": MEM_P,
        "variant": "fit",
        "num_steps": kw["num_steps"],
        "peak_mb": stats([p / 2**20 for p in steps_peaks]),
        "call_peak_mb": stats([p / 2**20 for p in call_peaks]),
    }


def _set_threads() -> None:
    """DG_BENCH_THREADS=n: n intra-op threads for torch and XLA (set before they load)."""
    n = os.environ.get("DG_BENCH_THREADS")
    if not n:
        return
    n = int(n)
    if n == 1:
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
            " intra_op_parallelism_threads=1"
        ).strip()
    import torch

    torch.set_num_threads(n)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    quick = "--quick" in argv
    argv = [a for a in argv if a != "--quick"]
    _set_threads()
    t0 = time.perf_counter()
    if argv[0] == "import":
        res = {"kind": "import", **bench_import(quick)}
    elif argv[0] == "seeds":
        import problems

        backend, pname = argv[1], argv[2]
        res = {
            "kind": "seeds",
            "backend": backend,
            "problem": pname,
            **bench_seeds(backend, problems.get(pname), quick),
        }
    elif argv[0] == "batch":
        import problems

        backend, pname = argv[1], argv[2]
        res = {
            "kind": "batch",
            "backend": backend,
            "problem": pname,
            **bench_batch(backend, problems.get(pname), quick),
        }
    elif argv[0] == "memory":
        backend, variant = argv[1], argv[2]
        res = {"kind": "memory", "backend": backend, **bench_memory(backend, variant, quick)}
    else:
        import problems

        backend, pname, P = argv[0], argv[1], int(argv[2])
        prob = problems.get(pname)
        if prob is None:
            res = {"kind": "svi", "backend": backend, "problem": pname, "P": P, "skipped": True}
        else:
            fn = bench_numpyro if backend == "numpyro" else bench_pyro
            res = {
                "kind": "svi",
                "backend": backend,
                "problem": pname,
                "size": prob.size,
                "P": P,
                **fn(prob, P, quick),
            }
    res["worker_s"] = time.perf_counter() - t0
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
