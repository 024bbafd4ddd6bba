"""``crosscheck``: fit one neutral model and guide on both backends and prove they agree."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import SpecError
from ..optim import Optimizer, as_optimizer
from . import _seeds
from ._common import DEFAULT_MAX_MEMORY_MB, check_memory, describe_error, fmt
from ._networks import judge_networks
from ._programs import BACKENDS, Programs, prepare
from ._steps import (
    _compare_params,
    _elbo_estimates,
    _guide_samples,
    _Problem,
    _run_checks,
    _run_fits,
    _run_references,
    identifiable,
)
from .report import BackendRun, CheckResult, CrosscheckReport

__all__ = ["crosscheck", "DEFAULT_TOLERANCE", "ALL_CHECKS", "DEFAULT_CHECKS"]

#: default per-param tolerance between the two fits: |a - b| <= abs + rel * max(|a|, |b|).
#: Two stochastic fits of the same problem differ by their Monte-Carlo noise, which at the
#: default settings (2,000 steps, 8 particles) is a few hundredths; a real disagreement
#: (another estimator, a missing term, a different optimizer) is larger.  Tighten it for
#: long many-particle fits, loosen it for short ones: ``tolerances={"theta": 0.01, "*": ...}``.
DEFAULT_TOLERANCE = {"abs": 0.02, "rel": 0.05}

#: the checks crosscheck knows; the default omits lockstep (opt in with checks=ALL_CHECKS)
ALL_CHECKS = ("logdensity", "gradient", "lockstep")
DEFAULT_CHECKS = ("logdensity", "gradient")

#: ELBO agreement: |elbo_a - elbo_b| <= ELBO_K * sqrt(se_a^2 + se_b^2 + noise_a^2 + noise_b^2)
#: + elbo_tolerance.  The standard errors cover the Monte-Carlo error of the two estimates,
#: the noise terms each fit's end-of-fit noise (:func:`fit_noise`, from the tail of its loss
#: trace); the absolute slack the small ELBO difference params within tolerance make.
ELBO_K = 4.0

_REFERENCES = ("quadrature", "nuts")


def _parse_tolerances(tolerances) -> tuple[dict, dict]:
    """-> (default {"abs", "rel"}, {param: {"abs", "rel"}})."""

    def one(v, where):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if v < 0:
                raise SpecError(f"crosscheck: tolerance {where} must be >= 0, got {v}")
            return {"abs": float(v), "rel": 0.0}
        if isinstance(v, dict) and v and set(v) <= {"abs", "rel"}:
            out = {"abs": float(v.get("abs", 0.0)), "rel": float(v.get("rel", 0.0))}
            if out["abs"] < 0 or out["rel"] < 0:
                raise SpecError(f"crosscheck: tolerance {where} must be >= 0, got {v}")
            return out
        raise SpecError(
            f"crosscheck: tolerance {where} must be a number (absolute) or a dict with 'abs' "
            f"and/or 'rel', got {v!r}"
        )

    if tolerances is None:
        return dict(DEFAULT_TOLERANCE), {}
    if not isinstance(tolerances, dict) or (tolerances and set(tolerances) <= {"abs", "rel"}):
        return one(tolerances, "(all params)"), {}
    default = one(tolerances["*"], "'*'") if "*" in tolerances else dict(DEFAULT_TOLERANCE)
    per = {k: one(v, repr(k)) for k, v in tolerances.items() if k != "*"}
    return default, per


def _parse_reference(reference) -> tuple[str, ...] | str:
    if reference in (None, False, "none"):
        return ()
    if reference in ("auto", True):
        return "auto"
    if reference == "all":
        return _REFERENCES
    refs = (reference,) if isinstance(reference, str) else tuple(reference)
    bad = [r for r in refs if r not in _REFERENCES]
    if bad:
        raise SpecError(
            f"crosscheck: unknown reference {', '.join(map(repr, bad))}; use 'auto', 'quadrature', "
            "'nuts', 'all' or None"
        )
    return refs


def _name(fn) -> str:
    return getattr(getattr(fn, "neutral", fn), "__name__", repr(fn))


def _doctor(
    progs: Programs, model, guide, model_args, model_kwargs, init_params, seed, on_nonfinite
) -> CheckResult | None:
    """The doctor's cheap checks on each backend: refuse spec errors, keep backend failures."""
    try:
        from ..doctor import cheap_checks
    except ImportError:  # pragma: no cover - the doctor is part of the package
        return None
    findings, refusals = [], []
    for b in progs.ok_backends:
        try:
            rep = cheap_checks(
                model,
                guide,
                backend=b,
                model_args=model_args,
                model_kwargs=model_kwargs,
                params=init_params,
                seed=seed,
            )
        except Exception as e:
            findings.append(f"{b}: the doctor could not run ({describe_error(e)})")
            continue
        for f in rep.findings:
            if f.code == "trace-failed":
                continue  # a backend that cannot run the program is reported by its stage
            if f.severity == "error":
                refusals.append(f)
            elif f.severity == "warning":
                if f.code == "support-outside" and on_nonfinite == "skip":
                    continue
                findings.append(str(f).replace("\n", " "))
    if refusals:
        seen, lines = set(), []
        for f in refusals:
            s = str(f)
            if s not in seen:
                seen.add(s)
                lines.append("  - " + s.replace("\n", "\n    "))
        raise SpecError(
            f"crosscheck: the guide has {len(lines)} error(s) that would make both fits fail or "
            "come out wrong (found by dualguide.check):\n" + "\n".join(lines)
        )
    uniq = list(dict.fromkeys(findings))
    where = " and ".join(progs.ok_backends)
    if not uniq:
        return CheckResult("doctor", "pass", f"no errors or warnings (cheap checks on {where})")
    return CheckResult(
        "doctor", "info", f"{len(uniq)} warning(s): " + " | ".join(uniq), details={"warnings": uniq}
    )


