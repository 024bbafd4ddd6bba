"""Neutral transforms for ``dist.TransformedDistribution``, and ``biject_to``.

Write them as in Pyro (``dist.transforms.ExpTransform()``,
``dist.transforms.AffineTransform(loc, scale)``); each backend renders a neutral
transform to its framework's class (the rows of ``TRANSFORMS`` in ``dualguide/_table.py``).
A neutral transform is also callable on jax or torch arrays (the array's framework answers),
has ``.inv``, ``log_abs_det_jacobian(x, y)``, and ``native(backend)``.

Array arguments (``loc``, ``scale``, ``scale_tril``, ``exponent``, ``anchor_point``) take
numbers, lists or numpy arrays of numbers, or arrays of either framework, as distribution
parameters do: on each backend they become its arrays in the current float dtype (an array of
the backend itself is used as it is, so a learnable tensor keeps its gradient);
``Permute(permutation)`` takes integers.  Anything else -- a string, a ragged list, arguments
whose shapes do not fit together, a negative ``event_dim`` -- is a :class:`SpecError` naming
the transform and the argument when the transform is built.  Arguments that do not fit the
input's shape (a ``loc`` that does not broadcast with it, a ``Permute`` or
``LowerCholeskyAffine`` of another length) are a :class:`SpecError` naming the transform, the
argument and the input's shape when the transform is called or
``dist.TransformedDistribution`` is built (:func:`forward_shape`), on both backends: Pyro
failed later with a torch error, and NumPyro's ``Permute`` silently read past the vector.

``biject_to(constraint)`` is the framework's own bijection from unconstrained space onto the
constraint's set (``constraint`` neutral, or the native ``d.support`` of a distribution).

>>> import dualguide as dg
>>> from dualguide import distributions as dist
>>> t = dist.transforms.ComposeTransform(
...     [dist.transforms.AffineTransform(1.0, 2.0), dist.transforms.ExpTransform()])
>>> t
ComposeTransform([AffineTransform(1.0, 2.0), ExpTransform()])
>>> with dg.use_backend("pyro"):
...     d = dist.TransformedDistribution(dist.Normal(0.0, 1.0), [t])
...     round(float(d.log_prob(dg.ops.asarray(3.0))), 4)
-2.7119
>>> with dg.use_backend("numpyro"):
...     d = dist.TransformedDistribution(dist.Normal(0.0, 1.0), [t])
...     round(float(d.log_prob(dg.ops.asarray(3.0))), 4)
-2.7119
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _inputs, _state
from ._table import TRANSFORMS
from .constraints import Constraint
from .errors import SpecError

__all__ = ["Transform", "biject_to", *TRANSFORMS]


class Transform:
    """A neutral transform: a row of ``_table.TRANSFORMS`` with its arguments.

    ``parts`` (for ``ComposeTransform``) and ``base_transform`` may be neutral transforms.
    """

    __slots__ = ("name", "args", "kwargs", "inverted", "_native")

    def __init__(self, name: str, args: tuple = (), kwargs: dict | None = None, inverted=False):
        if name not in TRANSFORMS and name != "biject_to":
            from .errors import unknown_name

            raise unknown_name("dualguide.distributions.transforms", "transform", name, TRANSFORMS)
        self.name = name
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.inverted = inverted
        self._native: dict = {}

    def __repr__(self) -> str:
        parts = [_short(a) for a in self.args] + [
            f"{k}={_short(v)}" for k, v in self.kwargs.items()
        ]
        s = f"{self.name}({', '.join(parts)})"
        return f"{s}.inv" if self.inverted else s

    @property
    def inv(self) -> Transform:
        """The inverse transform."""
        return Transform(self.name, self.args, self.kwargs, not self.inverted)

    def native(self, backend: Any = None) -> Any:
        """The framework's transform object on ``backend`` (default: the active one)."""
        b = _state.resolve(backend)
        key = (b.name, _inputs.get_dtype())  # array arguments are built in the float dtype
        t = self._native.get(key)
        if t is None:
            t = self._native[key] = _state.feature(b, "dists").transform(self)
        return t

    def _for(self, x):
        b = _state.backend_of_type(type(x)) or _state.current()
        return self.native(b)

    def __call__(self, x):
        """``y``, the transform of ``x``: an array of either framework (that framework
        answers, and the result is its array), or numbers, lists or numpy arrays (the active
        backend answers in the current float dtype, and the result is a numpy array)."""
        return self._apply(lambda t, a: t(a[0]), "x", x)

    def log_abs_det_jacobian(self, x, y):
        """log|det dy/dx| as the framework computes it (inputs and result as for a call)."""
        return self._apply(lambda t, a: t.log_abs_det_jacobian(a[0], a[1]), "x, y", x, y)

    def _apply(self, f, what: str, *xs):
        shape = _inputs.static_shape(xs[0])
        if shape is not None:
            forward_shape(self, shape, "")
        native = [x for x in xs if _state.backend_of_type(type(x)) is not None]
        if native:
            return f(self._for(native[0]), xs)
        b = _state.current()
        arrays = [
            b.to_array(_inputs.as_numpy(x, f"{self!r}({what})").astype(_inputs.float_np()))
            for x in xs
        ]
        return b.to_numpy(f(self.native(b), arrays))


