"""Named bijections with a closed-form log|det J|, written with :mod:`dualguide.ops`.

Use one as the ``fn`` of :func:`dualguide.transformed` (``dg.bijections``): its closed-form
log|det J| then replaces the autodiff Jacobian.  ``event_dim`` is the number of rightmost
dims a bijection acts on jointly (0: elementwise; 1: vectors).

Parameters (``loc``, ``scale``, ``matrix``, ``angle``) and inputs take numbers, lists, numpy
arrays or the frameworks' arrays (a learnable param keeps its gradient; data become arrays of
the active backend in the current float dtype).  A string, a ``linear`` matrix that is not
square, parameters that do not broadcast to the input, or vectors of the wrong length are a
:class:`~dualguide.errors.SpecError` naming the bijection.

>>> import dualguide as dg
>>> f = dg.bijections.compose(dg.bijections.affine(1.0, 2.0), dg.bijections.exp())
>>> f.event_dim, f
(0, bijections.compose(bijections.affine(loc, scale), bijections.exp()))
"""

from __future__ import annotations

import numpy as np

from . import ops
from ._inputs import as_numpy, float_np, framework_array, static_shape
from .errors import SpecError

__all__ = [
    "Bijection",
    "affine",
    "linear",
    "rotation",
    "exp",
    "log",
    "sigmoid",
    "compose",
]


def sum_rightmost(x, n: int):
    """``x`` summed over its ``n`` rightmost dims."""
    for _ in range(n):
        x = ops.sum(x, axis=-1)
    return x


class Bijection:
    """An invertible map with a closed-form log|det J|, written with neutral ops.

    ``event_dim`` is the number of rightmost dims it acts on jointly (0:
    elementwise; 1: vectors).  ``log_abs_det_jacobian(x, y)`` returns one number
    per element of ``x.shape[:-event_dim]``.
    """

    event_dim = 0

    def __call__(self, x):
        raise NotImplementedError

    def inverse(self, y):
        raise NotImplementedError

    def log_abs_det_jacobian(self, x, y):
        raise NotImplementedError


def _num(x):
    """``x`` as an array of the active backend: numbers, lists and numpy arrays converted (in
    the current float dtype), arrays of a framework as they are."""
    if isinstance(x, (int, float, list, tuple, np.ndarray, np.generic)):
        return ops.asarray(np.asarray(x, dtype=float_np()))
    return x


def _kept(v):
    """A parameter as :func:`_param` kept it, ready for arithmetic with arrays: numpy as the
    active backend's array, numbers and framework arrays as they are."""
    return _num(v) if isinstance(v, np.ndarray) else v