def crosscheck(
    model: Callable,
    guide: Callable,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    *,
    optim: Optimizer | float | None = None,
    num_steps: int = 2000,
    num_particles: int = 8,
    seed: int = 0,
    init_params: dict | None = None,
    on_nonfinite: str = "stop",
    jit: bool = True,
    progress: bool | None = None,
    tolerances: Any = None,
    elbo_particles: int = 10_000,
    elbo_tolerance: float = 0.02,
    checks: tuple[str, ...] | str | None = DEFAULT_CHECKS,
    reference: Any = "auto",
    lockstep_steps: int = 200,
    lockstep_particles: int = 4,
    backends: tuple[str, ...] = BACKENDS,
    doctor: bool = True,
    max_memory_mb: float = DEFAULT_MAX_MEMORY_MB,
    seeds: int = 1,
    loss: Any = "Trace_ELBO",
) -> CrosscheckReport:
    """Fit ``guide`` to ``model`` on NumPyro and on Pyro and report whether they agree.

    The fits run through :func:`dualguide.fit` with the same settings (``optim``,
    ``num_steps``, ``num_particles``, ``seed``, ``init_params``, ``on_nonfinite``, ``jit``).
    The report holds, per param, both fitted values, their difference and a verdict against
    ``tolerances`` (default ``abs 0.02 + rel 0.05``; a number = absolute tolerance for every
    param; a dict ``{param: number or {"abs": .., "rel": ..}, "*": default}``); per backend a
    many-particle ELBO estimate (``elbo_particles`` draws) with its standard error, wall time
    and steps per second; and the checks:

    * ``checks``: any of ``"logdensity"``, ``"gradient"``, ``"lockstep"`` (or ``"all"``), the
      deterministic checks at the init params, each also callable alone;
    * ``reference``: ``"auto"`` (quadrature when the guide has at most two base numbers, else
      NUTS for small continuous models), ``"quadrature"``, ``"nuts"``, ``"all"`` or None.
    * ``seeds``: fit each backend this many times (seeds ``seed ..``); the spread of the fits
      on one backend widens each param's limit by ``4 sqrt(2) sd`` and the ELBO check's fit
      noise (see ``docs/crosscheck.md``);
    * ``max_memory_mb``: the memory budget of one vectorized piece of the many-particle
      computations (ELBO estimate, guide draws, gradient batches).

    * ``loss``: the estimator of the fits (an ELBO of :mod:`dualguide.infer` or its name,
      ``docs/elbo.md``; a loss object brings its own ``num_particles``); the report's
      ``estimator`` row names what ran on each side.  The gradient and lockstep checks
      measure that estimator (from common noise, or in distribution for score-function
      estimators and ``RenyiELBO``: ``docs/elbo.md``); the many-particle ELBO estimate stays
      ``Trace_ELBO``'s, except with ``TraceEnum_ELBO``: the ELBO estimate is then the
      enumerated one, and the log-density parity compares the enumerated ELBO at the init
      params.

    The ELBO check allows each fit's end-of-fit noise (:func:`fit_noise`, from the tail of its
    loss trace).  An autoguide's params are compared under NumPyro's names (Pyro's translated
    with ``guide.translate``).

    A backend that fails (its framework cannot run the program, or its fit stops) is reported
    with its error; what the other backend computed stays in the report.  The doctor's cheap
    checks run first: errors that concern the program itself raise
    :class:`~dualguide.errors.SpecError` before any fit.

    >>> import dualguide as dg
    >>> from dualguide import constraints, distributions as dist
    >>> def model():
    ...     dg.sample("x", dist.Normal(0.0, 2.0))
    >>> def guide():
    ...     dg.sample("x", dist.Normal(0.0, dg.param("s", 1.0, constraint=constraints.positive)))
    >>> report = dg.crosscheck(model, guide, num_steps=500, optim=dg.optim.Adam(lr=0.05),
    ...                        checks=(), reference=None, elbo_particles=1000)
    >>> report.ok, [p.name for p in report.params]
    (True, ['s'])
    >>> print(report)  # doctest: +SKIP
    dualguide crosscheck: model / guide  (500 steps, 8 particles, Adam(lr=0.05), seed 0)
    ...
    """
    opt = as_optimizer(optim)
    if not isinstance(loss, str):
        from ..elbo import as_loss

        num_particles = as_loss(loss, 1, where="crosscheck").num_particles
    checks = _parse_checks(checks)
    refs = _parse_reference(reference)
    tol_default, tol_per = _parse_tolerances(tolerances)
    backends = _check_backends(backends)
    model_args = _check_inputs(model_args, elbo_particles)
    budget = check_memory(max_memory_mb, "crosscheck")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise SpecError(f"crosscheck: seeds must be an integer >= 1, got {seeds!r}")
    prob = _Problem(model, guide, model_args, model_kwargs, init_params, seed, on_nonfinite)

    say = _Status(progress)
    say("tracing the model and guide on " + " and ".join(backends) + " ...")
    progs = prepare(model, guide, model_args, model_kwargs, init_params, seed, backends)
    _warn_estimator_mismatch(_loss_object(loss, num_particles), progs)
    settings = {
        "num_steps": num_steps,
        "num_particles": num_particles,
        "optim": optim_str(opt),
        "seed": seed,
        "elbo_particles": elbo_particles,
        "on_nonfinite": on_nonfinite,
        "tolerance_default": tol_default,
        "tolerances": tol_per,
        "checks": list(checks),
        "reference": refs if isinstance(refs, str) else list(refs),
        "backends": list(backends),
        "max_memory_mb": budget,
        "seeds": seeds,
        "loss": loss if isinstance(loss, str) else repr(loss),
    }
    report = _new_report(prob, progs, backends, settings)
    _check_tolerance_names(tol_per, progs)

    if doctor:
        doc = _doctor(
            progs, model, guide, model_args, model_kwargs, init_params, seed, on_nonfinite
        )
        if doc is not None:
            report.checks["doctor"] = doc
    enum = loss if getattr(loss, "name", None) == "TraceEnum_ELBO" else None
    _run_checks(
        report,
        prob,
        progs,
        backends,
        checks,
        opt,
        lockstep_steps,
        lockstep_particles,
        say,
        enum,
        loss=_loss_object(loss, num_particles),
    )
    fit_kw = {
        "optim": opt,
        "num_steps": num_steps,
        "num_particles": num_particles,
        "progress": progress,
        "jit": jit,
        "loss": loss,
    }
    fitted = _run_fits(report, prob, progs, backends, fit_kw, say)
    tails = _elbo_estimates(report, prob, fitted, elbo_particles, say, budget, enum)
    # every comparison under one set of names (an autoguide names its params per framework)
    canon = {b: progs.naming.params_from(p, b) for b, p in fitted.items()}
    spread = None
    compared, renamed = identifiable(prob.guide, canon)
    if seeds > 1 and canon:
        extra = _seeds.extra_fits(report, prob, progs, fit_kw, seeds, say)
        extra = {b: [identifiable(prob.guide, {b: e})[0][b] for e in es] for b, es in extra.items()}
        spread = _seeds.param_spread(compared, extra)
    tol_per = {**{new: tol_per[old] for new, old in renamed.items() if old in tol_per}, **tol_per}
    _compare_params(report, compared, tol_default, tol_per, spread)
    report.checks["elbo"] = _elbo_check(report, elbo_tolerance, tails)
    judge_networks(report, prob, progs, canon, say)  # network weights: what is identifiable
    samples = _guide_samples(progs, fitted, seed, budget)
    report.data["samples"] = samples
    report.data["programs"] = progs
    say(None)
    _run_references(report, prob, progs, refs, canon, samples, say)
    say(None)
    return report


