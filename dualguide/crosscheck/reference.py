"""Independent references where they are cheap: NUTS moments, and quadrature-exact params.

* :func:`quadrature_reference` -- for guides whose base latents (the guide's non-Delta sample
  sites) have one or two real numbers in all: the KL-optimal params, found by maximizing the
  ELBO computed by quadrature (not Monte Carlo) with ``scipy.optimize``.  The ELBO is
  ``E_q[log p(x) - log q(x)]`` written over the base latents u, ``x = x(u)``, with the guide's
  own log density (Delta sites carry ``-log|det J|``), so a transformed guide (``dg.transformed``)
  is covered.  The grid maps a uniform grid through ``c + s * tan(pi * (v - 1/2))`` per base
  dim (``c``, ``s`` from guide samples), which reaches the heavy tails of a Cauchy as well as
  the bulk of a Normal; weights include the map's Jacobian.  Density evaluations are the
  NumPyro rendering of the neutral programs (float32), gradients by JAX.
* :func:`nuts_reference` -- NUTS (NumPyro) on the model; the fitted guides' means and standard
  deviations of the model latents are compared with the NUTS ones.  A variational family need
  not contain the posterior, so this is information (``status="info"``), not a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .._inputs import float_np
from .._table import canonical_dist
from ._common import describe_error, fmt
from ._programs import Programs, prepare
from .report import CheckResult

__all__ = ["quadrature_reference", "nuts_reference", "QUADRATURE_MAX_DIM"]

#: base latents of at most this many numbers get a quadrature reference
QUADRATURE_MAX_DIM = 2

#: base distributions on the whole real line (the grid covers the real line)
_REAL_FAMILIES = (
    "Normal",
    "Cauchy",
    "Laplace",
    "StudentT",
    "MixtureSameFamily",
    "MultivariateNormal",
    "Logistic",
    "Gumbel",
)

_GRID = {1: 4001, 2: 201}


def quadrature_applicable(progs: Programs) -> str | None:
    """None when the quadrature reference applies, else the reason it does not."""
    if progs.model_only:
        return f"model latent(s) {', '.join(progs.model_only)} not in the guide"
    dim = sum(math.prod(progs.shape(n)) for n in progs.base_sites)
    if dim == 0:
        return "the guide has no base latents"
    if dim > QUADRATURE_MAX_DIM:
        return f"the guide's base latents have {dim} numbers (quadrature for at most {QUADRATURE_MAX_DIM})"
    for n in progs.base_sites:
        fam = canonical_dist(progs.guide_sites[n].dist)
        if fam not in _REAL_FAMILIES:
            return f"base site {n!r} ({fam}) is not on the real line"
    if not progs.params:
        return "no params"
    return None


def _grid(centers: np.ndarray, scales: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (N, d) and log weights (N,) of the tan-mapped midpoint rule."""
    v = (np.arange(n) + 0.5) / n
    a = np.pi * (v - 0.5)
    d = len(centers)
    axes, logws = [], []
    for c, s in zip(centers, scales):
        axes.append(c + s * np.tan(a))
        logws.append(np.log(s * np.pi / n) - 2 * np.log(np.cos(a)))
    mesh = np.meshgrid(*axes, indexing="ij")
    lw = np.meshgrid(*logws, indexing="ij")
    nodes = np.stack([m.ravel() for m in mesh], axis=-1)
    return nodes.reshape(-1, d), np.sum([w.ravel() for w in lw], axis=0)


