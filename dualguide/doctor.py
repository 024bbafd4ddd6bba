"""``check(model, guide)``: find the mistakes that make a guide fit silently wrong, before a fit.

The doctor traces the guide once, then the model with the guide's values (as
``Trace_ELBO`` does), and reports findings, each with the site, a severity
(``error``, ``warning``, ``info``), what is wrong and the fix:

* a guide sample site drawn from a distribution that depends on no param while a
  guide factor "shapes" it (a factor only adds an ELBO term: it does not change
  what the guide samples), and guide factors in general;
* a model latent that the guide provides as ``deterministic``, or not at all;
* guide sites the model lacks and that are not marked auxiliary;
* improper or sampler-less distributions (``ImproperUniform``) in a guide;
* guide support not inside the model's support, and the reverse;
* shape and event-dim mismatches between model and guide sites;
* (``level="full"``) params no guide site depends on; transformed latents
  (Delta sites fed by base draws) whose map is not square, not invertible near
  the current params, or whose Delta sites do not carry ``-log|det J|``; and,
  for guides of up to 3 latent dimensions, a quadrature check that the guide's
  density integrates to 1.

``fit`` runs the cheap checks (``level="cheap"``) first and refuses errors;
warnings pass through as Python warnings.

>>> import dualguide as dg
>>> from dualguide import constraints, ops, distributions as dist
>>> def model():
...     dg.sample("x", dist.Normal(0.0, 1.0))
>>> def guide():  # the seed's mistake: a param-free sampler "shaped" by a factor
...     s = dg.param("s", 1.0, constraint=constraints.positive)
...     x = dg.sample("x", dist.Uniform(-10.0, 10.0))
...     dg.factor("shape", -0.5 * (x / s) ** 2 - ops.log(s))
>>> report = dg.check(model, guide, backend="numpyro", level="cheap")
>>> report.ok, report.codes("error")
(False, ['param-free-guide-site'])
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import _state
from .errors import CheckWarning, DualGuideError, SpecError
from .render import render

__all__ = ["Finding", "Report", "check", "cheap_checks", "nonfinite_sites"]

SEVERITIES = ("error", "warning", "info")

#: how many latent dimensions the quadrature check handles
MAX_QUADRATURE_DIMS = 3


# ---------------------------------------------------------------------------------------------
# findings and reports
# ---------------------------------------------------------------------------------------------


@dataclass
class Finding:
    """One thing the doctor found: ``code`` (stable identifier), ``severity``
    (``"error"``, ``"warning"`` or ``"info"``), ``site`` (a site or param name, or
    None for the whole program), ``message`` (what is wrong) and ``fix``."""

    code: str
    severity: str
    site: str | None
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = f"[{self.site}] " if self.site else ""
        s = f"{self.severity.upper()}: {where}{self.message}"
        if self.fix:
            s += f"\n    fix: {self.fix}"
        return s

    def to_dict(self) -> dict:
        """Plain-Python form (JSON-ready)."""
        return {
            "code": self.code,
            "severity": self.severity,
            "site": self.site,
            "message": self.message,
            "fix": self.fix,
        }


@dataclass
class Report:
    """The findings of :func:`check`, printable and convertible with :meth:`to_dict`.

    ``ok`` is True when there is no error.  ``backend`` is the backend the
    program was traced on, ``level`` ``"cheap"`` or ``"full"``, ``checks`` the
    names of the checks that ran, and ``figures`` numbers the checks computed
    (e.g. ``{"quadrature": {"integral": 0.0157, ...}}``).
    """

    findings: list[Finding] = field(default_factory=list)
    backend: str = ""
    level: str = "full"
    checks: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)

    def add(self, code, severity, site, message, fix="") -> Finding:
        if severity not in SEVERITIES:
            raise ValueError(severity)
        f = Finding(code, severity, site, message, fix)
        self.findings.append(f)
        return f

    def _of(self, severity) -> list[Finding]:
        return [f for f in self.findings if f.severity == severity]

    @property
    def errors(self) -> list[Finding]:
        return self._of("error")

    @property
    def warnings(self) -> list[Finding]:
        return self._of("warning")

    @property
    def infos(self) -> list[Finding]:
        return self._of("info")

    @property
    def ok(self) -> bool:
        """No errors (warnings and infos allowed)."""
        return not self.errors

    def codes(self, severity: str | None = None) -> list[str]:
        """The codes of the findings (of one severity)."""
        return [f.code for f in self.findings if severity in (None, f.severity)]

    def find(self, code: str, site: str | None = None) -> list[Finding]:
        """Findings with ``code`` (and ``site``)."""
        return [f for f in self.findings if f.code == code and site in (None, f.site)]

    def __iter__(self):
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def __str__(self) -> str:
        order = {s: i for i, s in enumerate(SEVERITIES)}
        head = (
            f"dualguide check ({self.backend}, {self.level}): {len(self.errors)} error(s), "
            f"{len(self.warnings)} warning(s), {len(self.infos)} note(s)"
        )
        body = [str(f) for f in sorted(self.findings, key=lambda f: order[f.severity])]
        return "\n".join([head, *body])

    def to_dict(self) -> dict:
        """Plain-Python form (JSON-ready)."""
        return {
            "backend": self.backend,
            "level": self.level,
            "ok": self.ok,
            "checks": list(self.checks),
            "counts": {s: len(self._of(s)) for s in SEVERITIES},
            "findings": [f.to_dict() for f in self.findings],
            "figures": _plain(self.figures),
        }

    def raise_for_errors(self, what: str = "check") -> None:
        """Raise :class:`~dualguide.errors.SpecError` listing the errors, if any."""
        if self.errors:
            lines = "\n".join(f"  - {f}".replace("\n", "\n    ") for f in self.errors)
            raise SpecError(f"{what}: the guide has {len(self.errors)} error(s):\n{lines}")


def _plain(x):
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, float) and not math.isfinite(x):
        return repr(x)
    return x


# ---------------------------------------------------------------------------------------------
# tracing
# ---------------------------------------------------------------------------------------------


class _Ctx:
    """One model/guide pair on one backend, with args and param overrides."""

    def __init__(self, model, guide, backend, model_args, model_kwargs, params, seed):
        self.b = b = _state.resolve(backend)
        self.helper = _state.feature(b, "doctor")
        self.model = render(model, b) if model is not None else None
        self.guide = render(guide, b)
        if not isinstance(model_args, (tuple, list)):
            raise SpecError(f"check: model_args must be a tuple, got {type(model_args).__name__}")
        self.args = tuple(b.to_array(a) for a in model_args)
        self.kwargs = {k: b.to_array(v) for k, v in (model_kwargs or {}).items()}
        self.params = _state.check_init_params(params)
        self.seed = int(seed)
        self.constraints: dict = {}

    def run(self, fn, values=None, fill="none", seed=None, params=None):
        """Trace ``fn`` with ``values`` substituted: ``(sites, filled names)``."""
        vals = {k: self.b.to_array(v) for k, v in (values or {}).items()}
        wrapped, filled = self.helper.with_values(fn, vals, fill)
        with _state.param_overrides(self.params if params is None else params) as hook:
            sites = self.b.trace(
                wrapped, self.args, self.kwargs, self.seed if seed is None else seed
            )
        for k, c in hook.constraints.items():
            self.constraints.setdefault(k, c)
        return sites, list(filled)

    def batched(self, fn, values, shapes, out_names, n, nest, params=None):
        with _state.param_overrides(self.params if params is None else params):
            return self.helper.batched_eval(
                fn, self.args, self.kwargs, values, shapes, list(out_names), n, nest
            )


def _latent(s) -> bool:
    return s.type == "sample" and not s.is_observed and not s.is_factor


def _shape(s) -> tuple:
    return tuple(s.batch_shape) + tuple(s.event_shape)


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "biu" and b.dtype.kind in "biu":
        return bool(np.array_equal(a, b))
    return bool(np.allclose(a, b, rtol=1e-6, atol=1e-7, equal_nan=True))


def _fmt_shape(s) -> str:
    return "(" + ", ".join(str(int(d)) for d in s) + ("," if len(s) == 1 else "") + ")"


def _names(xs) -> str:
    xs = list(xs)
    return ", ".join(repr(x) for x in xs)


# ---------------------------------------------------------------------------------------------
# supports
# ---------------------------------------------------------------------------------------------


def _support(d, b) -> dict | None:
    """A neutral description of ``d.support``: bounds for interval-like supports."""
    c = getattr(d, "support", None)
    if c is None:
        return None
    while hasattr(c, "base_constraint"):
        c = c.base_constraint
    kind = type(c).__name__.lstrip("_")
    discrete = bool(getattr(c, "is_discrete", False))
    lo, hi = getattr(c, "lower_bound", None), getattr(c, "upper_bound", None)
    if kind in ("Real", "RealVector"):
        lo, hi = -math.inf, math.inf
    elif lo is None and hi is None:
        return {"kind": kind, "discrete": discrete, "repr": repr(c)}
    try:
        lo = -math.inf if lo is None else np.asarray(b.to_numpy(lo), dtype=float)
        hi = math.inf if hi is None else np.asarray(b.to_numpy(hi), dtype=float)
    except Exception:  # noqa: BLE001 - a support we cannot read is just not compared
        return {"kind": kind, "discrete": discrete, "repr": repr(c)}
    return {
        "kind": "bounds",
        "discrete": discrete,
        "lo": np.asarray(lo, dtype=float),
        "hi": np.asarray(hi, dtype=float),
        "repr": repr(c),
    }


def _fmt_bounds(lo, hi) -> str:
    lo, hi = np.asarray(lo), np.asarray(hi)
    if lo.size and hi.size and np.all(lo == lo.flat[0]) and np.all(hi == hi.flat[0]):
        a, z = float(lo.flat[0]), float(hi.flat[0])
        if a == -math.inf and z == math.inf:
            return "the whole real line"
        return f"({_num(a)}, {_num(z)})"
    return "elementwise bounds " + f"[{lo.tolist()}, {hi.tolist()}]"


def _num(x: float) -> str:
    if x == math.inf:
        return "inf"
    if x == -math.inf:
        return "-inf"
    return f"{x:g}"


# ---------------------------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------------------------


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
    if level not in ("cheap", "full"):
        raise SpecError(f"check: level must be 'cheap' or 'full', got {level!r}")
    if not callable(guide):
        raise SpecError(f"check: expected a guide function, got {guide!r}")
    if model is not None and not callable(model):
        raise SpecError(f"check: expected a model function (or None), got {model!r}")
    ctx = _Ctx(model, guide, backend, model_args, model_kwargs, params, seed)
    rep = Report(backend=ctx.b.name, level=level)

    # 1. the guide alone (improper sites get an in-support value so the trace goes on)
    rep.checks.append("trace")
    try:
        gsites, improper = ctx.run(ctx.guide, fill="unsamplable")
    except Exception as e:  # noqa: BLE001 - reported as a finding
        _trace_failed(rep, "guide", e, ctx.b.name)
        return rep
    _check_improper(rep, gsites, improper)

    # 2. the model, run with the guide's values (missing latents get an in-support value)
    msites = None
    if ctx.model is not None:
        values = {k: s.value for k, s in gsites.items() if _latent(s) and k not in improper}
        try:
            msites, _ = ctx.run(ctx.model, values=values, fill="missing")
        except Exception as e:  # noqa: BLE001
            # run it once more on values of its own, so the structural checks can still say why
            try:
                msites, _ = ctx.run(ctx.model, values={}, fill="missing")
            except Exception:  # noqa: BLE001
                msites = None
            how = "" if msites is None else " (run with the guide's values)"
            _trace_failed(rep, "model", e, ctx.b.name, how)
    if msites is not None:
        rep.checks += ["latents", "extra-sites", "shapes", "supports"]
        _check_latents(rep, gsites, msites)
        _check_extra(rep, gsites, msites)
        _check_shapes(rep, gsites, msites)
        _check_supports(rep, gsites, msites, ctx.b)

    # 3. which guide sites depend on params (one perturbed trace; per param when full)
    rep.checks.append("param-dependence")
    try:
        _check_dependence(rep, ctx, gsites, msites, improper, per_param=level == "full")
    except Exception as e:  # noqa: BLE001
        rep.add("check-failed", "info", None, f"param-dependence check could not run: {_err(e)}")

    if level == "full" and not improper:
        rep.checks += ["transforms", "quadrature"]
        try:
            _full_checks(rep, ctx, gsites, msites)
        except Exception as e:  # noqa: BLE001
            rep.add(
                "check-failed",
                "info",
                None,
                f"transform/quadrature checks could not run: {_err(e)}",
            )
    return rep


def _err(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}"


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


def _check_shapes(rep, gsites, msites):
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
            if missing:
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
    for name, m in msites.items():
        g = gsites.get(name)
        if not _latent(m) or g is None or not _latent(g):
            continue
        if g.dist == "Delta" or m.dist == "Delta":
            continue  # a transformed latent: its support is the image of the map
        gd, md = g.native.get("fn"), m.native.get("fn")
        gsup, msup = _support(gd, b), _support(md, b)
        if gsup is None or msup is None:
            continue
        if gsup["discrete"] != msup["discrete"]:
            kinds = ("discrete", "continuous") if gsup["discrete"] else ("continuous", "discrete")
            rep.add(
                "support-kind",
                "error",
                name,
                f"guide site {name!r} ({g.dist}) is {kinds[0]} but the model's ({m.dist}) is "
                f"{kinds[1]}",
                "use a guide distribution of the same kind as the model's",
            )
            continue
        if gsup["kind"] != "bounds" or msup["kind"] != "bounds":
            if gsup["kind"] != msup["kind"] and "Dependent" not in (gsup["kind"], msup["kind"]):
                rep.add(
                    "support-differs",
                    "warning",
                    name,
                    f"guide site {name!r} has support {gsup['repr']} but the model's has "
                    f"{msup['repr']}",
                    "use a guide distribution with the model's support",
                )
            continue
        shape = _shape(m)
        try:
            glo, ghi, mlo, mhi = (
                np.broadcast_to(x, shape) for x in (gsup["lo"], gsup["hi"], msup["lo"], msup["hi"])
            )
        except ValueError:
            continue
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


# -- param dependence ---------------------------------------------------------------------------


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
    return out.astype(np.float32)


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
    return out.astype(np.float32)


def _check_dependence(rep, ctx, gsites, msites, improper, per_param):
    pvals = {k: s.value for k, s in gsites.items() if s.type == "param"}
    latents = {k: s for k, s in gsites.items() if _latent(s) and k not in improper}
    factors = {k: s for k, s in gsites.items() if s.type == "sample" and s.is_factor}
    watched = {**latents, **factors}
    if not watched:
        return
    base = {**ctx.params}

    def changed(params):
        sites, _ = ctx.run(ctx.guide, fill="unsamplable", params=params)
        return {
            k
            for k, s in watched.items()
            if k not in sites
            or not (_same(sites[k].value, s.value) and _same(sites[k].log_prob, s.log_prob))
        }

    perturbed = {}
    for k, v in pvals.items():
        p = _perturb(v, ctx.constraints.get(k))
        if p is not None:
            perturbed[k] = p
    depends_on: dict[str, set] = {k: set() for k in watched}
    if perturbed:
        moved = changed({**base, **perturbed})
        for k in moved:
            depends_on[k].add("*")
        if per_param and len(perturbed) <= 16:
            for k in depends_on:
                depends_on[k].discard("*")
            for pname, pv in perturbed.items():
                for k in changed({**base, pname: pv}):
                    depends_on[k].add(pname)
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
                        f"use {pname!r} in a distribution or a transform of the guide, or "
                        "remove it",
                    )
    rep.figures["depends_on"] = {k: sorted(v) for k, v in depends_on.items()}

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

    model_latents = {k for k, s in (msites or {}).items() if _latent(s)}
    for name, s in latents.items():
        if depends_on[name] or s.dist == "Delta":
            continue
        shaping = []
        if factors:
            nudged = _nudge(s.value, _support(s.native.get("fn"), ctx.b))
            if nudged is not None:
                sites, _ = ctx.run(ctx.guide, values={name: nudged}, fill="unsamplable")
                shaping = [
                    f
                    for f in factors
                    if f in sites and not _same(sites[f].log_prob, factors[f].log_prob)
                ]
        if shaping and (msites is None or name in model_latents):
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
        elif msites is None or name in model_latents:
            rep.add(
                "param-free-guide-site",
                "info",
                name,
                f"guide site {name!r} ({s.dist}) depends on no param: the fit cannot change "
                "how the guide draws it",
                "fine if you meant to keep it fixed; otherwise give its distribution params",
            )


# -- draws, transforms, quadrature --------------------------------------------------------------


def _size(s) -> int:
    return int(np.prod(_shape(s), dtype=int))


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


def _nest(gsites) -> int:
    n = 0
    for s in gsites.values():
        if s.type == "sample":
            n = max(n, len(s.batch_shape))
            for f in s.native.get("cond_indep_stack", ()) or ():
                dim = getattr(f, "dim", None)
                if dim is not None:
                    n = max(n, -int(dim))
    return n


def _shapes(sites) -> dict:
    return {k: (_shape(s), len(s.event_shape)) for k, s in sites.items()}


def _draws(ctx, gsites, base, k: int = 32) -> np.ndarray:
    """``k`` guide draws at the current params, as flat base coordinates ``(k, D)``."""
    shapes = _shapes(base)
    with _state.param_overrides(ctx.params):
        vals = ctx.helper.batched_draws(
            ctx.guide, ctx.args, ctx.kwargs, list(base), shapes, k, _nest(gsites), ctx.seed + 1000
        )
    return np.concatenate(
        [np.asarray(vals[n], dtype=np.float64).reshape(k, -1) for n in base], axis=1
    )


class _Evaluator:
    """Point sets in flat base coordinates, evaluated in one batched run of the guide."""

    def __init__(self, ctx, gsites, base, outs):
        self.ctx, self.gsites, self.base, self.outs = ctx, gsites, base, outs
        self.D = sum(_size(s) for s in base.values())
        self.sets: list[np.ndarray] = []
        self.lps: dict = {}
        self.vals: dict = {}
        self.offsets: list[int] = []

    def add(self, pts) -> int:
        self.sets.append(np.asarray(pts, dtype=np.float64))
        return len(self.sets) - 1

    def add_jacobian(self, pts):
        """Points plus central finite-difference offsets; returns a handle for :meth:`jacobian`."""
        pts = np.asarray(pts, dtype=np.float64)
        h = 1e-3 * np.maximum(1.0, np.abs(pts))
        ids = [self.add(pts)]
        for j in range(self.D):
            e = np.zeros(self.D)
            e[j] = 1.0
            ids.append(self.add(pts + h[:, j : j + 1] * e))
            ids.append(self.add(pts - h[:, j : j + 1] * e))
        return ids, h

    def run(self) -> None:
        allp = np.concatenate(self.sets, axis=0)
        n = allp.shape[0]
        values, i = {}, 0
        for k, s in self.base.items():
            size = _size(s)
            values[k] = allp[:, i : i + size].reshape((n,) + _shape(s)).astype(np.float32)
            i += size
        shapes = _shapes({**self.base, **self.outs})
        self.lps, self.vals = self.ctx.batched(
            self.ctx.guide, values, shapes, list(self.outs), n, _nest(self.gsites)
        )
        self.offsets = list(np.cumsum([0] + [len(p) for p in self.sets]))

    def log_density(self, i) -> np.ndarray:
        """The guide's total log density (all sample sites) at point set ``i``."""
        a, z = self.offsets[i], self.offsets[i + 1]
        return sum(
            (np.asarray(v[a:z], dtype=np.float64) for k, v in self.lps.items() if k in self.gsites),
            np.zeros(z - a),
        )

    def site_lp(self, i, name) -> np.ndarray:
        a, z = self.offsets[i], self.offsets[i + 1]
        return np.asarray(self.lps[name][a:z], dtype=np.float64)

    def outputs(self, i) -> np.ndarray:
        a, z = self.offsets[i], self.offsets[i + 1]
        return np.concatenate(
            [np.asarray(self.vals[k][a:z], dtype=np.float64).reshape(z - a, -1) for k in self.outs],
            axis=1,
        )

    def jacobian(self, handle) -> np.ndarray:
        """``(K, M, D)``: d(outputs) / d(base) at the points of ``handle``."""
        ids, h = handle
        f0 = self.outputs(ids[0])
        J = np.zeros(f0.shape + (self.D,))
        for j in range(self.D):
            J[:, :, j] = (self.outputs(ids[1 + 2 * j]) - self.outputs(ids[2 + 2 * j])) / (
                2 * h[:, j : j + 1]
            )
        return J


