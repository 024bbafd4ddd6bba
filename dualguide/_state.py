"""Which backend answers the neutral API right now.

The neutral layer keeps one module-level pointer to the active backend object;
rendered callables and :func:`use_backend` swap it for the duration of a call.
Backend modules are imported lazily, the first time they are needed, so that
``import dualguide`` imports neither jax nor torch.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

from . import _inputs
from ._table import BACKENDS, EXTRAS, FRAMEWORK_MODULES
from .errors import BackendError, SpecError

if TYPE_CHECKING:
    from .constraints import Constraint
    from .contract import Backend

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


def load(name: str) -> Backend:
    """Return the backend object for ``name``, importing its framework on first use."""
    b = _loaded.get(name)
    if b is None:
        name = _check_name(name)
        b = _loaded.get(name)
        if b is None:
            module = importlib.import_module(f"dualguide.backends.{name}")
            b = module.BACKEND
            _loaded[name] = b
            if _inputs.chosen():  # a dtype was chosen: the framework follows it
                b.use_dtype(_inputs.get_dtype())
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


def current() -> Backend:
    """The active backend object (loading the default one if none is active)."""
    b = _current
    if b is None:
        b = _activate_default()
    return b


def _activate_default():
    global _current
    _current = load(default_name())
    return _current


def resolve(backend: str | Backend | None) -> Backend:
    """The backend object for an explicit ``backend=`` argument, or the current one."""
    if backend is None:
        return current()
    if not isinstance(backend, str):
        name = getattr(backend, "name", None)
        if name in BACKENDS:
            return backend
    if isinstance(backend, str):
        return load(backend.lower())
    return load(backend)  # type: ignore[arg-type]  # not a name: load's check says so


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


def feature(backend: str | Backend | None, kind: str) -> ModuleType:
    """The backend's half of feature ``kind`` (e.g. ``"crosscheck"``), as it declares it.

    The one way the neutral tools reach framework code besides the backend object:
    each backend maps the names of :data:`dualguide.contract.FEATURES` to its modules
    in ``Backend.features``.

    >>> feature("pyro", "transforms").__name__
    'dualguide.backends.pyro.transforms'
    """
    b = resolve(backend)
    try:
        path = b.features[kind]
    except KeyError:
        raise BackendError(
            f"backend {b.name!r} has no {kind!r} feature module (it declares "
            f"{', '.join(sorted(b.features)) or 'none'}); add one to its `features`"
        ) from None
    return importlib.import_module(path)


@contextlib.contextmanager
def preserved() -> Iterator[None]:
    """Run the block, then put back the active and default backend, the param hook and the
    float dtype (``dg.set_dtype``)."""
    global _current, _default_name, param_hook
    saved = (_current, _default_name, param_hook)
    dtype = _inputs.saved_dtype()
    try:
        yield
    finally:
        _current, _default_name, param_hook = saved
        _inputs.restore_dtype(dtype)


# -- rendering ---------------------------------------------------------------------------------
def render(fn: Callable, backend: str | Backend | None = None) -> Callable:
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
        raise SpecError(f"render: expected a model or guide function, got {fn!r}")
    b = resolve(backend)
    if getattr(fn, "backend", None) == b.name and hasattr(fn, "neutral"):
        return fn
    inner = getattr(fn, "neutral", fn)
    custom = getattr(type(inner), "__dualguide_render__", None)
    if custom is not None:  # objects that render themselves (dualguide.autoguides)
        return custom(inner, b)

    @functools.wraps(inner)
    def rendered(*args, **kwargs):
        global _current
        prev = _current  # _swap / _restore written out: this runs at every call of every step
        _current = b
        try:
            return inner(*args, **kwargs)
        finally:
            _current = prev

    rendered.backend = b.name  # type: ignore[attr-defined]
    rendered.neutral = inner  # type: ignore[attr-defined]
    return rendered


def backend_of(fn: Callable) -> str | None:
    """The backend a rendered callable belongs to, or None for a neutral function."""
    return getattr(fn, "backend", None) if hasattr(fn, "neutral") else None


# -- param overrides ---------------------------------------------------------------------------
class ParamHook:
    """Sees every ``param`` call: records constraints and event dims, applies init overrides."""

    def __init__(self, overrides: dict | None = None):
        self.overrides = dict(overrides or {})
        self.constraints: dict[str, Constraint] = {}
        self.event_dims: dict[str, int | None] = {}
        self.shapes: dict[str, tuple] = {}

    def __call__(self, name: str, init_value: Any, constraint: Constraint, event_dim: int | None):
        if name not in self.constraints:
            self.constraints[name] = constraint
            self.event_dims[name] = event_dim
        if init_value is not None and not callable(init_value):
            shape = _shape(init_value)
            first = self.shapes.setdefault(name, shape)
            if first != shape:
                raise _inputs.param_shape_clash(name, first, shape)
        if name in self.overrides:
            value = self.overrides[name]
            declared = self.shapes.get(name)
            if declared is not None and _shape(value) != declared:
                raise SpecError(
                    f"param {name!r}: the value given for it (init_params / params) has shape "
                    f"{_shape(value)} but the program declares it with shape {declared} (its "
                    f"init value); give a value of shape {declared}"
                )
            return value
        return init_value


def _shape(x: Any) -> tuple:
    """An init value's shape as ints: an array's by the backend (no JIT ``TracerWarning`` on
    Pyro), a number's or (nested) list's or tuple's by numpy; () for a value with none (a
    ragged list: the backend's conversion reports it)."""
    import numpy as np

    try:
        if hasattr(x, "shape"):
            return current().static_shape(x.shape)
        return tuple(int(d) for d in np.shape(x))
    except Exception:
        return ()


