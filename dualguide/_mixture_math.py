"""The implicit-reparameterization math of univariate mixtures, written once with :mod:`dualguide.ops`.

Both backends' ``MixtureSameFamily`` (``dualguide/backends/*/mixture.py``) draw ``x`` without
gradient and return::

    x_out = x - (F(x; theta) - stop_gradient(F(x; theta))) / stop_gradient(p(x; theta))

whose value is ``x`` and whose gradient is ``dx/dtheta = -(dF/dtheta) / p``, the implicit
reparameterization gradient -- including the gradient with respect to the mixture weights.
This module holds the framework-free part: the component CDFs (Normal, Cauchy, Laplace,
StudentT, the last from the regularized incomplete beta by a continued fraction) and the
shift above.  A backend supplies only what needs its framework: the density ``p`` computed
without gradient, and (optionally) the loop that runs the continued fraction
(``lax.fori_loop`` on NumPyro, so that the 32 steps compile once; a Python loop otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import ops
from .trace import base_distribution

__all__ = [
    "CF_ITERATIONS",
    "SUPPORTED",
    "betacf",
    "component_cdf",
    "implicit_shift",
    "mixing_probs",
    "python_loop",
    "reparameterizable",
    "student_t_cdf_standard",
]

#: iterations of the continued fraction for the incomplete beta (float32-exact, see tests)
CF_ITERATIONS = 32
_TINY = 1e-30

#: component families with a CDF here (univariate components only)
SUPPORTED = ("Normal", "Cauchy", "StudentT", "Laplace")

if TYPE_CHECKING:  # (a type alias only: the export writes this module natively)
    #: ``loop(n, body, init)``: ``carry = body(m, carry)`` for m = 1..n, returns the carry
    Loop = Callable[[int, Callable[[Any, Any], Any], Any], Any]


def python_loop(n: int, body: Callable[[Any, Any], Any], init: Any) -> Any:
    """``carry = body(m, carry)`` for m = 1, ..., n (m a Python int); the default :data:`Loop`."""
    carry = init
    for m in range(1, n + 1):
        carry = body(m, carry)
    return carry


def _guard(v):
    return ops.where(ops.abs(v) < _TINY, _TINY, v)


def betacf(a, b, x, loop: Loop = python_loop):
    """Continued fraction of the incomplete beta (modified Lentz), :data:`CF_ITERATIONS` steps.

    ``loop`` runs the steps (a backend may pass a compiled loop; ``m`` may then be an integer
    array, which promotes to ``x``'s float dtype like a Python int does).
    """
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = ops.ones_like(x)
    d = 1.0 / _guard(1.0 - qab * x / qap)

    def body(m, carry):
        c, d, h = carry
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 / _guard(1.0 + aa * d)
        c = _guard(1.0 + aa / c)
        h = h * d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 / _guard(1.0 + aa * d)
        c = _guard(1.0 + aa / c)
        return c, d, h * d * c

    return loop(CF_ITERATIONS, body, (c, d, d))[2]


def student_t_cdf_standard(z, df, loop: Loop = python_loop):
    """CDF of the standard Student t at ``z``, differentiable in ``z`` and ``df``.

    ``F(z) = 1 - I_x(df/2, 1/2) / 2`` for z > 0 (mirror for z < 0), ``x = df / (df + z^2)``,
    with the regularized incomplete beta from a continued fraction.  The derivative in
    ``z`` is the exact density; the one in ``df`` comes from autodiff of the fraction.
    """
    z, df = ops.broadcast_arrays(z, df)
    zd = ops.stop_gradient(z)
    zero = zd == 0
    zs = ops.where(zero, 1.0, zd)
    z2 = zs * zs
    nz = df + z2
    x, y = df / nz, z2 / nz
    a, b = 0.5 * df, ops.zeros_like(df) + 0.5
    direct = x < (a + 1.0) / (a + b + 2.0)
    A, Bb, X = ops.where(direct, a, b), ops.where(direct, b, a), ops.where(direct, x, y)
    lbeta = ops.lgamma(a) + ops.lgamma(b) - ops.lgamma(a + b)
    pre = ops.exp(a * ops.log(x) + b * ops.log(y) - lbeta)
    r = pre * betacf(A, Bb, X, loop) / A
    tail = ops.where(direct, r, 1.0 - r)  # P(|T| > |z|)
    F = ops.where(zero, 0.5, ops.where(zs > 0, 1.0 - 0.5 * tail, 0.5 * tail))
    dfd = ops.stop_gradient(df)  # the density from constants: no gradient (and no graph)
    pdf = ops.exp(
        ops.lgamma(0.5 * (dfd + 1.0))
        - ops.lgamma(0.5 * dfd)
        - 0.5 * ops.log(dfd * math.pi)
        - 0.5 * (dfd + 1.0) * ops.log1p(zd**2 / dfd)
    )
    return F + pdf * (z - zd)


def component_cdf(comp, x, loop: Loop = python_loop):
    """CDF of a supported univariate component at ``x`` (broadcast), else None."""
    base = base_distribution(comp)
    name = type(base).__name__
    if name == "Normal":
        return 0.5 * (1.0 + ops.erf((x - base.loc) / (base.scale * math.sqrt(2.0))))
    if name == "Cauchy":
        return ops.arctan((x - base.loc) / base.scale) / math.pi + 0.5
    if name == "Laplace":
        z = (x - base.loc) / base.scale
        return 0.5 - 0.5 * ops.sign(z) * ops.expm1(-ops.abs(z))
    if name == "StudentT":
        return student_t_cdf_standard((x - base.loc) / base.scale, base.df, loop)
    return None


def mixing_probs(mix):
    """The mixture weights (NumPyro: ``mixing_distribution``, Pyro: ``mixture_distribution``)."""
    cat = getattr(mix, "mixing_distribution", None)
    if cat is None:
        cat = mix.mixture_distribution
    return cat.probs


def reparameterizable(mix) -> bool:
    """Whether the mixture's components are univariate and of a :data:`SUPPORTED` family."""
    comp = mix.component_distribution
    return tuple(comp.event_shape) == () and type(base_distribution(comp)).__name__ in SUPPORTED


def implicit_shift(mix, x, p, loop: Loop = python_loop):
    """``x`` (drawn, no gradient) with the implicit gradient attached; ``p``: its density, no
    gradient.  The value stays ``x`` (where ``p = 0`` no gradient is attached)."""
    cdf = component_cdf(mix.component_distribution, ops.expand_dims(x, -1), loop)
    F = ops.sum(mixing_probs(mix) * cdf, axis=-1)
    ok = p > 0
    safe_p = ops.where(ok, p, 1.0)
    return x - ops.where(ok, (F - ops.stop_gradient(F)) / safe_p, 0.0)
