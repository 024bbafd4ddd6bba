"""Exceptions raised by dualguide. Every message names the culprit and the fix."""

from __future__ import annotations


class DualGuideError(Exception):
    """Base class of every error dualguide raises on purpose."""


class BackendError(DualGuideError, ValueError):
    """An unknown backend name, or a backend whose framework is not installed."""


class SpecError(DualGuideError, ValueError):
    """A model or guide written against the neutral API is malformed."""


class FitError(DualGuideError, RuntimeError):
    """A fit stopped early. ``.result`` holds the last finite params and losses so far."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class UnknownNameError(SpecError, AttributeError):
    """A name that is not in dualguide's table (``dist.Normall``); the message suggests one."""


class CheckWarning(UserWarning):
    """A warning from the guide doctor (``dualguide.check``), e.g. when ``fit`` starts."""


class EstimatorMismatchWarning(UserWarning):
    """``Trace_ELBO`` with a guide site that has no ``rsample``: the
    frameworks run different estimators on it (Pyro adds a score-function term, NumPyro
    differentiates through its sampler), so the two backends' gradients differ
    (``docs/elbo.md``)."""


def unknown_name(module: str, kind: str, name: str, known, fix: str = "") -> UnknownNameError:
    """The error for ``<module>.<name>`` that is not there, with a did-you-mean.

    >>> print(unknown_name("dualguide.distributions", "distribution", "Normall", ["Normal", "Gamma"]))
    dualguide.distributions has no distribution 'Normall'; did you mean 'Normal'? ...
    """
    import difflib

    known = sorted(known)
    lower = {k.lower(): k for k in known}
    if name.lower() in lower:
        guess = [lower[name.lower()]]
    else:
        guess = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(g) for g in guess)}?" if guess else ""
    return UnknownNameError(
        f"{module} has no {kind} {name!r}{hint} (known: {', '.join(known)}){fix}"
    )


# clear errors for the backends (called on their error paths only) ----------------------------

_FOREIGN = {"numpyro": ("torch", "pyro"), "pyro": ("jax", "jaxlib", "numpyro")}


#: distribution -> (its argument names, those that are distributions), looked up once
_DIST_VALUED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
#: (type, backend) -> whether objects of that type are the other framework's distributions
_FOREIGN_TYPE: dict[tuple[type, str], bool] = {}
#: the other framework's distribution base class, by active backend (module, class)
_OTHER_DIST_BASE = {
    "numpyro": ("torch.distributions", "Distribution"),
    "pyro": ("numpyro.distributions", "Distribution"),
}


def foreign_dist_type(t: type, backend: str) -> bool:
    """Whether ``t`` is a distribution class of the framework ``backend`` does not use: a
    subclass of its distribution base class (dualguide's own subclasses too, whose module is
    dualguide's), or a class from its modules.  The other framework is not imported for the
    question; the answer is kept per type."""
    key = (t, backend)
    bad = _FOREIGN_TYPE.get(key)
    if bad is None:
        import sys

        mod, cls = _OTHER_DIST_BASE.get(backend, ("", ""))
        base = getattr(sys.modules.get(mod), cls, None)
        bad = (isinstance(base, type) and issubclass(t, base)) or (
            t.__module__.split(".", 1)[0] in _FOREIGN.get(backend, ())
        )
        _FOREIGN_TYPE[key] = bad
    return bad


def check_dist_valued(name: str, args: tuple, kwargs: dict, backend: str) -> None:
    """Raise a :class:`SpecError` if an argument of ``dist.<name>`` that is a distribution
    (``base_dist``, ``component_distribution``, ...) is the other framework's: built while
    the other backend was active, it would be wrapped silently (Pyro's ``Independent`` of a
    NumPyro ``Normal``) or fail deep inside the framework.  Cheap for every other call: the
    argument names are looked up once per distribution, the types once per type."""
    names = _DIST_VALUED.get(name)
    if names is None:
        from ._table import DISTRIBUTIONS

        spec = DISTRIBUTIONS.get(name)
        every = tuple(spec.args) if spec is not None else ()
        names = _DIST_VALUED[name] = (every, tuple(a for a in every if "dist" in a))
    every, which = names
    if not which:
        return
    named = dict(zip(every, args), **kwargs)
    for an in which:
        v = named.get(an)
        if v is not None and foreign_dist_type(type(v), backend):
            other = "pyro" if backend == "numpyro" else "numpyro"
            raise SpecError(
                f"dist.{name}: {an} is a {'Pyro' if other == 'pyro' else 'NumPyro'} "
                f"{type(v).__name__} ({type(v).__module__}), built while "
                f"the {other} backend was active, but the {backend} backend is active now; "
                "build distributions where they are used (inside the model or guide) with "
                "dualguide.distributions, so that each backend builds its own"
            )


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
