"""Neutral math ops that work on jax and torch arrays alike.

Each op dispatches on the type of its first array argument (a jax array goes to
jax.numpy, a torch tensor to torch); for plain numbers, or ops without an array
argument (``zeros``, ``arange``), the active backend answers.  Reductions take
numpy's ``axis=`` (``dim=`` is accepted as an alias, as in torch).  Arrays are
float32 in both backends.

>>> import dualguide as dg
>>> from dualguide import ops
>>> with dg.use_backend("numpyro"):
...     round(float(ops.logaddexp(0.0, 0.0)), 4)
0.6931
"""

from __future__ import annotations

import math
import numbers

from . import _state
from ._table import OPS

__all__ = [*(k for k in OPS if "." not in k), "random", "pi", "e", "inf", "newaxis", "to_numpy"]

pi = math.pi
e = math.e
inf = math.inf
#: ``x[ops.newaxis]`` inserts an axis (it is ``None``, as ``numpy.newaxis``)
newaxis = None

_TYPE_BACKEND: dict[type, object] = {}


def _b(x):
    """The backend that owns ``x``'s array type, else the active one."""
    tp = type(x)
    try:
        b = _TYPE_BACKEND[tp]
    except KeyError:
        b = _TYPE_BACKEND[tp] = _state.backend_of_type(tp) if tp.__module__ != "builtins" else None
    return b if b is not None else _state.current()


def _first(xs):
    for x in xs:
        return x
    return None


def _axis(axis, dim):
    return dim if axis is None else axis


# elementwise -------------------------------------------------------------------------------
def exp(x):
    """Elementwise exponential."""
    return _b(x).ops.exp(x)


def log(x):
    """Elementwise natural log."""
    return _b(x).ops.log(x)


def log1p(x):
    """log(1 + x), accurate near 0."""
    return _b(x).ops.log1p(x)


def expm1(x):
    """exp(x) - 1, accurate near 0."""
    return _b(x).ops.expm1(x)


def sqrt(x):
    """Elementwise square root."""
    return _b(x).ops.sqrt(x)


def square(x):
    """Elementwise square."""
    return _b(x).ops.square(x)


def abs(x):
    """Elementwise absolute value."""
    return _b(x).ops.abs(x)


def sin(x):
    """Elementwise sine."""
    return _b(x).ops.sin(x)


def cos(x):
    """Elementwise cosine."""
    return _b(x).ops.cos(x)


def tan(x):
    """Elementwise tangent."""
    return _b(x).ops.tan(x)


def arcsin(x):
    """Elementwise inverse sine."""
    return _b(x).ops.arcsin(x)


def arccos(x):
    """Elementwise inverse cosine."""
    return _b(x).ops.arccos(x)


def arctan(x):
    """Elementwise inverse tangent."""
    return _b(x).ops.arctan(x)


def arctan2(y, x):
    """Elementwise arctan(y / x) with the quadrant of (x, y)."""
    return _b(y if not isinstance(y, (int, float)) else x).ops.arctan2(y, x)


def sinh(x):
    """Elementwise hyperbolic sine."""
    return _b(x).ops.sinh(x)


def cosh(x):
    """Elementwise hyperbolic cosine."""
    return _b(x).ops.cosh(x)


def tanh(x):
    """Elementwise hyperbolic tangent."""
    return _b(x).ops.tanh(x)


def sigmoid(x):
    """Elementwise logistic function 1 / (1 + exp(-x))."""
    return _b(x).ops.sigmoid(x)


def softplus(x):
    """Elementwise log(1 + exp(x))."""
    return _b(x).ops.softplus(x)


def erf(x):
    """Elementwise error function."""
    return _b(x).ops.erf(x)


def lgamma(x):
    """Elementwise log of the absolute value of the gamma function."""
    return _b(x).ops.lgamma(x)


def sign(x):
    """Elementwise sign: -1, 0 or 1."""
    return _b(x).ops.sign(x)


def stop_gradient(x):
    """``x`` as a constant for autodiff: the same value, no gradient flows through it."""
    return _b(x).ops.stop_gradient(x)


def logaddexp(x, y):
    """Elementwise log(exp(x) + exp(y))."""
    return _b(x if not isinstance(x, (int, float)) else y).ops.logaddexp(x, y)


def maximum(x, y):
    """Elementwise maximum."""
    return _b(x if not isinstance(x, (int, float)) else y).ops.maximum(x, y)


