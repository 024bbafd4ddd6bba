"""The steps of :func:`~dualguide.crosscheck.crosscheck` after its inputs are checked.

Run the deterministic checks, fit on each backend, estimate the ELBO at the fits,
compare the params, draw guide samples, and compare with the reference solutions.
Each step writes into the :class:`~dualguide.crosscheck.report.CrosscheckReport`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import FitError
from ._common import chunk_size, describe_error
from ._programs import Programs
from .lockstep_svi import lockstep
from .parity import _stats, elbo_particles, gradient_parity, logdensity_parity
from .reference import nuts_reference, quadrature_applicable, quadrature_reference
from .report import CHECK_TITLES, CheckResult, ParamComparison, isclose_elementwise

#: guide draws kept per backend for plots and the NUTS comparison
_SAMPLES = 20_000


@dataclass(frozen=True)
class _Problem:
    """One model and guide with their inputs: what every step of crosscheck runs."""

    model: Callable
    guide: Callable
    model_args: tuple
    model_kwargs: dict | None
    init_params: dict | None
    seed: int
    on_nonfinite: str


def _run_checks(
    report,
    prob: _Problem,
    progs,
    backends,
    checks,
    opt,
    lockstep_steps,
    lockstep_particles,
    say,
    enum=None,
    loss=None,
) -> None:
    """The deterministic checks at the init params (log density, gradient, lockstep); with
    ``enum`` (a TraceEnum_ELBO) the log density is the enumerated ELBO's
    (:func:`_enum_logdensity`); with ``loss`` other than Trace_ELBO, or a score-function guide
    site, the gradient and lockstep checks measure ``loss``'s native estimator
    (:mod:`.estimators`)."""
    from .estimators import estimator_gradient_parity, uses_estimator_checks

    est = loss if uses_estimator_checks(loss, progs) else None
    model, guide, args, kwargs, seed = (
        prob.model,
        prob.guide,
        prob.model_args,
        prob.model_kwargs,
        prob.seed,
    )
    runners = {
        "logdensity": lambda: logdensity_parity(
            model, guide, args, kwargs, seed=seed, programs=progs
        ),
        "gradient": (
            (lambda: gradient_parity(model, guide, args, kwargs, seed=seed, programs=progs))
            if est is None
            else lambda: estimator_gradient_parity(
                model, guide, args, kwargs, loss=est, seed=seed, programs=progs
            )
        ),
        "lockstep": lambda: lockstep(
            model,
            guide,
            args,
            kwargs,
            optim=opt,
            num_steps=lockstep_steps,
            num_particles=lockstep_particles,
            seed=seed,
            programs=progs,
            loss=est,
        ),
    }
    if enum is not None:
        runners["logdensity"] = lambda: _enum_logdensity(prob, progs, backends, enum)
    failed = [b for b in backends if b not in progs.ok_backends]
    for c in checks:
        if failed:
            report.checks[c] = CheckResult(
                c, "n/a", f"skipped: {' and '.join(failed)} cannot run the programs (see above)"
            )
        elif len(backends) < 2:
            report.checks[c] = CheckResult(c, "n/a", "skipped: needs both backends")
        else:
            say(f"{CHECK_TITLES.get(c, c)} ...")
            report.checks[c] = _guarded(c, runners[c])


def _enum_logdensity(prob: _Problem, progs, backends, enum) -> CheckResult:
    """With TraceEnum_ELBO: the enumerated ELBO (sites summed out) at the init params on both
    backends, when the guide draws nothing random (else n/a)."""
    from ..enum import elbo_values

    vals, errors = {}, {}
    for b in backends:
        try:
            vals[b] = elbo_values(
                prob.model,
                prob.guide,
                _init_params(prob, progs, b),
                b,
                2,
                prob.seed,
                prob.model_args,
                prob.model_kwargs,
                max_plate_nesting=enum.max_plate_nesting,
            )
        except Exception as e:
            errors[b] = describe_error(e)
    if errors:
        return CheckResult(
            "logdensity", "error", "could not evaluate the enumerated ELBO", errors=errors
        )
    if any(v[0] != v[1] for v in vals.values()):
        return CheckResult(
            "logdensity",
            "n/a",
            "the guide draws random latents: no deterministic enumerated ELBO (the gradient "
            "parity and lockstep check the enumerated estimator)",
        )
    a, b = (float(vals[k][0]) for k in backends[:2])
    # float32: both sum the same terms in another order, a few ulps of the magnitude apart
    lim = 1e-5 * (abs(a) + abs(b)) + 1e-4
    ok = abs(a - b) <= lim
    return CheckResult(
        "logdensity",
        "pass" if ok else "fail",
        f"enumerated ELBO at the init params: {backends[0]} {a:.6g}, {backends[1]} {b:.6g}, "
        f"|diff| {abs(a - b):.3g} (limit {lim:.3g})",
        details={"values": {backends[0]: a, backends[1]: b}, "limit": lim},
    )


def _run_fits(report, prob: _Problem, progs, backends, fit_kw: dict, say) -> dict:
    """``dualguide.fit`` on each backend that can run the programs: backend -> fitted params.

    A fit that stops keeps its last params (and its error); one that fails only its error.
    """
    for b in backends:
        run = report.runs[b]
        if b in progs.errors:
            continue
        say(f"fitting on {b} ...")
        try:
            run.fit = fit_one(prob, progs, b, fit_kw, prob.seed, fit_kw["progress"])
        except FitError as e:
            run.fit = e.result
            run.error = f"fit stopped: {describe_error(e)}"
        except Exception as e:
            run.error = f"fit failed: {describe_error(e)}"
    return {b: r.fit.params for b, r in report.runs.items() if r.fit is not None}


def fit_one(prob: _Problem, progs, backend: str, fit_kw: dict, seed: int, progress, seeds=None):
    """One ``dualguide.fit`` of the problem on ``backend`` with crosscheck's settings
    (``seeds``: one fit per seed in one program, a list of results)."""
    import dualguide as dg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=getattr(dg.errors, "CheckWarning", Warning))
        # crosscheck warned once, for both backends
        warnings.simplefilter("ignore", category=dg.errors.EstimatorMismatchWarning)
        return dg.fit(
            prob.model,
            prob.guide,
            backend=backend,
            model_args=prob.model_args,
            model_kwargs=prob.model_kwargs,
            optim=fit_kw["optim"],
            num_steps=fit_kw["num_steps"],
            num_particles=fit_kw["num_particles"],
            seed=seed if seeds is None else 0,
            seeds=seeds,
            init_params=_init_params(prob, progs, backend),
            on_nonfinite=prob.on_nonfinite,
            progress=progress,
            jit=fit_kw["jit"],
            loss=fit_kw.get("loss", "Trace_ELBO"),
            **_fit_check_kw(),
        )


def _init_params(prob: _Problem, progs, backend: str) -> dict | None:
    """The fit's ``init_params``: the user's, or for an autoguide the canonical backend's
    init values in ``backend``'s names, so that both fits start from the same numbers (the
    frameworks' autoguides initialize some params differently, e.g. the low-rank factor)."""
    nm = progs.naming
    if prob.init_params is not None or not nm.active:
        return prob.init_params
    # the canonical backend too: a flow's network weights are random draws, and the fit's
    # own draw (its seed) is not the one the checks ran at
    p = progs.params_for(backend)
    own = set(nm.own_params(list(p), backend))
    return {k: v for k, v in p.items() if k in own} or None


