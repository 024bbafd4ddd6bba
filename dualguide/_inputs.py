"""One input rule for both backends: what happens to data and parameters as they enter.

Each backend calls these functions where values enter a program -- model arguments
(``fit(model_args=...)``), observations (``sample(..., obs=)``), distribution parameters
(``dist.Normal(loc, scale)``), param init values, plate sizes -- so that an input is either
accepted identically on NumPyro and on Pyro or refused with the same :class:`SpecError`.
The functions here are neutral: they decide and normalize (to numpy, in the current float
dtype); the backend only wraps the result in its own array type.

The rule (the README's "Inputs" table says the same):

* floats (Python, numpy, or an array of either framework) become arrays of the current float
  dtype (:func:`get_dtype`: float32 unless switched to float64);
* a Python ``int`` or ``bool`` model argument stays a Python value (a size, a flag: never
  traced, so ``plate("N", n)`` works under NumPyro's ``jit``); integer and boolean *arrays*
  given as model arguments keep their kind (indices, masks);
* observations of a discrete distribution (Bernoulli, Categorical, ...) keep integers (bools
  count as 0/1; Pyro, whose discrete ``log_prob`` wants floats, gets them as floats); for a
  continuous distribution they become floats; empty observations are refused;
* distribution parameters are real numbers: numpy, list and foreign arrays become arrays of
  the current float dtype (ints and bools too); a call without a required argument is refused
  naming it (Pyro's signatures: ``dist.Normal()`` needs ``loc`` and ``scale`` on both);
* param init values become the current float dtype; bools are refused;
* an array of the *other* framework (a torch tensor on NumPyro, a jax array on Pyro) is
  accepted as a constant through numpy; one that cannot be read (a jax tracer) is refused.

The float dtype switch lives here too: :func:`set_dtype`, :func:`use_dtype`, the
``DUALGUIDE_DTYPE`` environment variable, ``fit(dtype=...)``.

>>> import dualguide as dg
>>> with dg.use_dtype("float64"):
...     dg.get_dtype()
'float64'
>>> dg.get_dtype()
'float32'
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .errors import SpecError, check_dist_valued

__all__ = ["get_dtype", "set_dtype", "use_dtype"]

ENV_DTYPE = "DUALGUIDE_DTYPE"
DTYPES = ("float32", "float64")

#: the chosen float dtype, or None: not chosen (then $DUALGUIDE_DTYPE, else float32)
_dtype: str | None = None

#: frameworks' array modules, to tell a foreign array from numpy-like data
_FRAMEWORK_ROOTS = {"numpyro": ("jax", "jaxlib"), "pyro": ("torch",)}

#: distribution arguments that are shapes or counts of dims, never converted to float arrays
SHAPE_ARGS = frozenset({"batch_shape", "event_shape", "event_dim", "sample_shape"})
#: distribution arguments that are masks: kept boolean
MASK_ARGS = frozenset({"mask"})


# -- the float dtype ---------------------------------------------------------------------------
def _check_dtype(name: Any) -> str:
    spelled = str(getattr(name, "__name__", name)).strip().lower()
    if spelled not in DTYPES:
        raise SpecError(
            f"dtype {name!r} is not supported: choose 'float32' (the default) or 'float64' "
            f"(dg.set_dtype('float64'), dg.use_dtype(...), fit(dtype=...) or {ENV_DTYPE}=float64)"
        )
    return spelled


def get_dtype() -> str:
    """The float dtype data, params and ``ops`` constructors get: ``"float32"`` or ``"float64"``.

    ``dg.set_dtype`` / ``dg.use_dtype`` choose it; otherwise ``$DUALGUIDE_DTYPE``, else float32.

    >>> import dualguide as dg
    >>> dg.get_dtype()
    'float32'
    """
    if _dtype is not None:
        return _dtype
    env = os.environ.get(ENV_DTYPE, "").strip()
    return _check_dtype(env) if env else "float32"


def float_np() -> type[np.floating]:
    """The numpy float type of the current dtype (``np.float32`` or ``np.float64``)."""
    return np.float64 if get_dtype() == "float64" else np.float32


def chosen() -> bool:
    """Whether a dtype was chosen (by a call or the environment): only then are frameworks set."""
    return _dtype is not None or bool(os.environ.get(ENV_DTYPE, "").strip())


def _apply_loaded() -> None:
    from . import _state

    name = get_dtype()
    for b in list(_state._loaded.values()):
        b.use_dtype(name)


def set_dtype(name: str) -> None:
    """Make ``name`` (``"float32"`` or ``"float64"``) the float dtype from now on, on both backends.

    float64 turns on JAX's x64 mode (``jax_enable_x64``) and sets torch's default dtype;
    float32 turns them back.  Tests restore it with ``dualguide._state.preserved()``.

    >>> import dualguide as dg
    >>> dg.set_dtype("float64"); dg.get_dtype()
    'float64'
    >>> dg.set_dtype("float32")
    """
    global _dtype
    _dtype = _check_dtype(name)
    _apply_loaded()


@contextlib.contextmanager
def use_dtype(name: str) -> Iterator[str]:
    """Context manager: run the block with float dtype ``name``, then put back the previous one.

    >>> import dualguide as dg
    >>> with dg.use_dtype("float64") as dt:
    ...     dt
    'float64'
    """
    global _dtype
    new = _check_dtype(name)
    prev = _dtype
    _dtype = new
    _apply_loaded()
    try:
        yield new
    finally:
        restore_dtype(prev)


def saved_dtype() -> str | None:
    """The dtype state, for :func:`restore_dtype` (used by ``_state.preserved``)."""
    return _dtype


def restore_dtype(saved: str | None) -> None:
    """Put back a state from :func:`saved_dtype`, re-applying it to the frameworks if it changed."""
    global _dtype
    before = get_dtype() if chosen() else None
    _dtype = saved
    after = get_dtype() if chosen() else None
    if after != before:
        _apply_loaded() if after is not None else _reset_loaded()


def _reset_loaded() -> None:
    from . import _state

    for b in list(_state._loaded.values()):
        b.use_dtype("float32")


# -- classification ----------------------------------------------------------------------------
def _root(x: Any) -> str:
    return type(x).__module__.split(".", 1)[0]


def framework_array(x: Any) -> bool:
    """Whether ``x`` is an object of jax or torch (an array of either framework)."""
    return _root(x) in ("torch", "jax", "jaxlib")


def static_shape(x: Any) -> tuple | None:
    """``x``'s shape as Python ints (numbers and lists included), or None where its sizes are
    traced values (under Pyro's JIT trace: reading them would freeze the trace; the eager
    first step of a fit has checked them) or it has no shape."""
    if isinstance(x, (int, float, list, tuple, np.ndarray, np.generic)):
        return np.shape(x)
    shape = getattr(x, "shape", None)
    if shape is None:
        return None
    dims = tuple(shape)
    return dims if all(isinstance(d, int) for d in dims) else None


def foreign(x: Any, backend: str) -> bool:
    """Whether ``x`` is an array of the framework that ``backend`` does not use."""
    root = _root(x)
    return any(root in roots for b, roots in _FRAMEWORK_ROOTS.items() if b != backend)


def as_numpy(x: Any, what: str) -> np.ndarray:
    """Numbers, lists, numpy or foreign arrays -> a numpy array (values unchanged), or SpecError."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x)
    except Exception:
        raise SpecError(
            f"{what}: cannot read {type(x).__module__}.{type(x).__name__} as numbers (a ragged "
            "list, or a traced array of the other framework?); pass numbers, numpy arrays or "
            "the active backend's arrays"
        ) from None
    if a.dtype.kind not in "biuf":
        raise SpecError(
            f"{what}: expected numbers, got {a.dtype} value {_short(x)}; pass numbers, "
            "lists of numbers or numpy arrays"
        )
    return a


