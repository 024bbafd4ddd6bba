# ruff: noqa: E402  (a profiling script: it sets threads and warnings before importing the frameworks)
import cProfile
import pstats
import sys
import time
import warnings

sys.path.insert(0, "benchmarks")
warnings.filterwarnings("ignore")
import pyro
import torch

torch.set_num_threads(1)
import problems
from pyro.infer import SVI, Trace_ELBO

import dualguide as dg

prob = problems.get("mixture")
store = pyro.get_param_store()
pairs = {
    "hand": prob.native["pyro"](),
    "rendered": (dg.render(prob.model, "pyro"), dg.render(prob.guide, "pyro")),
}
counts = {}
py_calls = {}
for P in (1,):
    for name, (m, g) in pairs.items():
        pyro.set_rng_seed(0)
        with store.scope():
            svi = SVI(
                m,
                g,
                pyro.optim.Adam({"lr": 0.01}),
                Trace_ELBO(
                    num_particles=P,
                    vectorize_particles=P > 1,
                    max_plate_nesting=prob.max_plate_nesting,
                ),
            )
            for _ in range(20):
                svi.step()
            with torch.profiler.profile() as prof:
                for _ in range(50):
                    svi.step()
            ev = prof.key_averages()
            n_ops = sum(e.count for e in ev if e.key.startswith("aten::")) / 50
            cpu = sum(e.self_cpu_time_total for e in ev if e.key.startswith("aten::")) / 50
            t0 = time.perf_counter()
            for _ in range(200):
                svi.step()
            dt = (time.perf_counter() - t0) / 200 * 1e6
            # Python calls per step by where the function lives (the cost aten ops do not show)
            prof_py = cProfile.Profile()
            prof_py.enable()
            for _ in range(50):
                svi.step()
            prof_py.disable()
            by_area = {}
            for (path, _line, _fn), st in pstats.Stats(prof_py).stats.items():
                area = next(
                    (a for a in ("dualguide", "examples", "pyro", "torch") if f"/{a}/" in path),
                    "other",
                )
                by_area[area] = by_area.get(area, 0) + st[1] / 50  # primitive calls
            py_calls[name] = by_area
            counts.setdefault(name, {}).update(
                {
                    e.key: (e.count / 50, e.self_cpu_time_total / 50)
                    for e in ev
                    if e.key.startswith("aten::") or e.key.startswith("autograd::")
                }
            )
            top = sorted(
                ((e.count / 50, e.key) for e in ev if e.key.startswith("aten::")), reverse=True
            )[:12]
            print(
                f"{name} P={P}: {dt:.0f} us/step, {n_ops:.0f} aten ops/step (self cpu {cpu:.0f} us); most called: "
                + ", ".join(f"{k} {c:.0f}" for c, k in top)
            )

h, r = counts["hand"], counts["rendered"]
diff = sorted(
    ((r.get(k, (0, 0))[0] - h.get(k, (0, 0))[0], k) for k in set(h) | set(r)), reverse=True
)
print(
    "ops the rendered step calls more often than the hand one (per step):",
    ", ".join(f"{k} +{d:.0f}" for d, k in diff if d >= 1),
)
print(
    "ops the rendered step calls less often:", ", ".join(f"{k} {d:.0f}" for d, k in diff if d <= -1)
)
for name, by_area in py_calls.items():
    print(
        f"{name}: {sum(by_area.values()):.0f} Python calls/step ("
        + ", ".join(f"{a} {n:.0f}" for a, n in sorted(by_area.items(), key=lambda t: -t[1]))
        + ")"
    )