def _elbo_estimates(
    report, prob: _Problem, fitted: dict, n: int, say, max_memory_mb: float, enum=None
) -> dict[str, float]:
    """A many-particle ELBO estimate per fit, into its run: backend -> tail ratio.

    Each fit's own params (its backend's names) on a freshly rendered guide; with ``enum``
    (a TraceEnum_ELBO) the enumerated ELBO (:func:`dualguide.enum.elbo_values`)."""
    tails: dict[str, float] = {}
    if fitted:
        say(f"ELBO estimates ({n} particles) ...")
    for i, (b, params) in enumerate(fitted.items()):
        run = report.runs[b]
        try:
            if enum is not None:
                from ..enum import elbo_values

                vals = elbo_values(
                    prob.model,
                    prob.guide,
                    params,
                    b,
                    n,
                    prob.seed + 1 + i,
                    prob.model_args,
                    prob.model_kwargs,
                    max_plate_nesting=enum.max_plate_nesting,
                )
                run.elbo, run.elbo_stderr, run.elbo_nonfinite = _stats(vals)
                run.elbo_sd = float(vals.std(ddof=1))
                run.elbo_particles = n
                tails[b] = _tail_ratio(vals)
                continue
            vals = elbo_particles_fn(
                prob.model,
                prob.guide,
                params,
                b,
                n,
                prob.seed + 1 + i,
                prob.model_args,
                prob.model_kwargs,
                max_memory_mb=max_memory_mb,
            )
            run.elbo, run.elbo_stderr, run.elbo_nonfinite = _stats(vals)
            fin = vals[np.isfinite(vals)]
            run.elbo_sd = float(fin.std(ddof=1)) if fin.size > 1 else None
            run.elbo_particles = n
            tails[b] = _tail_ratio(vals)
        except Exception as e:
            msg = f"ELBO estimate failed: {describe_error(e)}"
            run.error = f"{run.error}; {msg}" if run.error else msg
    return tails