def _short(x: Any) -> str:
    r = repr(x)
    return r if len(r) <= 60 else r[:57] + "..."


def _is_data(x: Any, native: tuple[type, ...]) -> bool:
    """numpy, list or foreign-array input that the rule converts (not native, not an object)."""
    if isinstance(x, (np.ndarray, np.generic, list)):
        return True
    if isinstance(x, native):
        return False
    return framework_array(x)


# -- model arguments -----------------------------------------------------------------------------
def model_arg(x: Any, native: tuple[type, ...], backend: str, what: str = "model argument") -> Any:
    """A model argument as the rule has it: a numpy array (floats in the current dtype), a
    Python scalar kept as it is, a native array (floats cast to the current dtype), or ``x``.

    The backend wraps a returned numpy array in its own array type.
    """
    if x is None or isinstance(x, (str, bool, int)):
        return x  # Python sizes and flags stay static (never traced)
    if isinstance(x, np.generic) and x.dtype.kind in "biu":
        return x.item()
    if isinstance(x, float):
        return np.asarray(x, dtype=float_np())
    if isinstance(x, tuple):
        return tuple(model_arg(v, native, backend, what) for v in x)
    if isinstance(x, native):
        return x
    if not _is_data(x, native):
        return x
    a = as_numpy(x, what)
    return a.astype(float_np()) if a.dtype.kind == "f" else a


