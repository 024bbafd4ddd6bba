"""The doctor's full checks: transformed latents and the normalization of the guide's density.

A transformed latent is a Delta site fed by base draws: the map must be square,
invertible near the current params, and the Delta sites must carry its
``-log|det J|`` (finite differences in one batched run of the guide).  For guides of
up to :data:`MAX_QUADRATURE_DIMS` latent dimensions, :mod:`.quadrature` then checks
that the guide's density integrates to 1.
"""

from __future__ import annotations

import numpy as np

from .context import _Evaluator
from .quadrature import _check_quadrature, _quadrature_grids
from .sites import _latent, _names, _size, _support

#: how many latent dimensions the quadrature check handles
MAX_QUADRATURE_DIMS = 3


def _layout(gsites, msites):
    """Base sites (non-Delta latents), Delta latents, and the guide's model latents."""
    lat = {k: s for k, s in gsites.items() if _latent(s)}
    base = {k: s for k, s in lat.items() if s.dist != "Delta"}
    deltas = {k: s for k, s in lat.items() if s.dist == "Delta"}
    if msites is not None:
        outs = {k: s for k, s in lat.items() if k in msites and _latent(msites[k])}
    else:
        outs = {k: s for k, s in lat.items() if not s.infer.get("is_auxiliary")}
    return base, deltas, outs


def _full_checks(rep, ctx, gsites, msites) -> None:
    """Transforms (Delta latents fed by base draws) and the quadrature of the guide's density."""
    base, deltas, outs = _layout(gsites, msites)
    D = sum(_size(s) for s in base.values())
    if not _has_base_draws(rep, deltas, D):
        return
    transform = bool(deltas) and bool(outs)
    quad = D <= MAX_QUADRATURE_DIMS
    if not (transform or quad):
        return
    if any(_support(s.native.get("fn"), ctx.b) is None for s in base.values()):
        quad = False
    draws = ctx.draws(gsites, base)
    ev = _Evaluator(ctx, gsites, base, outs)
    h_t = ev.add_jacobian(draws[:8]) if transform else None
    grids = _quadrature_grids(rep, ctx, base, deltas, draws, ev) if quad else None
    if h_t is None and grids is None:
        return
    ev.run()
    square = True
    if h_t is not None:
        square = _check_transforms(rep, gsites, base, deltas, outs, ev, h_t)
    if grids is None:
        return
    if deltas and not square:
        rep.add(
            "quadrature-skipped",
            "info",
            None,
            "the guide's map from base draws to latents is not square or not invertible; "
            "no quadrature of its density",
        )
        return
    _check_quadrature(rep, gsites, base, deltas, outs, ev, grids)


def _has_base_draws(rep, deltas, D) -> bool:
    """Whether the guide draws any base numbers (notes a point-mass guide, a skipped quadrature)."""
    if deltas and D == 0:
        rep.add(
            "point-mass-guide",
            "info",
            None,
            f"the guide's latents {_names(deltas)} are Delta sites fed by no random draw: a "
            "point-mass (MAP) guide; the ELBO is then log p at the point plus the Delta "
            "log densities",
            "fine for MAP estimation",
        )
        return False
    if D == 0:
        return False
    if D > MAX_QUADRATURE_DIMS:
        rep.add(
            "quadrature-skipped",
            "info",
            None,
            f"the guide has {D} latent dimensions; the quadrature check of its normalization "
            f"runs for up to {MAX_QUADRATURE_DIMS}",
        )
    return True


# -- transformed latents ------------------------------------------------------------------------


def _check_transforms(rep, gsites, base, deltas, outs, ev, handle) -> bool:
    """Square, invertible, and -log|det J| carried by the Delta sites? True when square."""
    J = ev.jacobian(handle)  # (K, M, D)
    scale = np.maximum(1.0, np.abs(J).max(axis=(0, 2), keepdims=True))
    moving = (np.abs(J) > 1e-6 * scale).any(axis=(0, 2))  # (M,)
    fixed_deltas = _fixed_deltas(outs, deltas, moving)
    if fixed_deltas:
        rep.add(
            "point-mass-site",
            "info",
            ", ".join(fixed_deltas),
            f"Delta site(s) {_names(fixed_deltas)} do not depend on any random draw of the "
            "guide: point masses (MAP-style) for those latents",
            "fine for a MAP estimate of them",
        )
    moving_deltas = [k for k in outs if k in deltas and k not in fixed_deltas]
    square_all = sum(_size(s) for s in outs.values()) == ev.D and not fixed_deltas
    if not moving_deltas:
        return square_all
    rows = np.nonzero(moving)[0]
    cols = np.nonzero((np.abs(J[:, rows, :]) > 1e-6 * scale[:, rows, :]).any(axis=(0, 1)))[0]
    feeding = _coords_to_sites(base, cols)
    if len(rows) != len(cols):
        _report_not_square(rep, feeding, moving_deltas, len(rows), len(cols))
        return False
    logdet = _map_logdet(rep, gsites, J[:, rows][:, :, cols], feeding, moving_deltas)
    if logdet is None:
        return False
    _check_delta_logdet(rep, gsites, ev, handle, moving_deltas, feeding, logdet)
    return square_all


