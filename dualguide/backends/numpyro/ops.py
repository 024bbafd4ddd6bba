"""Neutral ops on jax arrays (signatures as in :mod:`dualguide.ops`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import jax.scipy.special as jss
import numpy as np

from ... import _inputs
from ...errors import SpecError

F32 = jnp.float64 if _inputs.get_dtype() == "float64" else jnp.float32  # rebound by use_dtype


def _asarray(x):
    if isinstance(x, jax.Array):
        return x
    a = np.asarray(x)
    return jnp.asarray(a, dtype=F32 if a.dtype.kind == "f" else None)


def _size(n, op="eye"):
    """A size for ``jnp.eye`` / ``jnp.linspace``: an int, or a concrete integer scalar.  Under
    ``jax.jit`` a shape (``x.shape[0]``) is an int already; a size computed from traced values has no value yet,
    and array shapes are static in jax: one clear error instead of jax's."""
    if isinstance(n, int):
        return n
    try:
        a = np.asarray(n)
    except jax.errors.JAXTypeError:
        raise SpecError(
            f"ops.{op}: the size is computed from traced values, and under jit NumPyro's array "
            "shapes must be known before the values: take it from a shape (e.g. "
            "x.shape[0]), or fit with jit=False"
        ) from None
    if a.ndim != 0 or a.dtype.kind not in "iu" or a < 0:
        raise SpecError(
            f"ops.{op}: the size is an array of shape {a.shape} and dtype {a.dtype}; give an "
            "integer >= 0 or an integer scalar (e.g. x.shape[0])"
        )
    return int(a)