#: autoguides whose covariance factor is identified only up to its columns' signs and rotation
_LOW_RANK = ("AutoLowRankMultivariateNormal",)


def identifiable(guide, fitted: dict) -> tuple[dict, dict[str, str]]:
    """``fitted`` (backend -> params) with what a fit determines in place of what it does not:
    a low-rank autoguide's covariance factor ``W`` (its columns' signs and rotation leave the
    guide unchanged, and two fits end at mirrored factors: a false verdict) as ``W Wᵀ``, named
    ``'<name> @ <name>.T'`` (also for a low-rank part of an ``AutoGuideList``).  Also returns
    new name -> old name (their tolerances)."""
    parts = getattr(guide, "parts", None) or [guide]
    if not any(getattr(p, "kind", None) in _LOW_RANK for p in parts):
        return fitted, {}
    out: dict[str, dict] = {}
    renamed: dict[str, str] = {}
    for b, params in fitted.items():
        out[b] = {}
        for n, v in params.items():
            w = np.asarray(v)
            if n.endswith("cov_factor") and w.ndim == 2:
                new = f"{n} @ {n}.T"
                out[b][new] = w @ w.T
                renamed[new] = n
            else:
                out[b][n] = v
    return out, renamed


def _compare_params(
    report, fitted: dict, tol_default: dict, tol_per: dict, spread: dict | None = None
) -> None:
    """One :class:`ParamComparison` per fitted param, with its verdict against its tolerance
    (widened by the seed spread where it was measured)."""
    names = list(dict.fromkeys([n for p in fitted.values() for n in p]))
    for n in names:
        tol = tol_per.get(n, tol_default)
        pc = ParamComparison(
            n, {b: np.asarray(p[n]) for b, p in fitted.items() if n in p}, tol["abs"], tol["rel"]
        )
        if spread and n in spread:
            pc.spread = spread[n]
        pc.judge()
        report.params.append(pc)


