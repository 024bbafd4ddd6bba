"""Lockstep SVI: both backends driven by the same noise, compared step by step.

Common random numbers: the standard noise every guide draw needs (normal, uniform, Student t,
a uniform for a mixture's component) is drawn once with numpy, for every step and particle.
Each backend turns it into its reparameterized sample (``loc + scale * eps`` and the like)
through an effect handler on the guide, computes its native ``Trace_ELBO`` loss and gradient,
and takes the same Adam step (numpyro's optimizer; dualguide's torch Adam, the same update).
Both start from the very same unconstrained numbers.  The trajectories must then agree to
float32 rounding; the report gives the first step where they part, and by how much.

Guides with a site that cannot be drawn from supplied noise (Gamma, Beta, Dirichlet, discrete
sites, native mixtures...), or models with latent sites the guide does not cover, are
reported as ``n/a`` ("not lockstep-able"), not as failures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._inputs import float_np
from .._table import canonical_dist
from ..optim import Optimizer, as_optimizer
from ..trace import base_distribution
from ._common import LOCKSTEP_FAMILIES, NotLockstepable, describe_error, fmt, site_seed
from ._programs import Programs, prepare
from .estimators import score_function_sites
from .report import CheckResult

__all__ = ["lockstep", "LOCKSTEP_RTOL"]

#: trajectories part when an element differs by more than RTOL * (1 + |value|).  Float32
#: rounding (different but equally exact jax and torch kernels) starts at ~1e-7 and grows
#: slowly through the Adam update over a few hundred steps; 1e-4 leaves room for that and is
#: far below any difference of estimator, optimizer or density (those part at 1e-3 or more
#: within a few steps).
LOCKSTEP_RTOL = 1e-4

_U_LO = np.float32(2.0**-24)
_U_HI = np.float32(1.0) - np.float32(2.0**-24)


def _rel_dev(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| / (1 + max(|a|, |b|)); 0 where both are the same infinity or both NaN."""
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(a - b) / (1.0 + np.maximum(np.abs(a), np.abs(b)))
    same = (np.isinf(a) & (a == b)) | (np.isnan(a) & np.isnan(b))
    d = np.where(same, 0.0, d)
    return np.where(np.isnan(d), np.inf, d)


def _site_plan(progs: Programs, name: str) -> tuple[tuple, dict] | str:
    """(kinds, extra) for a base site, or the reason it cannot be driven."""
    site = progs.guide_sites[name]
    fam = canonical_dist(site.dist)
    if fam not in LOCKSTEP_FAMILIES:
        return f"site {name!r}: {fam}"
    if fam == "StudentT":
        df = _pyro_constant(progs, name, "df")
        if df is None:
            return f"site {name!r}: StudentT with a df that depends on params"
        return ("t",), {"df": df}
    if fam == "MixtureSameFamily":
        comp = _component_family(site.native["fn"])
        if comp not in ("Normal", "Cauchy", "Laplace"):
            return f"site {name!r}: MixtureSameFamily of {comp}"
        return ("choice", "normal" if comp == "Normal" else "uniform"), {}
    return LOCKSTEP_FAMILIES[fam], {}


def _component_family(fn) -> str:
    return type(base_distribution(base_distribution(fn).component_distribution)).__name__


def _pyro_constant(progs: Programs, name: str, attr: str):
    """The value of a distribution argument if it does not depend on params (else None)."""
    sites = progs.sites_by_backend.get("pyro")
    if sites is None:
        return None
    base = base_distribution(sites[0][name].native["fn"])
    v = getattr(base, attr, None)
    if v is None or getattr(v, "requires_grad", False):
        return None
    return np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v, dtype=np.float64)