def value(x: Any, native: tuple[type, ...], backend: str, what: str, real: bool = False) -> Any:
    """A value recorded by ``deterministic`` (or, ``real=True``, a ``factor``'s log density):
    as :func:`model_arg`, but Python numbers become arrays too; ``real``: floats always."""
    if isinstance(x, (bool, int, float)):
        x = np.asarray(x)
    out = model_arg(x, native, backend, what)
    if real and isinstance(out, np.ndarray):
        return out.astype(float_np())
    return out


# -- observations --------------------------------------------------------------------------------
def obs_shape_error(name: str, shape: Sequence[int]) -> SpecError | None:
    """The error for empty observations (a zero-length dim), else None."""
    if any(int(d) == 0 for d in shape):
        return SpecError(
            f"sample site {name!r}: obs is empty (shape {tuple(int(d) for d in shape)}); there "
            "is nothing to observe: check the data you pass (model_args) and its plate's size"
        )
    return None


def obs(x: Any, name: str, discrete: bool) -> np.ndarray:
    """Non-native observations as numpy: floats in the current dtype; ints (and bools, as 0/1)
    kept as int64 for a discrete distribution, as floats for a continuous one."""
    a = as_numpy(x, f"sample site {name!r} obs")
    err = obs_shape_error(name, a.shape)
    if err is not None:
        raise err
    if a.dtype.kind == "f" or not discrete:
        return a.astype(float_np())
    return a.astype(np.int64)


def check_plates(name: str, shape: Sequence[int], event_dim: int, plates: Sequence[tuple]) -> None:
    """Observations of shape ``shape`` must have each enclosing plate's size along its dim.

    ``plates`` are ``(plate name, size, dim)`` with a negative batch ``dim``; a dim that
    ``shape`` lacks is broadcast (allowed), a dim of another length is an error.
    """
    shape = tuple(int(d) for d in shape)
    for pname, size, dim in plates:
        if dim is None or size is None:
            continue
        i = int(dim) - int(event_dim)
        if -i <= len(shape) and shape[i] != int(size):
            raise SpecError(
                f"sample site {name!r}: obs has shape {shape} but plate {pname!r} has size "
                f"{int(size)} (batch dim {int(dim)}): the observations along that dim must number "
                f"{int(size)}; pass data of the plate's length or make the plate "
                f"dg.plate({pname!r}, len(data))"
            )


def plate_reentered(name: str, size: int | None, subsample_size: int | None) -> SpecError:
    """A subsampled plate made twice by name in one run: each would draw its own minibatch
    (NumPyro) or clash (Pyro).  Plates without subsampling may be made again by name."""
    return SpecError(
        f"plate {name!r} (size {size}, subsample_size {subsample_size}) is made a second time "
        "in one run: each would draw its own minibatch of indices; make the plate once and "
        f"enter the same object again: {name} = dg.plate({name!r}, {size}, subsample_size="
        f"{subsample_size}); with {name}: ... (a plate of another size or dim needs its own "
        "name)"
    )