def _guide_samples(progs: Programs, fitted: dict, seed: int, max_memory_mb: float) -> dict:
    """Guide draws at each backend's fitted params (its names; for plots, NUTS, the quadrature
    grid), under canonical site names.  The guide is rendered afresh, so that an autoguide
    sets itself up from the fitted params (the param hook) rather than keeping its init."""
    from ..render import render

    samples = {}
    nm = progs.naming
    nsamp = _SAMPLES if progs.latent_dim <= 10 else 2000
    chunk = chunk_size(progs.particle_bytes, max_memory_mb, nsamp)
    for b, params in fitted.items():
        nat = progs.natives.get(b)
        if nat is None:
            continue
        shapes = {nm.site_to(n, b): progs.shape(n) for n in progs.guide_latents}
        try:
            with progs.hook(params):
                s = nat.mod.sample_guide(
                    render(progs.guide, nat.backend),
                    params,
                    nsamp,
                    seed + 11,
                    nat.args,
                    nat.kwargs,
                    shapes,
                    None,
                    chunk,
                )
            samples[b] = nm.points_from(s, b)
        except Exception:
            pass
    return samples


def _auto_references(progs: Programs) -> tuple[str, ...]:
    """``reference="auto"``: quadrature when it applies, else NUTS for small continuous models."""
    if quadrature_applicable(progs) is None:
        return ("quadrature",)
    if progs.model_latents and 0 < progs.latent_dim <= 20:
        return ("nuts",)
    return ()


def _run_references(report, prob: _Problem, progs, refs, fitted: dict, samples: dict, say) -> None:
    """The reference solutions (quadrature, NUTS) the fits are compared with."""
    if refs == "auto":
        refs = _auto_references(progs)
    if "quadrature" in refs:
        say("quadrature reference ...")
        start = fitted.get("numpyro") or next(iter(fitted.values()), None)
        q = _guarded(
            "quadrature",
            lambda: quadrature_reference(
                prob.model,
                prob.guide,
                prob.model_args,
                prob.model_kwargs,
                start=start,
                samples=list(samples.values()) or None,
                seed=prob.seed,
                programs=progs,
            ),
        )
        report.checks["quadrature"] = q
        if q.status == "pass":
            _compare_with_reference(report, q.details["params"])
    if "nuts" in refs:
        say("NUTS reference ...")
        report.checks["nuts"] = _guarded(
            "nuts",
            lambda: nuts_reference(
                prob.model,
                prob.model_args,
                prob.model_kwargs,
                guide=prob.guide,
                guide_samples=samples,
                seed=prob.seed,
                programs=progs,
            ),
        )


def _compare_with_reference(report, exact: dict) -> None:
    """Each fitted param against the quadrature's exact optimum, within its tolerance."""
    for pc in report.params:
        if pc.name not in exact:
            continue
        pc.reference = np.asarray(exact[pc.name])
        extra = 0.0 if pc.spread is None else pc.spread_k * np.asarray(pc.spread, dtype=float)
        oks = [
            isclose_elementwise(v, pc.reference, pc.abs_tol, pc.rel_tol, extra)[1]
            for v in pc.values.values()
        ]
        pc.reference_ok = all(oks) if oks else None


# crosscheck's argument ``elbo_particles`` (a count) shadows the function of that name
elbo_particles_fn = elbo_particles


def _fit_check_kw() -> dict:
    """``check=False`` for dg.fit when it has the doctor (crosscheck ran it already)."""
    import inspect

    import dualguide as dg

    return {"check": False} if "check" in inspect.signature(dg.fit).parameters else {}


def _guarded(name: str, fn: Callable[[], CheckResult]) -> CheckResult:
    try:
        return fn()
    except Exception as e:
        return CheckResult(name, "error", f"the check raised {describe_error(e)}")


def _tail_ratio(vals: np.ndarray) -> float:
    """Largest distance of a particle from the median, in robust sds (MAD * 1.4826)."""
    v = vals[np.isfinite(vals)]
    if v.size < 10:
        return 0.0
    med = np.median(v)
    mad = 1.4826 * np.median(np.abs(v - med))
    return float(np.max(np.abs(v - med)) / mad) if mad > 0 else 0.0
