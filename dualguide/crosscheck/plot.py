"""``report.plot(path)``: loss curves of both fits and, for 2-D latents, the fitted guides'
densities against the target's contours.  Matplotlib with the Agg backend (no display needed).

Panels: (1) each backend's loss (negative ELBO estimate per step, raw and smoothed), with the
quadrature optimum's loss when known; (2) when the model has two latent numbers, the
unnormalized target density exp(log p(x, y)) (filled contours, from the model's log density on
a grid) with each backend's fitted guide density (a kernel density estimate of guide draws,
contour lines); (3) when lockstep ran, the relative deviation of the two trajectories per step.
"""

from __future__ import annotations

import numpy as np

from ._common import fmt

COLORS = {"numpyro": "tab:blue", "pyro": "tab:orange"}


def _log_median(y: np.ndarray, points: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Medians of ``y`` over windows [t/1.25, 1.25 t] at log-spaced steps t (1-based).

    A window that grows with t suits a log step axis: early steps stay sharp, late ones are
    averaged over many steps; the median ignores the spikes of heavy-tailed losses.
    """
    n = y.size
    ts = np.unique(np.round(np.geomspace(1, n, min(points, n))).astype(int))
    out = np.empty(ts.size)
    for i, t in enumerate(ts):
        a, b = int(t / 1.25), int(np.ceil(t * 1.25))
        out[i] = np.median(y[max(a, 1) - 1 : min(b, n)])
    return ts, out


def _latent_axes(report) -> list[tuple[str, tuple]] | None:
    """The two latent numbers as (site, index) pairs, or None when not 2-D."""
    progs = report.data.get("programs")
    if progs is None or progs.latent_dim != 2:
        return None
    out = []
    for n in progs.model_latents:
        shape = progs.shape(n)
        for idx in np.ndindex(*shape) if shape else [()]:
            out.append((n, idx))
    return out


def _column(samples: dict, site: str, idx: tuple) -> np.ndarray | None:
    if site not in samples:
        return None
    a = np.asarray(samples[site], dtype=np.float64)
    a = a.reshape((a.shape[0],) + tuple(a.shape[1:]))
    return a[(slice(None),) + tuple(idx)] if idx else a.reshape(a.shape[0], -1)[:, 0]


def plot_report(report, path: str, grid: int = 120, dpi: int = 110) -> str:
    """Write the figure for ``report`` to ``path`` (PNG, PDF or SVG by extension); return path.

    >>> report.plot("crosscheck.png")  # doctest: +SKIP
    'crosscheck.png'
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    axes2d = _latent_axes(report)
    lock = report.checks.get("lockstep")
    has_lock = lock is not None and bool(lock.data.get("step_dev") is not None)
    npanel = 1 + (axes2d is not None) + has_lock
    fig = Figure(figsize=(5.2 * npanel, 4.4))
    FigureCanvasAgg(fig)
    axs = list(fig.subplots(1, npanel, squeeze=False)[0])

    # 1. loss curves: running medians on a log step axis, so that the descent and the level
    # the fits settle at both show ------------------------------------------------------------
    ax = axs.pop(0)
    lows, highs = [], []
    for b, run in report.runs.items():
        if run.fit is None or run.fit.losses.size == 0:
            continue
        y = np.asarray(run.fit.losses, dtype=np.float64)
        fin = np.isfinite(y)
        if not fin.any():
            continue
        y = np.where(fin, y, np.nanmedian(y[fin]))
        ts, sm = _log_median(y)
        x = np.arange(1, y.size + 1)
        ax.plot(x, y, color=COLORS.get(b), alpha=0.1, lw=0.5)
        label = b if run.elbo is None else f"{b} (ELBO {fmt(run.elbo)} ± {fmt(run.elbo_stderr, 2)})"
        ax.plot(
            ts, sm, color=COLORS.get(b), lw=1.8, label=label, ls="-" if b == "numpyro" else "--"
        )
        lows.append(float(np.nanmin(sm[ts > y.size // 10]))) if np.any(ts > y.size // 10) else None
        highs.append(float(np.nanmax(sm)))
    q = report.checks.get("quadrature")
    if q is not None and q.status == "pass":
        ax.axhline(
            -q.details["elbo"],
            color="k",
            ls="--",
            lw=1,
            label=f"exact optimum (loss {fmt(-q.details['elbo'])})",
        )
        lows.append(-q.details["elbo"])
    if lows:
        lo, hi = min(lows), max(highs)
        pad = 0.05 * max(hi - lo, 1e-3)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xscale("log")
    ax.set_xlabel("step (log scale)")
    ax.set_ylabel("loss (negative ELBO estimate)")
    ax.set_title("fits: loss per step (raw, and median around each step)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")

    # 2. guide densities against the target --------------------------------------------------------
    if axes2d is not None:
        ax = axs.pop(0)
        _density_panel(ax, report, axes2d, grid)

    # 3. lockstep deviation ------------------------------------------------------------------------
    if has_lock:
        ax = axs.pop(0)
        dev = np.asarray(lock.data["step_dev"], dtype=np.float64)
        ax.semilogy(
            np.arange(dev.size),
            np.maximum(dev, 1e-10),
            color="tab:green",
            lw=1.2,
            label="max relative |numpyro - pyro|",
        )
        ax.axhline(
            lock.details.get("rtol", 1e-4),
            color="tab:red",
            ls="--",
            lw=1,
            label=f"limit {lock.details.get('rtol', 1e-4):g}",
        )
        parted = lock.details.get("parted_at")
        if parted is not None:
            ax.axvline(parted, color="tab:red", lw=1, label=f"parted at step {parted}")
        ax.set_xlabel("step")
        ax.set_ylabel("relative deviation")
        ax.set_title(f"lockstep from common noise: {lock.status}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")

    fig.suptitle(
        f"dualguide crosscheck: {report.model} / {report.guide} -- "
        f"{'OK' if report.ok else 'FAILED'}",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return path


def _density_panel(ax, report, axes2d, grid: int) -> None:
    from scipy.ndimage import gaussian_filter

    progs = report.data["programs"]
    samples = report.data.get("samples", {})
    (sx, ix), (sy, iy) = axes2d
    cols = {}
    for b, smp in samples.items():
        xs, ys = _column(smp, sx, ix), _column(smp, sy, iy)
        if xs is None or ys is None:
            continue
        ok = np.isfinite(xs) & np.isfinite(ys)
        cols[b] = (xs[ok], ys[ok])
    if not cols:
        ax.text(0.5, 0.5, "no guide samples", ha="center", va="center", transform=ax.transAxes)
        return
    allx = np.concatenate([c[0] for c in cols.values()])
    ally = np.concatenate([c[1] for c in cols.values()])
    x0, x1 = np.percentile(allx, [5, 95])
    y0, y1 = np.percentile(ally, [5, 95])
    px, py = 0.3 * (x1 - x0 + 1e-6), 0.3 * (y1 - y0 + 1e-6)
    gx = np.linspace(x0 - px, x1 + px, grid)
    gy = np.linspace(y0 - py, y1 + py, grid)
    X, Y = np.meshgrid(gx, gy)

    # target: the model's log density on the grid (NumPyro rendering)
    nat = progs.natives.get("numpyro")
    if nat is not None:
        try:
            pts = _grid_points(progs, (sx, ix), (sy, iy), X.ravel(), Y.ravel())
            fit = report.runs.get("numpyro")
            params = fit.fit.params if fit is not None and fit.fit is not None else progs.params
            params = {**progs.params, **params}
            with progs.hook(params):
                lp = nat.mod.model_logdensity(nat.model, params, pts, nat.args, nat.kwargs)
            lp = np.asarray(lp, np.float64).reshape(X.shape)
            dens = np.exp(lp - np.nanmax(lp[np.isfinite(lp)]))
            dens = np.where(np.isfinite(dens), dens, 0.0)
            ax.contourf(X, Y, dens, levels=12, cmap="Greys", alpha=0.75)
        except Exception as e:
            ax.text(
                0.02,
                0.02,
                f"target not drawn: {type(e).__name__}",
                transform=ax.transAxes,
                fontsize=7,
            )
    handles = []
    from matplotlib.lines import Line2D

    nb = 64
    ex = np.linspace(gx[0], gx[-1], nb + 1)
    ey = np.linspace(gy[0], gy[-1], nb + 1)
    cx, cy = 0.5 * (ex[1:] + ex[:-1]), 0.5 * (ey[1:] + ey[:-1])
    for b, (xs, ys) in cols.items():
        # a smoothed 2-D histogram of the draws (a KDE's bandwidth follows the covariance,
        # which heavy-tailed guides inflate)
        H, _, _ = np.histogram2d(xs, ys, bins=[ex, ey])
        Z = gaussian_filter(H.T, sigma=1.5)
        lv = Z.max() * np.array([0.1, 0.3, 0.5, 0.7, 0.9])
        ax.contour(
            cx,
            cy,
            Z,
            levels=lv,
            colors=COLORS.get(b),
            linestyles="solid" if b == "numpyro" else "dashed",
            linewidths=1.3,
        )
        handles.append(
            Line2D(
                [],
                [],
                color=COLORS.get(b),
                ls="-" if b == "numpyro" else "--",
                label=f"{b} guide ({xs.size} draws)",
            )
        )
    from matplotlib.patches import Patch

    handles.append(Patch(color="0.55", label="target exp(log p) (unnormalized)"))
    ax.legend(handles=handles, fontsize=8, loc="upper right")
    ax.set_xlabel(_label(sx, ix))
    ax.set_ylabel(_label(sy, iy))
    ax.set_title("fitted guides vs target")


def _label(site: str, idx: tuple) -> str:
    return site + (f"[{','.join(map(str, idx))}]" if idx else "")


def _grid_points(progs, ax_x, ax_y, xs: np.ndarray, ys: np.ndarray) -> dict:
    """Model latent values on the grid: {site: (N, *shape)} with the two axes filled in."""
    n = xs.size
    pts = {}
    for site in progs.model_latents:
        shape = progs.shape(site)
        pts[site] = np.zeros((n,) + shape, dtype=np.float32)
    for (site, idx), vals in ((ax_x, xs), (ax_y, ys)):
        pts[site][(slice(None),) + tuple(idx)] = vals
    return pts