def latent_plate_error(name: str, batch_shape: Sequence[int], plates: Sequence[tuple]):
    """The :class:`SpecError` for a sample site whose distribution's batch shape does not fit
    the plates around it (a batch dim inside a plate must be the plate's size, or 1), or None
    when it fits.  Asked only after the framework refused the site (its own message names no
    site on NumPyro: ``Incompatible shapes for broadcasting``), so a working site costs nothing.

    ``plates`` are ``(plate name, size, dim)`` as for :func:`check_plates`.
    """
    shape = tuple(int(d) for d in batch_shape)
    for pname, size, dim in plates:
        if dim is None or size is None:
            continue
        i = int(dim)
        if -i <= len(shape) and shape[i] not in (1, int(size)):
            return SpecError(
                f"sample site {name!r}: its distribution has batch shape {shape} but plate "
                f"{pname!r} has size {int(size)} (batch dim {i}): inside a plate a batch dim "
                f"must be the plate's size (or 1); give the distribution's parameters size "
                f"{int(size)} along that dim (e.g. a param of shape ({int(size)},)), or move the "
                "site out of the plate"
            )
    return None


# -- distribution parameters --------------------------------------------------------------------
def check_dist_args(name: str, args: tuple, kwargs: dict) -> None:
    """Refuse ``dist.<name>(...)`` without an argument that Pyro's signature requires."""
    from ._table import DIST_REQUIRED, DISTRIBUTIONS

    required = DIST_REQUIRED.get(name)
    spec = DISTRIBUTIONS.get(name)
    if required is None or spec is None:
        return
    if len(args) > len(spec.args) or any(k not in spec.args for k in kwargs):
        return  # an unknown keyword or too many arguments: dist_arg_error names that first
    given = set(kwargs) | set(spec.args[: len(args)])
    for group in required:
        alts = group.split("|")
        n = sum(a in given and _not_none(a, args, kwargs, spec.args) for a in alts)
        sig = f"dist.{name}({', '.join(spec.args)})"
        if n == 0 and len(alts) == 1:
            raise SpecError(
                f"{sig} is missing its argument {alts[0]!r}; pass it, e.g. "
                f"dist.{name}({', '.join(f'{a}=...' for r in required for a in r.split('|')[:1])})"
            )
        if n != 1 and len(alts) > 1:
            how = "got none" if n == 0 else "got more than one"
            raise SpecError(
                f"{sig} needs exactly one of {', '.join(map(repr, alts))} ({how}); pass one, "
                f"e.g. dist.{name}({alts[0]}=...)"
            )


def _not_none(arg: str, args: tuple, kwargs: dict, names: tuple) -> bool:
    if arg in kwargs:
        return kwargs[arg] is not None
    i = names.index(arg)
    return i < len(args) and args[i] is not None


def dist_param(x: Any, native: tuple[type, ...], what: str) -> Any:
    """A distribution parameter as the rule has it: numpy, list, numpy scalar or foreign array
    -> a numpy array of the current float dtype (ints and bools too); a bool -> a float; other
    values (Python numbers, native arrays, distributions, constraints, shapes) unchanged."""
    if isinstance(x, bool):
        return float(x)
    if not _is_data(x, native):
        return x
    if isinstance(x, list) and not _numeric_list(x):
        return x
    return as_numpy(x, what).astype(float_np())


def _numeric_list(x: list) -> bool:
    try:
        return np.asarray(x).dtype.kind in "biuf"
    except Exception:
        return False


#: (distribution, number of positional args, keyword names...) whose required-argument check
#: passed with no argument None (then the check's answer depends on nothing else)
_CHECKED_SIGNATURES: set[tuple] = set()


#: (type, native array types) -> whether :func:`dist_params` passes every value of that type
#: through unchanged, whatever the argument (the answer depends on the type alone)
_PASS_THROUGH: dict[tuple, bool] = {}


def _passes(t: type, v: Any, native: tuple[type, ...]) -> bool:
    """Whether values of type ``t`` (``v`` one of them) pass :func:`dist_params` unchanged in
    every argument: not None (the required-argument check looks at None), not a bool (a
    parameter bool becomes a float), not data the rule converts (numpy, lists, foreign
    arrays).  Native arrays, distributions, constraints and shape tuples pass."""
    ok = _PASS_THROUGH.get((t, native))
    if ok is None:
        ok = _PASS_THROUGH[(t, native)] = (
            v is not None and t is not bool and not _is_data(v, native)
        )
    return ok


