"""The doctor's param-dependence check: which guide sites each param moves.

The guide is traced again, with the same seed, at params moved inside their
constraints; a site whose value and log density do not move depends on no param.
A factor "shapes" a site when moving the site's value moves the factor.
"""

from __future__ import annotations

import numpy as np

from .._inputs import float_np
from .sites import _latent, _names, _same, _support

#: above this many params, the dependence is traced for all of them at once only
PER_PARAM_MAX = 16


def _perturb(value, c) -> np.ndarray | None:
    """A value near ``value`` inside constraint ``c`` and clearly different from it."""
    v = np.asarray(value, dtype=np.float64)
    n = c.name if c is not None else "real"
    if n in ("real", "real_vector"):
        out = v + 0.3 * (1.0 + np.abs(v))
    elif n in ("positive", "lower_cholesky", "positive_definite"):
        out = v * 1.5
    elif n == "greater_than":
        out = c.args[0] + (v - c.args[0]) * 1.5
    elif n == "less_than":
        out = c.args[0] - (c.args[0] - v) * 1.5
    elif n in ("interval", "unit_interval"):
        lo, hi = c.args if n == "interval" else (0.0, 1.0)
        mid = 0.5 * (lo + hi)
        out = np.where(np.abs(v - mid) > 0.05 * (hi - lo), 0.6 * v + 0.4 * mid, v + 0.2 * (hi - lo))
    elif n == "simplex":
        out = 0.6 * v + 0.4 / max(v.shape[-1] if v.ndim else 1, 1)
    else:
        return None
    return out.astype(float_np())


def _nudge(value, sup) -> np.ndarray | None:
    """A sample value moved a little, staying inside the support ``sup``."""
    v = np.asarray(value, dtype=np.float64)
    if sup is None or sup.get("discrete") or sup["kind"] != "bounds":
        return None
    lo, hi = np.broadcast_to(sup["lo"], v.shape), np.broadcast_to(sup["hi"], v.shape)
    flo, fhi = np.isfinite(lo), np.isfinite(hi)
    out = np.where(
        flo & fhi,
        v + 0.1 * (0.5 * (lo + hi) - v) + np.where(v == 0.5 * (lo + hi), 0.05 * (hi - lo), 0.0),
        np.where(
            flo, lo + (v - lo) * 1.1, np.where(fhi, hi - (hi - v) * 1.1, v + 0.1 * (1 + abs(v)))
        ),
    )
    return out.astype(float_np())


def _check_dependence(rep, ctx, gsites, msites, improper, per_param):
    """Params no site depends on, factors in the guide, and latents no param moves."""
    latents = {k: s for k, s in gsites.items() if _latent(s) and k not in improper}
    factors = {k: s for k, s in gsites.items() if s.type == "sample" and s.is_factor}
    watched = {**latents, **factors}
    if not watched:
        return
    perturbed = _perturbed_params(ctx, gsites)
    per_param = per_param and len(perturbed) <= PER_PARAM_MAX
    depends_on = _depends_on(ctx, watched, perturbed, per_param)
    if perturbed and per_param:
        _report_unused_params(rep, perturbed, depends_on, msites)
    rep.figures["depends_on"] = {k: sorted(v) for k, v in depends_on.items()}
    _report_guide_factors(rep, factors)
    _report_param_free_sites(rep, ctx, latents, factors, depends_on, msites)


def _perturbed_params(ctx, gsites) -> dict:
    """The guide's params, each moved inside its constraint (those that can be)."""
    perturbed = {}
    for k, s in gsites.items():
        if s.type != "param":
            continue
        p = _perturb(s.value, ctx.constraints.get(k))
        if p is not None:
            perturbed[k] = p
    return perturbed


def _moved_sites(ctx, watched, params) -> set:
    """The sites of ``watched`` whose value or log density moves when the guide runs at ``params``."""
    sites, _ = ctx.run(ctx.guide, fill="unsamplable", params=params)
    return {
        k
        for k, s in watched.items()
        if k not in sites
        or not (_same(sites[k].value, s.value) and _same(sites[k].log_prob, s.log_prob))
    }