# -- preparing the inputs (the other steps are in ._steps) ---------------------------------------


def _warn_estimator_mismatch(loss, progs) -> None:
    """One :class:`~dualguide.errors.EstimatorMismatchWarning` for the guide sites without
    rsample on any backend (the fits' own warnings are silenced in ``fit_one``)."""
    import warnings

    from ..elbo import MISMATCH_LOSSES, mismatch_message, score_function_sites
    from ..errors import EstimatorMismatchWarning

    if loss.name not in MISMATCH_LOSSES:
        return
    sites: dict[str, list[str]] = {}
    for b, (gsites, _m) in progs.sites_by_backend.items():
        for n in score_function_sites(gsites):
            sites.setdefault(n, []).append(f"{gsites[n].dist} on {b}")
    if sites:
        text = {n: ", ".join(d) for n, d in sites.items()}
        warnings.warn(
            mismatch_message(loss.name, text, "crosscheck"), EstimatorMismatchWarning, stacklevel=3
        )


def _loss_object(loss, num_particles: int):
    """The fits' loss as a dg.infer ELBO object (its name with ``num_particles``)."""
    from ..elbo import as_loss

    return as_loss(loss, num_particles, where="crosscheck")


def _parse_checks(checks) -> tuple[str, ...]:
    """``checks`` as a tuple of known check names (``"all"``, one name, None accepted)."""
    if checks in (None, False):
        checks = ()
    elif checks == "all":
        checks = ALL_CHECKS
    elif isinstance(checks, str):
        checks = (checks,)
    bad = [c for c in checks if c not in ALL_CHECKS]
    if bad:
        raise SpecError(
            f"crosscheck: unknown check(s) {', '.join(map(repr, bad))}; "
            f"choose from {', '.join(ALL_CHECKS)} or 'all'"
        )
    return tuple(checks)


