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

The package, one job per module: :mod:`.report` (``Finding``, ``Report``),
:mod:`.context` (tracing one model/guide pair, batched evaluation), :mod:`.sites`
(helpers over traced sites), :mod:`.static` (structure, shapes, supports),
:mod:`.dependence` (which sites each param moves), :mod:`.full` (transformed
latents) and :mod:`.quadrature`, :mod:`.api` (``check``, ``cheap_checks``) and
:mod:`.fit_hooks` (what ``fit`` runs).
"""

from __future__ import annotations

# the backends' error builders live in dualguide.errors; re-exported here for the backends'
# imports of them (``from ...doctor import no_sampler_error``) until those import errors directly
from ..errors import dist_arg_error as dist_arg_error
from ..errors import no_sampler_error as no_sampler_error
from .api import cheap_checks, check
from .fit_hooks import fit_checks, nonfinite_sites
from .full import MAX_QUADRATURE_DIMS
from .report import SEVERITIES, Finding, Report

__all__ = [
    "Finding",
    "Report",
    "check",
    "cheap_checks",
    "fit_checks",
    "nonfinite_sites",
    "SEVERITIES",
    "MAX_QUADRATURE_DIMS",
]
