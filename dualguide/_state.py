"""Which backend answers the neutral API right now.

The neutral layer keeps one module-level pointer to the active backend object;
rendered callables and :func:`use_backend` swap it for the duration of a call.
Backend modules are imported lazily, the first time they are needed, so that
``import dualguide`` imports neither jax nor torch.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
from collections.abc import Iterator
from typing import Any

from ._table import BACKENDS, EXTRAS, FRAMEWORK_MODULES
from .errors import BackendError

ENV_VAR = "DUALGUIDE_BACKEND"

_loaded: dict[str, Any] = {}
_current: Any = None  # the active backend object, or None until first use
_default_name: str | None = None


def installed(name: str) -> bool:
    """Whether the framework behind backend ``name`` can be imported (without importing it)."""
    return all(importlib.util.find_spec(m) is not None for m in FRAMEWORK_MODULES[name])


def available_backends() -> list[str]:
    """The backends whose frameworks are installed, in order of preference."""
    return [b for b in BACKENDS if installed(b)]


def _check_name(name: str) -> str:
    if not isinstance(name, str) or name.lower() not in BACKENDS:
        raise BackendError(
            f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)} "
            f"(for example set_backend('numpyro') or {ENV_VAR}=pyro)"
        )
    name = name.lower()
    if not installed(name):
        missing = [m for m in FRAMEWORK_MODULES[name] if importlib.util.find_spec(m) is None]
        raise BackendError(
            f"backend {name!r} needs {', '.join(missing)}, which is not installed: "
            f"pip install 'dualguide[{EXTRAS[name]}]'"
        )
    return name


def load(name: str):
    """Return the backend object for ``name``, importing its framework on first use."""
    b = _loaded.get(name)
    if b is None:
        name = _check_name(name)
        b = _loaded.get(name)
        if b is None:
            module = importlib.import_module(f"dualguide.backends.{name}")
            b = module.BACKEND
            _loaded[name] = b
    return b


def default_name() -> str:
    """The backend used when none was chosen: ``$DUALGUIDE_BACKEND``, else numpyro, else pyro."""
    global _default_name
    if _default_name is None:
        env = os.environ.get(ENV_VAR, "").strip()
        if env:
            _default_name = _check_name(env)
        else:
            avail = available_backends()
            if not avail:
                raise BackendError(
                    "no backend is installed: pip install 'dualguide[numpyro]', "
                    "'dualguide[pyro]' or 'dualguide[all]'"
                )
            _default_name = avail[0]
    return _default_name


def current():
    """The active backend object (loading the default one if none is active)."""
    b = _current
    if b is None:
        b = _activate_default()
    return b


def _activate_default():
    global _current
    _current = load(default_name())
    return _current


def resolve(backend: str | None):
    """The backend object for an explicit ``backend=`` argument, or the current one."""
    if backend is None:
        return current()
    if not isinstance(backend, str):
        name = getattr(backend, "name", None)
        if name in BACKENDS:
            return backend
    return load(str(backend).lower() if isinstance(backend, str) else backend)


def get_backend() -> str:
    """Name of the active backend.

    >>> import dualguide as dg
    >>> dg.get_backend() in ("numpyro", "pyro")
    True
    """
    return current().name


def set_backend(name: str) -> None:
    """Make ``name`` (``"numpyro"`` or ``"pyro"``) the active backend from now on.

    >>> import dualguide as dg
    >>> dg.set_backend("numpyro")
    >>> dg.get_backend()
    'numpyro'
    """
    global _current, _default_name
    b = load(name.lower() if isinstance(name, str) else name)
    _current = b
    _default_name = b.name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[str]:
    """Context manager: run the block with backend ``name`` active.

    >>> import dualguide as dg
    >>> with dg.use_backend("pyro"):
    ...     dg.get_backend()
    'pyro'
    >>> dg.get_backend()
    'numpyro'
    """
    global _current
    b = resolve(name)
    prev = _current
    _current = b
    try:
        yield b.name
    finally:
        _current = prev


def _swap(b):
    """Set the active backend, returning the previous one (fast path for rendered calls)."""
    global _current
    prev = _current
    _current = b
    return prev


def _restore(prev) -> None:
    global _current
    _current = prev


def backend_of_type(tp: type):
    """The loaded backend that owns array type ``tp`` (jax or torch), else None."""
    root = tp.__module__.split(".", 1)[0]
    if root in ("jax", "jaxlib"):
        return load("numpyro")
    if root == "torch":
        return load("pyro")
    return None


#: called as hook(name, init_value, constraint, event_dim) -> init_value by every
#: ``param`` while a fit runs (records constraints, applies init overrides)
param_hook = None


@contextlib.contextmanager
def using_param_hook(hook):
    """Run the block with ``hook`` (or None: no hook) seeing every ``param`` call."""
    global param_hook
    prev = param_hook
    param_hook = hook
    try:
        yield hook
    finally:
        param_hook = prev