def _param(where: str, v):
    """A bijection's parameter as it keeps it: a number or a framework's array as it is,
    other data (lists, numpy) as numpy after the one input check, or a SpecError naming it."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    if framework_array(v):
        return v  # an array of a framework (a learnable param keeps its gradient)
    return as_numpy(v, where)


def _last_dim(bij: Bijection, x, n: int | None):
    """``x`` (converted) if its last dim has length ``n`` (vectors of the bijection), else a
    SpecError naming the bijection and the shape (no check where a size is traced)."""
    x = _num(x)
    shape = static_shape(x)
    if n is not None and shape is not None and (len(shape) < 1 or shape[-1] != n):
        raise SpecError(
            f"{bij!r} acts on vectors of length {n} (the last dim), got an array of shape "
            f"{tuple(x.shape)}"
        )
    return x


class _Affine(Bijection):
    def __init__(self, loc, scale):
        self.loc = _param("bijections.affine: loc", loc)
        self.scale = _param("bijections.affine: scale", scale)
        shapes = static_shape(self.loc), static_shape(self.scale)
        self._shape = None  # loc and scale's joint shape (None: traced sizes, not checked)
        if shapes[0] is not None and shapes[1] is not None:
            try:
                self._shape = np.broadcast_shapes(*shapes)
            except ValueError:
                raise SpecError(
                    f"bijections.affine: loc of shape {shapes[0]} and scale of shape "
                    f"{shapes[1]} do not broadcast together; give arrays of one shape, or "
                    "shapes numpy broadcasting joins"
                ) from None

    def _input(self, x):
        """``x`` (converted) if loc and scale broadcast to its shape (a bijection keeps the
        shape of its input), else a SpecError naming the shapes."""
        x = _num(x)
        xs = static_shape(x)
        if xs is None or self._shape is None or xs == self._shape:
            return x
        try:
            ok = np.broadcast_shapes(self._shape, xs) == xs
        except ValueError:
            ok = False
        if not ok:
            raise SpecError(
                f"bijections.affine: loc and scale of shape {self._shape} do not fit an input "
                f"of shape {xs}; a bijection keeps its input's shape, so they must broadcast "
                "to it"
            )
        return x

    def __call__(self, x):
        return _kept(self.loc) + _kept(self.scale) * self._input(x)

    def inverse(self, y):
        return (self._input(y) - _kept(self.loc)) / _kept(self.scale)

    def log_abs_det_jacobian(self, x, y):
        return ops.log(ops.abs(_num(self.scale))) + ops.zeros_like(self._input(x))

    def __repr__(self):
        return "bijections.affine(loc, scale)"


class _Linear(Bijection):
    event_dim = 1

    def __init__(self, matrix):
        self.matrix = _param("bijections.linear: matrix", matrix)
        shape = static_shape(self.matrix)
        if shape is not None and (len(shape) < 2 or shape[-1] != shape[-2]):
            raise SpecError(
                "bijections.linear: matrix must be a square matrix (or a batch of them), got "
                f"shape {shape}"
            )
        self._n = None if shape is None else shape[-1]  # None: traced sizes, not checked

    def __call__(self, x):
        return ops.einsum("...ij,...j->...i", _num(self.matrix), _last_dim(self, x, self._n))

    def inverse(self, y):
        y = _last_dim(self, y, self._n)
        return ops.einsum("...ij,...j->...i", ops.inv(_num(self.matrix)), y)

    def log_abs_det_jacobian(self, x, y):
        _, ld = ops.slogdet(_num(self.matrix))
        return ld + ops.zeros_like(_last_dim(self, x, self._n)[..., 0])

    def __repr__(self):
        return "bijections.linear(matrix)"


class _Rotation(Bijection):
    event_dim = 1

    def __init__(self, angle):
        self.angle = _param("bijections.rotation: angle", angle)

    def _cs(self):
        a = _num(self.angle)
        return ops.cos(a), ops.sin(a)

    def __call__(self, x):
        x = _last_dim(self, x, 2)
        c, s = self._cs()
        return ops.stack([c * x[..., 0] - s * x[..., 1], s * x[..., 0] + c * x[..., 1]], axis=-1)

    def inverse(self, y):
        y = _last_dim(self, y, 2)
        c, s = self._cs()
        return ops.stack([c * y[..., 0] + s * y[..., 1], -s * y[..., 0] + c * y[..., 1]], axis=-1)

    def log_abs_det_jacobian(self, x, y):
        return ops.zeros_like(_last_dim(self, x, 2)[..., 0])

    def __repr__(self):
        return "bijections.rotation(angle)"


class _Exp(Bijection):
    def __call__(self, x):
        return ops.exp(_num(x))

    def inverse(self, y):
        return ops.log(_num(y))

    def log_abs_det_jacobian(self, x, y):
        return _num(x) + ops.zeros_like(_num(y))

    def __repr__(self):
        return "bijections.exp()"


class _Log(Bijection):
    def __call__(self, x):
        return ops.log(_num(x))

    def inverse(self, y):
        return ops.exp(_num(y))

    def log_abs_det_jacobian(self, x, y):
        return -_num(y)

    def __repr__(self):
        return "bijections.log()"


class _Sigmoid(Bijection):
    def __call__(self, x):
        return ops.sigmoid(_num(x))

    def inverse(self, y):
        y = _num(y)
        return ops.log(y) - ops.log1p(-y)

    def log_abs_det_jacobian(self, x, y):
        x = _num(x)
        return -ops.softplus(-x) - ops.softplus(x)

    def __repr__(self):
        return "bijections.sigmoid()"


class _Compose(Bijection):
    def __init__(self, parts):
        if not parts or not all(isinstance(p, Bijection) for p in parts):
            raise SpecError(f"bijections.compose: expected bijections, got {parts!r}")
        self.parts = tuple(parts)
        self.event_dim = max(p.event_dim for p in self.parts)

    def __call__(self, x):
        for p in self.parts:
            x = p(x)
        return x

    def inverse(self, y):
        for p in reversed(self.parts):
            y = p.inverse(y)
        return y

    def log_abs_det_jacobian(self, x, y):
        total = None
        for p in self.parts:
            y = p(x)
            ld = sum_rightmost(p.log_abs_det_jacobian(x, y), self.event_dim - p.event_dim)
            total = ld if total is None else total + ld
            x = y
        return total

    def __repr__(self):
        return f"bijections.compose({', '.join(map(repr, self.parts))})"


# the named bijections ----------------------------------------------------------------------
def affine(loc, scale) -> Bijection:
    """``y = loc + scale * x`` elementwise; log|det| = log|scale| per element."""
    return _Affine(loc, scale)


def linear(matrix) -> Bijection:
    """``y = matrix @ x`` on vectors (event_dim 1); log|det| = log|det matrix|."""
    return _Linear(matrix)


def rotation(angle) -> Bijection:
    """2-D rotation by ``angle`` on vectors of length 2 (event_dim 1); log|det| = 0."""
    return _Rotation(angle)


def exp() -> Bijection:
    """``y = exp(x)``; log|det| = x per element."""
    return _Exp()


def log() -> Bijection:
    """``y = log(x)`` for positive x; log|det| = -log x per element."""
    return _Log()


def sigmoid() -> Bijection:
    """``y = 1 / (1 + exp(-x))``; log|det| = log y + log(1 - y) per element."""
    return _Sigmoid()


def compose(*parts: Bijection) -> Bijection:
    """Apply ``parts`` in order (first one first); log-dets add up."""
    return _Compose(parts)
