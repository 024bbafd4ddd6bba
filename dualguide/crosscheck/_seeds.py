"""The seed spread: how far two fits of one problem on one backend end apart.

``crosscheck(..., seeds=k)`` fits each backend ``k`` times (seeds ``seed .. seed + k - 1``,
the same settings; the ``k - 1`` extra fits run in one program, ``dualguide.fit(seeds=...)``).  Two fits on one backend differ only by their random numbers, so their
spread is what a difference between the backends must be compared with: the per-element
standard deviation of the fitted params, pooled over both backends (each around its own
mean), widens every param's limit by ``SPREAD_K * sqrt(2) * sd`` (two independent fits differ
by ``sqrt(2) sd``); the spread of the fits' final losses (the mean of their last block) enters
the ELBO check's fit noise.
"""

from __future__ import annotations

import numpy as np

from ..errors import FitError
from ._steps import fit_one

#: standard deviations of the seed spread allowed between the two backends' fits
SPREAD_K = 4.0


def extra_fits(report, prob, progs, fit_kw: dict, seeds: int, say) -> dict[str, list[dict]]:
    """Fits with seeds ``seed + 1 .. seed + seeds - 1`` per backend that fitted:
    ``{backend: [canonical params, ...]}``; their losses go to ``report.data["seed_losses"]``."""
    out: dict[str, list[dict]] = {}
    losses: dict[str, list] = {}
    for b, run in report.runs.items():
        if run.fit is None or run.error:
            continue
        out[b], losses[b] = [], []
        more = [prob.seed + s for s in range(1, seeds)]
        say(f"fitting on {b} with seeds {more[0]}..{more[-1]} in one program (seed spread) ...")
        try:
            results = fit_one(prob, progs, b, fit_kw, prob.seed, False, seeds=more)
        except FitError as e:
            results = e.result if isinstance(e.result, list) else []
        for r in results:
            if r.stopped_at is not None:
                continue  # a seed that stops is left out of the spread
            out[b].append(progs.naming.params_from(r.params, b))
            losses[b].append(np.asarray(r.losses))
    report.data["seed_losses"] = losses
    return out


def param_spread(main: dict[str, dict], extra: dict[str, list[dict]]) -> dict[str, np.ndarray]:
    """Per param, the per-element sd of the fits around their backend's mean, pooled."""
    out = {}
    names = list(dict.fromkeys(n for p in main.values() for n in p))
    for n in names:
        ss, dof = 0.0, 0
        for b, p in main.items():
            reps = [np.asarray(p[n], np.float64)] + [
                np.asarray(e[n], np.float64) for e in extra.get(b, []) if n in e
            ]
            if len(reps) < 2 or any(r.shape != reps[0].shape for r in reps):
                continue
            a = np.stack(reps)
            ss = ss + ((a - a.mean(0)) ** 2).sum(0)
            dof += len(reps) - 1
        if dof:
            out[n] = np.sqrt(ss / dof)
    return out


def loss_spread(report, block: int) -> dict[str, float]:
    """Per backend, the sd over seeds of the mean of each fit's last ``block`` losses."""
    out = {}
    for b, extra in report.data.get("seed_losses", {}).items():
        run = report.runs[b]
        traces = [np.asarray(run.fit.losses)] + list(extra)
        ends = [float(np.mean(t[-block:][np.isfinite(t[-block:])])) for t in traces if len(t)]
        ends = [e for e in ends if np.isfinite(e)]
        if len(ends) >= 2:
            out[b] = float(np.std(ends, ddof=1))
    return out