def _depends_on(ctx, watched, perturbed, per_param) -> dict[str, set]:
    """Site name -> the params that move it (``"*"``: some param, when not traced per param)."""
    depends_on: dict[str, set] = {k: set() for k in watched}
    if not perturbed:
        return depends_on
    base = {**ctx.params}
    for k in _moved_sites(ctx, watched, {**base, **perturbed}):
        depends_on[k].add("*")
    if per_param:
        for k in depends_on:
            depends_on[k].discard("*")
        for pname, pv in perturbed.items():
            for k in _moved_sites(ctx, watched, {**base, pname: pv}):
                depends_on[k].add(pname)
    return depends_on


def _report_unused_params(rep, perturbed, depends_on, msites) -> None:
    """A guide param that moves no site (and is not a model param) is left at its init."""
    used = set().union(*depends_on.values()) if depends_on else set()
    model_params = {k for k, s in (msites or {}).items() if s.type == "param"}
    for pname in perturbed:
        if pname not in used and pname not in model_params:
            rep.add(
                "unused-param",
                "warning",
                pname,
                f"param {pname!r} changes no sample site or factor of the guide: the "
                "ELBO does not depend on it, so a fit leaves it at its initial value",
                f"use {pname!r} in a distribution or a transform of the guide, or remove it",
            )


def _report_guide_factors(rep, factors) -> None:
    """A note per factor in the guide: it adds to log q, it does not shape the draws."""
    for fname in factors:
        rep.add(
            "guide-factor",
            "info",
            fname,
            f"factor {fname!r} in the guide adds its value to log q in the ELBO; it does not "
            "change what the guide samples, so the guide's density is unnormalized unless "
            "the factor is a deliberate correction (e.g. a Jacobian term)",
            "to shape the guide, draw from distributions with params or transform base draws "
            "with dg.transformed(...)",
        )


def _shaping_factors(ctx, name, s, factors) -> list[str]:
    """The guide factors that move when the value of site ``name`` moves."""
    nudged = _nudge(s.value, _support(s.native.get("fn"), ctx.b))
    if nudged is None:
        return []
    sites, _ = ctx.run(ctx.guide, values={name: nudged}, fill="unsamplable")
    return [f for f in factors if f in sites and not _same(sites[f].log_prob, factors[f].log_prob)]


def _report_param_free_sites(rep, ctx, latents, factors, depends_on, msites) -> None:
    """Model latents no param moves: an error when a guide factor is meant to shape them."""
    model_latents = {k for k, s in (msites or {}).items() if _latent(s)}
    for name, s in latents.items():
        if depends_on[name] or s.dist == "Delta":
            continue
        shaping = _shaping_factors(ctx, name, s, factors) if factors else []
        if msites is not None and name not in model_latents:
            continue
        if shaping:
            fdeps = sorted(set().union(*(depends_on[f] for f in shaping)) - {"*"})
            on = f" and on params {_names(fdeps)}" if fdeps else ""
            rep.add(
                "param-free-guide-site",
                "error",
                name,
                f"guide site {name!r} is drawn from {s.dist}, which depends on no param, while "
                f"guide factor {_names(shaping)} (which depends on {name!r}{on}) is meant to "
                "shape it; a factor in a guide only adds a term to the ELBO, it does not change "
                f"what the guide samples: {name!r} is still drawn from {s.dist} and the fit is "
                "wrong",
                f"draw {name!r} from a distribution whose parameters are params, e.g. "
                f"dg.sample({name!r}, dist.Normal(loc, scale)), or transform base draws with "
                "dg.transformed(...); drop the factor",
            )
        else:
            rep.add(
                "param-free-guide-site",
                "info",
                name,
                f"guide site {name!r} ({s.dist}) depends on no param: the fit cannot change "
                "how the guide draws it",
                "fine if you meant to keep it fixed; otherwise give its distribution params",
            )
