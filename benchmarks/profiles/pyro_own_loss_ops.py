"""Op count of the smallest loss equal to Pyro's Trace_ELBO to float rounding on plated
D (16 particles): each site's torch ``Normal.log_prob`` summed, guide minus model, one
backward (no surrogate, no Pyro) vs the pure-torch floor.  ``python
benchmarks/profiles/pyro_own_loss_ops.py 100000`` from the repo root (PYTHONPATH=$PWD)."""

# ruff: noqa: E402
import sys

sys.path.insert(0, "benchmarks")
import torch

torch.set_num_threads(1)
import floors
import problems

D, P = int(sys.argv[1]), 16
y = torch.as_tensor(problems.plated_data(D))
loc = torch.zeros(D, requires_grad=True)
u = torch.zeros(D, requires_grad=True)
N = torch.distributions.Normal


def own():
    scale = u.exp()
    z = loc + scale * torch.randn(P, D)
    lq = N(loc, scale, validate_args=False).log_prob(z).sum(-1)
    lp = N(0.0, 1.0, validate_args=False).log_prob(z).sum(-1)
    lp = lp + N(z, 1.0, validate_args=False).log_prob(y).sum(-1)
    loss = (lq - lp).mean()
    loss.backward()
    loc.grad = u.grad = None


fl = floors.torch_floor(f"plated{D}", P)
for f in (own, fl):
    for _ in range(3):
        f()
for name, f in (("own loss (no Adam)", own), ("floor (with Adam)", fl)):
    with torch.profiler.profile() as prof:
        for _ in range(10):
            f()
    ev = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    n = sum(e.count for e in ev) / 10
    cpu = sum(e.self_cpu_time_total for e in ev) / 10
    top = sorted(((e.self_cpu_time_total / 10, e.key, e.count / 10) for e in ev), reverse=True)
    print(
        f"{name}: {n:.0f} aten ops/step, aten self CPU {cpu:.0f} us/step; "
        + ", ".join(f"{k} x{c:.0f} {t:.0f}us" for t, k, c in top[:8])
    )
