"""The crosscheck verdict for programs with networks (``dg.nn.module`` / ``dg.nn.random_module``).

Two independently fitted networks are not comparable weight by weight: permuting hidden
units, flipping the sign of a tanh unit or rotating a VAE's latent space leaves the model
unchanged, so two fits (two backends, or two seeds on one backend) end at different weights
that compute the same thing.  For the params that are network weights -- registered by
:func:`dualguide.nn.module`, and an autoguide's params of the weight sites that
:func:`dualguide.nn.random_module` draws -- the crosscheck compares what *is* identifiable:

* the log density at each fit's params, on both backends, at the same points (the networks
  evaluated on the program's fixed inputs): the same fitted weights give the same numbers to
  float32 rounding on NumPyro and on Pyro (:func:`~.parity.logdensity_parity`);
* the ELBO of the two fits, within Monte-Carlo error and fit noise (the ``elbo`` check);
* lockstep with common random numbers when requested (``checks=("lockstep", ...)``): same
  initial weights, same noise, same trajectory to float32 rounding.

The other params (not network weights) are compared value by value as usual.  The report's
param table marks the network weights ``network`` and the ``networks`` check says which
params were compared how.
"""

from __future__ import annotations

from typing import Any

from .._table import AUTOGUIDE_PARAMS
from ._common import describe_error
from .report import CheckResult

__all__ = ["judge_networks", "network_params"]


def network_params(prob: Any, progs: Any) -> dict[str, str]:
    """The canonical names of the params that are network weights -> the network's name.

    Found by tracing the guide and the model once on the canonical backend under
    :func:`dualguide.nn.record_networks`: every ``dg.nn.module`` weight is such a param;
    for a weight drawn by ``dg.nn.random_module`` under an autoguide, the autoguide's params
    of that site (per-site autoguides), or all its params (a packed autoguide, whose one
    vector mixes the weights with the other latents)."""
    import dualguide as dg

    from ..autoguides import _pattern
    from ..nn import record_networks

    b = progs.naming.canonical or next(iter(progs.ok_backends), None)
    if b is None:
        return {}
    kwargs = dict(prob.model_kwargs or {})
    with record_networks() as rec:
        for fn in (prob.guide, prob.model):
            try:
                dg.trace(fn, *prob.model_args, backend=b, seed=prob.seed, **kwargs)
            except Exception:  # the checks report a program that does not run
                pass
    names = set(progs.params)
    out = {n: net for n, (net, kind) in rec.items() if kind == "param" and n in names}
    sites = {n: net for n, (net, kind) in rec.items() if kind == "sample"}
    nm = progs.naming
    if sites and nm.active:
        own = set(nm.own_params(sorted(names), nm.canonical))
        joint = "+".join(sorted(set(sites.values())))
        for part in nm.parts:
            spec = AUTOGUIDE_PARAMS[part.kind]
            if not spec.per_site:  # one vector mixes the weights with the other latents
                pats = [_pattern(p.name) for p in getattr(spec, nm.canonical)]
                out.update({n: joint for n in own if any(p.match(n) for p in pats)})
                continue
            for s, net in sites.items():
                for p in getattr(spec, nm.canonical):
                    n = p.name.format(site=s)
                    if n in own:
                        out[n] = net
    return out


def judge_networks(report: Any, prob: Any, progs: Any, fitted: dict, say: Any) -> None:
    """Take the network weights out of the value-by-value comparison and add the
    ``networks`` check (see the module docstring).  ``fitted``: backend -> fitted params
    under canonical names.  Does nothing for a program without networks."""
    from .parity import logdensity_parity

    nets = network_params(prob, progs)
    if not nets:
        return
    for pc in report.params:
        if pc.name in nets:
            pc.network = nets[pc.name]
            pc.ok = None
    by_net: dict[str, list[str]] = {}
    for n, net in nets.items():
        by_net.setdefault(net, []).append(n)
    parts = [f"{net} ({len(ps)} params)" for net, ps in by_net.items()]
    lines = [
        "network weights not compared value by value (hidden units permute, latent spaces "
        "rotate: two fits differ there and compute the same): " + ", ".join(parts)
    ]
    status, errors = "pass", {}
    details: dict[str, Any] = {"params": dict(nets), "logdensity_at_fit": {}}
    for b, params in fitted.items():
        if len(progs.ok_backends) < 2:
            break
        say(f"log density at the {b} fit's networks ...")
        try:
            r = logdensity_parity(
                prob.model,
                prob.guide,
                prob.model_args,
                prob.model_kwargs,
                params=params,
                num_points=16,
                seed=prob.seed,
            )
        except Exception as e:
            r = CheckResult("logdensity", "error", f"the check raised {describe_error(e)}")
        details["logdensity_at_fit"][b] = {"status": r.status, "summary": r.summary}
        errors.update({f"{b} fit, {k}": v for k, v in r.errors.items()})
        lines.append(f"log density at the {b} fit's params on both backends: {r.status}")
        if r.status in ("fail", "error"):
            status = "fail" if r.status == "fail" else "error"
            lines[-1] += f" ({r.summary})"
    if not details["logdensity_at_fit"]:
        status = "n/a"
        lines.append("log density at the fitted params: needs a fit on both backends")
    for name, title in (("elbo", "ELBO agreement"), ("lockstep", "lockstep")):
        c = report.checks.get(name)
        lines.append(
            f"{title}: {c.status}" if c is not None else f"{title}: not run (add it to checks)"
        )
    report.checks["networks"] = CheckResult(
        "networks", status, "; ".join(lines), details=details, errors=errors
    )
