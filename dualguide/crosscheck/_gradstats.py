"""What the two gradient checks share (:func:`.parity.gradient_parity`,
:func:`.estimators.estimator_gradient_parity`): which params to compare, the gradients in the
canonical naming, the z limit, and the per-element test of the means."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from ._programs import Programs
from .report import CheckResult


def z_limit(k: float, n_tests: int) -> float:
    """``max(k, Bonferroni z)`` for a 0.1% two-sided false-alarm rate over ``n_tests``."""
    return max(k, NormalDist().inv_cdf(1 - 0.001 / (2 * max(n_tests, 1))))


def compared_params(progs: Programs) -> tuple[CheckResult | None, list[str], list[str]]:
    """``(decided, compared, skipped)``: the params whose gradients compare element by element
    and those left out (an autoguide whose frameworks store them differently, e.g.
    AutoMultivariateNormal: Pyro stores scale x unit triangle); ``decided`` is the finished
    result (``error``/``n/a``) when there is nothing to compare, else None."""
    res = CheckResult("gradient", "error")
    if len(progs.ok_backends) < 2:
        res.errors = {b: e.args[0] for b, e in progs.errors.items()}
        res.summary = "needs both backends to run the programs"
        return res, [], []
    if not progs.params:
        res.status, res.summary = "n/a", "no params"
        return res, [], []
    nm = progs.naming
    compared = list(progs.params)
    skipped: list[str] = []
    if not nm.same_storage:
        skipped = nm.own_params(compared, nm.canonical or "")
        compared = [n for n in compared if n not in skipped]
    if not compared:
        res.status = "n/a"
        res.summary = (
            f"the {nm.kind}'s params are stored differently by the two frameworks, so their "
            "gradients do not compare element by element (the ELBO check covers them)"
        )
        return res, [], []
    return None, compared, skipped


def canonical_grads(progs: Programs, grads: dict, backend: str, skipped: list[str]) -> dict:
    """``backend``'s batched gradients under the canonical names; with ``skipped`` params the
    backend's own ones are left out instead (not translated: storage formulas are for values)."""
    nm = progs.naming
    if skipped:
        own = set(nm.own_params(list(grads), backend))
        return {k: v for k, v in grads.items() if k not in own}
    return nm.batched_from(grads, backend)


def mean_z(ma: np.ndarray, mb: np.ndarray, se: np.ndarray) -> np.ndarray:
    """Per element: ``|ma - mb|`` beyond a float32 floor, in standard errors ``se`` (``inf``
    where a mean is not finite, or where ``se`` is 0 and the means still differ)."""
    floor = 1e-5 * (1.0 + np.maximum(np.abs(ma), np.abs(mb)))
    excess = np.maximum(np.abs(ma - mb) - floor, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        zs = np.where(se > 0, excess / se, np.where(excess > 0, np.inf, 0.0))
    return np.where(np.isfinite(ma) & np.isfinite(mb), zs, np.inf)
