"""The doctor's entry points: :func:`check` and :func:`cheap_checks`, run as named steps.

1. trace the guide alone (improper sites get an in-support value so the trace goes on);
2. trace the model with the guide's values, then compare the two traces (:mod:`.static`);
3. find which guide sites depend on params (:mod:`.dependence`);
4. at ``level="full"``, check transformed latents and the quadrature (:mod:`.full`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import SpecError
from .context import _Ctx
from .dependence import _check_dependence
from .full import _full_checks
from .report import Report
from .sites import _err, _latent
from .static import (
    _check_extra,
    _check_improper,
    _check_latents,
    _check_shapes,
    _check_supports,
    _trace_failed,
)

__all__ = ["check", "cheap_checks"]


def cheap_checks(
    model: Callable | None,
    guide: Callable,
    *,
    backend: str | None = None,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    params: dict | None = None,
    seed: int = 0,
) -> Report:
    """The checks that cost a few traces (what ``fit`` and ``crosscheck`` run first).

    Same arguments as :func:`check`; equivalent to ``check(..., level="cheap")``.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     dg.sample("x", dist.Normal(0.0, 1.0))
    >>> def guide():
    ...     dg.deterministic("x", 0.0)
    >>> cheap_checks(model, guide, backend="pyro").codes()
    ['latent-deterministic']
    """
    return check(
        model,
        guide,
        backend=backend,
        model_args=model_args,
        model_kwargs=model_kwargs,
        params=params,
        seed=seed,
        level="cheap",
    )


def check(
    model: Callable | None,
    guide: Callable,
    *,
    backend: str | None = None,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    params: dict | None = None,
    seed: int = 0,
    level: str = "full",
) -> Report:
    """Trace ``guide`` and ``model`` once on ``backend`` and report what would make a fit wrong.

    ``params`` (constrained values by name, or a ``FitResult``) replace the
    guide's initial values: the checks look at the guide at those params.
    ``level="cheap"`` runs only the checks that cost a few traces (what ``fit``
    runs); ``"full"`` adds the param-dependence, transform and quadrature checks.
    ``model=None`` checks the guide alone.

    Returns a :class:`Report`: ``print(report)``, ``report.ok``,
    ``report.errors``, ``report.to_dict()``.

    >>> import dualguide as dg
    >>> from dualguide import constraints, distributions as dist
    >>> def model():
    ...     dg.sample("x", dist.Uniform(-10.0, 10.0))
    >>> def guide():
    ...     s = dg.param("s", 1.0, constraint=constraints.positive)
    ...     dg.sample("x", dist.Normal(0.0, s))
    >>> report = dg.check(model, guide, backend="numpyro")
    >>> report.codes("warning")
    ['support-outside']
    >>> print(report.find("support-outside")[0].fix)
    fit with on_nonfinite='skip' to drop those steps (fine when such draws are rare), or give the guide a distribution whose support lies inside the model's
    """
    _check_arguments(model, guide, level)
    ctx = _Ctx(model, guide, backend, model_args, model_kwargs, params, seed)
    rep = Report(backend=ctx.b.name, level=level)
    traced = _trace_guide(rep, ctx)
    if traced is None:
        return rep
    gsites, improper = traced
    _check_improper(rep, gsites, improper)
    msites = _trace_model(rep, ctx, gsites, improper)
    if msites is not None:
        _compare_traces(rep, ctx, gsites, msites)
    rep.checks.append("param-dependence")
    _guarded(
        rep,
        "param-dependence check could not run",
        lambda: _check_dependence(rep, ctx, gsites, msites, improper, per_param=level == "full"),
    )
    if level == "full" and not improper:
        rep.checks += ["transforms", "quadrature"]
        _guarded(
            rep,
            "transform/quadrature checks could not run",
            lambda: _full_checks(rep, ctx, gsites, msites),
        )
    return rep


def _check_arguments(model, guide, level) -> None:
    """Refuse a level, guide or model that ``check`` cannot work with."""
    if level not in ("cheap", "full"):
        raise SpecError(f"check: level must be 'cheap' or 'full', got {level!r}")
    if not callable(guide):
        raise SpecError(f"check: expected a guide function, got {guide!r}")
    if model is not None and not callable(model):
        raise SpecError(f"check: expected a model function (or None), got {model!r}")


def _trace_guide(rep, ctx) -> tuple[dict, list] | None:
    """The guide alone: ``(sites, improper site names)``, or None (reported) if it fails."""
    rep.checks.append("trace")
    try:
        return ctx.run(ctx.guide, fill="unsamplable")
    except Exception as e:
        _trace_failed(rep, "guide", e, ctx.b.name)
        return None


def _trace_model(rep, ctx, gsites, improper) -> dict | None:
    """The model run with the guide's values (missing latents get an in-support value).

    When that fails, the model runs once more on values of its own, so the
    structural checks can still say why; None when there is no model or no trace.
    """
    if ctx.model is None:
        return None
    values = {k: s.value for k, s in gsites.items() if _latent(s) and k not in improper}
    try:
        msites, _ = ctx.run(ctx.model, values=values, fill="missing")
        return msites
    except Exception as e:
        try:
            msites, _ = ctx.run(ctx.model, values={}, fill="missing")
        except Exception:
            msites = None
        how = "" if msites is None else " (run with the guide's values)"
        _trace_failed(rep, "model", e, ctx.b.name, how)
        return msites


def _compare_traces(rep, ctx, gsites, msites) -> None:
    """Latents, extra sites, shapes and supports: the guide's trace against the model's."""
    rep.checks += ["latents", "extra-sites", "shapes", "supports"]
    _check_latents(rep, gsites, msites)
    _check_extra(rep, gsites, msites)
    _check_shapes(rep, gsites, msites, ctx.autoguide)
    _check_supports(rep, gsites, msites, ctx.b)
    if ctx.autoguide and msites is not None:
        _check_init_names(rep, ctx.neutral_guide, msites)


def _check_init_names(rep, guide, msites) -> None:
    """An autoguide's init values (``init_loc_fn={...}``, ``init_to_value(values=...)``) for a
    site the model has no latent of: NumPyro and Pyro ignore it silently (a misspelled name
    starts the fit elsewhere than meant)."""
    latents = [k for k, s in msites.items() if _latent(s)]
    for part in getattr(guide, "parts", None) or [guide]:
        init: Any = getattr(part, "init_loc_fn", None)
        if getattr(init, "strategy", None) == "value":
            init = init.kwargs.get("values")
        if not isinstance(init, dict):
            continue
        for name in init:
            if name not in latents:
                rep.add(
                    "init-unknown-site",
                    "error",
                    name,
                    f"{type(part).__name__}'s init_loc_fn gives a value for {name!r}, which is "
                    f"not a latent site of the model (its latents: "
                    f"{', '.join(map(repr, latents)) or 'none'})",
                    fix="name one of the model's latent sites (the frameworks ignore the value "
                    "of an unknown name: the fit would start where the default strategy puts it)",
                )


def _guarded(rep, what: str, fn: Callable[[], None]) -> None:
    """Run one check; if it breaks, note ``what`` and why (an info, not an error)."""
    try:
        fn()
    except Exception as e:
        rep.add("check-failed", "info", None, f"{what}: {_err(e)}")