def _short(a) -> str:
    if isinstance(a, (Transform, int, float, str, bool)) or a is None:
        return repr(a)
    if isinstance(a, (list, tuple)) and all(isinstance(p, Transform) for p in a):
        return repr(list(a))
    return type(a).__name__


def _factory(name: str):
    spec = TRANSFORMS[name]

    def make(*args, **kwargs) -> Transform:
        if len(args) > len(spec.args):
            raise SpecError(
                f"dist.transforms.{name} takes {len(spec.args)} argument(s) "
                f"({', '.join(spec.args)}), got {len(args)}"
            )
        bad = [k for k in kwargs if k not in spec.args]
        if bad:
            raise SpecError(
                f"dist.transforms.{name} got an unexpected keyword {bad[0]!r}; its arguments "
                f"are ({', '.join(spec.args)})"
            )
        args = tuple(_checked(name, spec.args[i], a) for i, a in enumerate(args))
        kwargs = {k: _checked(name, k, v) for k, v in kwargs.items()}
        _check_shapes(name, dict(zip(spec.args, args), **kwargs))
        return Transform(name, args, kwargs)

    make.__name__ = make.__qualname__ = name
    make.__doc__ = (
        f"Neutral ``{name}({', '.join(spec.args)})``: numpyro's "
        f"{spec.numpyro or '(built by dualguide)'} or pyro's {spec.pyro}."
    )
    return make


#: transform arguments that are arrays of real numbers (converted like distribution parameters)
REAL_ARGS = frozenset({"loc", "scale", "scale_tril", "exponent", "anchor_point"})
#: transform arguments that are arrays of integers (indices)
INDEX_ARGS = frozenset({"permutation"})
#: transform arguments that count rightmost dims
NDIM_ARGS = frozenset({"event_dim", "reinterpreted_batch_ndims"})
#: transform arguments that are shapes
SHAPE_ARGS = frozenset({"in_shape", "out_shape"})
#: transform arguments that are one dim (an axis, negative from the right)
AXIS_ARGS = frozenset({"dim"})


def _framework_object(v: Any) -> bool:
    """Whether ``v`` is an object of a framework (a native transform, constraint, ...)."""
    return type(v).__module__.split(".", 1)[0] in ("torch", "pyro", "numpyro")


def _is_transform(v: Any) -> bool:
    """A neutral transform, or a framework's own transform object."""
    return isinstance(v, Transform) or (_framework_object(v) and callable(v))