def minimum(x, y):
    """Elementwise minimum."""
    return _b(x if not isinstance(x, (int, float)) else y).ops.minimum(x, y)


def clip(x, min=None, max=None):
    """Clamp ``x`` to ``[min, max]``."""
    return _b(x).ops.clip(x, min, max)


def isfinite(x):
    """Elementwise finiteness test."""
    return _b(x).ops.isfinite(x)


def where(condition, x, y):
    """``x`` where ``condition`` else ``y``."""
    for a in (condition, x, y):
        if not isinstance(a, (bool, int, float)):
            return _b(a).ops.where(condition, x, y)
    return _state.current().ops.where(condition, x, y)


# reductions --------------------------------------------------------------------------------
def logsumexp(x, axis=None, keepdims=False, *, dim=None):
    """log(sum(exp(x))) over ``axis`` (all axes when None)."""
    return _b(x).ops.logsumexp(x, _axis(axis, dim), keepdims)


def sum(x, axis=None, keepdims=False, *, dim=None):
    """Sum over ``axis`` (all axes when None)."""
    return _b(x).ops.sum(x, _axis(axis, dim), keepdims)


def prod(x, axis=None, keepdims=False, *, dim=None):
    """Product over ``axis`` (all axes when None)."""
    return _b(x).ops.prod(x, _axis(axis, dim), keepdims)


def mean(x, axis=None, keepdims=False, *, dim=None):
    """Mean over ``axis`` (all axes when None)."""
    return _b(x).ops.mean(x, _axis(axis, dim), keepdims)


def max(x, axis=None, keepdims=False, *, dim=None):
    """Maximum over ``axis`` (all axes when None)."""
    return _b(x).ops.max(x, _axis(axis, dim), keepdims)


def min(x, axis=None, keepdims=False, *, dim=None):
    """Minimum over ``axis`` (all axes when None)."""
    return _b(x).ops.min(x, _axis(axis, dim), keepdims)


def cumsum(x, axis=None, *, dim=None):
    """Cumulative sum along ``axis`` (of the flattened array when None, as numpy)."""
    return _b(x).ops.cumsum(x, _axis(axis, dim))


# shape -------------------------------------------------------------------------------------
def stack(xs, axis=0, *, dim=None):
    """Stack a sequence of arrays along a new ``axis``."""
    return _b(_first(xs)).ops.stack(xs, _axis(axis if dim is None else None, dim))


def concatenate(xs, axis=0, *, dim=None):
    """Join a sequence of arrays along an existing ``axis``."""
    return _b(_first(xs)).ops.concatenate(xs, _axis(axis if dim is None else None, dim))


def matmul(a, b):
    """Matrix product with broadcasting (``a @ b``)."""
    return _b(a).ops.matmul(a, b)


def einsum(subscripts, *operands):
    """Einstein summation, as numpy.einsum."""
    return _b(operands[0]).ops.einsum(subscripts, *operands)


def reshape(x, shape):
    """Give ``x`` a new shape."""
    return _b(x).ops.reshape(x, tuple(shape))


def expand_dims(x, axis):
    """Insert a length-1 axis at ``axis``."""
    return _b(x).ops.expand_dims(x, axis)


def swapaxes(x, axis1, axis2):
    """Swap two axes."""
    return _b(x).ops.swapaxes(x, axis1, axis2)


def broadcast_to(x, shape):
    """``x`` broadcast to ``shape``."""
    return _b(x).ops.broadcast_to(x, tuple(shape))


def broadcast_arrays(*xs):
    """The arrays (or numbers) broadcast against each other, as a list."""
    for x in xs:
        if not isinstance(x, (bool, int, float)):
            return _b(x).ops.broadcast_arrays(*xs)
    return _state.current().ops.broadcast_arrays(*xs)


def take_along_axis(x, indices, axis):
    """Values of ``x`` at integer ``indices`` along ``axis`` (other axes broadcast), as numpy."""
    return _b(x).ops.take_along_axis(x, indices, axis)


# constructors (active backend) -------------------------------------------------------------
def zeros(shape):
    """float32 zeros of ``shape``."""
    return _state.current().ops.zeros(shape)


def ones(shape):
    """float32 ones of ``shape``."""
    return _state.current().ops.ones(shape)


def full(shape, fill_value):
    """float32 array of ``shape`` filled with ``fill_value``."""
    return _state.current().ops.full(shape, fill_value)