def quadrature_reference(
    model: Callable,
    guide: Callable,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    *,
    params: dict | None = None,
    start: dict | None = None,
    samples: list[dict] | None = None,
    grid_size: int | None = None,
    seed: int = 0,
    programs: Programs | None = None,
) -> CheckResult:
    """The exact KL-optimal params of a guide with one or two base numbers, by quadrature.

    ``start`` (constrained params) is where the optimizer starts (default: the init values);
    ``samples`` (a list of ``{site: draws}`` from fitted guides) place the grid, default draws
    of the guide at ``start``.  ``details["params"]`` holds the optimum (constrained),
    ``details["elbo"]`` the ELBO there; ``status`` is ``pass`` when the optimizer converged,
    ``n/a`` when the guide is out of scope.

    >>> import dualguide as dg
    >>> from dualguide import constraints, distributions as dist
    >>> def model():
    ...     dg.sample("x", dist.Normal(0.0, 2.0))
    >>> def guide():
    ...     dg.sample("x", dist.Normal(0.0, dg.param("s", 1.0, constraint=constraints.positive)))
    >>> r = dg.crosscheck.quadrature_reference(model, guide)
    >>> round(float(r.details["params"]["s"]), 3)
    2.0
    """
    from scipy.optimize import minimize

    progs = programs or prepare(model, guide, model_args, model_kwargs, params, seed)
    res = CheckResult("quadrature", "error")
    if "numpyro" not in progs.ok_backends:
        e = progs.errors.get("numpyro")
        res.errors = {"numpyro": e.args[0] if e else "numpyro is not available"}
        res.summary = "the quadrature runs on the NumPyro rendering"
        return res
    why = quadrature_applicable(progs)
    if why:
        res.status, res.summary = "n/a", why
        return res
    nat = progs.native("numpyro")
    mod = nat.mod
    start = {k: np.asarray(v, float_np()) for k, v in (start or progs.params).items()}
    start = {**progs.params, **{k: v for k, v in start.items() if k in progs.params}}
    try:
        with progs.hook(start):
            if not samples:
                samples = [mod.sample_guide(nat.guide, start, 4000, seed, nat.args, nat.kwargs)]
        base = progs.base_sites
        cols = []
        for s in samples:
            cols.append(
                np.concatenate(
                    [np.asarray(s[n], np.float64).reshape(len(s[n]), -1) for n in base], axis=1
                )
            )
        pooled = np.concatenate(cols)
        pooled = pooled[np.all(np.isfinite(pooled), axis=1)]
        centers = np.median(pooled, axis=0)
        q25, q75 = np.percentile(pooled, [25, 75], axis=0)
        scales = np.maximum((q75 - q25) / 1.349, 1e-3)
        d = len(centers)
        n = grid_size or _GRID[d]
        nodes, logw = _grid(centers, scales, n)
        points, k = {}, 0
        for name in base:
            shp = progs.shape(name)
            size = math.prod(shp)
            points[name] = nodes[:, k : k + size].reshape((-1,) + shp).astype(float_np())
            k += size
        with progs.hook(start):
            f = mod.quadrature_objective(
                nat.model, nat.guide, progs.constraints, points, logw, nat.args, nat.kwargs
            )
            u0 = mod.unconstrain(start, progs.constraints)
            names = list(u0)
            shapes = {k: np.shape(u0[k]) for k in names}

            def unflat(x):
                out, i = {}, 0
                for k in names:
                    sz = int(np.prod(shapes[k])) if shapes[k] else 1
                    out[k] = np.asarray(x[i : i + sz], float_np()).reshape(shapes[k])
                    i += sz
                return out

            def fun(x):
                val, g = f(unflat(x))
                gflat = np.concatenate([np.ravel(g[k]) for k in names]).astype(np.float64)
                if not np.isfinite(val):
                    return 1e10, np.zeros_like(gflat)
                return float(val), np.nan_to_num(gflat)

            x0 = np.concatenate([np.ravel(u0[k]) for k in names]).astype(np.float64)
            opt = minimize(
                fun,
                x0,
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": 1000, "gtol": 1e-6, "ftol": 1e-12},
            )
            x_opt = _polish(fun, opt.x)
            u_opt = unflat(x_opt)
            val, _, aux = f(u_opt, aux=True)
            p_opt = mod.constrain(u_opt, progs.constraints)
    except Exception as e:
        res.summary = f"quadrature failed: {describe_error(e)}"
        return res
    _, gnorm = fun(x_opt)
    gmax = float(np.max(np.abs(gnorm))) if gnorm.size else 0.0
    res.details = {
        "params": {k: np.asarray(v) for k, v in p_opt.items()},
        "elbo": -float(val),
        "grid": f"{n}^{d} nodes",
        "dropped_mass": aux["dropped_mass"],
        "iterations": int(opt.nit),
        "grad_max": gmax,
        "message": str(opt.message),
    }
    converged = bool(opt.success) or gmax < 1e-3
    res.status = "pass" if converged else "fail"
    ps = ", ".join(f"{k} = {_short(v)}" for k, v in p_opt.items())
    res.summary = f"exact optimum {ps}; ELBO {fmt(-float(val))} ({n}^{d} grid)"
    if aux["dropped_mass"] > 1e-6:
        res.summary += f"; guide mass outside the model's support: {fmt(aux['dropped_mass'], 2)}"
    if not converged:
        res.summary += f"; optimizer did not converge ({opt.message}, |grad| {fmt(gmax, 2)})"
    return res