def _plain(values: Any, native: tuple[type, ...]) -> bool:
    """Whether every value is a Python float or int (not a bool), or of a type that
    :func:`_passes` (a native array, a distribution, a constraint, a shape tuple): the values
    :func:`dist_params` returns unchanged whatever the argument."""
    for v in values:
        t = type(v)
        if t is not float and t is not int and not _passes(t, v, native):
            return False
    return True


def dist_params(
    name: str,
    args: tuple,
    kwargs: dict,
    native: tuple[type, ...],
    wrap: Callable,
    backend: str,
) -> tuple[tuple, dict]:
    """``check_dist_args`` and :func:`dist_param` on every argument (shapes left alone);
    ``wrap`` makes a converted numpy array the ``backend``'s array.  The distribution-valued
    arguments are checked here too, for both backends: none may be the other framework's
    (:func:`.errors.check_dist_valued`), and a ``TransformedDistribution``'s transforms must
    fit its base's shape (:func:`.dist_transforms.check_flow`).

    Runs at every ``dist.X(...)`` of every step (Pyro runs the program eagerly each step), so
    the common call -- every argument a Python ``float``/``int``, a native array or another
    value the rule leaves as it is (a distribution, a constraint, a shape: :func:`_passes`)
    -- takes a fast path: its required-argument check depends only on the distribution, the
    number of positional arguments and the keyword names (no argument is None), so it runs
    once per such signature and is remembered (issues 10 and 17's benchmarks).
    """
    check_dist_valued(name, args, kwargs, backend)
    if name == "TransformedDistribution":  # the transforms' arguments fit the base's shape
        from .dist_transforms import check_flow

        named = dict(zip(("base_distribution", "transforms"), args), **kwargs)
        if "base_distribution" in named and "transforms" in named:
            check_flow(named["base_distribution"], named["transforms"], f"dist.{name}")
    if _plain(args, native) and (not kwargs or _plain(kwargs.values(), native)):
        key = (name, len(args), *kwargs)
        if key not in _CHECKED_SIGNATURES:
            check_dist_args(name, args, kwargs)
            _CHECKED_SIGNATURES.add(key)
        return args, kwargs
    from ._table import DISTRIBUTIONS

    check_dist_args(name, args, kwargs)
    spec = DISTRIBUTIONS.get(name)
    names = spec.args if spec is not None else ()

    def conv(an: str, v: Any) -> Any:
        if an in SHAPE_ARGS:
            return v
        if an in MASK_ARGS:  # a mask stays boolean (a Python bool, or a bool array)
            if isinstance(v, bool) or not _is_data(v, native):
                return v
            return wrap(as_numpy(v, f"dist.{name}: {an}").astype(bool))
        out = dist_param(v, native, f"dist.{name}: {an}")
        return wrap(out) if isinstance(out, np.ndarray) else out

    args = tuple(
        conv(names[i] if i < len(names) else f"argument {i + 1}", a) for i, a in enumerate(args)
    )
    kwargs = {k: conv(k, v) for k, v in kwargs.items()}
    return args, kwargs


# -- params ----------------------------------------------------------------------------------------
def init_value(x: Any, name: str) -> np.ndarray:
    """A non-native param init value as numpy in the current float dtype; bools are refused."""
    a = as_numpy(x, f"param {name!r} init value")
    if a.dtype.kind == "b":
        raise SpecError(
            f"param {name!r}: init value has dtype bool; params are real numbers "
            f"({get_dtype()}): give numbers, e.g. np.asarray(mask, dtype=float)"
        )
    return a.astype(float_np())


# -- plates ------------------------------------------------------------------------------------------
def subsample_mismatch(name: str, subsample_size: int, drawn: int) -> SpecError:
    """A subsampled plate whose indices, replayed from the guide, are not ``subsample_size``
    many (an autoguide keeps the subsample size of its first call; docs/handlers.md).
    NumPyro warns and runs with the guide's indices but the model's scale, Pyro raises a
    ValueError: both backends raise this instead."""
    return SpecError(
        f"plate {name!r}: subsample_size={subsample_size} but the guide's plate drew {drawn} "
        "indices: the guide and the model must use the same subsample size at each call (an "
        "autoguide keeps the subsample size of its first call, so a varying subsample size "
        "needs a guide written by hand with the same dg.plate, or a fixed size: drop the last, "
        "smaller minibatch)"
    )