def zeros_like(x):
    """Zeros with the shape and dtype of ``x``."""
    return _b(x).ops.zeros_like(x)


def ones_like(x):
    """Ones with the shape and dtype of ``x``."""
    return _b(x).ops.ones_like(x)


def arange(start, stop=None, step=1):
    """Evenly spaced values in [start, stop), as numpy.arange."""
    return _state.current().ops.arange(start, stop, step)


def eye(n, m=None, k=0):
    """float32 ``n`` x ``m`` matrix (``m`` defaults to ``n``) with ones on diagonal ``k``
    (above the main diagonal when positive), as numpy.eye and the array API.

    >>> import dualguide as dg
    >>> from dualguide import ops
    >>> with dg.use_backend("pyro"):
    ...     ops.to_numpy(ops.eye(2, 3, k=1)).tolist()
    [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    n = _size(n, "eye", "n")
    return _state.current().ops.eye(n, n if m is None else _size(m, "eye", "m"), int(k))


def _size(n, op: str, what: str):
    """A size (``ops.eye``'s ``n``, ``ops.linspace``'s ``num``): a Python int (from an int, a
    numpy integer or an integral float), or a framework scalar handed to the backend as it is.  Under Pyro's JIT a size read from a
    traced shape (``x.shape[0]``) is a 0-d tensor: ``int()`` would freeze it into the trace
    (and make the fit fall back to no JIT), while torch takes it as a size and keeps the
    trace's size dynamic; the backend checks it is an integer scalar."""
    if isinstance(n, numbers.Integral) and not isinstance(n, bool):
        if int(n) >= 0:
            return int(n)
    elif isinstance(n, float):
        if n.is_integer() and n >= 0:
            return int(n)
    elif isinstance(n, bool):
        pass
    elif type(n).__module__.split(".")[0] in ("jax", "jaxlib", "torch"):
        return n  # a jax or torch scalar: the backend checks it
    elif getattr(n, "ndim", None) == 0 and n.dtype.kind in "iu" and n >= 0:
        return int(n)  # a numpy scalar array
    from .errors import SpecError

    raise SpecError(f"ops.{op}: {what}={n!r} is not a size; give an integer >= 0 (e.g. x.shape[0])")


def asarray(x):
    """Convert numbers, lists or numpy arrays to the active backend's array (floats as float32)."""
    b = _b(x)
    return b.ops.asarray(x)


# linear algebra ----------------------------------------------------------------------------
def det(x):
    """Determinant of the last two axes."""
    return _b(x).ops.det(x)


def slogdet(x):
    """(sign, log|det|) of the last two axes."""
    return _b(x).ops.slogdet(x)


def inv(x):
    """Matrix inverse of the last two axes."""
    return _b(x).ops.inv(x)


def cholesky(x):
    """Lower Cholesky factor of the last two axes."""
    return _b(x).ops.cholesky(x)


# the array surface (issue 12) ----------------------------------------------------------------
def _num(x) -> bool:
    return isinstance(x, (bool, int, float))


def power(x1, x2):
    """``x1`` raised to the power ``x2``, elementwise (array API ``pow``; numbers broadcast).

    >>> import dualguide as dg
    >>> from dualguide import ops
    >>> with dg.use_backend("pyro"):
    ...     ops.to_numpy(ops.power(ops.asarray([1.0, 2.0, 3.0]), 2)).tolist()
    [1.0, 4.0, 9.0]
    """
    return _b(x2 if _num(x1) else x1).ops.power(x1, x2)


def cumprod(x, axis=None, *, dim=None):
    """Cumulative product along ``axis`` (of the flattened array when None, as numpy)."""
    return _b(x).ops.cumprod(x, _axis(axis, dim))


def transpose(x, axes=None):
    """``x`` with its axes permuted to ``axes`` (reversed when None, as numpy.transpose)."""
    return _b(x).ops.transpose(x, None if axes is None else tuple(axes))


def permute_dims(x, axes):
    """``x`` with its axes permuted to ``axes`` (array API; torch ``permute``)."""
    return _b(x).ops.permute_dims(x, tuple(axes))


def moveaxis(x, source, destination):
    """``x`` with axis ``source`` moved to position ``destination``."""
    return _b(x).ops.moveaxis(x, source, destination)


