"""Named bijections with a closed-form log|det J|, written with :mod:`dualguide.ops`.

Use one as the ``fn`` of :func:`dualguide.transformed` (``dg.bijections``): its closed-form
log|det J| then replaces the autodiff Jacobian.  ``event_dim`` is the number of rightmost
dims a bijection acts on jointly (0: elementwise; 1: vectors).

>>> import dualguide as dg
>>> f = dg.bijections.compose(dg.bijections.affine(1.0, 2.0), dg.bijections.exp())
>>> f.event_dim, f
(0, bijections.compose(bijections.affine(loc, scale), bijections.exp()))
"""

from __future__ import annotations

import numpy as np

from . import ops
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
    return ops.asarray(x) if isinstance(x, (int, float, list, tuple, np.ndarray)) else x


class _Affine(Bijection):
    def __init__(self, loc, scale):
        self.loc, self.scale = loc, scale

    def __call__(self, x):
        return self.loc + self.scale * x

    def inverse(self, y):
        return (y - self.loc) / self.scale

    def log_abs_det_jacobian(self, x, y):
        return ops.log(ops.abs(_num(self.scale))) + ops.zeros_like(x)

    def __repr__(self):
        return "bijections.affine(loc, scale)"


class _Linear(Bijection):
    event_dim = 1

    def __init__(self, matrix):
        self.matrix = matrix

    def __call__(self, x):
        return ops.einsum("...ij,...j->...i", _num(self.matrix), x)

    def inverse(self, y):
        return ops.einsum("...ij,...j->...i", ops.inv(_num(self.matrix)), y)

    def log_abs_det_jacobian(self, x, y):
        _, ld = ops.slogdet(_num(self.matrix))
        return ld + ops.zeros_like(x[..., 0])

    def __repr__(self):
        return "bijections.linear(matrix)"


class _Rotation(Bijection):
    event_dim = 1

    def __init__(self, angle):
        self.angle = angle

    def _cs(self):
        a = _num(self.angle)
        return ops.cos(a), ops.sin(a)

    def __call__(self, x):
        c, s = self._cs()
        return ops.stack([c * x[..., 0] - s * x[..., 1], s * x[..., 0] + c * x[..., 1]], axis=-1)

    def inverse(self, y):
        c, s = self._cs()
        return ops.stack([c * y[..., 0] + s * y[..., 1], -s * y[..., 0] + c * y[..., 1]], axis=-1)

    def log_abs_det_jacobian(self, x, y):
        return ops.zeros_like(x[..., 0])

    def __repr__(self):
        return "bijections.rotation(angle)"


class _Exp(Bijection):
    def __call__(self, x):
        return ops.exp(x)

    def inverse(self, y):
        return ops.log(y)

    def log_abs_det_jacobian(self, x, y):
        return x + ops.zeros_like(y)

    def __repr__(self):
        return "bijections.exp()"


class _Log(Bijection):
    def __call__(self, x):
        return ops.log(x)

    def inverse(self, y):
        return ops.exp(y)

    def log_abs_det_jacobian(self, x, y):
        return -y

    def __repr__(self):
        return "bijections.log()"


class _Sigmoid(Bijection):
    def __call__(self, x):
        return ops.sigmoid(x)

    def inverse(self, y):
        return ops.log(y) - ops.log1p(-y)

    def log_abs_det_jacobian(self, x, y):
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