def _coordinate_differences(progs: Programs, u0: dict) -> list[str]:
    """Params that the two frameworks optimize in different unconstrained coordinates."""
    other = [b for b in progs.ok_backends if b != "numpyro"]
    if not other:
        return []
    u1 = progs.native(other[0]).mod.unconstrain(progs.params, progs.constraints)
    out = []
    for k, a in u0.items():
        b = u1.get(k)
        a = np.asarray(a)
        if b is None or np.shape(b) != a.shape or not np.allclose(a, b, rtol=1e-5, atol=1e-6):
            out.append(
                f"param {k!r} ({progs.constraints.get(k)}) has other unconstrained coordinates "
                f"in NumPyro {a.shape} and Pyro {np.shape(b)}, so the optimizers take other paths"
            )
    return out


def draw_noise(progs: Programs, plans: dict, num_steps: int, num_particles: int, seed: int) -> dict:
    """The common noise: {site: {kind: array (steps, particles, *site shape)}} in the current
    float dtype (float32 unless dg.set_dtype("float64"))."""
    f = float_np()
    out = {}
    for name, (kinds, extra) in plans.items():
        shape = (num_steps, num_particles) + progs.shape(name)
        rng = site_seed(seed, "lockstep", name)
        nz = {}
        for kind in kinds:
            if kind == "normal":
                nz[kind] = rng.standard_normal(shape).astype(f)
            elif kind in ("uniform", "choice"):
                nz[kind] = np.clip(rng.random(shape).astype(f), _U_LO, _U_HI)
            elif kind == "t":
                df = np.broadcast_to(extra["df"], shape)
                nz[kind] = rng.standard_t(df).astype(f)
        out[name] = nz
    return out


def lockstep(
    model: Callable,
    guide: Callable,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    *,
    optim: Optimizer | float | None = None,
    num_steps: int = 200,
    num_particles: int = 4,
    seed: int = 0,
    params: dict | None = None,
    rtol: float = LOCKSTEP_RTOL,
    programs: Programs | None = None,
    loss: Any = None,
) -> CheckResult:
    """Run SVI on both backends from the same noise; pass when the trajectories never part.

    ``loss`` (an ELBO of :mod:`dualguide.infer` or its name; default ``Trace_ELBO``): the
    native estimator each step runs.  ``TraceEnum_ELBO``, ``TraceMeanField_ELBO`` and
    ``TraceGraph_ELBO`` average single-particle terms, so each particle runs the native
    single-particle estimator from its noise (with enumeration the discrete sites are summed
    out exactly, so the step is a deterministic function of the noise); ``RenyiELBO`` and
    guides with score-function sites are ``n/a`` (the gradient parity compares them in
    distribution).

    ``details`` has ``parted_at`` (first step whose params or loss differ by more than
    ``rtol * (1 + |value|)``, or None), ``max_param_dev`` and ``max_loss_dev`` (relative, over
    all steps), and ``data`` the two trajectories (``losses`` and unconstrained ``params`` per
    backend) for plots.

    >>> import dualguide as dg
    >>> from dualguide import constraints, distributions as dist
    >>> def model():
    ...     dg.sample("x", dist.Normal(0.0, 2.0))
    >>> def guide():
    ...     dg.sample("x", dist.Normal(0.0, dg.param("s", 1.0, constraint=constraints.positive)))
    >>> r = dg.crosscheck.lockstep(model, guide, num_steps=50)
    >>> r.status, r.details["parted_at"]
    ('pass', None)
    """
    opt = as_optimizer(optim)
    progs = programs or prepare(model, guide, model_args, model_kwargs, params, seed)
    res = CheckResult("lockstep", "error")
    if len(progs.ok_backends) < 2:
        res.errors = {b: e.args[0] for b, e in progs.errors.items()}
        res.summary = "needs both backends to run the programs"
        return res
    lo = None
    if loss is not None or score_function_sites(progs):
        from ..elbo import as_loss

        lo = as_loss("Trace_ELBO" if loss is None else loss, 1, where="lockstep")
        if lo.name == "Trace_ELBO" and not score_function_sites(progs):
            lo = None  # dualguide's Trace_ELBO lockstep below
    if lo is not None:
        return _estimator_lockstep(progs, lo, opt, num_steps, num_particles, seed, rtol, res)
    reasons = []
    if progs.naming.active:
        reasons.append(
            f"{progs.naming.kind}: the frameworks' autoguides keep their params in their own "
            "modules and name their latents differently, so lockstep cannot feed both the same "
            "numbers (the ELBO check and the gradient parity cover it)"
        )
    if progs.model_only:
        reasons.append(f"model latent(s) {', '.join(progs.model_only)} not in the guide")
    plans = {}
    for name in progs.base_sites:
        p = _site_plan(progs, name)
        if isinstance(p, str):
            reasons.append(p)
        else:
            plans[name] = p
    if not progs.params:
        reasons.append("no params to fit")
    if reasons:
        res.status = "n/a"
        res.summary = "not lockstep-able: " + "; ".join(reasons)
        return res

    def run(b, nat, u0, noise):
        return nat.mod.lockstep_run(
            nat.model, nat.guide, u0, progs.constraints, noise, opt, nat.args, nat.kwargs
        )

    runs = _run_both(progs, plans, num_steps, num_particles, seed, res, run, "a lockstep run")
    if runs is None:
        return res
    sites = ", ".join(f"{n} ({progs.guide_sites[n].dist})" for n in plans)
    return _judge(res, progs, runs, num_steps, num_particles, rtol, f"[{sites}]")


