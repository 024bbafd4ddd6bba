"""Turn a neutral model or guide into a plain callable of one backend."""

from __future__ import annotations

import functools
from collections.abc import Callable

from . import _state

__all__ = ["render", "backend_of"]


def render(fn: Callable, backend: str | None = None) -> Callable:
    """Return ``fn`` as a native program of ``backend`` (default: the active backend).

    The result is a plain function: hand it to ``numpyro.infer.SVI`` or
    ``pyro.infer.SVI`` unchanged, next to native or rendered partners.  While it
    runs, the neutral API (``dualguide.param``, ``sample``, ``distributions``,
    ``ops``...) is answered by that backend.  Rendering an already rendered
    callable for another backend re-renders the original neutral function.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     dg.sample("x", dist.Normal(0.0, 1.0))
    >>> np_model = dg.render(model, "numpyro")
    >>> np_model.backend
    'numpyro'
    """
    if not callable(fn):
        from .errors import SpecError

        raise SpecError(f"render: expected a model or guide function, got {fn!r}")
    b = _state.resolve(backend)
    if getattr(fn, "backend", None) == b.name and hasattr(fn, "neutral"):
        return fn
    inner = getattr(fn, "neutral", fn)
    custom = getattr(type(inner), "__dualguide_render__", None)
    if custom is not None:  # objects that render themselves (dualguide.autoguides)
        return custom(inner, b)
    swap, restore = _state._swap, _state._restore

    @functools.wraps(inner)
    def rendered(*args, **kwargs):
        prev = swap(b)
        try:
            return inner(*args, **kwargs)
        finally:
            restore(prev)

    rendered.backend = b.name
    rendered.neutral = inner
    return rendered


def backend_of(fn: Callable) -> str | None:
    """The backend a rendered callable belongs to, or None for a neutral function."""
    return getattr(fn, "backend", None) if hasattr(fn, "neutral") else None
