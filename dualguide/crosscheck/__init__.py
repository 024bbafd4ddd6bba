"""Cross-check: prove that the NumPyro and the Pyro renderings of a guide agree.

``dg.crosscheck(model, guide, ...)`` fits on both backends and returns a
:class:`~dualguide.crosscheck.report.CrosscheckReport` (``.ok``, ``.to_dict()``, ``print``).
The checks it runs are also callable alone:

* :func:`logdensity_parity` -- same params, same points: both backends' log densities agree
  to float32 precision;
* :func:`gradient_parity` -- the ELBO gradient at fixed params agrees within Monte-Carlo error;
* :func:`estimator_gradient_parity` -- the same for another loss's estimator (common noise or
  in distribution, ``docs/elbo.md``);
* :func:`lockstep` -- SVI driven by common noise agrees step by step;
* :func:`elbo_estimate` -- a many-particle ELBO with its standard error, on one backend;
* :func:`quadrature_reference`, :func:`nuts_reference` -- independent references.

``dualguide.crosscheck`` is this package *and* a callable: ``dg.crosscheck(model, guide)``
is ``dg.crosscheck.crosscheck(model, guide)``.

>>> import dualguide as dg
>>> from dualguide import constraints, distributions as dist
>>> def model():
...     dg.sample("x", dist.Normal(0.0, 2.0))
>>> def guide():
...     dg.sample("x", dist.Normal(0.0, dg.param("s", 1.0, constraint=constraints.positive)))
>>> r = dg.crosscheck.logdensity_parity(model, guide)
>>> r.status
'pass'
"""

from __future__ import annotations

import sys
import types

from ._common import NotLockstepable
from .core import ALL_CHECKS, DEFAULT_CHECKS, DEFAULT_TOLERANCE, crosscheck
from .estimators import estimator_gradient_parity
from .lockstep_svi import LOCKSTEP_RTOL, lockstep
from .parity import elbo_estimate, elbo_particles, gradient_parity, logdensity_parity
from .reference import nuts_reference, quadrature_reference
from .report import BackendRun, CheckResult, CrosscheckReport, ParamComparison

__all__ = [
    "ALL_CHECKS",
    "BackendRun",
    "CheckResult",
    "CrosscheckReport",
    "DEFAULT_CHECKS",
    "DEFAULT_TOLERANCE",
    "LOCKSTEP_RTOL",
    "NotLockstepable",
    "ParamComparison",
    "crosscheck",
    "elbo_estimate",
    "elbo_particles",
    "estimator_gradient_parity",
    "gradient_parity",
    "lockstep",
    "logdensity_parity",
    "nuts_reference",
    "quadrature_reference",
]


class _CallableModule(types.ModuleType):
    """Lets ``dualguide.crosscheck(model, guide)`` call :func:`crosscheck`."""

    def __call__(self, *args, **kwargs):
        return crosscheck(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