def _checked(name: str, arg: str, v: Any) -> Any:
    """Argument ``arg`` of ``dist.transforms.name`` as the transform keeps it, or a SpecError:
    numbers and arrays of the frameworks as they are, other data (lists, numpy) as numpy."""
    what = f"dist.transforms.{name}: {arg}"
    if arg in REAL_ARGS or arg in INDEX_ARGS:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and arg in REAL_ARGS:
            return v
        if _inputs.framework_array(v):
            return v  # an array of a framework: converted (if foreign) when rendered
        a = _inputs.as_numpy(v, what)
        if arg in INDEX_ARGS and (a.dtype.kind not in "iu" or a.ndim != 1):
            raise SpecError(
                f"{what} must be a 1-d sequence of integers (a permutation of 0..n-1), "
                f"got {a.dtype} of shape {a.shape}"
            )
        return a
    if arg in NDIM_ARGS:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise SpecError(
                f"dist.transforms.{name}(..., {arg}={v!r}): {arg} must be an integer >= 0 "
                "(the number of rightmost dims that form one event)"
            )
        return int(v)
    if arg == "base_transform" and not _is_transform(v):
        raise SpecError(f"{what} must be a transform (dist.transforms.X(...)), got {v!r}")
    if arg == "parts" and (
        not isinstance(v, (list, tuple)) or not all(_is_transform(p) for p in v)
    ):
        raise SpecError(f"{what} must be a list of transforms (dist.transforms.X(...)), got {v!r}")
    if arg in AXIS_ARGS and (isinstance(v, bool) or not isinstance(v, (int, np.integer))):
        raise SpecError(f"{what} must be an integer (a dim; -1 is the last), got {v!r}")
    if arg == "flip" and not isinstance(v, (bool, np.bool_)):
        raise SpecError(f"{what} must be True or False, got {v!r}")
    if arg == "smooth" and (isinstance(v, bool) or not isinstance(v, (int, float))):
        raise SpecError(f"{what} must be a number, got {v!r}")
    if arg in SHAPE_ARGS:
        try:
            shape = tuple(int(d) for d in v)
            ok = all(d >= 0 and d == e for d, e in zip(shape, v))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise SpecError(f"{what} must be a shape (a tuple of integers >= 0), got {v!r}")
        return shape
    return v


def _check_shapes(name: str, named: dict) -> None:
    """The shapes of a transform's array arguments fit together, or a SpecError naming them."""
    shapes = {k: _inputs.static_shape(v) for k, v in named.items() if k in REAL_ARGS | INDEX_ARGS}
    known = {k: s for k, s in shapes.items() if s is not None}
    head = f"dist.transforms.{name}"
    if name == "LowerCholeskyAffine" and "scale_tril" in known:
        st = known["scale_tril"]
        if len(st) < 2 or st[-1] != st[-2]:
            raise SpecError(
                f"{head}: scale_tril must be a square matrix (or a batch of them), got shape {st}"
            )
        loc = known.get("loc")
        if loc is not None and (len(loc) == 0 or loc[-1] != st[-1]):
            raise SpecError(
                f"{head}: loc of shape {loc} does not fit scale_tril of shape {st}; loc must "
                f"be a vector of length {st[-1]} (or a batch of them)"
            )
        known = {"loc": (loc or ())[:-1], "scale_tril": st[:-2]}  # the batch shapes
    if len(set(known.values())) > 1:  # (equal shapes, the usual case, need no numpy call)
        try:
            np.broadcast_shapes(*known.values())
        except ValueError:
            parts = " and ".join(f"{k} of shape {s}" for k, s in known.items())
            raise SpecError(
                f"{head}: {parts} do not broadcast together; give arrays of one shape, or "
                "shapes numpy broadcasting joins"
            ) from None
    perm = named.get("permutation")
    if isinstance(perm, np.ndarray) and sorted(perm.tolist()) != list(range(len(perm))):
        raise SpecError(
            f"{head}: permutation must hold each of 0..{len(perm) - 1} once, got {perm.tolist()}"
        )
    if name == "ReshapeTransform" and "in_shape" in named and "out_shape" in named:
        a, b = named["in_shape"], named["out_shape"]
        if math.prod(a) != math.prod(b):
            raise SpecError(
                f"{head}: in_shape {a} has {math.prod(a)} elements and out_shape {b} has "
                f"{math.prod(b)}; a reshape keeps the number of elements"
            )


