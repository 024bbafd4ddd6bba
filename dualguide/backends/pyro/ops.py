"""Neutral ops on torch tensors (signatures as in :mod:`dualguide.ops`)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ... import _inputs
from ...errors import SpecError

F32 = torch.float64 if _inputs.get_dtype() == "float64" else torch.float32  # rebound by use_dtype


def _asarray(x):
    if isinstance(x, torch.Tensor):
        return x
    if type(x) is list and all(type(v) is float for v in x):
        # a flat list of Python floats (ops.asarray([0.5, 0.5]) in a program, at every step):
        # the same float32 values as through numpy's float64, without the numpy array
        return torch.tensor(x, dtype=F32)
    a = np.asarray(x)
    if a.dtype.kind == "f":
        return torch.tensor(a, dtype=F32)
    return torch.as_tensor(a)


def _t(x):
    return x if isinstance(x, torch.Tensor) else _asarray(x)


def _s(x):
    """A tensor, or a Python number left as it is (for ops that take scalars natively)."""
    return x if isinstance(x, (torch.Tensor, int, float)) else _asarray(x)


def _size(n, op="eye"):
    """A size for ``torch.eye`` / ``torch.linspace`` / ``torch.full``: an int, or a 0-d integer
    tensor passed as it is.  Under ``torch.jit.trace`` (Pyro's JitTrace_ELBO) ``x.shape[0]``
    is such a tensor; torch records it as a dynamic size (``aten::Int`` of the traced size)
    where ``int()`` would freeze it."""
    if isinstance(n, torch.Tensor) and (
        n.dim() != 0 or n.dtype.is_floating_point or n.dtype.is_complex or n.dtype == torch.bool
    ):
        raise SpecError(
            f"ops.{op}: the size is a tensor of shape {tuple(n.shape)} and dtype {n.dtype}; "
            "give an integer or an integer scalar (e.g. x.shape[0])"
        )
    return n


def _reduce(fn, x, axis, keepdims):
    x = _t(x)
    if axis is None:
        return fn(x)
    return fn(x, dim=axis, keepdim=keepdims)


class Ops:
    @staticmethod
    def exp(x):
        return torch.exp(_t(x))

    @staticmethod
    def log(x):
        return torch.log(_t(x))

    @staticmethod
    def log1p(x):
        return torch.log1p(_t(x))

    @staticmethod
    def expm1(x):
        return torch.expm1(_t(x))

    @staticmethod
    def sqrt(x):
        return torch.sqrt(_t(x))

    @staticmethod
    def square(x):
        return torch.square(_t(x))

    @staticmethod
    def abs(x):
        return torch.abs(_t(x))

    @staticmethod
    def sin(x):
        return torch.sin(_t(x))

    @staticmethod
    def cos(x):
        return torch.cos(_t(x))

    @staticmethod
    def tan(x):
        return torch.tan(_t(x))

    @staticmethod
    def arcsin(x):
        return torch.asin(_t(x))

    @staticmethod
    def arccos(x):
        return torch.acos(_t(x))

    @staticmethod
    def arctan(x):
        return torch.atan(_t(x))

    @staticmethod
    def arctan2(y, x):
        return torch.atan2(_t(y), _t(x))

    @staticmethod
    def sinh(x):
        return torch.sinh(_t(x))

    @staticmethod
    def cosh(x):
        return torch.cosh(_t(x))

    @staticmethod
    def tanh(x):
        return torch.tanh(_t(x))

    @staticmethod
    def sigmoid(x):
        return torch.sigmoid(_t(x))

    @staticmethod
    def softplus(x):
        return F.softplus(_t(x))

    @staticmethod
    def erf(x):
        return torch.special.erf(_t(x))

    @staticmethod
    def lgamma(x):
        return torch.lgamma(_t(x))

    @staticmethod
    def sign(x):
        return torch.sign(_t(x))

    @staticmethod
    def stop_gradient(x):
        return _t(x).detach()

    @staticmethod
    def logaddexp(x, y):
        return torch.logaddexp(_t(x), _t(y))

    @staticmethod
    def maximum(x, y):
        return torch.maximum(_t(x), _t(y))

    @staticmethod
    def minimum(x, y):
        return torch.minimum(_t(x), _t(y))

    @staticmethod
    def clip(x, lo, hi):
        return torch.clamp(_t(x), lo, hi)

    @staticmethod
    def isfinite(x):
        return torch.isfinite(_t(x))

    @staticmethod
    def where(c, x, y):
        # Python numbers go in as they are (torch promotes them as it promotes 0-dim tensors,
        # without building a tensor on every call)
        return torch.where(_t(c), _s(x), _s(y))

    @staticmethod
    def logsumexp(x, axis, keepdims):
        x = _t(x)
        if axis is None:
            return torch.logsumexp(x.reshape(-1), dim=0)
        return torch.logsumexp(x, dim=axis, keepdim=keepdims)

    @staticmethod
    def sum(x, axis, keepdims):
        return _reduce(torch.sum, x, axis, keepdims)

    @staticmethod
    def prod(x, axis, keepdims):
        x = _t(x)
        if axis is None:
            return torch.prod(x)
        if isinstance(axis, tuple):
            for a in sorted((a % x.dim() for a in axis), reverse=True):
                x = torch.prod(x, dim=a, keepdim=keepdims)
            return x
        return torch.prod(x, dim=axis, keepdim=keepdims)

    @staticmethod
    def mean(x, axis, keepdims):
        return _reduce(torch.mean, x, axis, keepdims)

    @staticmethod
    def max(x, axis, keepdims):
        return _reduce(torch.amax, x, axis, keepdims) if axis is not None else torch.max(_t(x))

    @staticmethod
    def min(x, axis, keepdims):
        return _reduce(torch.amin, x, axis, keepdims) if axis is not None else torch.min(_t(x))

    @staticmethod
    def cumsum(x, axis):
        x = _t(x)
        if axis is None:
            return torch.cumsum(x.reshape(-1), dim=0)
        return torch.cumsum(x, dim=axis)

    @staticmethod
    def stack(xs, axis):
        return torch.stack([_t(x) for x in xs], dim=axis)

    @staticmethod
    def concatenate(xs, axis):
        return torch.cat([_t(x) for x in xs], dim=axis)

    @staticmethod
    def matmul(a, b):
        return torch.matmul(_t(a), _t(b))

    @staticmethod
    def einsum(subscripts, *operands):
        return torch.einsum(subscripts, *[_t(o) for o in operands])

    @staticmethod
    def reshape(x, shape):
        return torch.reshape(_t(x), shape)

    @staticmethod
    def expand_dims(x, axis):
        return torch.unsqueeze(_t(x), axis)

    @staticmethod
    def swapaxes(x, a1, a2):
        return torch.transpose(_t(x), a1, a2)

    @staticmethod
    def broadcast_to(x, shape):
        return torch.broadcast_to(_t(x), shape)

    @staticmethod
    def broadcast_arrays(*xs):
        return list(torch.broadcast_tensors(*[_t(x) for x in xs]))

    @staticmethod
    def take_along_axis(x, indices, axis):
        return torch.take_along_dim(_t(x), _t(indices), axis)

    @staticmethod
    def zeros(shape):
        return torch.zeros(shape, dtype=F32)

    @staticmethod
    def ones(shape):
        return torch.ones(shape, dtype=F32)

    @staticmethod
    def full(shape, fill_value):
        if isinstance(shape, torch.Tensor) and shape.dim() == 0:  # a traced x.shape[0]
            shape = (_size(shape, "full"),)
        return torch.full(
            tuple(np.atleast_1d(shape)) if not isinstance(shape, tuple) else shape,
            float(fill_value),
            dtype=F32,
        )

    @staticmethod
    def zeros_like(x):
        return torch.zeros_like(_t(x))

    @staticmethod
    def ones_like(x):
        return torch.ones_like(_t(x))

    @staticmethod
    def eye(n, m, k):
        n, m = _size(n), _size(m)
        if k == 0:
            return torch.eye(n, m, dtype=F32)
        return torch.ones(n, m, dtype=F32).triu(k).tril(k)  # torch.eye has no diagonal offset

    @staticmethod
    def arange(start, stop, step):
        if stop is None:
            return torch.arange(start)
        return torch.arange(start, stop, step)

    @staticmethod
    def asarray(x):
        return _asarray(x)

    @staticmethod
    def det(x):
        return torch.linalg.det(_t(x))

    @staticmethod
    def slogdet(x):
        r = torch.linalg.slogdet(_t(x))
        return r.sign, r.logabsdet

    @staticmethod
    def inv(x):
        return torch.linalg.inv(_t(x))

    @staticmethod
    def cholesky(x):
        return torch.linalg.cholesky(_t(x))

    # the array surface (issue 12) ----------------------------------------------------------
    @staticmethod
    def power(x1, x2):
        x1, x2 = _s(x1), _s(x2)  # numbers stay numbers (torch.pow takes one on either side)
        if not isinstance(x1, torch.Tensor) and not isinstance(x2, torch.Tensor):
            x1 = _t(x1)
        return torch.pow(x1, x2)

    @staticmethod
    def cumprod(x, axis):
        x = _t(x)
        if axis is None:
            return torch.cumprod(x.reshape(-1), dim=0)
        return torch.cumprod(x, dim=axis)

    @staticmethod
    def transpose(x, axes):
        x = _t(x)
        return x.permute(*(range(x.dim() - 1, -1, -1) if axes is None else axes))

    @staticmethod
    def permute_dims(x, axes):
        return torch.permute(_t(x), axes)

    @staticmethod
    def moveaxis(x, source, destination):
        return torch.moveaxis(_t(x), source, destination)

    @staticmethod
    def squeeze(x, axis):
        return torch.squeeze(_t(x), axis)  # (dualguide.ops checks the axes have length 1)

    @staticmethod
    def astype(x, name):
        return _t(x).to(_DTYPES[name])

    @staticmethod
    def linspace(start, stop, num, endpoint):
        num = _size(num, "linspace")
        if endpoint:
            return torch.linspace(float(start), float(stop), num, dtype=F32)
        return torch.linspace(float(start), float(stop), num + 1, dtype=F32)[:-1]

    @staticmethod
    def full_like(x, fill_value):
        return torch.full_like(_t(x), fill_value)

    @staticmethod
    def softmax(x, axis):
        return torch.softmax(_t(x), dim=axis)

    @staticmethod
    def log_softmax(x, axis):
        return torch.log_softmax(_t(x), dim=axis)

    @staticmethod
    def logit(x):
        return torch.special.logit(_t(x))

    @staticmethod
    def expit(x):
        return torch.special.expit(_t(x))

    @staticmethod
    def erfc(x):
        return torch.special.erfc(_t(x))

    @staticmethod
    def digamma(x):
        return torch.special.digamma(_t(x))

    @staticmethod
    def floor(x):
        return torch.floor(_t(x))

    @staticmethod
    def ceil(x):
        return torch.ceil(_t(x))

    @staticmethod
    def isnan(x):
        return torch.isnan(_t(x))

    @staticmethod
    def argmax(x, axis, keepdims):
        return _argext(torch.argmax, x, axis, keepdims)

    @staticmethod
    def argmin(x, axis, keepdims):
        return _argext(torch.argmin, x, axis, keepdims)

    @staticmethod
    def tril(x, k):
        return torch.tril(_t(x), diagonal=k)

    @staticmethod
    def triu(x, k):
        return torch.triu(_t(x), diagonal=k)

    @staticmethod
    def outer(x1, x2):
        return torch.outer(_t(x1), _t(x2))

    @staticmethod
    def solve(a, b):
        a, b = _t(a), _t(b)
        if b.dim() == 1:  # a vector right-hand side only when 1-D (numpy 2, the array API)
            return torch.linalg.solve(a, b.unsqueeze(-1)).squeeze(-1)
        batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        # same number of axes: torch then never reads b as a batch of vectors
        return torch.linalg.solve(a.expand(batch + a.shape[-2:]), b.expand(batch + b.shape[-2:]))

    @staticmethod
    def solve_triangular(a, b, upper):
        a, b = _t(a), _t(b)
        if b.dim() == 1:
            return torch.linalg.solve_triangular(a, b.unsqueeze(-1), upper=upper).squeeze(-1)
        return torch.linalg.solve_triangular(a, b, upper=upper)

    @staticmethod
    def norm(x, ord, axis, keepdims):
        return torch.linalg.norm(_t(x), ord=ord, dim=axis, keepdim=keepdims)

    @staticmethod
    def var(x, axis, keepdims, correction):
        x = _t(x)
        if axis is None:
            return torch.var(x, correction=correction)
        return torch.var(x, dim=axis, keepdim=keepdims, correction=correction)

    @staticmethod
    def std(x, axis, keepdims, correction):
        x = _t(x)
        if axis is None:
            return torch.std(x, correction=correction)
        return torch.std(x, dim=axis, keepdim=keepdims, correction=correction)

    @staticmethod
    def all(x, axis, keepdims):
        return _reduce(torch.all, x, axis, keepdims)

    @staticmethod
    def any(x, axis, keepdims):
        return _reduce(torch.any, x, axis, keepdims)

    @staticmethod
    def isinf(x):
        return torch.isinf(_t(x))

    @staticmethod
    def logical_not(x):
        return torch.logical_not(_t(x))

    @staticmethod
    def logical_and(x1, x2):
        return torch.logical_and(_t(x1), _t(x2))

    @staticmethod
    def logical_or(x1, x2):
        return torch.logical_or(_t(x1), _t(x2))

    @staticmethod
    def diagonal(x, offset):
        return torch.linalg.diagonal(_t(x), offset=offset)

    @staticmethod
    def tensordot(x1, x2, axes):
        return torch.tensordot(_t(x1), _t(x2), axes)

    @staticmethod
    def sort(x, axis, descending):
        return torch.sort(_t(x), dim=axis, descending=descending, stable=True).values

    @staticmethod
    def argsort(x, axis, descending):
        return torch.argsort(_t(x), dim=axis, descending=descending, stable=True)

    @staticmethod
    def take(x, indices, axis):
        if axis is None:
            return torch.take(_t(x), _t(indices))
        return torch.index_select(_t(x), axis, _t(indices))

    @staticmethod
    def flip(x, axis):
        x = _t(x)
        return torch.flip(x, tuple(range(x.dim())) if axis is None else axis)

    @staticmethod
    def roll(x, shift, axis):
        return torch.roll(_t(x), shift, axis)

    @staticmethod
    def vecdot(x1, x2, axis):
        return torch.linalg.vecdot(_t(x1), _t(x2), dim=axis)

    @staticmethod
    def kron(x1, x2):
        return torch.kron(_t(x1), _t(x2))

    @staticmethod
    def searchsorted(x1, x2, side):
        return torch.searchsorted(_t(x1), _t(x2), side=side)

    class random:
        """``ops.random`` on torch: draws from torch's global generator (a :class:`TorchKey`)
        or from a generator seeded with an int key."""

        @staticmethod
        def normal(key, shape):
            return torch.randn(shape, dtype=F32, generator=_generator(key, "normal"))

        @staticmethod
        def uniform(key, shape, minval, maxval):
            u = torch.rand(shape, dtype=F32, generator=_generator(key, "uniform"))
            return minval + (maxval - minval) * u if (minval, maxval) != (0.0, 1.0) else u


class TorchKey(tuple):
    """The key a param's init callable gets on Pyro: torch's global generator.

    It is an empty tuple, so a distribution's ``.sample(key)`` reads it as
    ``sample_shape=()`` (one draw, as NumPyro's ``.sample(key)``).
    """

    __slots__ = ()

    def __new__(cls):
        return super().__new__(cls, ())

    def __repr__(self) -> str:
        return "TorchKey()"


_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "int32": torch.int32,
    "int64": torch.int64,
    "bool": torch.bool,
}


def _argext(fn, x, axis, keepdims):
    return fn(_t(x), dim=axis, keepdim=keepdims)


def _generator(key, what: str):
    """None (torch's global generator) for a TorchKey, a seeded generator for an int seed."""
    if key is None or (isinstance(key, tuple) and not key):  # a TorchKey is ()
        return None
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return torch.Generator().manual_seed(int(key))
    raise SpecError(
        f"ops.random.{what}: the key is {key!r}; on Pyro give the key a param's init callable "
        "is passed (dg.param('w', lambda key: ops.random.normal(key, (3,)))) or an int seed"
    )