def _fixed_deltas(outs, deltas, moving) -> list[str]:
    """The Delta outputs whose rows of the Jacobian are all zero (no base draw moves them)."""
    fixed, i = [], 0
    for k, s in outs.items():
        size = _size(s)
        if k in deltas and not moving[i : i + size].any():
            fixed.append(k)
        i += size
    return fixed


def _report_not_square(rep, feeding, moving_deltas, n_rows, n_cols) -> None:
    rep.add(
        "transform-not-square",
        "warning",
        ", ".join(moving_deltas),
        f"the guide maps base draws {_names(feeding)} ({n_cols} dims) to the model's "
        f"latents ({n_rows} dims) through Delta sites {_names(moving_deltas)}: the map "
        "is not square, so no Delta log_density can make the guide's density that of the "
        "latents",
        "map as many base dimensions as there are outputs (add or drop base draws), or "
        "sample the extra latents directly",
    )


def _map_logdet(rep, gsites, Jsq, feeding, moving_deltas) -> np.ndarray | None:
    """``log|det J|`` of the square map per guide draw, or None (reported) where it is singular."""
    K = Jsq.shape[0]
    with np.errstate(all="ignore"):
        sign, logdet = np.linalg.slogdet(Jsq)
        cond = np.linalg.cond(Jsq)
    bad = ~np.isfinite(logdet) | (sign == 0) | ~np.isfinite(cond) | (cond > 1e6)
    rep.figures["transform"] = {
        "base": feeding,
        "outputs": moving_deltas,
        "log_abs_det": [float(x) for x in logdet],
        "condition_number": [float(x) for x in cond],
    }
    if not bad.any():
        return logdet
    info = _transformed_info(gsites, moving_deltas)
    what = (
        f"dg.transformed({_names(info['outputs'])} <- {_names(info['inputs'])})"
        if info
        else f"the map from {_names(feeding)} to {_names(moving_deltas)}"
    )
    rep.add(
        "transform-singular",
        "warning",
        ", ".join(moving_deltas),
        f"{what} is not invertible near the current params: its Jacobian is singular or "
        f"nearly so (condition number {float(np.max(cond)):.3g}, log|det J| "
        f"{float(np.min(logdet)):.3g}) at {int(bad.sum())} of {K} guide draws, so the "
        "guide's density of the latents is not defined (or not accurate in float32) there",
        "reparameterize so the map stays invertible (e.g. keep an angle away from where "
        "the determinant vanishes with an interval constraint)",
    )
    return None


def _check_delta_logdet(rep, gsites, ev, handle, moving_deltas, feeding, logdet) -> None:
    """The Delta sites' log densities (plus the guide's factors) must add to -log|det J|."""
    K = len(logdet)
    delta_ld = sum((ev.site_lp(handle[0][0], k) for k in moving_deltas), np.zeros(K))
    factor_ld = sum(
        (
            ev.site_lp(handle[0][0], k)
            for k, s in gsites.items()
            if s.type == "sample" and s.is_factor and k in ev.lps
        ),
        np.zeros(K),
    )
    resid = delta_ld + logdet
    tol = 0.02 + 1e-3 * np.abs(logdet)
    rep.figures["transform"]["delta_log_density"] = [float(x) for x in delta_ld]
    if np.all(np.abs(resid) < tol) or np.all(np.abs(resid + factor_ld) < tol):
        return
    rep.add(
        "transform-logdet",
        "error",
        ", ".join(moving_deltas),
        f"the Delta sites {_names(moving_deltas)} carry log density "
        f"{float(np.mean(delta_ld)):.3g} on average, but the map from {_names(feeding)} has "
        f"log|det J| = {float(np.mean(logdet)):.3g} at the current params (they should "
        "add to 0): the guide's density of the latents is off by "
        f"{float(np.mean(resid)):.3g}, which biases the fit (the missing-Jacobian mistake)",
        "let dg.transformed(...) record the outputs (it adds -log|det J|), or pass "
        "log_density=-log|det J| to the Delta sites",
    )


def _transformed_info(gsites, names) -> dict | None:
    for k in names:
        info = gsites[k].infer.get("dualguide_transformed")
        if isinstance(info, dict) and "inputs" in info and "outputs" in info:
            return info
    return None


def _coords_to_sites(base, cols) -> list[str]:
    out, i = [], 0
    cols = {int(c) for c in cols}
    for k, s in base.items():
        size = _size(s)
        if any(c in cols for c in range(i, i + size)):
            out.append(k)
        i += size
    return out