def _full_checks(rep, ctx, gsites, msites) -> None:
    """Transforms (Delta latents fed by base draws) and the quadrature of the guide's density."""
    base, deltas, outs = _layout(gsites, msites)
    D = sum(_size(s) for s in base.values())
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
        return
    if D == 0:
        return
    if D > MAX_QUADRATURE_DIMS:
        rep.add(
            "quadrature-skipped",
            "info",
            None,
            f"the guide has {D} latent dimensions; the quadrature check of its normalization "
            f"runs for up to {MAX_QUADRATURE_DIMS}",
        )
    transform = bool(deltas) and bool(outs)
    quad = D <= MAX_QUADRATURE_DIMS
    if not (transform or quad):
        return
    if any(_support(s.native.get("fn"), ctx.b) is None for s in base.values()):
        quad = False
    draws = _draws(ctx, gsites, base)
    ev = _Evaluator(ctx, gsites, base, outs)
    h_t = ev.add_jacobian(draws[:8]) if transform else None
    grids = None
    if quad:
        maps, why = _coord_maps(ctx, base, draws)
        if maps is None:
            rep.add(
                "quadrature-skipped", "info", None, f"no quadrature of the guide's density: {why}"
            )
        else:
            n = _QUAD_NODES[D]
            grids = []
            for nodes in (n, n // 2):
                pts, W = _grid(maps, nodes)
                keep = np.all(np.abs(pts) < 1e30, axis=1) & np.isfinite(W) & (W > 0)
                pts, W = pts[keep], W[keep]
                handle = ev.add_jacobian(pts) if deltas else ev.add(pts)
                grids.append((nodes, W, handle))
    if h_t is None and grids is None:
        return
    ev.run()
    square = True
    if h_t is not None:
        square = _check_transforms(rep, gsites, base, deltas, outs, ev, h_t)
    if grids is not None:
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


def _check_transforms(rep, gsites, base, deltas, outs, ev, handle) -> bool:
    """Square, invertible, and -log|det J| carried by the Delta sites? True when square."""
    J = ev.jacobian(handle)  # (K, M, D)
    K = J.shape[0]
    out_names = list(outs)
    out_sizes = [_size(outs[k]) for k in out_names]
    scale = np.maximum(1.0, np.abs(J).max(axis=(0, 2), keepdims=True))
    moving = (np.abs(J) > 1e-6 * scale).any(axis=(0, 2))  # (M,)
    fixed_deltas, i = [], 0
    for k, size in zip(out_names, out_sizes):
        if k in deltas and not moving[i : i + size].any():
            fixed_deltas.append(k)
        i += size
    if fixed_deltas:
        rep.add(
            "point-mass-site",
            "info",
            ", ".join(fixed_deltas),
            f"Delta site(s) {_names(fixed_deltas)} do not depend on any random draw of the "
            "guide: point masses (MAP-style) for those latents",
            "fine for a MAP estimate of them",
        )
    moving_deltas = [k for k in out_names if k in deltas and k not in fixed_deltas]
    square_all = sum(out_sizes) == ev.D and not fixed_deltas
    if not moving_deltas:
        return square_all
    rows = np.nonzero(moving)[0]
    cols = np.nonzero((np.abs(J[:, rows, :]) > 1e-6 * scale[:, rows, :]).any(axis=(0, 1)))[0]
    feeding = _coords_to_sites(base, cols)
    info = _transformed_info(gsites, moving_deltas)
    what = (
        f"dg.transformed({_names(info['outputs'])} <- {_names(info['inputs'])})"
        if info
        else f"the map from {_names(feeding)} to {_names(moving_deltas)}"
    )
    if len(rows) != len(cols):
        rep.add(
            "transform-not-square",
            "warning",
            ", ".join(moving_deltas),
            f"the guide maps base draws {_names(feeding)} ({len(cols)} dims) to the model's "
            f"latents ({len(rows)} dims) through Delta sites {_names(moving_deltas)}: the map "
            "is not square, so no Delta log_density can make the guide's density that of the "
            "latents",
            "map as many base dimensions as there are outputs (add or drop base draws), or "
            "sample the extra latents directly",
        )
        return False
    Jsq = J[:, rows][:, :, cols]
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
    if bad.any():
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
        return False
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
    if not (np.all(np.abs(resid) < tol) or np.all(np.abs(resid + factor_ld) < tol)):
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
    return square_all


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


_QUAD_NODES = {1: 256, 2: 64, 3: 32}


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


# ---------------------------------------------------------------------------------------------
# hooks for fit
# ---------------------------------------------------------------------------------------------


def fit_checks(
    model, guide, backend, model_args, model_kwargs, init_params, seed, on_nonfinite
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


# ---------------------------------------------------------------------------------------------
# clear errors for the backends (called on their error paths only)
# ---------------------------------------------------------------------------------------------

_FOREIGN = {"numpyro": ("torch", "pyro"), "pyro": ("jax", "jaxlib", "numpyro")}


def no_sampler_error(name: str, dist_name: str) -> SpecError:
    """The error for sampling a distribution without a sampler (``ImproperUniform``)."""
    return SpecError(
        f"sample site {name!r}: {dist_name} has no sampler (it is a flat prior for models). "
        f"If {name!r} is a model latent, the guide must provide it (a guide site named "
        f"{name!r}); in a guide, draw it from a proper distribution with params, e.g. "
        f"dg.sample({name!r}, dist.Normal(loc, scale))"
    )


def dist_arg_error(name: str, args: tuple, kwargs: dict, exc: Exception, backend: str) -> SpecError:
    """A :class:`SpecError` naming the argument of ``dist.<name>(...)`` that the framework refused."""
    from ._table import DISTRIBUTIONS

    spec = DISTRIBUTIONS.get(name)
    argnames = list(spec.args) if spec is not None else []
    named = [
        (argnames[i] if i < len(argnames) else f"argument {i + 1}", a) for i, a in enumerate(args)
    ]
    named += list(kwargs.items())
    sig = f"dist.{name}({', '.join(argnames)})"
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    for an, a in named:
        if spec is not None and an not in argnames and an in kwargs:
            return SpecError(
                f"{sig} got an unexpected keyword {an!r}; its arguments are ({', '.join(argnames)})"
            )
        if isinstance(a, (str, bytes)):
            return SpecError(
                f"dist.{name}: {an} is the string {a!r}; pass a number, an array, or a param "
                "(e.g. dg.param(...))"
            )
        root = type(a).__module__.split(".", 1)[0]
        if root in _FOREIGN.get(backend, ()):
            other = "pyro" if backend == "numpyro" else "numpyro"
            return SpecError(
                f"dist.{name}: {an} is a {type(a).__module__}.{type(a).__name__} while the "
                f"{backend} backend is active; build values with dualguide.ops, numbers or numpy "
                f"arrays (they become the active backend's arrays), or run the program on {other}"
            )
    if isinstance(exc, TypeError) and "positional argument" in first:
        return SpecError(
            f"{sig} got {len(args)} positional arguments; its arguments are ({', '.join(argnames)})"
        )
    return SpecError(f"{sig} refused its arguments: {first}")
