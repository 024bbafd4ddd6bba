"""The doctor's hooks for ``fit``: the cheap checks before a fit, and the sites that went non-finite."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from ..errors import CheckWarning, DualGuideError, SpecError
from .api import cheap_checks
from .context import _Ctx
from .sites import _latent

__all__ = ["fit_checks", "nonfinite_sites"]


def fit_checks(
    model: Callable,
    guide: Callable,
    backend: str | None,
    model_args: tuple,
    model_kwargs: dict | None,
    init_params: dict | None,
    seed: int,
    on_nonfinite: str,
) -> None:
    """What ``fit`` runs first: raise :class:`SpecError` on errors, warn on warnings."""
    rep = cheap_checks(
        model,
        guide,
        backend=backend,
        model_args=model_args,
        model_kwargs=model_kwargs,
        params=init_params,
        seed=seed,
    )
    # a program the doctor could not trace for a reason of the framework's: the fit meets (and
    # reports) it; the other errors are refused
    errors = [
        f
        for f in rep.errors
        if not (
            f.code == "trace-failed" and not isinstance(getattr(f, "exc", None), DualGuideError)
        )
    ]
    if errors:
        lines = "\n".join(f"  - {f}".replace("\n", "\n    ") for f in errors)
        raise SpecError(
            f"fit ({rep.backend}): the guide has {len(errors)} error(s) that would make "
            f"the fit fail or come out wrong:\n{lines}\n(pass check=False to fit anyway)"
        )
    for f in rep.warnings:
        if f.code == "support-outside" and on_nonfinite == "skip":
            continue  # the user already did what the fix says
        warnings.warn(f"dualguide check: {f}", CheckWarning, stacklevel=3)


def nonfinite_sites(
    model: Callable,
    guide: Callable,
    *,
    backend: str | None = None,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    params: dict | None = None,
    seed: int = 0,
    tries: int = 32,
) -> list[tuple[str, str]]:
    """Sites whose log density (or value) is NaN or inf when the guide runs at ``params``.

    Traces the guide and then the model with the guide's values, up to
    ``tries`` times with different seeds, and returns ``[(site, "guide"|"model"), ...]``
    from the first draw that has any (an empty list when none does).
    """
    ctx = _Ctx(model, guide, backend, model_args, model_kwargs, params, seed)
    for i in range(tries):
        gsites, improper = ctx.run(ctx.guide, fill="unsamplable", seed=seed + i)
        bad = [(k, "guide") for k, s in gsites.items() if _nonfinite(s)]
        values = {k: s.value for k, s in gsites.items() if _latent(s) and k not in improper}
        msites, _ = ctx.run(ctx.model, values=values, fill="missing", seed=seed + i)
        bad += [(k, "model") for k, s in msites.items() if _nonfinite(s) and s.type == "sample"]
        if bad:
            return bad
    return []


def _nonfinite(s) -> bool:
    """A sample site whose log density or value has a NaN or an inf."""
    if s.type != "sample":
        return False
    for x in (s.log_prob, None if s.is_factor else s.value):
        if x is not None:
            a = np.asarray(x)
            if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                return True
    return False
