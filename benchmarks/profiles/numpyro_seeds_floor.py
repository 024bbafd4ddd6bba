import os
import sys
import time

os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)
sys.path.insert(0, "benchmarks")
import floors
import jax
import numpy as np
import problems

import dualguide as dg

N = 300
res = {}
for D in (1000, 32000):
    run, carry = floors.jax_floor(f"plated{D}", 1, N)
    jax.block_until_ready(run(carry))
    ts = []
    for _ in range(7):
        t = time.perf_counter()
        jax.block_until_ready(run(carry))
        ts.append(time.perf_counter() - t)
    res[D] = float(np.median(ts))
    print(
        f"pure-JAX floor plated{D}, {N} steps: {res[D] * 1e3:.1f} ms ({res[D] / N * 1e6:.1f} us/step)"
    )
prob = problems.plated_problem(1000)
kw = dict(
    backend="numpyro",
    model_args=prob.args,
    num_steps=N,
    optim=dg.optim.Adam(lr=0.01),
    progress=False,
    check=False,
)
dg.fit(prob.model, prob.guide, seeds=list(range(32)), **kw)
dg.fit(prob.model, prob.guide, seed=0, **kw)
ts, tq = [], []
for _ in range(5):
    t = time.perf_counter()
    dg.fit(prob.model, prob.guide, seeds=list(range(32)), **kw)
    ts.append(time.perf_counter() - t)
    t = time.perf_counter()
    for s in range(32):
        dg.fit(prob.model, prob.guide, seed=s, **kw)
    tq.append(time.perf_counter() - t)
v, q = float(np.median(ts)), float(np.median(tq))
print(
    f"dualguide.fit(seeds=range(32)) one program: {v:.3f} s; 32 sequential fits: {q:.3f} s; speed-up {q / v:.1f}"
)
print(
    f"32 x floor(D=1000) = {32 * res[1000]:.3f} s; floor(D=32000) (the same arithmetic as 32 seeds in one array) = {res[32000]:.3f} s"
)
print(
    f"best possible speed-up of one program over the sequential fits if it ran at the D=32000 floor: {q / res[32000]:.1f}"
)