def _check_backends(backends) -> tuple[str, ...]:
    """``backends`` as a tuple of known backend names."""
    backends = tuple(backends)
    if not backends or any(b not in BACKENDS for b in backends):
        raise SpecError(f"crosscheck: backends must be among {BACKENDS}, got {backends}")
    return backends


def _check_inputs(model_args, elbo_particles) -> tuple:
    """``model_args`` as a tuple, once it and ``elbo_particles`` are checked."""
    if not isinstance(model_args, (tuple, list)):
        raise SpecError(f"crosscheck: model_args must be a tuple, got {type(model_args).__name__}")
    if not isinstance(elbo_particles, int) or elbo_particles < 2:
        raise SpecError(
            f"crosscheck: elbo_particles must be an integer >= 2, got {elbo_particles!r}"
        )
    return tuple(model_args)


def _new_report(prob: _Problem, progs: Programs, backends, settings: dict) -> CrosscheckReport:
    """An empty report with one run per backend (holding its setup error, if any)."""
    report = CrosscheckReport(_name(prob.model), _name(prob.guide), settings)
    for b in backends:
        report.runs[b] = BackendRun(b)
        if b in progs.errors:
            report.runs[b].error = progs.errors[b].args[0]
    return report


def _check_tolerance_names(tol_per: dict, progs: Programs) -> None:
    """Refuse per-param tolerances for params the programs do not declare."""
    unknown = sorted(set(tol_per) - set(progs.params)) if progs.params else []
    if unknown:
        raise SpecError(
            f"crosscheck: tolerances name unknown param(s) {', '.join(map(repr, unknown))}"
            f"; the programs declare {', '.join(map(repr, progs.params))}"
        )


