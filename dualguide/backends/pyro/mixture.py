"""A MixtureSameFamily with ``rsample`` (implicit reparameterization), for Pyro.

torch's ``MixtureSameFamily`` has no ``rsample``, so Pyro's ``Trace_ELBO`` falls
back to a score-function estimator for it (measured: the rotated-mixture fit
ends at b = 0.62 instead of 1.5).  This class gives univariate mixtures the
same pathwise gradient the NumPyro backend uses
(``dualguide/backends/numpyro/mixture.py``)::

    x_out = x - (F(x; theta) - F(x; theta).detach()) / p(x; theta).detach()

with ``x`` drawn without gradient: the value is ``x`` and ``dx/dtheta = -(dF/dtheta) / p``,
including the gradient with respect to the mixture weights.  Components:
Normal, Cauchy, StudentT (torch has no StudentT CDF: it is computed here from
the regularized incomplete beta by a continued fraction), Laplace.  Other
components, or components with event dims, keep torch's sampler (and Pyro's
score-function gradient).  ``log_prob`` is torch's, unchanged.
"""

from __future__ import annotations

import math

import pyro.distributions as pd
import torch

from . import _SupportMasked

#: iterations of the continued fraction for the incomplete beta (same as the NumPyro backend)
CF_ITERATIONS = 32
_TINY = 1e-30


def _guard(v):
    return torch.where(v.abs() < _TINY, torch.full_like(v, _TINY), v)


def _betacf(a, b, x):
    """Continued fraction of the incomplete beta (modified Lentz), fixed iterations."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = torch.ones_like(x)
    d = 1.0 / _guard(1.0 - qab * x / qap)
    h = d
    for m in range(1, CF_ITERATIONS + 1):
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 / _guard(1.0 + aa * d)
        c = _guard(1.0 + aa / c)
        h = h * d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 / _guard(1.0 + aa * d)
        c = _guard(1.0 + aa / c)
        h = h * d * c
    return h


def student_t_cdf_standard(z, df):
    """CDF of the standard Student t at ``z``, differentiable in ``z`` and ``df``.

    ``F(z) = 1 - I_x(df/2, 1/2) / 2`` for z > 0 (mirror for z < 0), ``x = df / (df + z^2)``,
    with the regularized incomplete beta from a continued fraction.  The derivative in
    ``z`` is the exact density; the one in ``df`` comes from autodiff of the fraction.
    """
    z, df = torch.broadcast_tensors(torch.as_tensor(z), torch.as_tensor(df, dtype=torch.float32))
    zd = z.detach()
    zero = zd == 0
    zs = torch.where(zero, torch.ones_like(zd), zd)
    z2 = zs * zs
    nz = df + z2
    x, y = df / nz, z2 / nz
    a, b = 0.5 * df, torch.full_like(df, 0.5)
    direct = x < (a + 1.0) / (a + b + 2.0)
    A, Bb, X = torch.where(direct, a, b), torch.where(direct, b, a), torch.where(direct, x, y)
    lbeta = torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)
    pre = torch.exp(a * torch.log(x) + b * torch.log(y) - lbeta)
    r = pre * _betacf(A, Bb, X) / A
    tail = torch.where(direct, r, 1.0 - r)  # P(|T| > |z|)
    F = torch.where(
        zero, torch.full_like(tail, 0.5), torch.where(zs > 0, 1.0 - 0.5 * tail, 0.5 * tail)
    )
    with torch.no_grad():
        pdf = torch.exp(
            torch.lgamma(0.5 * (df + 1.0))
            - torch.lgamma(0.5 * df)
            - 0.5 * torch.log(df * math.pi)
            - 0.5 * (df + 1.0) * torch.log1p(zd**2 / df)
        )
    return F + pdf * (z - zd)


def _unwrap(d):
    while hasattr(d, "base_dist") and type(d).__name__ == "ExpandedDistribution":
        d = d.base_dist
    return d


def component_cdf(comp, x):
    """CDF of a supported univariate component at ``x`` (broadcast), else None."""
    base = _unwrap(comp)
    name = type(base).__name__
    if name == "Normal":
        return 0.5 * (1.0 + torch.special.erf((x - base.loc) / (base.scale * math.sqrt(2.0))))
    if name == "Cauchy":
        return torch.atan((x - base.loc) / base.scale) / math.pi + 0.5
    if name == "Laplace":
        z = (x - base.loc) / base.scale
        return 0.5 - 0.5 * torch.sign(z) * torch.expm1(-torch.abs(z))
    if name == "StudentT":
        return student_t_cdf_standard((x - base.loc) / base.scale, base.df)
    return None


SUPPORTED = ("Normal", "Cauchy", "StudentT", "Laplace")


def reparameterizable(mix) -> bool:
    comp = mix.component_distribution
    return tuple(comp.event_shape) == () and type(_unwrap(comp)).__name__ in SUPPORTED


def implicit_reparam(mix, x):
    """``x`` (drawn without gradient) with the implicit-reparameterization gradient attached."""
    x = x.detach()
    w = mix.mixture_distribution.probs
    cdf = component_cdf(mix.component_distribution, x.unsqueeze(-1))
    F = (w * cdf).sum(-1)
    with torch.no_grad():
        p = mix.log_prob(x).exp()
    ok = p > 0
    safe_p = torch.where(ok, p, torch.ones_like(p))
    return x - torch.where(ok, (F - F.detach()) / safe_p, torch.zeros_like(F))


class MixtureSameFamily(_SupportMasked, pd.MixtureSameFamily):
    """Pyro's MixtureSameFamily with ``rsample`` for univariate mixtures (implicit gradient).

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist, ops
    >>> with dg.use_backend("pyro"):  # doctest: +SKIP
    ...     m = dist.MixtureSameFamily(dist.Categorical(probs=ops.asarray([0.3, 0.7])),
    ...                                dist.Normal(ops.asarray([-1.0, 1.0]), 1.0))
    >>> m.has_rsample  # doctest: +SKIP
    True
    """

    @property
    def has_rsample(self) -> bool:
        return reparameterizable(self)

    def rsample(self, sample_shape=torch.Size()):
        x = self.sample(sample_shape)
        if not reparameterizable(self):
            raise NotImplementedError(
                f"MixtureSameFamily of {type(_unwrap(self.component_distribution)).__name__} "
                f"components has no reparameterized sampler (supported: {', '.join(SUPPORTED)})"
            )
        return implicit_reparam(self, x)
