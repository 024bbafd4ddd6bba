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

from . import _state
from ._table import OPS

__all__ = [*OPS, "pi", "e", "inf", "to_numpy"]

pi = math.pi
e = math.e
inf = math.inf

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


def eye(n):
    """float32 identity matrix of size ``n``."""
    return _state.current().ops.eye(n)


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


def to_numpy(x):
    """Convert a jax array, torch tensor or number to a numpy array."""
    import numpy as np

    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)