#: transforms that map each number on its own (the output has the input's shape)
ELEMENTWISE = frozenset({"ExpTransform", "SigmoidTransform", "TanhTransform", "SoftplusTransform"})
#: transforms that map each last-dim vector to one of the same length
SAME_VECTOR = frozenset({"OrderedTransform"})


def forward_shape(t: Any, shape: tuple, where: str) -> tuple | None:
    """The shape of ``t(x)`` for an ``x`` of ``shape``, or None where dualguide does not know
    it (a native transform, a shape-changing one); a :class:`SpecError` (its message starts
    with ``where``) naming the transform and its argument when the argument does not fit the
    input.

    >>> from dualguide import distributions as dist
    >>> forward_shape(dist.transforms.AffineTransform([0.0, 1.0], 2.0), (5, 2), "")
    (5, 2)
    >>> forward_shape(dist.transforms.Permute([1, 0, 2]), (2,), "")
    Traceback (most recent call last):
    ...
    dualguide.errors.SpecError: Permute(ndarray) permutes 3 numbers but its input's last dim has 2 (input shape (2,)); give a permutation of 0..1
    """
    if not isinstance(t, Transform) or t.name == "biject_to":
        return None
    named = dict(zip(TRANSFORMS[t.name].args, t.args), **t.kwargs)
    n, shape = t.name, tuple(shape)
    if n == "ComposeTransform":
        parts = list(named.get("parts", ()))
        for p in reversed(parts) if t.inverted else parts:
            if t.inverted:
                p = p.inv if isinstance(p, Transform) else None
            shape = forward_shape(p, shape, where)  # type: ignore[assignment]
            if shape is None:
                return None
        return shape
    if n == "IndependentTransform":
        inner = named.get("base_transform")
        if t.inverted and isinstance(inner, Transform):
            inner = inner.inv
        return forward_shape(inner, shape, where)
    if n in ELEMENTWISE:
        return shape
    if n in SAME_VECTOR:
        return shape if shape else None
    if n in ("AffineTransform", "PowerTransform"):
        return _broadcast_input(t, where, shape, named, ("loc", "scale", "exponent"))
    if n == "LowerCholeskyAffine":
        st = _inputs.static_shape(named.get("scale_tril"))
        if st is None or len(st) < 2:
            return None
        if not shape or shape[-1] != st[-1]:
            raise SpecError(
                f"{where}{t!r} maps vectors of length {st[-1]} (scale_tril of shape {st}) but "
                f"its input has shape {shape}; give the input a last dim of {st[-1]}"
            )
        return _broadcast_input(t, where, shape, {"loc": named.get("loc")}, ("loc",))
    if n == "Permute":
        perm = _inputs.static_shape(named.get("permutation"))
        if perm is None:
            return None
        if not shape or shape[-1] != perm[0]:
            last = f"last dim has {shape[-1]}" if shape else "is a scalar"
            raise SpecError(
                f"{where}{t!r} permutes {perm[0]} numbers but its input's {last} (input "
                f"shape {shape}); give a permutation of 0..{shape[-1] - 1 if shape else 0}"
            )
        return shape
    return None


def _broadcast_input(t, where: str, shape: tuple, named: dict, args: tuple) -> tuple | None:
    """The input's ``shape`` broadcast with the shapes of ``t``'s array arguments ``args``."""
    shapes = {a: _inputs.static_shape(named[a]) for a in args if named.get(a) is not None}
    known = {a: s for a, s in shapes.items() if s is not None}
    if len(known) < len(shapes):  # traced sizes (under Pyro's JIT trace): not checked here
        return None
    try:
        return tuple(np.broadcast_shapes(shape, *known.values()))
    except ValueError:
        bad = [f"{a} of shape {s}" for a, s in known.items() if not _joins(s, shape)]
        raise SpecError(
            f"{where}{t!r}: {' and '.join(bad or [f'{a} of shape {s}' for a, s in known.items()])}"
            f" does not broadcast with its input of shape {shape}; give {t.name} arguments "
            "of the input's shape, or shapes that broadcast to it"
        ) from None