def squeeze(x, axis):
    """``x`` without the length-1 ``axis`` (an int or tuple; an error if it is not length 1)."""
    shape = tuple(getattr(x, "shape", ()))
    for a in axis if isinstance(axis, tuple) else (axis,):
        if shape and shape[a] != 1:
            from .errors import SpecError

            raise SpecError(
                f"ops.squeeze: axis {a} of an array of shape {shape} has length {shape[a]}, "
                "not 1; squeeze only length-1 axes"
            )
    return _b(x).ops.squeeze(x, axis)


def _dtype_name(dtype) -> str:
    """A neutral dtype name (a key of ``_table.OP_DTYPES``) for a string, numpy or native dtype."""
    from ._table import OP_DTYPES

    if isinstance(dtype, str):
        name = dtype
    else:
        import numpy as np

        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = str(dtype).rsplit(".", 1)[-1]  # torch.int32 -> int32
    if name not in OP_DTYPES:
        from .errors import SpecError

        raise SpecError(
            f"ops.astype: unknown dtype {dtype!r}; give one of {', '.join(map(repr, OP_DTYPES))}"
        )
    return name


def astype(x, dtype):
    """``x`` converted to ``dtype``: ``"float32"``, ``"float64"``, ``"int32"``, ``"int64"``,
    ``"bool"`` (or the numpy/native dtype of one of them).

    >>> import dualguide as dg
    >>> from dualguide import ops
    >>> with dg.use_backend("numpyro"):
    ...     ops.to_numpy(ops.astype(ops.asarray([1.7, -0.2]), "int32")).tolist()
    [1, 0]
    """
    return _b(x).ops.astype(x, _dtype_name(dtype))


def linspace(start, stop, num, endpoint=True):
    """``num`` evenly spaced float32 values from ``start`` to ``stop`` (active backend)."""
    return _state.current().ops.linspace(start, stop, _size(num, "linspace", "num"), bool(endpoint))


def full_like(x, fill_value):
    """An array with the shape and dtype of ``x`` filled with ``fill_value``."""
    return _b(x).ops.full_like(x, fill_value)


def softmax(x, axis=-1, *, dim=None):
    """exp(x) / sum(exp(x)) along ``axis`` (default the last, as jax.nn.softmax)."""
    return _b(x).ops.softmax(x, _axis(axis if dim is None else None, dim))


def log_softmax(x, axis=-1, *, dim=None):
    """x - logsumexp(x) along ``axis`` (default the last)."""
    return _b(x).ops.log_softmax(x, _axis(axis if dim is None else None, dim))


def logit(x):
    """Elementwise log(x / (1 - x)), the inverse of :func:`expit`."""
    return _b(x).ops.logit(x)


def expit(x):
    """Elementwise 1 / (1 + exp(-x)) (scipy's name for :func:`sigmoid`)."""
    return _b(x).ops.expit(x)


def erfc(x):
    """Elementwise complementary error function 1 - erf(x)."""
    return _b(x).ops.erfc(x)


def digamma(x):
    """Elementwise derivative of :func:`lgamma`."""
    return _b(x).ops.digamma(x)


def floor(x):
    """Elementwise floor."""
    return _b(x).ops.floor(x)


def ceil(x):
    """Elementwise ceiling."""
    return _b(x).ops.ceil(x)


def isnan(x):
    """Elementwise NaN test."""
    return _b(x).ops.isnan(x)


def argmax(x, axis=None, keepdims=False, *, dim=None):
    """Index of the maximum along ``axis`` (of the flattened array when None)."""
    return _b(x).ops.argmax(x, _axis(axis, dim), keepdims)


def argmin(x, axis=None, keepdims=False, *, dim=None):
    """Index of the minimum along ``axis`` (of the flattened array when None)."""
    return _b(x).ops.argmin(x, _axis(axis, dim), keepdims)


def tril(x, k=0):
    """The lower triangle of the last two axes (below diagonal ``k``), zeros above."""
    return _b(x).ops.tril(x, k)


def triu(x, k=0):
    """The upper triangle of the last two axes (above diagonal ``k``), zeros below."""
    return _b(x).ops.triu(x, k)


def outer(x1, x2):
    """Outer product of two vectors."""
    return _b(x1).ops.outer(x1, x2)


def solve(a, b):
    """The solution x of ``a @ x = b`` (last two axes of ``a``; ``b`` a vector only when 1-D,
    as numpy 2 and the array API)."""
    return _b(a).ops.solve(a, b)


