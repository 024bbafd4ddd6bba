"""Neutral ops on jax arrays (signatures as in :mod:`dualguide.ops`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.special as jss
import numpy as np

from ... import _inputs

F32 = jnp.float64 if _inputs.get_dtype() == "float64" else jnp.float32  # rebound by use_dtype


def _asarray(x):
    if isinstance(x, jax.Array):
        return x
    a = np.asarray(x)
    return jnp.asarray(a, dtype=F32 if a.dtype.kind == "f" else None)


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
    def eye(n):
        return jnp.eye(n, dtype=F32)

    @staticmethod
    def arange(start, stop, step):
        if stop is None:
            return jnp.arange(start)
        return jnp.arange(start, stop, step)
