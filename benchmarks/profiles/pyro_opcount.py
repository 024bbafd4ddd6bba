# ruff: noqa: E402  (a profiling script: it sets threads and warnings before importing the frameworks)
import sys
import warnings

sys.path.insert(0, "benchmarks")
warnings.filterwarnings("ignore")
import torch

torch.set_num_threads(1)
import floors
import problems

import dualguide as dg
from dualguide.backends.pyro import fitloop

D = int(sys.argv[1])
P = 16
prob = problems.plated_problem(D)
cap = {}
ostep = fitloop._JitLoop.step


def step(self):
    if self.t == 150:
        with torch.profiler.profile() as prof:
            r = ostep(self)
        cap["fit"] = prof.key_averages()
        return r
    return ostep(self)


fitloop._JitLoop.step = step
dg.fit(
    prob.model,
    prob.guide,
    backend="pyro",
    model_args=prob.args,
    num_particles=P,
    num_steps=220,
    progress=False,
    check=False,
)
fl = floors.torch_floor(prob.name, P)
for _ in range(5):
    fl()
with torch.profiler.profile() as prof:
    for _ in range(10):
        fl()
cap["floor"] = prof.key_averages()
per = {"fit": 1, "floor": 10}
for k, ev in cap.items():
    ops = {e.key: e.count / per[k] for e in ev if e.key.startswith("aten::")}
    cpu = sum(e.self_cpu_time_total for e in ev if e.key.startswith("aten::")) / per[k]
    top = sorted(
        (
            (e.self_cpu_time_total / per[k], e.key, e.count / per[k])
            for e in ev
            if e.key.startswith("aten::")
        ),
        reverse=True,
    )[:10]
    print(
        f"{k}: {sum(ops.values()):.0f} aten ops/step, aten self CPU {cpu:.0f} us/step; most time: "
        + ", ".join(f"{n} x{c:.0f} {t:.0f}us" for t, n, c in top)
    )
