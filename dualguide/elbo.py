"""The ELBO family in :func:`dualguide.fit` and :class:`dualguide.infer.SVI` (issue 14).

``fit(..., loss=...)`` takes a loss object (``dg.infer.TraceMeanField_ELBO()``,
``dg.infer.TraceGraph_ELBO()``, ``dg.infer.RenyiELBO(alpha=0, num_particles=8)``) or its name.
``Trace_ELBO`` keeps dualguide's compiled loops; every other estimator is the framework's own
class (a row of ``_table.ELBOS``) stepped by the backend's ``elbo`` feature with dualguide's
optimizer, seed and non-finite rules.  Where the frameworks differ, one behaviour is kept or the
program is refused with a :class:`~dualguide.errors.SpecError` (``docs/elbo.md``):

- ``TraceGraph_ELBO``: no baselines (NumPyro's has none), so ``infer={"baseline": ...}`` on a
  site is refused on both backends;
- ``Trace_ELBO``: guide sites without ``rsample`` run (each framework's estimator) with an
  :class:`~dualguide.errors.EstimatorMismatchWarning` (:func:`warn_estimator_mismatch`):
  Pyro's adds a score-function term, NumPyro's differentiates through its sampler;
- ``TraceMeanField_ELBO``: guide sites without ``rsample`` are refused (Pyro raises);
- ``RenyiELBO``: guide sites without ``rsample`` are refused (Pyro raises, NumPyro would drop
  their score-function term), and so are scaled sites such as subsampled plates (the
  frameworks scale them differently inside the log-sum-exp).

:func:`has_rsample_` is Pyro's ``Distribution.has_rsample_`` on both backends: with ``False``
a guide site is sampled without a pathwise gradient, so ``TraceGraph_ELBO`` uses its
score-function estimator.

>>> import dualguide as dg
>>> as_loss("RenyiELBO", 4)
RenyiELBO(num_particles=4, alpha=0.0)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _state
from ._table import ELBOS
from .errors import SpecError
from .svi import Trace_ELBO

__all__ = [
    "TraceEnum_ELBO",
    "as_loss",
    "check_program",
    "has_rsample_",
    "warn_estimator_mismatch",
]


class TraceEnum_ELBO(Trace_ELBO):
    """``TraceEnum_ELBO`` of both frameworks: the sites marked for enumeration
    (:func:`dualguide.config_enumerate`, ``infer={"enumerate": "parallel"}``) are summed out
    exactly, by variable elimination over their plates and :func:`dualguide.markov` chains.

    ``max_plate_nesting`` is required (Pyro's rule; NumPyro would guess it): the number of
    plate dimensions of the model and guide, so enumeration uses the dimensions to their left.
    A value smaller than the program's plates is refused when the program is checked.  Pyro's
    other arguments (``strict_enumeration_warning``, ``vectorize_particles``...) are accepted
    and ignored.

    >>> TraceEnum_ELBO(max_plate_nesting=1)
    TraceEnum_ELBO(num_particles=1, max_plate_nesting=1)
    """

    name = "TraceEnum_ELBO"

    def __init__(
        self, num_particles: int = 1, max_plate_nesting: int | None = None, **pyro_options: Any
    ) -> None:
        super().__init__(num_particles=num_particles)
        if max_plate_nesting is None or max_plate_nesting == float("inf"):
            raise SpecError(
                "TraceEnum_ELBO: pass max_plate_nesting=<the number of nested plates of the "
                "model>, e.g. TraceEnum_ELBO(max_plate_nesting=1) for a model with one plate "
                "(0 without plates); dualguide requires it on both backends (docs/elbo.md)"
            )
        if (
            isinstance(max_plate_nesting, bool)
            or not isinstance(max_plate_nesting, int)
            or max_plate_nesting < 0
        ):
            raise SpecError(
                f"TraceEnum_ELBO: max_plate_nesting must be an int >= 0, got {max_plate_nesting!r}"
            )
        self.max_plate_nesting = max_plate_nesting

    @property
    def options(self) -> dict[str, Any]:
        return {"max_plate_nesting": self.max_plate_nesting}


def as_loss(loss: Any, num_particles: int, *, where: str = "fit") -> Trace_ELBO:
    """The loss object for ``loss`` (an ELBO object or its name) with ``num_particles``.

    A name takes ``num_particles`` (``"RenyiELBO"``: ``alpha=0``); an object keeps its own, and
    ``num_particles`` other than 1 that disagrees with it is an error.

    >>> as_loss("TraceGraph_ELBO", 2)
    TraceGraph_ELBO(num_particles=2)
    """
    from . import svi

    if isinstance(loss, str):
        name = "Trace_ELBO" if loss == "JitTrace_ELBO" else loss
        name = name.replace("Jit", "", 1) if name.startswith("Jit") else name
        if name not in ELBOS:
            raise SpecError(
                f"{where}: loss {loss!r} is not one of {', '.join(map(repr, ELBOS))}; pass one "
                "of these names or its object, e.g. loss=dg.infer.RenyiELBO(alpha=0)"
            )
        if name == "TraceEnum_ELBO":
            raise SpecError(
                f"{where}: loss='TraceEnum_ELBO' needs max_plate_nesting; pass the object, "
                "loss=dg.infer.TraceEnum_ELBO(max_plate_nesting=1) (docs/elbo.md)"
            )
        cls = getattr(svi, name)
        return cls(num_particles=num_particles)
    if isinstance(loss, Trace_ELBO):
        if num_particles != 1 and num_particles != loss.num_particles:
            raise SpecError(
                f"{where}: num_particles={num_particles} disagrees with loss={loss!r}; give the "
                "number of particles once, in the loss object"
            )
        return loss
    raise SpecError(
        f"{where}: loss must be a name ({', '.join(map(repr, ELBOS))}) or a dg.infer ELBO "
        f"object, got {loss!r}"
    )


def check_program(
    loss: Trace_ELBO,
    model: Callable,
    guide: Callable,
    backend: Any,
    args: tuple,
    kwargs: dict | None,
    where: str = "fit",
) -> None:
    """Refuse, naming the site, what ``loss`` would estimate differently on the two frameworks."""
    if loss.name not in ("TraceGraph_ELBO", "RenyiELBO", "TraceEnum_ELBO", "TraceMeanField_ELBO"):
        return
    from .trace import trace

    b = _state.resolve(backend)
    kind = type(getattr(guide, "neutral", guide)).__name__
    if isinstance(loss, TraceEnum_ELBO) and kind in _PACKED_AUTOGUIDES:
        raise SpecError(
            f"{where}: TraceEnum_ELBO with {kind}: NumPyro's TraceEnum_ELBO does not support "
            "the packed (AutoContinuous) autoguides, so dualguide refuses them on both backends; "
            "use dg.autoguides.AutoNormal or AutoDelta (docs/elbo.md)"
        )
    try:
        guide_sites = trace(guide, *args, backend=b.name, **(kwargs or {}))
    except ValueError as e:
        msg = str(e)
        if not isinstance(loss, TraceEnum_ELBO) or "discrete sample site" not in msg:
            raise
        site = msg.split("'")[1] if msg.count("'") >= 2 else "?"
        raise SpecError(
            f"{where}: the autoguide sees the model's discrete site {site!r}, which "
            f"TraceEnum_ELBO sums out; build the autoguide on the model without it, e.g. "
            f"dg.autoguides.AutoDelta(dg.handlers.block(model, hide=[{site!r}])) (docs/elbo.md)"
        ) from None
    model_sites = trace(model, *args, backend=b.name, **(kwargs or {}))
    if isinstance(loss, TraceEnum_ELBO):
        _check_enum(loss, model_sites, guide_sites, b, where)
        return
    if loss.name == "TraceMeanField_ELBO":
        names = score_function_sites(guide_sites)
        if names:
            s = guide_sites[names[0]]
            raise SpecError(
                f"{where}: TraceMeanField_ELBO needs reparameterized guide sites, but "
                f"{s.name!r} ({s.dist}) has no rsample; Pyro's TraceMeanField_ELBO refuses it "
                "and NumPyro's would differentiate through its sampler (a discrete site: no "
                "gradient). Use TraceGraph_ELBO for the same score-function estimator on both "
                "backends, or infer={'enumerate': 'parallel'} with TraceEnum_ELBO for discrete "
                "sites (docs/elbo.md)"
            )
        return
    for role, sites in (("guide", guide_sites), ("model", model_sites)):
        for s in sites.values():
            if s.type != "sample":
                continue
            if "baseline" in (s.infer or {}):
                raise SpecError(
                    f"{where}: site {s.name!r} in the {role} asks for a baseline "
                    f"(infer={{'baseline': ...}}); NumPyro's TraceGraph_ELBO has no baselines, so "
                    "dualguide runs TraceGraph_ELBO without them on both backends: drop the "
                    "'baseline' key (docs/elbo.md)"
                )
    if loss.name != "RenyiELBO":
        return
    for s in guide_sites.values():
        if s.is_latent and s.has_rsample is False:
            raise SpecError(
                f"{where}: RenyiELBO needs reparameterized guide sites, but {s.name!r} "
                f"({s.dist}) has no rsample; Pyro's RenyiELBO refuses it and NumPyro's would "
                "drop its score-function term. Use TraceGraph_ELBO for it, or a "
                "reparameterized distribution (docs/elbo.md)"
            )
    for s in model_sites.values():
        scale = (s.native or {}).get("scale") if isinstance(s.native, dict) else None
        if s.type == "sample" and scale is not None and _as_float(scale) != 1.0:
            raise SpecError(
                f"{where}: RenyiELBO with the scaled site {s.name!r} (a subsampled plate or "
                "handlers.scale): NumPyro and Pyro apply the scale differently inside the "
                "log-sum-exp, so dualguide refuses it; use the full plate or Trace_ELBO"
            )


#: the losses whose frameworks treat a guide site without rsample differently (docs/elbo.md)
#: (TraceMeanField_ELBO with such a site is refused by check_program: Pyro's raises)
MISMATCH_LOSSES = ("Trace_ELBO",)


def score_function_sites(guide_sites: dict) -> list[str]:
    """The guide's latent sites sampled without ``rsample`` (``has_rsample`` False: a discrete
    site, ``has_rsample_(False)``, Pyro's ``LKJCholesky``), in trace order."""
    return [
        n
        for n, s in guide_sites.items()
        if s.type == "sample" and s.is_latent and s.dist != "Delta" and s.has_rsample is False
    ]


def mismatch_message(loss_name: str, sites: dict[str, str], where: str) -> str:
    """The :class:`~dualguide.errors.EstimatorMismatchWarning` text for ``sites``
    (``{site: "Beta on pyro"}``)."""
    named = ", ".join(f"{n!r} ({d})" for n, d in sites.items())
    return (
        f"{where}: {loss_name} with guide site(s) {named} that have no rsample: Pyro's "
        f"{loss_name} adds a score-function term for them, NumPyro's differentiates through "
        "its sampler (a discrete site gets no gradient at all), so the two backends run "
        "different estimators. Use TraceGraph_ELBO for the same score-function estimator on "
        "both backends, or infer={'enumerate': 'parallel'} with TraceEnum_ELBO for discrete "
        "sites (docs/elbo.md)"
    )


def warn_estimator_mismatch(
    loss: Trace_ELBO,
    guide: Callable,
    backend: Any,
    args: tuple,
    kwargs: dict | None,
    where: str = "fit",
) -> None:
    """Warn (:class:`~dualguide.errors.EstimatorMismatchWarning`), naming the sites, when
    ``loss`` is ``Trace_ELBO`` and the guide has sites without ``rsample`` on ``backend``: the frameworks estimate their gradients differently.  The fit
    still runs (the framework's own estimator)."""
    if loss.name not in MISMATCH_LOSSES:
        return
    import warnings

    from .errors import EstimatorMismatchWarning
    from .trace import trace

    b = _state.resolve(backend)
    guide_sites = None
    abstract = getattr(_state.feature(b, "elbo"), "guide_sample_sites", None)
    if abstract is not None:  # no values needed: a backend that can, traces without computing
        try:
            with _state.param_overrides(None):  # as trace() runs it: its own param hook
                guide_sites = abstract(
                    _state.render(guide, b),
                    tuple(b.to_array(a) for a in args),
                    {k: b.to_array(v) for k, v in (kwargs or {}).items()},
                )
        except Exception:  # a guide that needs concrete values: traced below
            guide_sites = None
    if guide_sites is None:
        try:
            guide_sites = trace(guide, *args, backend=b.name, **(kwargs or {}))
        except Exception:  # the fit itself reports what is wrong with the guide
            return
    names = score_function_sites(guide_sites)
    if names:
        sites = {n: f"{guide_sites[n].dist} on {b.name}" for n in names}
        warnings.warn(
            mismatch_message(loss.name, sites, where), EstimatorMismatchWarning, stacklevel=3
        )


#: autoguides over one packed latent vector (NumPyro's AutoContinuous)
_PACKED_AUTOGUIDES = (
    "AutoDiagonalNormal",
    "AutoMultivariateNormal",
    "AutoLowRankMultivariateNormal",
)


def _check_enum(
    loss: TraceEnum_ELBO, model_sites: dict, guide_sites: dict, b: Any, where: str
) -> None:
    """TraceEnum_ELBO's refusals: too small a max_plate_nesting, enumeration in the guide
    (NumPyro has none), a program without enumerated sites is fine (it is Trace_ELBO)."""
    from .enum import plate_nesting

    _state.feature(b, "enum").check()
    for name, s in guide_sites.items():
        if s.type == "sample" and (s.infer or {}).get("enumerate"):
            raise SpecError(
                f"{where}: the guide's site {name!r} asks for enumeration; dualguide enumerates "
                "model sites only (NumPyro's TraceEnum_ELBO has no guide-side enumeration): "
                "drop it from the guide and mark it in the model"
            )
    need = max(plate_nesting(model_sites), plate_nesting(guide_sites))
    if loss.max_plate_nesting < need:
        deep = [
            n
            for n, s in model_sites.items()
            if s.type == "sample" and plate_nesting({n: s}) == need
        ]
        raise SpecError(
            f"{where}: TraceEnum_ELBO(max_plate_nesting={loss.max_plate_nesting}) but the site "
            f"{deep[0] if deep else '?'!r} sits in {need} plate dimensions; pass "
            f"max_plate_nesting={need}"
        )


def _as_float(x: Any) -> float:
    try:
        import numpy as np

        return float(np.mean(np.asarray(getattr(x, "detach", lambda: x)())))
    except Exception:
        return float("nan")


def has_rsample_(d: Any, value: bool = False) -> Any:
    """Pyro's ``d.has_rsample_(value)`` on either backend: with ``False`` the site is sampled
    without a pathwise gradient (score-function estimators, e.g. ``TraceGraph_ELBO``).

    Returns ``d`` (call it inside a model or guide on the backend that runs it).

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> with dg.use_backend("numpyro"):
    ...     has_rsample_(dist.Beta(2.0, 3.0), False).has_rsample
    False
    """
    if value is not True and value is not False:
        raise SpecError(f"has_rsample_: value must be True or False, got {value!r}")
    return _state.feature(_state.current(), "elbo").has_rsample_(d, value)