def _polish(fun, x: np.ndarray) -> np.ndarray:
    """Solve grad = 0 from ``x`` (Powell's hybrid method on the gradient).

    Near the optimum the float32 ELBO changes by less than its rounding, so a line search on
    the value stops early; the gradient stays informative, so its root is found instead.
    """
    from scipy.optimize import root

    g0 = np.max(np.abs(fun(x)[1]))
    try:
        r = root(lambda z: fun(z)[1], x, method="hybr", options={"eps": 1e-8})
    except Exception:
        return x
    if r.success or np.all(np.isfinite(r.x)):
        f0, f1 = fun(x)[0], fun(r.x)[0]
        g1 = np.max(np.abs(fun(r.x)[1]))
        if g1 < g0 and f1 <= f0 + 1e-5 * (1 + abs(f0)):
            return r.x
    return x


def _short(v) -> str:
    a = np.asarray(v)
    if a.size == 1:
        return fmt(float(a.reshape(())))
    return "[" + ", ".join(fmt(x) for x in a.ravel()[:4]) + (", ...]" if a.size > 4 else "]")


def nuts_reference(
    model: Callable,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    *,
    guide: Callable | None = None,
    guide_samples: dict[str, dict] | None = None,
    params: dict | None = None,
    num_warmup: int = 500,
    num_samples: int = 2000,
    seed: int = 0,
    programs: Programs | None = None,
) -> CheckResult:
    """NUTS on the model; compare the fitted guides' moments of the model latents with it.

    ``guide_samples``: ``{backend: {site: draws}}`` from the fitted guides.  Model params (if
    the model has any) are held at ``params``.  ``details["sites"]`` lists per latent element
    the NUTS mean and sd and each guide's; the summary gives the largest ``|mean diff| / sd``
    and the range of sd ratios.  Status ``info``: a guide family need not hold the posterior.
    """
    progs = programs or prepare(
        model, guide or (lambda *a, **k: None), model_args, model_kwargs, params, seed
    )
    res = CheckResult("nuts", "error")
    if "numpyro" not in progs.ok_backends:
        e = progs.errors.get("numpyro")
        res.errors = {"numpyro": e.args[0] if e else "numpyro is not available"}
        res.summary = "NUTS runs on the NumPyro rendering"
        return res
    nat = progs.native("numpyro")
    for n in progs.model_latents:
        if canonical_dist(progs.model_sites[n].dist) in ("Bernoulli", "Categorical"):
            res.status, res.summary = "n/a", f"model latent {n!r} is discrete"
            return res
    model_params = {
        k: v
        for k, v in progs.params.items()
        if k in progs.model_sites and progs.model_sites[k].type == "param"
    }
    try:
        with progs.hook():
            ref = nat.mod.nuts(
                nat.model, model_params, num_warmup, num_samples, seed, nat.args, nat.kwargs
            )
    except Exception as e:
        res.summary = f"NUTS failed: {describe_error(e)}"
        return res
    rows = {}
    zmax = {b: 0.0 for b in (guide_samples or {})}
    ratios = {b: [] for b in (guide_samples or {})}
    for n in progs.model_latents:
        if n not in ref:
            continue
        r = np.asarray(ref[n], np.float64).reshape(num_samples, -1)
        mr, sr = r.mean(0), r.std(0, ddof=1)
        for j in range(r.shape[1]):
            label = n if r.shape[1] == 1 else f"{n}[{j}]"
            row = {"nuts_mean": mr[j], "nuts_sd": sr[j]}
            for b, smp in (guide_samples or {}).items():
                if n not in smp:
                    continue
                g = np.asarray(smp[n], np.float64).reshape(len(smp[n]), -1)[:, j]
                g = g[np.isfinite(g)]
                row[f"{b}_mean"], row[f"{b}_sd"] = g.mean(), g.std(ddof=1)
                if sr[j] > 0:
                    zmax[b] = max(zmax[b], abs(g.mean() - mr[j]) / sr[j])
                    ratios[b].append(g.std(ddof=1) / sr[j])
            rows[label] = row
    res.details = {"num_warmup": num_warmup, "num_samples": num_samples, "sites": rows}
    res.status = "info"
    parts = []
    for b in zmax:
        if ratios[b]:
            parts.append(
                f"{b}: max |mean diff|/sd {fmt(zmax[b], 2)}, sd ratio "
                f"{fmt(min(ratios[b]), 3)}-{fmt(max(ratios[b]), 3)}"
            )
    res.summary = f"NUTS {num_samples} draws of {len(rows)} latent number(s); " + (
        "; ".join(parts) if parts else "no guide samples to compare"
    )
    res.data = {"nuts": ref}
    return res