def plate_size(name: str, size: Any, what: str = "size") -> int | None:
    """A plate's size as a Python int (a concrete int array counts); None stays None."""
    if size is None:
        return None
    if isinstance(size, bool):
        raise SpecError(f"plate {name!r}: {what} is the bool {size!r}; give a whole number")
    if isinstance(size, (int, np.integer)):
        n = int(size)
    else:
        try:
            a = np.asarray(size.detach().cpu() if hasattr(size, "detach") else size)
        except Exception:
            raise SpecError(
                f"plate {name!r}: {what} is a traced array ({type(size).__name__}); a plate's "
                "size must be known before the program runs: pass it as a Python int "
                "(e.g. len(data) or data.shape[0]), not as an array"
            ) from None
        if a.shape != () or a.dtype.kind not in "iu":
            raise SpecError(
                f"plate {name!r}: {what} must be a whole number, got {_short(size)}; "
                "e.g. dg.plate(name, len(data))"
            )
        n = int(a)
    if n < 1:
        raise SpecError(
            f"plate {name!r}: {what} is {n}; a plate needs at least one element (empty data? "
            "check the data you pass as model_args)"
        )
    return n


def no_plate_size(name: str) -> SpecError:
    """The error for ``plate(name)`` without a size."""
    return SpecError(
        f"plate {name!r} has no size; give the number of elements, e.g. "
        f"dg.plate({name!r}, len(data))"
    )


# -- site names ----------------------------------------------------------------------------------------
def duplicate_error(name: str, new: str, old: str) -> SpecError:
    """The error for a site ``name`` of type ``new`` when the program already has one of type ``old``."""
    if "param" in (new, old) and new != old:
        return SpecError(
            f"{new} site {name!r}: the program already has a {old} named {name!r}; a param and "
            "a sample site cannot share a name (a guide's param is often named like the model "
            f"latent it shapes): rename the param, e.g. '{name}_loc'"
        )
    return SpecError(
        f"{new} site {name!r} appears twice in one run of the program; every site needs its "
        f"own name (in a loop, e.g. f'{name}_{{i}}', or use dg.plate for independent copies)"
    )


def with_plates(batch_shape: Sequence[int], plates: Sequence[tuple]) -> tuple:
    """``batch_shape`` as the enclosing plates will broadcast it.

    ``plates`` are ``(size, dim)`` of the plates on the handler stack, outermost first (the
    size is the subsample size; a plate whose ``dim`` is not allocated yet is skipped): a
    missing or size-1 dim becomes the plate's size.

    >>> with_plates((), [(3, -1)]), with_plates((3,), [(2, -2), (3, -1)])
    ((3,), (2, 3))
    """
    shape = list(batch_shape)
    for size, dim in plates:
        if dim is None:
            continue
        if len(shape) < -dim:
            shape = [1] * (-dim - len(shape)) + shape
        if shape[dim] == 1:
            shape[dim] = size
    return tuple(shape)


def check_mask(name: str, mask_shape: tuple, batch_shape: tuple, plates: Sequence[tuple]) -> None:
    """``handlers.mask``: the mask must broadcast to the site's batch shape (``batch_shape``,
    with the sizes of the enclosing ``plates``, as :func:`with_plates` takes them), the one
    rule of both backends."""
    batch_shape = with_plates(batch_shape, plates)
    try:
        fits = tuple(np.broadcast_shapes(mask_shape, batch_shape)) == tuple(batch_shape)
    except ValueError:
        fits = False
    if not fits:
        raise SpecError(
            f"handlers.mask: a mask of shape {mask_shape} does not fit site {name!r}, whose "
            f"batch shape is {tuple(batch_shape)}; a mask must broadcast to the site's batch "
            "shape (put the site in the plate the mask belongs to, or mask it separately)"
        )


def param_shape_clash(name: str, first: tuple, again: tuple) -> SpecError:
    """The error for one param name declared with two shapes (e.g. in the model and the guide)."""
    return SpecError(
        f"param {name!r} is declared with shape {first} and again with shape {again} (e.g. once "
        "in the model and once in the guide); one name is one param, so one would silently "
        f"replace the other: give them different names (e.g. '{name}_model', '{name}_guide') "
        "or the same shape"
    )