def _joins(a: tuple, b: tuple) -> bool:
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


def check_flow(base: Any, transforms: Any, where: str) -> None:
    """The shapes of ``transforms`` (one or a list) applied in turn to a sample of the native
    distribution ``base`` fit, or a SpecError naming the transform and its argument."""
    batch, event = (
        _dims(getattr(base, "batch_shape", None)),
        _dims(getattr(base, "event_shape", None)),
    )
    if batch is None or event is None:
        return
    shape: tuple | None = batch + event
    ts = transforms if isinstance(transforms, (list, tuple)) else [transforms]
    for i, t in enumerate(ts):
        shape = forward_shape(t, shape, f"{where}: transforms[{i}] = ")  # type: ignore[arg-type]
        if shape is None:
            return


def _dims(shape: Any) -> tuple | None:
    """A distribution's ``batch_shape`` / ``event_shape`` as ints, None if it has none."""
    if shape is None:
        return None
    dims = tuple(shape)
    if not all(isinstance(d, (int, np.integer)) for d in dims):
        return None
    return tuple(int(d) for d in dims)


def native_args(t: Transform, backend: Any) -> tuple[tuple, dict]:
    """``t``'s arguments for ``backend``'s class: neutral transforms rendered, array arguments
    that are not the backend's arrays (numpy, lists, the other framework's) as its arrays in
    the current float dtype (a permutation: integers)."""
    b = _state.resolve(backend)
    names = TRANSFORMS[t.name].args

    def conv(arg: str, v: Any) -> Any:
        if arg in REAL_ARGS | INDEX_ARGS and not isinstance(v, (int, float)):
            return b.to_array(v)
        return to_native(v, b.name)

    args = tuple(conv(names[i], a) for i, a in enumerate(t.args))
    return args, {k: conv(k, v) for k, v in t.kwargs.items()}


for _name in TRANSFORMS:
    globals()[_name] = _factory(_name)

AffineTransform = globals()["AffineTransform"]
ExpTransform = globals()["ExpTransform"]
SigmoidTransform = globals()["SigmoidTransform"]
TanhTransform = globals()["TanhTransform"]
SoftplusTransform = globals()["SoftplusTransform"]
PowerTransform = globals()["PowerTransform"]
LowerCholeskyAffine = globals()["LowerCholeskyAffine"]
ComposeTransform = globals()["ComposeTransform"]
StickBreakingTransform = globals()["StickBreakingTransform"]
CorrCholeskyTransform = globals()["CorrCholeskyTransform"]


def biject_to(constraint: Any) -> Transform:
    """The framework's bijection from unconstrained reals onto ``constraint``'s set.

    ``constraint`` is a neutral constraint (``dg.constraints.positive``) or a native one
    of the backend it is used on (``d.support``).

    >>> import dualguide as dg
    >>> from dualguide import constraints, distributions as dist
    >>> t = dist.biject_to(constraints.interval(0.0, 2.0))
    >>> with dg.use_backend("numpyro"):
    ...     round(float(t(dg.ops.asarray(0.0))), 4)
    1.0
    """
    if not isinstance(constraint, Constraint) and not _framework_object(constraint):
        raise SpecError(
            f"biject_to({constraint!r}): expected a constraint, e.g. "
            "dg.constraints.positive, or a distribution's native .support"
        )
    return Transform("biject_to", (constraint,))


def to_native(x: Any, backend: Any) -> Any:
    """``x`` with every neutral transform in it (also inside lists) rendered for ``backend``."""
    if isinstance(x, Transform):
        return x.native(backend)
    if isinstance(x, (list, tuple)):
        return type(x)(to_native(a, backend) for a in x)
    return x
