"""dualguide: write a variational guide once, run it natively on NumPyro and on Pyro.

>>> import dualguide as dg
>>> from dualguide import constraints, distributions as dist
>>> def guide():
...     s = dg.param("s", 1.0, constraint=constraints.positive)
...     dg.sample("x", dist.Normal(0.0, s))
>>> np_guide = dg.render(guide, "numpyro")
>>> pyro_guide = dg.render(guide, "pyro")
>>> np_guide.backend, pyro_guide.backend
('numpyro', 'pyro')

``import dualguide`` imports neither jax nor torch; a backend's framework is
imported the first time that backend is used.
"""

from __future__ import annotations

from . import constraints, distributions, ops, optim
from ._inputs import get_dtype, set_dtype, use_dtype
from ._state import available_backends, get_backend, set_backend, use_backend
from .errors import BackendError, DualGuideError, EstimatorMismatchWarning, FitError, SpecError
from .infer import FitResult, fit
from .primitives import deterministic, factor, param, plate, sample
from .render import backend_of, render
from .trace import Site, trace

#: names provided by feature modules, imported on first access (keeps import light)
_LAZY = {
    "transformed": ("dualguide.transforms", "transformed"),
    "bijections": ("dualguide.bijections", None),
    "transforms": ("dualguide.transforms", None),
    # the package itself: importing dualguide.crosscheck binds dg.crosscheck to it anyway, and
    # it is callable (dg.crosscheck(model, guide)) and holds the checks (dg.crosscheck.lockstep)
    "crosscheck": ("dualguide.crosscheck", None),
    "check": ("dualguide.doctor", "check"),
    "save_params": ("dualguide.porting.params", "save_params"),
    "load_params": ("dualguide.porting.params", "load_params"),
    "export": ("dualguide.porting.export", "export"),
    "autoguides": ("dualguide.autoguides", None),
    "handlers": ("dualguide.handlers", None),
    "reparam": ("dualguide.reparam", None),
    "get_param_store": ("dualguide.svi", "get_param_store"),
    "clear_param_store": ("dualguide.svi", "clear_param_store"),
    "set_rng_seed": ("dualguide.svi", "set_rng_seed"),
    "config_enumerate": ("dualguide.enum", "config_enumerate"),
    "markov": ("dualguide.enum", "markov"),
    "infer_discrete": ("dualguide.enum", "infer_discrete"),
    "nn": ("dualguide.nn", None),
    "module": ("dualguide.nn", "module"),
    "random_module": ("dualguide.nn", "random_module"),
}


def __getattr__(name):
    entry = _LAZY.get(name)
    if entry is None:
        raise AttributeError(f"module 'dualguide' has no attribute {name!r}")
    import importlib

    mod, attr = entry
    m = importlib.import_module(mod)
    value = m if attr is None else getattr(m, attr)
    globals()[name] = value  # found once: later reads (dg.transformed at every step) are plain
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "DualGuideError",
    "EstimatorMismatchWarning",
    "FitError",
    "FitResult",
    "Site",
    "SpecError",
    "available_backends",
    "backend_of",
    "constraints",
    "deterministic",
    "distributions",
    "factor",
    "fit",
    "get_backend",
    "ops",
    "optim",
    "param",
    "plate",
    "render",
    "sample",
    "set_backend",
    "trace",
    "use_backend",
    "get_dtype",
    "set_dtype",
    "use_dtype",
]