class Ops:
    exp = staticmethod(jnp.exp)
    log = staticmethod(jnp.log)
    log1p = staticmethod(jnp.log1p)
    expm1 = staticmethod(jnp.expm1)
    sqrt = staticmethod(jnp.sqrt)
    square = staticmethod(jnp.square)
    abs = staticmethod(jnp.abs)
    sin = staticmethod(jnp.sin)
    cos = staticmethod(jnp.cos)
    tan = staticmethod(jnp.tan)
    arcsin = staticmethod(jnp.arcsin)
    arccos = staticmethod(jnp.arccos)
    arctan = staticmethod(jnp.arctan)
    arctan2 = staticmethod(jnp.arctan2)
    sinh = staticmethod(jnp.sinh)
    cosh = staticmethod(jnp.cosh)
    tanh = staticmethod(jnp.tanh)
    sigmoid = staticmethod(jax.nn.sigmoid)
    softplus = staticmethod(jax.nn.softplus)
    erf = staticmethod(jss.erf)
    lgamma = staticmethod(jss.gammaln)
    sign = staticmethod(jnp.sign)
    stop_gradient = staticmethod(jax.lax.stop_gradient)
    logaddexp = staticmethod(jnp.logaddexp)
    maximum = staticmethod(jnp.maximum)
    minimum = staticmethod(jnp.minimum)
    isfinite = staticmethod(jnp.isfinite)
    where = staticmethod(jnp.where)
    matmul = staticmethod(jnp.matmul)
    einsum = staticmethod(jnp.einsum)
    reshape = staticmethod(jnp.reshape)
    expand_dims = staticmethod(jnp.expand_dims)
    swapaxes = staticmethod(jnp.swapaxes)
    broadcast_to = staticmethod(jnp.broadcast_to)
    take_along_axis = staticmethod(jnp.take_along_axis)
    zeros_like = staticmethod(jnp.zeros_like)
    ones_like = staticmethod(jnp.ones_like)
    det = staticmethod(jnp.linalg.det)
    inv = staticmethod(jnp.linalg.inv)
    cholesky = staticmethod(jnp.linalg.cholesky)
    asarray = staticmethod(_asarray)

    @staticmethod
    def clip(x, lo, hi):
        return jnp.clip(x, lo, hi)

    @staticmethod
    def slogdet(x):
        return jnp.linalg.slogdet(x)

    @staticmethod
    def logsumexp(x, axis, keepdims):
        return jss.logsumexp(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def sum(x, axis, keepdims):
        return jnp.sum(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def prod(x, axis, keepdims):
        return jnp.prod(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def mean(x, axis, keepdims):
        return jnp.mean(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def max(x, axis, keepdims):
        return jnp.max(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def min(x, axis, keepdims):
        return jnp.min(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def cumsum(x, axis):
        return jnp.cumsum(x, axis=axis)

    @staticmethod
    def broadcast_arrays(*xs):
        return list(jnp.broadcast_arrays(*[_asarray(x) for x in xs]))

    @staticmethod
    def stack(xs, axis):
        return jnp.stack([_asarray(x) for x in xs], axis=axis)

    @staticmethod
    def concatenate(xs, axis):
        return jnp.concatenate([_asarray(x) for x in xs], axis=axis)

    @staticmethod
    def zeros(shape):
        return jnp.zeros(shape, dtype=F32)

    @staticmethod
    def ones(shape):
        return jnp.ones(shape, dtype=F32)

    @staticmethod
    def full(shape, fill_value):
        return jnp.full(shape, fill_value, dtype=F32)

    @staticmethod
    def eye(n, m, k):
        return jnp.eye(_size(n), _size(m), k, dtype=F32)

    @staticmethod
    def arange(start, stop, step):
        if stop is None:
            return jnp.arange(start)
        return jnp.arange(start, stop, step)

    # the array surface (issue 12) ----------------------------------------------------------

    @staticmethod
    def power(x1, x2):
        return jnp.power(*(x if isinstance(x, (int, float)) else _asarray(x) for x in (x1, x2)))

    moveaxis = staticmethod(jnp.moveaxis)
    full_like = staticmethod(jnp.full_like)
    logit = staticmethod(jss.logit)
    expit = staticmethod(jss.expit)
    erfc = staticmethod(jss.erfc)
    digamma = staticmethod(jss.digamma)
    floor = staticmethod(jnp.floor)
    ceil = staticmethod(jnp.ceil)
    isnan = staticmethod(jnp.isnan)
    outer = staticmethod(jnp.outer)
    solve = staticmethod(jnp.linalg.solve)

    @staticmethod
    def cumprod(x, axis):
        return jnp.cumprod(x, axis=axis)

    @staticmethod
    def transpose(x, axes):
        return jnp.transpose(x, axes)

    @staticmethod
    def permute_dims(x, axes):
        return jnp.transpose(x, axes)

    @staticmethod
    def squeeze(x, axis):
        return jnp.squeeze(x, axis)

    @staticmethod
    def astype(x, name):
        return _asarray(x).astype(_DTYPES[name])

    @staticmethod
    def linspace(start, stop, num, endpoint):
        return jnp.linspace(start, stop, _size(num, "linspace"), endpoint=endpoint, dtype=F32)

    @staticmethod
    def softmax(x, axis):
        return jax.nn.softmax(x, axis=axis)

    @staticmethod
    def log_softmax(x, axis):
        return jax.nn.log_softmax(x, axis=axis)

    @staticmethod
    def argmax(x, axis, keepdims):
        return jnp.argmax(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def argmin(x, axis, keepdims):
        return jnp.argmin(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def tril(x, k):
        return jnp.tril(x, k)

    @staticmethod
    def triu(x, k):
        return jnp.triu(x, k)

    @staticmethod
    def solve_triangular(a, b, upper):
        return jsl.solve_triangular(a, b, lower=not upper)

    @staticmethod
    def norm(x, ord, axis, keepdims):
        return jnp.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)

    isinf = staticmethod(jnp.isinf)
    logical_not = staticmethod(jnp.logical_not)
    logical_and = staticmethod(jnp.logical_and)
    logical_or = staticmethod(jnp.logical_or)

    @staticmethod
    def var(x, axis, keepdims, correction):
        return jnp.var(x, axis=axis, keepdims=keepdims, correction=correction)

    @staticmethod
    def std(x, axis, keepdims, correction):
        return jnp.std(x, axis=axis, keepdims=keepdims, correction=correction)

    @staticmethod
    def all(x, axis, keepdims):
        return jnp.all(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def any(x, axis, keepdims):
        return jnp.any(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def diagonal(x, offset):
        return jnp.linalg.diagonal(x, offset=offset)

    @staticmethod
    def tensordot(x1, x2, axes):
        return jnp.tensordot(x1, x2, axes)

    @staticmethod
    def sort(x, axis, descending):
        return jnp.sort(x, axis=axis, descending=descending)

    @staticmethod
    def argsort(x, axis, descending):
        return jnp.argsort(x, axis=axis, descending=descending)

    @staticmethod
    def take(x, indices, axis):
        return jnp.take(x, indices, axis=axis)

    @staticmethod
    def flip(x, axis):
        return jnp.flip(x, axis=axis)

    @staticmethod
    def roll(x, shift, axis):
        return jnp.roll(x, shift, axis=axis)

    @staticmethod
    def vecdot(x1, x2, axis):
        return jnp.vecdot(_asarray(x1), _asarray(x2), axis=axis)

    kron = staticmethod(jnp.kron)

    @staticmethod
    def searchsorted(x1, x2, side):
        return jnp.searchsorted(x1, x2, side=side)

    class random:
        """``ops.random`` on jax: ``key`` is a PRNG key (or an int seed)."""

        @staticmethod
        def normal(key, shape):
            return jax.random.normal(_key(key, "normal"), shape, dtype=F32)

        @staticmethod
        def uniform(key, shape, minval, maxval):
            return jax.random.uniform(
                _key(key, "uniform"), shape, dtype=F32, minval=minval, maxval=maxval
            )


_DTYPES = {
    "float32": jnp.float32,
    "float64": jnp.float64,
    "int32": jnp.int32,
    "int64": jnp.int64,
    "bool": jnp.bool_,
}


def _key(key, what: str):
    """A jax PRNG key from a key or an int seed; anything else is a clear error."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return jax.random.PRNGKey(int(key))
    if isinstance(key, jax.Array):
        return key
    raise SpecError(
        f"ops.random.{what}: the key is {key!r}; on NumPyro give the key a param's init "
        "callable is passed (dg.param('w', lambda key: ops.random.normal(key, (3,)))) or an int seed"
    )
