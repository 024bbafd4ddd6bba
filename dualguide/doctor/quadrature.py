"""The doctor's quadrature check: does the guide's density integrate to 1?

For guides of a few latent dimensions: a tensor-product Gauss-Legendre grid in
base coordinates (each mapped from (-1, 1) onto the site's support, centred and
scaled on guide draws), evaluated in the same batched run as the transform check,
with an error estimate from a grid of half the nodes.
"""

from __future__ import annotations

import math

import numpy as np

from .sites import _names, _shape, _support

#: Gauss-Legendre nodes per dimension, by number of latent dimensions
_QUAD_NODES = {1: 256, 2: 64, 3: 32}


def _quadrature_grids(rep, ctx, base, deltas, draws, ev) -> list | None:
    """A fine and a coarse grid, added to ``ev``: ``[(nodes, weights, handle), ...]`` or None."""
    maps, why = _coord_maps(ctx, base, draws)
    if maps is None:
        rep.add("quadrature-skipped", "info", None, f"no quadrature of the guide's density: {why}")
        return None
    n = _QUAD_NODES[ev.D]
    grids = []
    for nodes in (n, n // 2):
        pts, W = _grid(maps, nodes)
        keep = np.all(np.abs(pts) < 1e30, axis=1) & np.isfinite(W) & (W > 0)
        pts, W = pts[keep], W[keep]
        handle = ev.add_jacobian(pts) if deltas else ev.add(pts)
        grids.append((nodes, W, handle))
    return grids


def _coord_maps(ctx, base, draws):
    """Per flat base coordinate: (kind, lo, hi, centre, scale) of a map from (-1, 1)."""
    maps, j0 = [], 0
    for k, s in base.items():
        sup = _support(s.native.get("fn"), ctx.b)
        if sup is None or sup.get("discrete") or sup["kind"] != "bounds":
            return None, f"site {k!r} has support {sup['repr'] if sup else '?'}"
        shape = _shape(s)
        lo = np.broadcast_to(sup["lo"], shape).ravel()
        hi = np.broadcast_to(sup["hi"], shape).ravel()
        for j in range(lo.size):
            a, z = float(lo[j]), float(hi[j])
            u = draws[:, j0 + j]
            if math.isfinite(a) and math.isfinite(z):
                kind = "interval"
                p = np.clip((u - a) / (z - a), 1e-6, 1 - 1e-6)
                w = np.log(p) - np.log1p(-p)
            elif math.isfinite(a):
                kind, w = "lower", np.log(np.maximum(u - a, 1e-30))
            elif math.isfinite(z):
                kind, w = "upper", np.log(np.maximum(z - u, 1e-30))
            else:
                kind, w = "real", u
            q1, med, q3 = np.percentile(w, [25, 50, 75])
            c = max((q3 - q1) / 2.0, 1e-3 * (1.0 + abs(med)))
            maps.append((kind, a, z, float(med), float(c)))
        j0 += lo.size
    return maps, ""


def _grid(maps, n):
    """Tensor-product Gauss-Legendre grid in base coordinates: (points (N, D), weights (N,))."""
    t, w = np.polynomial.legendre.leggauss(n)
    cols, wts = [], []
    for kind, a, z, m, c in maps:
        ang = 0.5 * math.pi * t
        zz = m + c * np.tan(ang)
        dzdt = c * 0.5 * math.pi / np.cos(ang) ** 2
        with np.errstate(over="ignore"):
            if kind == "real":
                u, dudz = zz, np.ones_like(zz)
            elif kind == "lower":
                u, dudz = a + np.exp(zz), np.exp(zz)
            elif kind == "upper":
                u, dudz = z - np.exp(zz), np.exp(zz)
            else:
                sg = 1.0 / (1.0 + np.exp(-zz))
                u, dudz = a + (z - a) * sg, (z - a) * sg * (1.0 - sg)
        cols.append(u)
        wts.append(w * dzdt * dudz)
    mesh = np.meshgrid(*cols, indexing="ij")
    wmesh = np.meshgrid(*wts, indexing="ij")
    pts = np.stack([m.ravel() for m in mesh], axis=1)
    W = np.prod(np.stack([m.ravel() for m in wmesh], axis=1), axis=1)
    return pts, W


def _integral(ev, deltas, W, handle) -> float:
    if deltas:
        i = handle[0][0]
        with np.errstate(all="ignore"):
            _, logdet = np.linalg.slogdet(ev.jacobian(handle))
    else:
        i = handle
        logdet = 0.0
    L = ev.log_density(i)
    with np.errstate(all="ignore"):
        f = np.exp(L + logdet)
    f = np.where(np.isfinite(L) & (L > -700) & np.isfinite(f), f, 0.0)
    return float(np.sum(f * W))


def _check_quadrature(rep, gsites, base, deltas, outs, ev, grids) -> None:
    (n, W_f, h_f), (n2, W_c, h_c) = grids
    z_fine = _integral(ev, deltas, W_f, h_f)
    z_coarse = _integral(ev, deltas, W_c, h_c)
    err = abs(z_fine - z_coarse)
    rep.figures["quadrature"] = {
        "integral": z_fine,
        "error": err,
        "dims": ev.D,
        "nodes_per_dim": n,
    }
    over = f"{_names(base)}" + (f" (mapped to {_names(outs)})" if deltas else "")
    if err >= 0.01 * max(1.0, abs(z_fine)):
        rep.add(
            "quadrature-inconclusive",
            "info",
            None,
            f"the quadrature of the guide's density over {over} did not settle: "
            f"{z_fine:.4g} with {n} nodes per dim, {z_coarse:.4g} with {n2}",
        )
        return
    miss = abs(z_fine - 1.0)
    if miss <= 0.01:
        rep.add(
            "quadrature-ok",
            "info",
            None,
            f"the guide's density over {over} integrates to {z_fine:.4f} ± {max(err, 1e-4):.1g}",
        )
        return
    hint = []
    if any(s.is_factor for s in gsites.values() if s.type == "sample"):
        hint.append("guide factors add to log q without renormalizing it")
    if deltas:
        hint.append("Delta sites must carry -log|det J| of the map (dg.transformed does)")
    rep.add(
        "density-not-normalized",
        "error" if miss > 0.05 else "warning",
        None,
        f"the guide's density over {over} integrates to {z_fine:.4g} ± {max(err, 1e-4):.1g}, "
        f"not 1, at the current params: log q is off by {math.log(max(z_fine, 1e-300)):.4g}"
        + (f" ({'; '.join(hint)})" if hint else ""),
        "build the guide from normalized distributions with params, transform base draws "
        "with dg.transformed(...), and drop factors that shape the guide",
    )
