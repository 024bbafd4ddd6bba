"""The doctor's static checks: what one trace of the guide and one of the model show.

Structure (latents the guide lacks, records as deterministic, or adds), shapes,
plates and supports, improper guide distributions, and programs that cannot be traced.
"""

from __future__ import annotations

import numpy as np

from ..errors import DualGuideError
from .report import Report
from .sites import _err, _fmt_bounds, _fmt_shape, _latent, _names, _shape, _support


def _trace_failed(rep: Report, what: str, e: Exception, backend: str, how: str = "") -> None:
    code = "trace-failed"
    if isinstance(e, DualGuideError):
        msg, fix = str(e).split("\nTrace Shapes:")[0].strip(), ""  # Pyro appends its shapes
        if msg.startswith("transformed (") and "the map is not square" in msg:
            code = "transform-not-square"
    else:
        msg = f"on {backend} it raised {_err(e)}"
        fix = f"run the {what} alone (dualguide.trace) to see where"
    f = rep.add(code, "error", None, f"the {what}{how} could not be traced: {msg}", fix)
    f.exc = e  # type: ignore[attr-defined]


def _check_improper(rep, gsites, improper):
    for name in improper:
        d = gsites[name].dist if name in gsites else "ImproperUniform"
        rep.add(
            "improper-guide-dist",
            "error",
            name,
            f"guide site {name!r} samples from {d}, which has no sampler: it is a flat "
            "(improper) prior for models; a guide must be a proper distribution that can "
            "be drawn from",
            f"draw {name!r} from a proper distribution with params, e.g. "
            f"dg.sample({name!r}, dist.Normal(loc, scale)); keep {d} in the model",
        )


def _check_latents(rep, gsites, msites):
    for name, m in msites.items():
        if not _latent(m):
            continue
        g = gsites.get(name)
        if g is None and (m.infer or {}).get("enumerate"):
            continue  # summed out by TraceEnum_ELBO (dualguide.enum)
        if g is None:
            rep.add(
                "latent-missing",
                "error",
                name,
                f"the model's latent {name!r} ({m.dist}) has no site in the guide: SVI would "
                "draw it from the model's prior (or fail, for an improper prior), and the ELBO "
                "is then not a bound for the model",
                f"add dg.sample({name!r}, <a distribution with params>) to the guide",
            )
        elif g.type == "deterministic":
            rep.add(
                "latent-deterministic",
                "error",
                name,
                f"the model's latent {name!r} is a deterministic() site in the guide; SVI needs "
                f"the guide to *sample* it (NumPyro: 'Site {name} must be sampled in trace'), "
                "and a deterministic site carries no density",
                f"record it as a Delta sample site with the log density of the map, "
                f"dg.sample({name!r}, dist.Delta(value, log_density=-log|det J|)), or let "
                "dg.transformed(...) do it (it adds the Jacobian for you)",
            )
        elif g.is_observed or g.is_factor:
            rep.add(
                "latent-missing",
                "error",
                name,
                f"the model's latent {name!r} is observed (obs=) in the guide, so the guide "
                "does not sample it",
                f"drop obs= from the guide's site {name!r}",
            )


def _check_extra(rep, gsites, msites):
    for name, g in gsites.items():
        if not _latent(g):
            continue
        m = msites.get(name)
        if m is not None and _latent(m):
            continue
        if m is not None and m.type == "sample" and m.is_observed:
            rep.add(
                "guide-observed-site",
                "warning",
                name,
                f"the guide samples {name!r}, which the model observes (data): the model uses "
                "its data and ignores the guide's draw",
                f"remove {name!r} from the guide",
            )
        elif g.infer.get("is_auxiliary"):
            continue
        else:
            rep.add(
                "guide-extra-site",
                "warning",
                name,
                f"guide site {name!r} is not a site of the model and is not marked auxiliary "
                "(both frameworks warn: 'Found non-auxiliary vars in guide but not model')",
                f"if it is a helper draw, mark it: dg.sample({name!r}, ..., "
                "infer={'is_auxiliary': True}); otherwise check the name against the model's "
                f"latents ({_names(k for k, s in msites.items() if _latent(s)) or 'none'})",
            )


