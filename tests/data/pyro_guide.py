"""A guide and model written in plain Pyro (input for `dualguide port`)."""

import pyro
import pyro.distributions as dist
import pyro.optim
import torch
import torch.nn.functional as F
from pyro.distributions import constraints
from pyro.infer import SVI, Trace_ELBO

K = 3


def model():
    w = pyro.sample("w", dist.Dirichlet(torch.ones(K)))
    with pyro.plate("components", K, dim=-1):
        loc = pyro.sample("loc", dist.Normal(0.0, 10.0))
        scale = pyro.sample("scale", dist.HalfNormal(2.0))
    z = pyro.sample("z", dist.Normal(torch.zeros(2, K), 1.0).to_event(2))
    pyro.factor("prior_on_z", -0.5 * (z**2).sum(), has_rsample=True)
    return w, loc, scale


def guide():
    w_conc = pyro.param("w_conc", torch.ones(K), constraint=constraints.positive)
    loc_q = pyro.param("loc_q", torch.tensor([-1.0, 0.0, 1.0]))
    log_scale_q = pyro.param("log_scale_q", torch.zeros(K))
    s_q = pyro.param("s_q", lambda: torch.full((K,), 0.5), constraint=constraints.interval(0.0, 5.0))
    z_loc = pyro.param("z_loc", torch.zeros(2, K, requires_grad=True))
    pyro.sample("w", dist.Dirichlet(w_conc))
    with pyro.plate("components", K, dim=-1):
        pyro.sample("loc", dist.Normal(loc_q, log_scale_q.exp()))
        pyro.sample("scale", dist.LogNormal(torch.log(s_q), F.softplus(loc_q) + 0.1))
    z = pyro.sample("z", dist.Normal(z_loc, torch.tensor(1.0)).to_event(2))
    total = torch.cat([z.sum(dim=-1, keepdim=False), torch.stack([z.mean(), w_conc.sum()])])
    pyro.deterministic("total", torch.logsumexp(total, dim=0) + torch.pi)
    pyro.factor("entropy_bonus", torch.clamp(z.pow(2).sum(), max=100.0) * 0.0, has_rsample=True)


optim = pyro.optim.ClippedAdam({"lr": 0.01, "betas": (0.9, 0.999), "lrd": 0.999})
svi = SVI(model, guide, optim, loss=Trace_ELBO())

if __name__ == "__main__":
    pyro.set_rng_seed(0)
    for _ in range(1000):
        svi.step()