class _Status:
    """One status line on stderr while crosscheck works (a terminal only, as fit's bars)."""

    def __init__(self, progress: bool | None):
        import sys

        self.stream = sys.stderr
        if progress is None:
            progress = bool(getattr(self.stream, "isatty", lambda: False)())
        self.on = bool(progress)
        self.width = 0

    def __call__(self, msg: str | None) -> None:
        if not self.on:
            return
        text = "" if msg is None else f"crosscheck: {msg}"
        self.stream.write("\r" + text.ljust(self.width) + ("\r" if msg is None else ""))
        self.stream.flush()
        self.width = len(text)


def optim_str(opt: Optimizer) -> str:
    """A short form of a neutral optimizer: ``ClippedAdam(lr=0.05, lrd=0.998)``."""
    parts = [f"lr={opt.lr:g}" if not callable(opt.lr) else f"lr={opt.lr!r}"]
    if tuple(opt.betas) != (0.9, 0.999):
        parts.append(f"betas={tuple(opt.betas)}")
    if opt.eps != 1e-8:
        parts.append(f"eps={opt.eps:g}")
    if opt.clip_norm is not None and not (opt.name == "ClippedAdam" and opt.clip_norm == 10.0):
        parts.append(f"clip_norm={opt.clip_norm:g}")
    if opt.lrd != 1.0:
        parts.append(f"lrd={opt.lrd:g}")
    return f"{opt.name}({', '.join(parts)})"


#: a particle this many robust sds from the median marks a heavy-tailed ELBO estimate (a
#: normal sample of 10^5 reaches about 5)
HEAVY_TAIL = 30.0


#: the fit's end-of-fit noise is read from this last fraction of its loss trace ...
TAIL_FRACTION = 0.2
#: ... cut into this many consecutive blocks (block means average the per-step Monte-Carlo
#: noise away, and keep the slow wander of the params around the optimum)
TAIL_BLOCKS = 10


