"""Checks that need no fitting: the many-particle ELBO, log-density parity, gradient parity.

All run at fixed params (the guide's init values unless ``params=`` says otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _inputs, _state
from ..errors import SpecError
from ..render import render
from ._common import (
    DEFAULT_MAX_MEMORY_MB,
    check_memory,
    chunk_size,
    describe_error,
    fmt,
    param_hook,
    particle_bytes,
)
from ._gradstats import canonical_grads, compared_params, mean_z, z_limit
from ._programs import (
    Programs,
    backend_module,
    prepare,
    recorded_value,
    structure_differences,
)
from .report import CheckResult

__all__ = ["elbo_estimate", "elbo_particles", "logdensity_parity", "gradient_parity"]

#: relative float32 tolerance of the log-density parity: |diff| <= RTOL * (1 + sum |log p_i|).
#: float32 rounds to 6e-8 relative; a sum of n terms and the few operations inside each
#: log_prob accumulate well under 100 ulps of the summed magnitudes, so 1e-5 (~170 ulps)
#: passes every float32 discrepancy and fails anything else (a missing constant or Jacobian
#: term moves the sum by far more).
LOGDENSITY_RTOL = 1e-5


def elbo_particles(
    model: Callable,
    guide: Callable,
    params: dict | None = None,
    backend: str | None = None,
    num_particles: int = 10_000,
    seed: int = 0,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    *,
    max_memory_mb: float = DEFAULT_MAX_MEMORY_MB,
) -> np.ndarray:
    """Single-particle ELBO values ``log p(x, z) - log q(z)``, ``z ~ q``, as a numpy array.

    NumPyro: native ``Trace_ELBO(num_particles=1)`` vmapped over keys; Pyro: the guide and
    the model in a particle plate (as ``Trace_ELBO(vectorize_particles=True)`` runs them),
    summed per particle.  ``params`` (constrained, by name) replace the init values.
    The particles are computed in pieces that fit in ``max_memory_mb`` (estimated from one
    unbatched trace of the guide and the model, see ``_common.particle_bytes``); that trace
    also sets the guide up outside any vectorization (see ``docs/crosscheck.md``).
    """
    b = _state.resolve(backend)
    mod = backend_module(b.name)
    if not isinstance(num_particles, int) or num_particles < 2:
        raise SpecError(
            f"elbo_estimate: num_particles must be an integer >= 2, got {num_particles!r}"
        )
    budget = check_memory(max_memory_mb, "elbo_estimate")
    args = tuple(b.to_array(a) for a in model_args)
    kwargs = {k: b.to_array(v) for k, v in (model_kwargs or {}).items()}
    m, g = render(model, b), render(guide, b)
    with param_hook(params):
        gsites, msites = mod.inspect(m, g, args, kwargs, seed)
        chunk = chunk_size(particle_bytes((gsites, msites), args, kwargs), budget, num_particles)
        vals = mod.elbo_particles(
            m, g, dict(params or {}), num_particles, seed, args, kwargs, chunk
        )
    return np.asarray(vals, dtype=np.float64)


def _stats(vals: np.ndarray) -> tuple[float, float, int]:
    fin = vals[np.isfinite(vals)]
    bad = int(vals.size - fin.size)
    if fin.size < 2:
        return math.nan, math.nan, bad
    return float(fin.mean()), float(fin.std(ddof=1) / math.sqrt(fin.size)), bad


def elbo_estimate(
    model: Callable,
    guide: Callable,
    params: dict | None = None,
    backend: str | None = None,
    num_particles: int = 10_000,
    seed: int = 0,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    *,
    max_memory_mb: float = DEFAULT_MAX_MEMORY_MB,
) -> tuple[float, float]:
    """Many-particle ELBO estimate at ``params``: ``(mean, standard error)``.

    Particles whose value is not finite (a guide draw outside the model's support, which
    has model density zero) are left out of the mean; :func:`elbo_particles` gives them all.

    >>> import dualguide as dg
    >>> from dualguide import constraints, distributions as dist
    >>> def model():
    ...     dg.sample("x", dist.Normal(0.0, 2.0))
    >>> def guide():
    ...     dg.sample("x", dist.Normal(0.0, dg.param("s", 2.0, constraint=constraints.positive)))
    >>> m, se = dg.crosscheck.elbo_estimate(model, guide, backend="pyro", num_particles=1000)
    >>> abs(m) < 1e-5  # the guide is exact: every particle has log p - log q = 0
    True
    """
    vals = elbo_particles(
        model,
        guide,
        params,
        backend,
        num_particles,
        seed,
        model_args,
        model_kwargs,
        max_memory_mb=max_memory_mb,
    )
    m, se, _ = _stats(vals)
    return m, se


# ------------------------------------------------------------------------------------------
def _points(progs: Programs, num_points: int, seed: int) -> tuple[dict, dict]:
    """Points for the parity checks: guide base values and model latent values, drawn once."""
    src = "numpyro" if "numpyro" in progs.ok_backends else progs.ok_backends[0]
    nat = progs.native(src)
    if src == "numpyro":
        with progs.hook(backend=src):
            gv, mv, subsamples = nat.mod.sample_points(
                nat.model, nat.guide, progs.params_for(src), num_points, seed, nat.args, nat.kwargs
            )
    else:  # pragma: no cover - only when numpyro is unusable
        with progs.hook(backend=src):
            gv = nat.mod.sample_guide(
                nat.guide,
                progs.params_for(src),
                num_points,
                seed,
                nat.args,
                nat.kwargs,
                {n: progs.shape(n) for n in progs.guide_latents},
            )
        mv, subsamples = {}, {}
    gv = progs.naming.points_from(gv, src)
    gpoints = {k: np.asarray(gv[k]) for k in progs.base_sites if k in gv}
    mpoints = {
        k: np.asarray(gv[k] if k in gv else mv[k])
        for k in progs.model_latents
        if k in gv or k in mv
    }
    # each point keeps the minibatch it was drawn with: both backends evaluate it on the same
    # indices (drawn by each backend's own generator, the data terms of a subsampled plate
    # would differ between them by far more than rounding)
    gplates = set(progs.guide_plates)
    gpoints.update({k: np.asarray(v) for k, v in subsamples.items() if k in gplates})
    mpoints.update({k: np.asarray(v) for k, v in subsamples.items()})
    return gpoints, mpoints


def _cmp(a: np.ndarray, b: np.ndarray, scale: np.ndarray, rtol: float) -> tuple[float, bool]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    same_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    with np.errstate(invalid="ignore"):
        d = np.where(same_inf, 0.0, np.abs(a - b))
    d = np.where(np.isnan(a) & np.isnan(b), 0.0, d)
    d = np.where(np.isnan(d), np.inf, d)
    lim = rtol * (1.0 + np.asarray(scale, dtype=np.float64))
    return float(np.max(d)) if d.size else 0.0, bool(np.all(d <= lim))


def logdensity_parity(
    model: Callable,
    guide: Callable,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    *,
    params: dict | None = None,
    num_points: int = 64,
    seed: int = 0,
    rtol: float = LOGDENSITY_RTOL,
    programs: Programs | None = None,
) -> CheckResult:
    """Same params, same points: the guide's and the model's log densities in both backends.

    Points are drawn once (from the NumPyro guide, model-only latents from the NumPyro
    model); every non-Delta guide latent is set to them in both backends, so Delta sites
    (``dg.transformed`` outputs) are recomputed from their base values by each backend, and
    their values and their ``log_density`` (``-log|det J|``) are compared too.  The model is
    evaluated at the same latent values in both.  Passes when every per-site sum agrees to
    ``rtol * (1 + sum |log p_i|)`` (float32 rounding) at every point.

    >>> import dualguide as dg
    >>> from dualguide import constraints, distributions as dist
    >>> def model():
    ...     dg.sample("x", dist.Normal(0.0, 2.0))
    >>> def guide():
    ...     dg.sample("x", dist.Normal(0.0, dg.param("s", 1.0, constraint=constraints.positive)))
    >>> dg.crosscheck.logdensity_parity(model, guide, num_points=16).status
    'pass'
    """
    progs = programs or prepare(model, guide, model_args, model_kwargs, params, seed)
    res = CheckResult("logdensity", "error")
    if len(progs.ok_backends) < 2:
        res.errors = {b: e.args[0] for b, e in progs.errors.items()}
        res.summary = "needs both backends to run the programs"
        return res
    nm = progs.naming
    diffs = structure_differences(progs, ("model",))
    guide_diffs = structure_differences(progs, ("guide",))
    # the frameworks' autoguides may build one distribution from other sites (Pyro's AutoNormal
    # samples "x_unconstrained" and maps it by a Delta, NumPyro's samples "x" from a
    # TransformedDistribution): the guide's density is then compared by the gradient parity and
    # the ELBO check, the model's here, at the same points
    guide_too = not guide_diffs
    if guide_diffs and not nm.active:
        diffs = guide_diffs + diffs
    if diffs:
        res.status = "fail"
        res.summary = "the backends trace different sites: " + "; ".join(diffs[:4])
        res.details = {"structure": diffs}
        return res
    try:
        gpoints, mpoints = _points(progs, num_points, seed)
    except Exception as e:
        res.summary = f"could not draw points: {describe_error(e)}"
        return res
    out = {}
    for b in progs.ok_backends:
        nat = progs.native(b)
        gp = gpoints if guide_too or b == nm.canonical else {}
        try:
            with progs.hook(backend=b):
                o = nat.mod.logdensities(
                    nat.model,
                    nat.guide,
                    progs.params_for(b),
                    nm.points_to(gp, b),
                    mpoints,
                    nat.args,
                    nat.kwargs,
                )
            for what in ("guide", "model"):  # per-site sums: the names only
                o[what] = {nm.site_from(k, b): v for k, v in o[what].items()}
            o["values"] = nm.points_from(o["values"], b)
            out[b] = o
        except Exception as e:
            res.errors[b] = describe_error(e)
    if res.errors:
        res.summary = "could not evaluate the log densities"
        return res
    a, c = (out[b] for b in progs.ok_backends[:2])
    _drop_recorded_values(progs, a, c)
    ok = True
    worst: dict[str, Any] = {}
    details: dict[str, Any] = {"points": int(num_points), "rtol": rtol, "sites": {}}
    for what in ("guide", "model") if guide_too else ("model",):
        scale = np.maximum(a[what + "_abs"], c[what + "_abs"])
        ta = sum(np.asarray(v, np.float64) for v in a[what].values())
        tc = sum(np.asarray(v, np.float64) for v in c[what].values())
        d, good = _cmp(ta, tc, scale, rtol)
        details[f"{what}_max_diff"] = d
        ok &= good
        missing = sorted(set(a[what]) ^ set(c[what]))
        if missing:
            ok = False
            details[f"{what}_unmatched_sites"] = missing
        for n in a[what]:
            if n not in c[what]:
                continue
            dn, gn = _cmp(a[what][n], c[what][n], scale, rtol)
            details["sites"][f"{what}:{n}"] = dn
            if not gn:
                ok = False
                worst.setdefault(what, (n, dn))
    for n in progs.delta_sites if guide_too else ():
        if n in a["values"] and n in c["values"]:
            va, vc = np.asarray(a["values"][n]), np.asarray(c["values"][n])
            dn, gn = _cmp(va, vc, np.abs(va), rtol)
            details["sites"][f"value:{n}"] = dn
            if not gn:
                ok = False
                worst.setdefault("value", (n, dn))
    res.details = details
    res.status = "pass" if ok else "fail"
    if guide_too:
        summ = (
            f"{num_points} points: max |diff| guide {fmt(details['guide_max_diff'], 2)}, "
            f"model {fmt(details['model_max_diff'], 2)}"
        )
    else:
        summ = (
            f"{num_points} points: max |diff| model {fmt(details['model_max_diff'], 2)} (the "
            f"{nm.kind}s of the two frameworks build the guide from other sites: its density is "
            "compared by the gradient parity and the ELBO check)"
        )
        details["guide_structure"] = guide_diffs
    if progs.delta_sites and guide_too:
        summ += f" ({len(progs.delta_sites)} transformed site(s) recomputed)"
    if not ok:
        bad = "; ".join(f"{w} site {n!r} differs by {fmt(dn, 2)}" for w, (n, dn) in worst.items())
        summ += f" -- {bad or 'site sets differ'} (limit {rtol:g}*(1+sum|log p|))"
    res.summary = summ
    if not ok and _inputs.get_dtype() == "float32":
        return _float64_opinion(res, progs, num_points, seed, rtol)
    return res


def _float64_opinion(
    res32: CheckResult, progs: Programs, num_points: int, seed: int, rtol: float
) -> CheckResult:
    """A float32 log-density difference, looked at again in float64 on both backends.

    The float32 limit scales with the log densities themselves, but a log density that is a
    difference of large terms (a Beta's or Gamma's ``lgamma`` normalizer: ``lgamma(30) = 71``
    against a log density near 0) rounds relative to those terms, so two correct float32
    implementations can differ by more.  Float64 tells rounding from a real difference: a
    missing constant or Jacobian term stays, rounding shrinks by ~1e9.  The verdict is the
    float64 one, and the summary prints both.
    """
    try:
        with _inputs.use_dtype("float64"):
            p64 = prepare(
                progs.model,
                progs.guide,
                progs.model_args,
                progs.model_kwargs,
                None if progs.naming.active else progs.params,
                seed,
                tuple(progs.ok_backends),
            )
            res64 = logdensity_parity(
                progs.model,
                progs.guide,
                progs.model_args,
                progs.model_kwargs,
                num_points=num_points,
                seed=seed,
                rtol=rtol,
                programs=p64,
            )
    except Exception as e:  # no second opinion: the float32 verdict stands
        res32.summary += f" (the float64 check could not run: {describe_error(e)})"
        return res32
    res64.details["float32"] = res32.details
    if res64.status == "pass":
        res64.summary = (
            f"float32 differences are rounding: {res32.summary}; in float64 the backends agree "
            f"({res64.summary})"
        )
    elif res64.status == "fail":
        res64.summary = f"in float64 too: {res64.summary} (float32: {res32.summary})"
    else:
        res32.summary += f" (the float64 check: {res64.summary})"
        return res32
    return res64


def _drop_recorded_values(progs: Programs, a: dict, c: dict) -> None:
    """Leave out of the comparison the model sites one backend records as an observed
    ``Delta`` and the other as ``deterministic`` (see ``_programs.recorded_value``), when
    their log density is exactly 0 at every point; a nonzero one stays, and fails."""
    sites = [m for _g, m in progs.sites_by_backend.values()]
    if len(sites) < 2:
        return
    names = {
        n
        for n in sites[0]
        if n in sites[1]
        and sites[0][n].type != sites[1][n].type
        and recorded_value(sites[0][n])
        and recorded_value(sites[1][n])
    }
    # a deterministic site that only one backend's log densities list (Pyro's
    # ``deterministic`` is a sample site of a Delta, scored 0; NumPyro's is not a sample site)
    names |= {
        n
        for n in set(a["model"]) ^ set(c["model"])
        if all(n in s and recorded_value(s[n]) for s in sites)
    }
    for o in (a, c):
        for n in names:
            v = o["model"].get(n)
            if v is not None and not np.any(np.asarray(v)):
                del o["model"][n]


def _mad(g: np.ndarray) -> np.ndarray:
    """Median absolute deviation over the batch axis, scaled to a normal sd."""
    return 1.4826 * np.median(np.abs(g - np.median(g, 0)), 0)


# ------------------------------------------------------------------------------------------
def gradient_parity(
    model: Callable,
    guide: Callable,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    *,
    params: dict | None = None,
    num_batches: int = 32,
    batch_size: int = 64,
    k: float = 4.0,
    seed: int = 0,
    programs: Programs | None = None,
    max_memory_mb: float = DEFAULT_MAX_MEMORY_MB,
) -> CheckResult:
    """The ELBO gradient at fixed params agrees between backends within Monte-Carlo error.

    Each backend computes ``num_batches`` independent gradients of its native
    ``Trace_ELBO(num_particles=batch_size)`` loss with respect to the params' constrained
    values (the unconstrained coordinates differ between the frameworks for some constraints,
    e.g. ``simplex`` and ``lower_cholesky``; lockstep covers the optimizer's path).  With
    means ``g`` and standard errors ``se`` (from the spread of the batches), an element passes
    when ``|g_a - g_b|`` less a float32 floor is at most ``z * sqrt(se_a^2 + se_b^2)`` (the
    printed ``|diff|/se``), with ``z = max(k, Bonferroni z for 0.1% over all elements)``: a
    real difference of estimators' means fails, Monte-Carlo noise does not.  The per-particle
    spreads are reported too: a large ratio says the backends use different gradient
    estimators (e.g. a score-function fallback) even when the means agree.

    >>> import dualguide as dg
    >>> from dualguide import constraints, distributions as dist
    >>> def model():
    ...     dg.sample("x", dist.Normal(0.0, 2.0))
    >>> def guide():
    ...     dg.sample("x", dist.Normal(0.0, dg.param("s", 1.0, constraint=constraints.positive)))
    >>> dg.crosscheck.gradient_parity(model, guide, num_batches=16, batch_size=16).status
    'pass'
    """
    progs = programs or prepare(model, guide, model_args, model_kwargs, params, seed)
    decided, compared, skipped = compared_params(progs)
    if decided is not None:
        return decided
    res = CheckResult("gradient", "error")
    nm = progs.naming
    out = {}
    budget = check_memory(max_memory_mb, "gradient_parity")
    # a gradient holds about three copies of a particle (values, cotangents, the sum)
    chunk = chunk_size(3 * batch_size * progs.particle_bytes, budget, num_batches)
    for i, b in enumerate(progs.ok_backends):
        nat = progs.native(b)
        try:
            with progs.hook(backend=b):
                losses, grads = nat.mod.grad_batches(
                    nat.model,
                    nat.guide,
                    progs.params_for(b),
                    progs.constraints,
                    num_batches,
                    batch_size,
                    seed + 7919 * i,
                    nat.args,
                    nat.kwargs,
                    chunk,
                )
            out[b] = (losses, canonical_grads(progs, grads, b, skipped))
        except Exception as e:
            res.errors[b] = describe_error(e)
    if res.errors:
        res.summary = "could not compute gradients"
        return res
    ba, bb = progs.ok_backends[:2]
    n_el = sum(int(np.size(progs.params[n])) for n in compared)
    z = z_limit(k, n_el)
    ok, worst, rows = True, (None, 0.0), {}
    ratios, heavy = [], []
    for name in compared:
        ga = np.asarray(out[ba][1][name], np.float64)
        gb = np.asarray(out[bb][1][name], np.float64)
        ma, mb = ga.mean(0), gb.mean(0)
        sa = ga.std(0, ddof=1) / math.sqrt(ga.shape[0])
        sb = gb.std(0, ddof=1) / math.sqrt(gb.shape[0])
        # the difference beyond the float32 floor, in standard errors: the verdict is
        # exactly "zs > z", so the printed maximum and the limit decide it
        zs = mean_z(ma, mb, np.sqrt(sa**2 + sb**2))
        if np.any(~(zs <= z)):
            ok = False
        zmax = float(np.max(np.where(np.isnan(zs), np.inf, zs))) if zs.size else 0.0
        if worst[0] is None or zmax > worst[1]:
            worst = (name, zmax)
        # robust spreads (median absolute deviation of the batch gradients): their ratio
        # compares the estimators' noise without being thrown by heavy tails
        mada, madb = _mad(ga), _mad(gb)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where((mada > 0) & (madb > 0), madb / mada, np.nan)
        ratios += [float(x) for x in np.ravel(r) if np.isfinite(x)]
        for g, mad in ((ga, mada), (gb, madb)):
            with np.errstate(divide="ignore", invalid="ignore"):
                out_z = np.max(np.abs(g - np.median(g, 0)), 0) / mad
            if np.any(np.nan_to_num(out_z) > 15):
                heavy.append(name)
        rows[name] = {
            f"{ba}_mean": ma,
            f"{bb}_mean": mb,
            f"{ba}_stderr": sa,
            f"{bb}_stderr": sb,
            f"{ba}_mad": mada,
            f"{bb}_mad": madb,
            "z": zs,
        }
    res.details = {
        "num_batches": num_batches,
        "batch_size": batch_size,
        "limit_z": z,
        "params": rows,
    }
    res.status = "pass" if ok else "fail"
    res.summary = (
        f"max |diff|/se = {fmt(worst[1], 2)} at {worst[0]!r} "
        f"({'<=' if ok else '>'} limit {z:.2f}; |diff| beyond a float32 floor); "
        f"{num_batches}x{batch_size} particles"
    )
    if skipped:
        res.details["skipped"] = skipped
        res.summary += (
            f"; {', '.join(skipped)} not compared ({nm.kind} stores them differently in the "
            "two frameworks)"
        )
    if ratios:
        hi, lo = max(ratios), min(ratios)
        rmax = max(hi, 1 / lo)
        res.details["noise_ratio_max"] = rmax
        if rmax > 3:
            which = bb if hi >= 1 / lo else ba
            res.summary += (
                f"; {which}'s gradient is {rmax:.1f}x noisier (median absolute "
                "deviation): a different estimator? (e.g. a score-function fallback)"
            )
    if heavy:
        names = ", ".join(dict.fromkeys(heavy))
        res.details["heavy_tailed"] = list(dict.fromkeys(heavy))
        res.summary += (
            f"; heavy-tailed gradients ({names}): Monte-Carlo errors are rough, "
            "lockstep is the sharper check"
        )
    return res