def solve_triangular(a, b, *, upper):
    """The solution x of ``a @ x = b`` for triangular ``a`` (``upper``: which triangle, a
    required keyword as in torch; ``b`` is ``(..., n, k)``, or ``(n,)`` for a 2-D ``a``).

    >>> import dualguide as dg
    >>> from dualguide import ops
    >>> with dg.use_backend("numpyro"):
    ...     L = ops.asarray([[2.0, 0.0], [1.0, 1.0]])
    ...     ops.to_numpy(ops.solve_triangular(L, ops.asarray([2.0, 3.0]), upper=False)).tolist()
    [1.0, 2.0]
    """
    return _b(a).ops.solve_triangular(a, b, bool(upper))


def norm(x, ord=None, axis=None, keepdims=False, *, dim=None):
    """Vector or matrix norm, as numpy.linalg.norm (``axis``: an int for vector norms, a pair
    for matrix norms; None: the 2-norm of the flattened array)."""
    return _b(x).ops.norm(x, ord, _axis(axis, dim), keepdims)


def var(x, axis=None, keepdims=False, *, correction=0.0, dim=None):
    """Variance over ``axis`` (all axes when None), dividing by N - ``correction``: the
    array API's default 0 (numpy's), not torch's 1."""
    return _b(x).ops.var(x, _axis(axis, dim), keepdims, correction)


def std(x, axis=None, keepdims=False, *, correction=0.0, dim=None):
    """Standard deviation over ``axis`` (all axes when None), as :func:`var`."""
    return _b(x).ops.std(x, _axis(axis, dim), keepdims, correction)


def all(x, axis=None, keepdims=False, *, dim=None):
    """Whether every element over ``axis`` is true (all axes when None)."""
    return _b(x).ops.all(x, _axis(axis, dim), keepdims)


def any(x, axis=None, keepdims=False, *, dim=None):
    """Whether some element over ``axis`` is true (all axes when None)."""
    return _b(x).ops.any(x, _axis(axis, dim), keepdims)


def isinf(x):
    """Elementwise test for +inf or -inf."""
    return _b(x).ops.isinf(x)


def logical_not(x):
    """Elementwise logical not."""
    return _b(x).ops.logical_not(x)


def logical_and(x1, x2):
    """Elementwise logical and."""
    return _b(x2 if _num(x1) else x1).ops.logical_and(x1, x2)


def logical_or(x1, x2):
    """Elementwise logical or."""
    return _b(x2 if _num(x1) else x1).ops.logical_or(x1, x2)


def diagonal(x, *, offset=0):
    """The diagonal of the last two axes (array API ``linalg.diagonal``; ``offset`` above the
    main diagonal when positive)."""
    return _b(x).ops.diagonal(x, offset)


def tensordot(x1, x2, axes=2):
    """Sum of products over the last ``axes`` axes of ``x1`` and the first of ``x2`` (or the
    pair of axis lists ``axes``), as numpy.tensordot."""
    return _b(x1).ops.tensordot(x1, x2, axes)


def sort(x, axis=-1, *, descending=False, dim=None):
    """``x`` sorted along ``axis`` (default the last), ascending unless ``descending``; a
    stable sort, as the array API (torch's ``.values`` of ``torch.sort``).

    >>> import dualguide as dg
    >>> from dualguide import ops
    >>> with dg.use_backend("numpyro"):
    ...     ops.to_numpy(ops.sort(ops.asarray([3.0, 1.0, 2.0]))).tolist()
    [1.0, 2.0, 3.0]
    """
    return _b(x).ops.sort(x, _axis(axis if dim is None else None, dim), bool(descending))


def argsort(x, axis=-1, *, descending=False, dim=None):
    """Indices that sort ``x`` along ``axis`` (a stable sort: ties keep their order, as the
    array API; torch's own default is not stable)."""
    return _b(x).ops.argsort(x, _axis(axis if dim is None else None, dim), bool(descending))


def take(x, indices, axis=None, *, dim=None):
    """Elements of ``x`` at the 1-D integer ``indices`` along ``axis`` (array API ``take``;
    ``axis=None``: of the flattened array, then ``indices`` may have any shape, as numpy).

    >>> import dualguide as dg
    >>> from dualguide import ops
    >>> with dg.use_backend("pyro"):
    ...     x = ops.asarray([[1.0, 2.0], [3.0, 4.0]])
    ...     ops.to_numpy(ops.take(x, ops.asarray([1, 1, 0]), axis=1)).tolist()
    [[2.0, 2.0, 1.0], [4.0, 4.0, 3.0]]
    """
    ax = _axis(axis, dim)
    if ax is not None and len(tuple(getattr(indices, "shape", ()))) != 1:
        from .errors import SpecError

        raise SpecError(
            f"ops.take: with axis={ax} the indices must be 1-D (the array API's take), not of "
            f"shape {tuple(getattr(indices, 'shape', ()))}; use ops.take_along_axis or "
            "index with x[..., idx]"
        )
    return _b(x).ops.take(x, indices, ax)