def _run_both(
    progs: Programs,
    plans: dict,
    num_steps: int,
    num_particles: int,
    seed: int,
    res: CheckResult,
    run: Callable,
    what: str,
) -> dict | None:
    """Both backends' runs from the same start (NumPyro's unconstrained params) and the same
    noise: ``{backend: run(backend, native, u0, noise)}``, or None when ``res`` is decided
    (``n/a``: other unconstrained coordinates, or a :class:`NotLockstepable` run; ``error``:
    a run failed, ``res.summary`` is "``what`` failed")."""
    np_mod = progs.native("numpyro").mod
    u0 = np_mod.unconstrain(progs.params, progs.constraints)
    coords = _coordinate_differences(progs, u0)
    if coords:
        res.status = "n/a"
        res.summary = "not lockstep-able: " + "; ".join(coords)
        return None
    noise = draw_noise(progs, plans, num_steps, num_particles, seed)
    runs = {}
    for b in progs.ok_backends:
        nat = progs.native(b)
        try:
            with progs.hook():
                runs[b] = run(b, nat, u0, noise)
        except NotLockstepable as e:
            res.status, res.summary = "n/a", f"not lockstep-able: {e}"
            return None
        except Exception as e:
            res.errors[b] = describe_error(e)
    if res.errors:
        res.summary = f"{what} failed"
        return None
    return runs