def fit_noise(losses) -> float | None:
    """The end-of-fit noise of a fit's ELBO, from the tail of its loss trace.

    At the end of a stochastic fit the params wander around the optimum, so the ELBO at the
    last params is itself a random number: two fits of one problem (two seeds, or two
    backends) end at ELBOs that differ by about this much.  It is the standard deviation of
    the block means of the last ``TAIL_FRACTION`` of the losses (``TAIL_BLOCKS`` blocks),
    which holds the params' wander (and any remaining drift) and, averaged over a block, a
    small remainder of the per-step Monte-Carlo noise: an upper bound, on purpose (a
    false FAILED is worse here than a loose limit: the exact checks, log density, gradient
    and lockstep, are the sharp ones).  None when the trace is too short (< 20 steps).

    >>> import numpy as np
    >>> round(fit_noise(np.r_[np.linspace(10, 1, 800), np.ones(200)]), 6)
    0.0
    """
    v = np.asarray(losses, dtype=np.float64)
    v = v[np.isfinite(v)]
    n = int(len(v) * TAIL_FRACTION)
    if n < 2 * TAIL_BLOCKS:
        return None
    w = n // TAIL_BLOCKS
    tail = v[len(v) - w * TAIL_BLOCKS :].reshape(TAIL_BLOCKS, w)
    return float(tail.mean(axis=1).std(ddof=1))


def _elbo_check(report: CrosscheckReport, slack: float, tails: dict | None = None) -> CheckResult:
    """Do the two fits end at the same ELBO, within the estimates' errors and the fits' noise?

    limit = ELBO_K * sqrt(se_a^2 + se_b^2 + noise_a^2 + noise_b^2) + slack, with se the
    standard errors of the many-particle estimates and noise each fit's end-of-fit noise
    (:func:`fit_noise`).  The line prints every number the verdict uses."""
    runs = [r for r in report.runs.values() if r.elbo is not None]
    if len(runs) < 2:
        return CheckResult("elbo", "n/a", "needs an ELBO estimate from both backends")
    a, b = runs[:2]
    for r in (a, b):
        if r.fit is not None:
            r.fit_noise = fit_noise(r.fit.losses)
    # with seeds > 1: the spread of the fits' final losses over seeds, where it is larger
    if a.fit is not None and len(a.fit.losses) >= 2 * TAIL_BLOCKS:
        block = max(1, int(len(a.fit.losses) * TAIL_FRACTION) // TAIL_BLOCKS)
        for bk, sd in _seeds.loss_spread(report, block).items():
            r = report.runs[bk]
            r.fit_noise = max(r.fit_noise or 0.0, sd)
    na, nb = (r.fit_noise or 0.0 for r in (a, b))
    se = math.sqrt(a.elbo_stderr**2 + b.elbo_stderr**2)
    noise = math.sqrt(na**2 + nb**2)
    d = abs(a.elbo - b.elbo)
    lim = ELBO_K * math.sqrt(se**2 + noise**2) + slack
    ok = d <= lim
    summary = (
        f"|{a.backend} - {b.backend}| = {fmt(d)} {'<=' if ok else '>'} limit {fmt(lim)} "
        f"= {ELBO_K:g} x sqrt(se {fmt(se)}^2 + fit noise {fmt(noise)}^2) + {slack:g}"
    )
    if noise > 0:
        src = (
            "the loss tails and the seed spread"
            if report.data.get("seed_losses")
            else "the loss tails"
        )
        summary += f" (fit noise from {src}: {a.backend} {fmt(na)}, {b.backend} {fmt(nb)})"
    lock = report.checks.get("lockstep")
    if lock is not None and lock.status == "pass" and not ok:
        summary += (
            "; lockstep proved the two fits' computations identical, so the difference is "
            "in the ELBO estimates, not in the fits"
        )
    heavy = {k: v for k, v in (tails or {}).items() if v > HEAVY_TAIL}
    if heavy:
        summary += (
            "; heavy-tailed particles ("
            + ", ".join(f"{k}: one {v:.0f} robust sd out" for k, v in heavy.items())
            + "): the standard errors understate the error"
        )
    return CheckResult(
        "elbo",
        "pass" if ok else "fail",
        summary,
        details={
            "diff": d,
            "stderr": se,
            "fit_noise": {a.backend: na, b.backend: nb},
            "limit": lim,
            "tail_ratio": dict(tails or {}),
        },
    )
