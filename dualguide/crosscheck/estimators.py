"""Gradient parity for the estimator the fits use (issue 14, ``docs/elbo.md``).

:func:`~dualguide.crosscheck.gradient_parity` measures ``Trace_ELBO``'s reparameterized
gradient.  A crosscheck with another loss (``TraceEnum_ELBO``, ``TraceGraph_ELBO``,
``TraceMeanField_ELBO``, ``RenyiELBO``), or with a guide site sampled without ``rsample``,
checks the gradient of that loss's native estimator instead, in one of two ways:

* **common random numbers** (the estimators that average single-particle terms:
  ``TraceEnum_ELBO``, ``TraceMeanField_ELBO``, ``TraceGraph_ELBO`` with reparameterized sites):
  every continuous guide site is drawn from the same standard noise on both backends (the
  lockstep's noise), so the estimate is a deterministic function of that noise -- with
  enumeration the discrete sites are summed out exactly -- and the two backends' gradients
  must agree draw by draw to float32 rounding (:data:`CRN_GRAD_RTOL`);
* **in distribution** (score-function estimators, ``RenyiELBO``, guides the noise cannot
  drive): ``num_draws`` independent estimates per backend, and a two-sample test of each
  gradient element's mean (Welch) and spread (log sd ratio), at ``z = max(k, Bonferroni 0.1%)``
  standard errors plus a float32 floor (means) and :data:`SPREAD_SLACK` (spreads).

Gradients are with respect to the params' constrained values; a ``simplex`` param's gradient
is compared on the simplex (projected: the frameworks differ off it).

>>> import dualguide as dg
>>> from dualguide import constraints, distributions as dist
>>> def model():
...     dg.sample("x", dist.Normal(0.0, 2.0))
>>> def guide():
...     dg.sample("x", dist.Normal(0.0, dg.param("s", 1.0, constraint=constraints.positive)))
>>> r = estimator_gradient_parity(model, guide, loss="TraceMeanField_ELBO", num_crn=4)
>>> r.status, r.details["mode"]
('pass', 'common noise')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _state
from ._common import describe_error, fmt
from ._gradstats import canonical_grads, compared_params, mean_z, z_limit
from ._programs import Programs, prepare
from .report import CheckResult

__all__ = [
    "CRN_GRAD_RTOL",
    "SPREAD_SLACK",
    "crn_plan",
    "estimator_gradient_parity",
    "estimator_label",
    "kl_mismatch",
    "like_with_like",
    "score_function_sites",
    "uses_estimator_checks",
]

#: common noise: a gradient element agrees when |g_a - g_b| <= CRN_GRAD_RTOL * (1 + max |g|).
#: Both backends compute the same float32 sums in another order: the enumerated GMM and HMM
#: gradients (magnitudes up to ~10) differ by at most ~1e-6 relative; 1e-4 leaves that room
#: a hundredfold and is far below a missing term (a dropped prior moves a gradient by 1e-2).
CRN_GRAD_RTOL = 1e-4
#: in distribution: the spreads agree when |log(sd_a / sd_b)| <= z * se + log(1 + SPREAD_SLACK).
#: The same estimator on both sides differs by sampling error only (the z * se part); the slack
#: allows the frameworks' Rao-Blackwellizations (NumPyro's provenance tracking, Pyro's
#: dependency graph) to differ a little, and still fails a 1.5x noisier estimator (a
#: score-function term where the other side has a pathwise one, or a lost Rao-Blackwellization).
SPREAD_SLACK = 0.25
#: estimators whose loss is a mean of single-particle terms (common noise drives each particle)
MEAN_OF_PARTICLES = ("Trace_ELBO", "TraceMeanField_ELBO", "TraceGraph_ELBO", "TraceEnum_ELBO")


def estimator_label(loss: Any) -> str:
    """``TraceEnum_ELBO(max_plate_nesting=1)``: the loss with its options (both backends run the
    framework's class of that name, ``_table.ELBOS``).

    >>> import dualguide as dg
    >>> estimator_label(dg.infer.RenyiELBO(alpha=0.5, num_particles=4))
    'RenyiELBO(alpha=0.5, num_particles=4)'
    """
    opts = dict(loss.options)
    if loss.num_particles != 1:
        opts["num_particles"] = loss.num_particles
    extra = ", ".join(f"{k}={v!r}" for k, v in opts.items())
    return f"{loss.name}({extra})" if extra else loss.name


def score_function_sites(progs: Programs) -> list[str]:
    """Guide latents sampled without ``rsample`` on either backend (discrete sites,
    ``has_rsample_(False)``): their gradients come from score-function terms."""
    out: list[str] = []
    for gsites, _m in progs.sites_by_backend.values():
        for n, s in gsites.items():
            if s.is_latent and s.dist != "Delta" and s.has_rsample is False and n not in out:
                out.append(n)
    return out


def uses_estimator_checks(loss: Any, progs: Programs) -> bool:
    """Whether the crosscheck's gradient and lockstep checks measure ``loss``'s own estimator
    (any loss but ``Trace_ELBO``, and ``Trace_ELBO`` with a score-function guide site)."""
    return loss is not None and (loss.name != "Trace_ELBO" or bool(score_function_sites(progs)))


def _enumerated(progs: Programs, name: str) -> bool:
    s = progs.model_sites.get(name)
    return s is not None and bool((s.infer or {}).get("enumerate"))


def crn_plan(progs: Programs, loss: Any) -> dict | str:
    """The lockstep noise plan ``{site: (kinds, extra)}`` that makes ``loss``'s estimate a
    deterministic function of common noise, or the reason there is none."""
    from .lockstep_svi import _site_plan

    if loss.name not in MEAN_OF_PARTICLES:
        return (
            f"{loss.name}'s particles share one log-sum-exp, which per-particle noise does not "
            "reproduce"
        )
    score = score_function_sites(progs)
    if score:
        return f"score-function site(s) {', '.join(map(repr, score))} (no rsample)"
    free = [
        n for n in progs.model_only if not (loss.name == "TraceEnum_ELBO" and _enumerated(progs, n))
    ]
    if free:
        return f"model latent(s) {', '.join(map(repr, free))} not in the guide"
    if progs.naming.active and progs.base_sites:
        return f"the {progs.naming.kind}s of the two frameworks draw their latents at other sites"
    for b in progs.ok_backends:
        nat = progs.native(b)
        with progs.hook(backend=b):
            if nat.mod.subsampled(nat.model, nat.guide, nat.args, nat.kwargs):
                # each backend draws the minibatch with its own generator: common noise of the
                # latents alone leaves the estimates different functions of it
                return "a subsampled plate draws its minibatch on each backend's own generator"
    plans = {}
    for name in progs.base_sites:
        p = _site_plan(progs, name)
        if isinstance(p, str):
            return p
        plans[name] = p
    return plans


def kl_mismatch(progs: Programs, loss: Any) -> dict[str, dict[str, bool]]:
    """``TraceMeanField_ELBO``: ``{site: {backend: analytic KL?}}`` for the guide sites where one
    framework's KL registry has an analytic KL(guide || prior) and the other's has none (each
    backend's ``elbo.analytic_kl_sites``, the ``kl_divergence`` call its estimator makes).  Such
    a site's term is the exact KL on one side and its Monte-Carlo estimate on the other: the
    same mean, but not the same number from the same noise.  Empty for other losses."""
    if loss.name != "TraceMeanField_ELBO" or len(progs.ok_backends) < 2:
        return {}
    found: dict[str, dict[str, bool]] = {}
    for b in progs.ok_backends:
        nat = progs.native(b)
        try:
            with progs.hook(backend=b):
                sites = _state.feature(b, "elbo").analytic_kl_sites(
                    nat.model, nat.guide, progs.params_for(b), nat.args, nat.kwargs
                )
        except Exception:
            return {}  # the estimator's own run reports what fails
        for name, analytic in sites.items():
            found.setdefault(name, {})[b] = analytic
    return {n: d for n, d in found.items() if len(set(d.values())) > 1}


def like_with_like(progs: Programs, loss: Any) -> tuple[Any, str]:
    """The loss to run from common noise on both backends, and a note for the report.

    ``TraceMeanField_ELBO`` with a site whose analytic KL only one framework has
    (:func:`kl_mismatch`): ``Trace_ELBO``, the Monte-Carlo term at every site -- what each
    framework's ``TraceMeanField_ELBO`` computes where it has no analytic KL -- so the two
    sides compare like with like (the same model and guide terms); the note names the sites.
    Otherwise ``loss`` itself and no note."""
    bad = kl_mismatch(progs, loss)
    if not bad:
        return loss, ""
    from ..elbo import as_loss

    parts = []
    for name, d in bad.items():
        yes = [b for b, v in d.items() if v]
        no = [b for b, v in d.items() if not v]
        g = progs.guide_sites.get(name)
        m = progs.model_sites.get(name)
        pair = f" ({g.dist} guide, {m.dist} prior)" if g is not None and m is not None else ""
        parts.append(
            f"{name!r}{pair}: analytic KL on {', '.join(yes)}, Monte Carlo on {', '.join(no)}"
        )
    note = (
        f"{estimator_label(loss)}'s KL term differs by framework at {'; '.join(parts)} (both "
        "valid estimators, not equal draw by draw): compared as Trace_ELBO, the Monte-Carlo "
        "term at every site on both"
    )
    return as_loss("Trace_ELBO", loss.num_particles, where="gradient_parity"), note


def estimator_gradient_parity(
    model: Callable,
    guide: Callable,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    *,
    loss: Any,
    params: dict | None = None,
    num_draws: int = 256,
    num_crn: int = 8,
    k: float = 4.0,
    seed: int = 0,
    programs: Programs | None = None,
) -> CheckResult:
    """The gradient of ``loss``'s native estimator at fixed params, on both backends: draw by
    draw from common noise where the estimate is a function of it (``num_crn`` draws), else
    in distribution (``num_draws`` independent estimates per backend, each with the loss's own
    ``num_particles``); see the module docstring.  ``loss``: an ELBO of :mod:`dualguide.infer`
    or its name.  ``details["mode"]`` is ``"common noise"`` or ``"in distribution"``."""
    from ..elbo import as_loss
    from .lockstep_svi import draw_noise

    lo = as_loss(loss, 1, where="gradient_parity")
    progs = programs or prepare(model, guide, model_args, model_kwargs, params, seed)
    decided, compared, skipped = compared_params(progs)
    if decided is not None:
        return decided
    res = CheckResult("gradient", "error")
    label = estimator_label(lo)
    nm = progs.naming
    plan = crn_plan(progs, lo)
    crn = isinstance(plan, dict)
    run, note = like_with_like(progs, lo) if crn else (lo, "")
    if crn:
        n = max(2, num_crn) if plan else 2
        raw = draw_noise(progs, plan, n, 1, seed)  # type: ignore[arg-type]
        noise = {s: {kd: v[:, 0] for kd, v in d.items()} for s, d in raw.items()}
        particles = 1
    else:
        # a mean-of-particles estimator is the mean of independent single-particle ones: its
        # single-particle distribution decides (and costs num_particles times less)
        n, noise = num_draws, None
        particles = 1 if lo.name in MEAN_OF_PARTICLES else lo.num_particles
    out = {}
    for i, b in enumerate(progs.ok_backends):
        nat = progs.native(b)
        feat = _state.feature(b, "elbo")
        try:
            with progs.hook(backend=b):
                losses, grads = feat.grad_draws(
                    nat.model,
                    nat.guide,
                    progs.params_for(b),
                    run.name,
                    run.options,
                    n,
                    particles,
                    seed + 7919 * i,
                    nat.args,
                    nat.kwargs,
                    noise,
                )
            out[b] = (losses, canonical_grads(progs, grads, b, skipped))
        except Exception as e:
            res.errors[b] = describe_error(e)
    if res.errors:
        res.summary = f"could not compute the gradients of {label}"
        return res
    ba, bb = progs.ok_backends[:2]
    _tangent(out, progs)
    if crn:
        res = _compare_crn(out, ba, bb, compared, n, label)
    else:
        res = _compare_in_distribution(out, ba, bb, compared, n, particles, k, label, str(plan))
    if note:
        res.summary = f"{res.summary}; {note}"
        res.details["kl_mismatch"] = kl_mismatch(progs, lo)
        res.details["compared_as"] = run.name
    if skipped:
        res.details["skipped"] = skipped
        res.summary += f"; {', '.join(skipped)} not compared ({nm.kind} stores them differently)"
    return res


def _tangent(out: dict, progs: Programs) -> None:
    """A simplex param's gradient projected on the simplex (its mean over the last axis taken
    out): the direction off the simplex is not a gradient the fit can follow, and the
    frameworks differ there (Pyro's ``Categorical`` normalizes ``probs``, NumPyro's does not)."""
    for name, c in progs.constraints.items():
        if getattr(c, "name", None) != "simplex":
            continue
        for _losses, grads in out.values():
            if name in grads:
                g = np.asarray(grads[name], np.float64)
                grads[name] = g - g.mean(-1, keepdims=True)


def _compare_crn(out: dict, ba: str, bb: str, names: list, n: int, label: str) -> CheckResult:
    """Draw by draw: every gradient element and loss within CRN_GRAD_RTOL."""
    worst, where = 0.0, ""
    rows = {}
    for name in names:
        ga = np.asarray(out[ba][1][name], np.float64)
        gb = np.asarray(out[bb][1][name], np.float64)
        rel = _rel(ga, gb)
        m = float(rel.max()) if rel.size else 0.0
        rows[name] = {f"{ba}": ga.mean(0), f"{bb}": gb.mean(0), "max_rel_diff": m}
        if m > worst or not where:
            worst, where = m, name
    lrel = _rel(np.asarray(out[ba][0], np.float64), np.asarray(out[bb][0], np.float64))
    lmax = float(lrel.max()) if lrel.size else 0.0
    ok = worst <= CRN_GRAD_RTOL and lmax <= CRN_GRAD_RTOL
    summary = (
        f"{label} from common noise, {n} draws: max relative |diff| gradient "
        f"{fmt(worst, 2)} at {where!r}, loss {fmt(lmax, 2)} "
        f"({'<=' if ok else '>'} limit {CRN_GRAD_RTOL:g}, float32 rounding)"
    )
    return CheckResult(
        "gradient",
        "pass" if ok else "fail",
        summary,
        details={
            "mode": "common noise",
            "estimator": label,
            "draws": n,
            "rtol": CRN_GRAD_RTOL,
            "max_rel_diff": worst,
            "max_loss_rel_diff": lmax,
            "params": rows,
        },
    )


def _rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(a - b) / (1.0 + np.maximum(np.abs(a), np.abs(b)))
    return np.where(np.isnan(d), np.inf, d)


def _compare_in_distribution(
    out: dict,
    ba: str,
    bb: str,
    names: list,
    n: int,
    particles: int,
    k: float,
    label: str,
    why: str,
) -> CheckResult:
    """Two-sample tests per gradient element: the means (Welch z beyond a float32 floor) and
    the spreads (log sd ratio, its standard error from the sample kurtosis, plus slack)."""
    n_el = sum(int(np.prod(np.shape(out[ba][1][nm])[1:])) for nm in names)
    z = z_limit(k, 2 * n_el)
    slack = math.log1p(SPREAD_SLACK)
    ok = True
    worst_mean, worst_sd = (None, 0.0), (None, 0.0, 1.0)
    rows = {}
    for name in names:
        ga = np.asarray(out[ba][1][name], np.float64).reshape(n, -1)
        gb = np.asarray(out[bb][1][name], np.float64).reshape(n, -1)
        ma, mb = ga.mean(0), gb.mean(0)
        sa, sb = ga.std(0, ddof=1), gb.std(0, ddof=1)
        zm = mean_z(ma, mb, np.sqrt((sa**2 + sb**2) / n))
        # log sd ratio: var(log s) ~ (kurtosis - 1) / (4 n) for each sample
        both = (sa > 0) & (sb > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            lr = np.where(both, np.log(sa / sb), 0.0)
            se_l = np.sqrt(_kurt(ga, sa) / (4 * n) + _kurt(gb, sb) / (4 * n))
            zs = np.where(both, np.maximum(np.abs(lr) - slack, 0.0) / se_l, 0.0)
        one_zero = (sa > 0) != (sb > 0)  # one side random, the other not: another estimator
        zs = np.where(one_zero, np.inf, np.nan_to_num(zs, nan=np.inf))
        if np.any(~(zm <= z)) or np.any(~(zs <= z)):
            ok = False
        i_m, i_s = int(np.argmax(zm)), int(np.argmax(zs))
        if worst_mean[0] is None or zm[i_m] > worst_mean[1]:
            worst_mean = (name, float(zm[i_m]))
        ratio = float(sa[i_s] / sb[i_s]) if sb[i_s] > 0 else math.inf
        if worst_sd[0] is None or zs[i_s] > worst_sd[1]:
            worst_sd = (name, float(zs[i_s]), ratio)
        rows[name] = {
            f"{ba}_mean": ma,
            f"{bb}_mean": mb,
            f"{ba}_sd": sa,
            f"{bb}_sd": sb,
            "z_mean": zm,
            "z_spread": zs,
        }
    mean_ok = worst_mean[1] <= z
    hint = ""
    if not ok and mean_ok:
        noisier = ba if worst_sd[2] > 1 else bb
        r = worst_sd[2] if worst_sd[2] > 1 else 1 / max(worst_sd[2], 1e-300)
        hint = (
            f" -- the means agree but {noisier}'s estimator is {r:.1f}x noisier: another "
            "estimator with the same mean (a score-function term where the other side "
            "differentiates through the sample?)"
        )
    elif not ok:
        hint = " -- the estimators' means differ: one side adds or drops a gradient term"
    summary = (
        f"{label} in distribution ({why}): {n} draws of {particles} particle(s) per backend; "
        f"means: max |diff|/se {fmt(worst_mean[1], 2)} at {worst_mean[0]!r}; spreads: sd ratio "
        f"{fmt(worst_sd[2], 3)} at {worst_sd[0]!r}, {fmt(worst_sd[1], 2)} se beyond the "
        f"{SPREAD_SLACK:g} slack ({'<=' if ok else '>'} limit {z:.2f}){hint}"
    )
    return CheckResult(
        "gradient",
        "pass" if ok else "fail",
        summary,
        details={
            "mode": "in distribution",
            "estimator": label,
            "why": why,
            "draws": n,
            "particles": particles,
            "limit_z": z,
            "spread_slack": SPREAD_SLACK,
            "params": rows,
        },
    )


def _kurt(g: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """Sample kurtosis minus one per column (at least 2, the normal's value)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        m4 = ((g - g.mean(0)) ** 4).mean(0)
        kurt = m4 / sd**4
    return np.maximum(np.nan_to_num(kurt, nan=3.0) - 1.0, 2.0)