def flip(x, axis=None, *, dim=None):
    """``x`` with the order of elements reversed along ``axis`` (an int or tuple; every axis
    when None)."""
    ax = _axis(axis, dim)
    return _b(x).ops.flip(x, None if ax is None else (ax if isinstance(ax, tuple) else (ax,)))


def roll(x, shift, axis=None, *, dim=None):
    """``x`` shifted by ``shift`` places along ``axis`` with wrap-around (flattened and
    restored when None), as numpy.roll; ``shift`` and ``axis`` may be tuples."""
    return _b(x).ops.roll(x, shift, _axis(axis, dim))


def vecdot(x1, x2, *, axis=-1, dim=None):
    """Dot product of real vectors along ``axis`` (the others broadcast), as the array API
    ``vecdot`` (``torch.linalg.vecdot``)."""
    return _b(x2 if _num(x1) else x1).ops.vecdot(x1, x2, _axis(axis if dim is None else None, dim))


def kron(x1, x2):
    """Kronecker product of two arrays, as numpy.kron."""
    return _b(x1).ops.kron(x1, x2)


def searchsorted(x1, x2, *, side="left"):
    """Indices where the values ``x2`` would be inserted into the sorted 1-D ``x1`` to keep
    it sorted (``side="left"``: before equal values; ``"right"``: after), as the array API.

    >>> import dualguide as dg
    >>> from dualguide import ops
    >>> with dg.use_backend("numpyro"):
    ...     e = ops.asarray([0.0, 1.0, 2.0])
    ...     ops.to_numpy(ops.searchsorted(e, ops.asarray([1.0, 1.5]), side="right")).tolist()
    [2, 2]
    """
    if side not in ("left", "right"):
        from .errors import SpecError

        raise SpecError(f"ops.searchsorted: side={side!r}; give 'left' or 'right'")
    return _b(x1).ops.searchsorted(x1, x2, side)


class _Random:
    """``ops.random``: a neutral random source for param inits.

    ``key`` is the key a param's init callable is given (``dg.param("w", lambda key:
    ops.random.normal(key, (3,)))``): a JAX PRNG key on NumPyro, a placeholder for
    torch's global generator on Pyro (seeded by the fit's seed).  An int is a seed on
    both.  Draws are float32; the two backends draw different numbers from the same seed.

    >>> import dualguide as dg
    >>> from dualguide import ops
    >>> with dg.use_backend("numpyro"):
    ...     ops.random.normal(0, (2, 3)).shape
    (2, 3)
    """

    @staticmethod
    def normal(key, shape=()):
        """Standard normal draws of ``shape`` (jax.random.normal, torch.randn)."""
        return _b(key).ops.random.normal(key, _shape(shape))

    @staticmethod
    def uniform(key, shape=(), *, minval=0.0, maxval=1.0):
        """Uniform draws on [minval, maxval) of ``shape`` (jax.random.uniform, torch.rand)."""
        return _b(key).ops.random.uniform(key, _shape(shape), minval, maxval)


def _shape(shape) -> tuple:
    return (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)


random = _Random()


def _call_init(name: str, fn, key):
    """Call param ``name``'s init callable: with ``key`` if it takes an argument (NumPyro's
    convention, ``lambda key: ...``), with none otherwise (Pyro's)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return fn()
    required = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if len(required) > 1:
        from .errors import SpecError

        raise SpecError(
            f"param {name!r}: its init callable takes {len(required)} arguments; it takes none "
            "(Pyro's convention) or one, the init key (lambda key: ops.random.normal(key, (3,)))"
        )
    if required or [p for p in params if p.kind == p.VAR_POSITIONAL]:  # (ops.any is not builtin)
        return fn(key)
    return fn()


def to_numpy(x):
    """Convert a jax array, torch tensor or number to a numpy array."""
    import numpy as np

    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


# Pyro's and NumPyro's vectorized indexing for enumerated index arrays (dualguide.enum)
from .enum import Vindex as Vindex  # noqa: E402
from .enum import vindex as vindex  # noqa: E402