def _check_shapes(rep, gsites, msites, autoguide: bool = False):
    """Each latent's shape, event shape and plates in the guide against the model's.

    ``autoguide``: the guide is one of dualguide's autoguides; NumPyro's whole-latent ones
    (``AutoDiagonalNormal``, ``AutoMultivariateNormal``, ...) record each latent as a
    ``Delta`` outside the model's plates, its density carried by the joint ``_auto_latent``
    site (Pyro's enter the plates): not a plate mismatch."""
    for name, m in msites.items():
        g = gsites.get(name)
        if not _latent(m) or g is None or not _latent(g):
            continue
        gs, ms = _shape(g), _shape(m)
        if gs != ms:
            rep.add(
                "shape-mismatch",
                "error",
                name,
                f"site {name!r} has shape {_fmt_shape(gs)} in the guide (batch "
                f"{_fmt_shape(g.batch_shape)}, event {_fmt_shape(g.event_shape)}) but "
                f"{_fmt_shape(ms)} in the model (batch {_fmt_shape(m.batch_shape)}, event "
                f"{_fmt_shape(m.event_shape)})",
                f"give the guide's distribution the model's shape {_fmt_shape(ms)} (same "
                "plates, .expand(...) / .to_event(...))",
            )
        elif tuple(g.event_shape) != tuple(m.event_shape):
            ge, me = len(g.event_shape), len(m.event_shape)
            fix = (
                f"add .to_event({me - ge}) to the guide's distribution"
                if me > ge
                else f"add .to_event({ge - me}) to the model's distribution, or declare the "
                "batch dims with plates in both"
            )
            rep.add(
                "event-dim-mismatch",
                "warning",
                name,
                f"site {name!r} has shape {_fmt_shape(gs)} in both, but the guide's event shape "
                f"is {_fmt_shape(g.event_shape)} and the model's {_fmt_shape(m.event_shape)}: "
                "NumPyro sums both alike, while Pyro's plates and vectorized particles treat "
                "batch dims as independent draws (shape errors or a wrong ELBO)",
                fix,
            )
        else:
            missing = [p for p in m.plates if p not in g.plates]
            if missing and not (autoguide and g.dist == "Delta"):
                rep.add(
                    "plate-mismatch",
                    "error",
                    name,
                    f"site {name!r} is inside plate(s) {_names(missing)} in the model but not in "
                    "the guide: NumPyro lets this pass, Pyro rejects the log_prob shape, and the "
                    "batch dims mean different things in the two programs",
                    f"sample {name!r} in the guide inside the same dg.plate(...) as the model",
                )


def _check_supports(rep, gsites, msites, b):
    """Each latent's support in the guide against the model's: kind, then bounds."""
    for name, m in msites.items():
        g = gsites.get(name)
        if not _latent(m) or g is None or not _latent(g):
            continue
        if g.dist == "Delta" or m.dist == "Delta":
            continue  # a transformed latent: its support is the image of the map
        gsup, msup = _support(g.native.get("fn"), b), _support(m.native.get("fn"), b)
        if gsup is None or msup is None:
            continue
        if gsup["discrete"] != msup["discrete"]:
            _support_kind(rep, name, g, m, gsup)
        elif gsup["kind"] != "bounds" or msup["kind"] != "bounds":
            _support_differs(rep, name, gsup, msup)
        else:
            _support_bounds(rep, name, g, m, gsup, msup)


def _support_kind(rep, name, g, m, gsup) -> None:
    """A discrete guide for a continuous latent, or the reverse."""
    kinds = ("discrete", "continuous") if gsup["discrete"] else ("continuous", "discrete")
    rep.add(
        "support-kind",
        "error",
        name,
        f"guide site {name!r} ({g.dist}) is {kinds[0]} but the model's ({m.dist}) is {kinds[1]}",
        "use a guide distribution of the same kind as the model's",
    )


def _support_differs(rep, name, gsup, msup) -> None:
    """Supports that are not bounds (simplex, ...): they must be of the same kind."""
    if gsup["kind"] != msup["kind"] and "Dependent" not in (gsup["kind"], msup["kind"]):
        rep.add(
            "support-differs",
            "warning",
            name,
            f"guide site {name!r} has support {gsup['repr']} but the model's has {msup['repr']}",
            "use a guide distribution with the model's support",
        )


def _support_bounds(rep, name, g, m, gsup, msup) -> None:
    """Interval-like supports: the guide's outside the model's, or narrower than it."""
    shape = _shape(m)
    try:
        glo, ghi, mlo, mhi = (
            np.broadcast_to(x, shape) for x in (gsup["lo"], gsup["hi"], msup["lo"], msup["hi"])
        )
    except ValueError:
        return
    tol = 1e-6 * (1.0 + np.abs(np.where(np.isfinite(mlo), mlo, 0.0)))
    tol_hi = 1e-6 * (1.0 + np.abs(np.where(np.isfinite(mhi), mhi, 0.0)))
    gs, ms = _fmt_bounds(glo, ghi), _fmt_bounds(mlo, mhi)
    if np.any(glo < mlo - tol) or np.any(ghi > mhi + tol_hi):
        rep.add(
            "support-outside",
            "warning",
            name,
            f"guide site {name!r} ({g.dist}) has support {gs} but the model's {m.dist} "
            f"only {ms}: a guide draw outside gets model log density -inf on both backends "
            "(dualguide makes Pyro behave as NumPyro instead of raising), so that step's "
            "loss is inf",
            "fit with on_nonfinite='skip' to drop those steps (fine when such draws are "
            "rare), or give the guide a distribution whose support lies inside the model's",
        )
    if np.any(glo > mlo + tol) or np.any(ghi < mhi - tol_hi):
        rep.add(
            "support-narrower",
            "warning",
            name,
            f"guide site {name!r} ({g.dist}) has support {gs} but the model's {m.dist} has "
            f"{ms}: the guide never proposes the rest, so the ELBO (KL(q || p)) ignores that "
            f"part of the model and the fit is the best guide restricted to {gs}",
            f"use a guide distribution with the model's support {ms} (e.g. Normal for a "
            "real-valued latent), unless the model truly has no mass there",
        )