def _judge(res, progs, runs, num_steps, num_particles, rtol, what_ran) -> CheckResult:
    """Compare the two trajectories step by step (see :func:`lockstep`)."""
    ba, bb = progs.ok_backends[:2]
    A, B = runs[ba], runs[bb]
    # relative deviation per step: params after step t (index t + 1) and the loss at step t;
    # equal infinities and NaN in both count as agreement (noted below)
    pdev = np.zeros(num_steps + 1)
    worst_param = [""] * (num_steps + 1)
    for k in A["params"]:
        a = np.asarray(A["params"][k], np.float64).reshape(num_steps + 1, -1)
        b = np.asarray(B["params"][k], np.float64).reshape(num_steps + 1, -1)
        d = _rel_dev(a, b).max(axis=1) if a.size else np.zeros(num_steps + 1)
        upd = d > pdev
        for t in np.nonzero(upd)[0]:
            worst_param[t] = k
        pdev = np.maximum(pdev, d)
    la, lb = np.asarray(A["losses"], np.float64), np.asarray(B["losses"], np.float64)
    ldev = _rel_dev(la, lb)
    step_dev = np.maximum(pdev[1:], ldev)
    step_dev[0] = max(step_dev[0], pdev[0])
    bad = np.nonzero(step_dev > rtol)[0]
    parted = int(bad[0]) if bad.size else None
    res.details = {
        "num_steps": num_steps,
        "num_particles": num_particles,
        "rtol": rtol,
        "parted_at": parted,
        "max_param_dev": float(pdev.max()),
        "max_loss_dev": float(ldev.max()) if ldev.size else 0.0,
        "final_params": {b: {k: r["params"][k][-1] for k in r["params"]} for b, r in runs.items()},
    }
    res.data = {
        "losses": {b: r["losses"] for b, r in runs.items()},
        "params": {b: r["params"] for b, r in runs.items()},
        "step_dev": step_dev,
    }
    nonfinite = np.nonzero(~np.isfinite(la))[0]
    note = ""
    if nonfinite.size:
        res.details["nonfinite_loss_steps"] = int(nonfinite.size)
        note = (
            f"; the loss is not finite at {nonfinite.size} step(s) from step "
            f"{int(nonfinite[0])} (a guide draw outside the model's support?)"
        )
    if parted is None:
        res.status = "pass"
        res.summary = (
            f"{num_steps} steps x {num_particles} particles from common noise "
            f"{what_ran}: never parted; max relative deviation "
            f"{fmt(res.details['max_param_dev'], 2)} (params), "
            f"{fmt(res.details['max_loss_dev'], 2)} (loss){note}"
        )
    else:
        what = "loss" if ldev[parted] >= pdev[parted + 1] else f"param {worst_param[parted + 1]!r}"
        res.status = "fail"
        res.details["parted_by"] = float(step_dev[parted])
        res.details["parted_in"] = what
        res.summary = (
            f"parted at step {parted} of {num_steps}: {what} differs by "
            f"{fmt(step_dev[parted], 2)} relative (limit {rtol:g}); "
            f"max over the run {fmt(float(np.nanmax(step_dev)), 2)}"
        )
    return res


def _estimator_lockstep(progs, lo, opt, num_steps, num_particles, seed, rtol, res) -> CheckResult:
    """Lockstep with ``lo``'s native estimator (the backends' ``elbo`` feature), one native
    single-particle loss per particle from common noise (:func:`.estimators.crn_plan`)."""
    from .. import _state
    from .estimators import crn_plan, estimator_label, like_with_like

    label = estimator_label(lo)
    plan = crn_plan(progs, lo)
    reasons = [] if isinstance(plan, dict) else [plan]
    run_lo, note = like_with_like(progs, lo) if not reasons else (lo, "")
    if progs.naming.active:
        reasons.append(
            f"{progs.naming.kind}: the frameworks' autoguides keep their params in their own "
            "modules, so lockstep cannot feed both the same numbers"
        )
    if not progs.params:
        reasons.append("no params to fit")
    if reasons:
        res.status = "n/a"
        res.summary = (
            f"not lockstep-able with {label}: " + "; ".join(reasons) + " (the gradient parity "
            "compares the estimator in distribution)"
        )
        return res
    assert isinstance(plan, dict)

    def run(b, nat, u0, noise):
        return _state.feature(b, "elbo").lockstep_run(
            nat.model,
            nat.guide,
            u0,
            progs.constraints,
            noise,
            opt,
            nat.args,
            nat.kwargs,
            run_lo.name,
            run_lo.options,
            num_steps,
            num_particles,
        )

    fail = f"a lockstep run with {label}"
    runs = _run_both(progs, plan, num_steps, num_particles, seed, res, run, fail)
    if runs is None:
        return res
    sites = ", ".join(f"{n} ({progs.guide_sites[n].dist})" for n in plan) or "no random guide site"
    out = _judge(res, progs, runs, num_steps, num_particles, rtol, f"with {label} [{sites}]")
    out.details["estimator"] = label
    if note:
        out.summary = f"{out.summary}; {note}"
        out.details["compared_as"] = run_lo.name
    return out