def check_init_params(init_params: Any) -> dict:
    """``init_params`` (a dict, or anything with a ``.params`` dict) as numpy arrays of the
    current float dtype."""
    import numpy as np

    if init_params is None:
        return {}
    if hasattr(init_params, "params") and isinstance(init_params.params, dict):
        init_params = init_params.params
    if not isinstance(init_params, dict):
        raise SpecError(
            f"fit: init_params must be a dict of constrained values by name, got {type(init_params).__name__}"
        )
    out = {}
    for k, v in init_params.items():
        try:
            out[k] = np.asarray(v, dtype=_inputs.float_np())
        except (TypeError, ValueError):
            raise SpecError(f"fit: init_params[{k!r}] is not numeric: {v!r}") from None
    return out


#: called as hook(name, init_value, constraint, event_dim) -> init_value by every
#: ``param`` while a fit runs (records constraints, applies init overrides)
param_hook: Callable | None = None


@contextlib.contextmanager
def param_overrides(overrides: Any = None) -> Iterator[ParamHook]:
    """Run the block with every ``param``'s init value replaced by ``overrides[name]``.

    ``overrides`` are constrained values by name (checked and made float numpy
    arrays; None: override nothing).  Yields the :class:`ParamHook`, whose
    ``constraints`` / ``event_dims`` record every param the block declared.  This is
    the one way the tools override or record params (fit, trace, check, crosscheck,
    load_params, the ELBO estimate).

    >>> import dualguide as dg
    >>> def guide():
    ...     return dg.param("s", 1.0, constraint=dg.constraints.positive)
    >>> with param_overrides({"s": 2.5}) as hook:
    ...     s = dg.render(guide, "numpyro")()
    >>> float(s), hook.constraints["s"]
    (2.5, positive)
    """
    with using_param_hook(ParamHook(check_init_params(overrides))) as hook:
        yield hook


@contextlib.contextmanager
def using_param_hook(hook: Callable | None) -> Iterator[Any]:
    """Run the block with ``hook`` (or None: no hook) seeing every ``param`` call.

    The low-level switch under :func:`param_overrides`; backends use it with None to
    hide their own bookkeeping params from the hook.
    """
    global param_hook
    prev = param_hook
    param_hook = hook
    try:
        yield hook
    finally:
        param_hook = prev


#: ``stored_param(name)`` -> the constrained value in dualguide's param store, or None; set by
#: :mod:`dualguide.svi` when it is imported.  ``param(name)`` without an init value outside a
#: program reads it on NumPyro, which keeps no global store (Pyro's ``param`` reads its own).
stored_param: Callable[[str], Any] | None = None
