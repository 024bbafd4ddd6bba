"""A MixtureSameFamily that samples with a pathwise gradient (implicit reparameterization).

For a univariate mixture with CDF ``F(x; theta)`` and density ``p(x; theta)``,
a draw ``x`` is taken without gradient and returned as::

    x_out = x - (F(x; theta) - stop_gradient(F(x; theta))) / stop_gradient(p(x; theta))

whose value is ``x`` and whose gradient is ``dx/dtheta = -(dF/dtheta) / p``, the
implicit reparameterization gradient -- including the gradient with respect
to the mixture weights.  The Pyro backend uses the identical formula
(``dualguide/backends/pyro/mixture.py``).  Components: Normal, Cauchy,
StudentT, Laplace.  Other components, or components with event dims, keep
NumPyro's own sampler.  ``log_prob`` is NumPyro's, unchanged.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from jax import lax
from jax.scipy.special import gammaln

#: iterations of the continued fraction for the incomplete beta (float32-exact, see tests)
CF_ITERATIONS = 32
_TINY = 1e-30


def _guard(v):
    return jnp.where(jnp.abs(v) < _TINY, _TINY, v)


def _betacf(a, b, x):
    """Continued fraction of the incomplete beta (modified Lentz), fixed iterations.

    The same steps as the Pyro backend's loop, run as a ``lax.fori_loop`` (cheap to compile).
    """
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = jnp.ones_like(x)
    d = 1.0 / _guard(1.0 - qab * x / qap)

    def body(m, carry):
        c, d, h = carry
        m = m.astype(x.dtype)
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 / _guard(1.0 + aa * d)
        c = _guard(1.0 + aa / c)
        h = h * d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 / _guard(1.0 + aa * d)
        c = _guard(1.0 + aa / c)
        return c, d, h * d * c

    return lax.fori_loop(1, CF_ITERATIONS + 1, body, (c, d, d))[2]


def student_t_cdf_standard(z, df):
    """CDF of the standard Student t at ``z``, differentiable in ``z`` and ``df``.

    ``F(z) = 1 - I_x(df/2, 1/2) / 2`` for z > 0 (mirror for z < 0), ``x = df / (df + z^2)``,
    with the regularized incomplete beta from a continued fraction.  The derivative in
    ``z`` is the exact density; the one in ``df`` comes from autodiff of the fraction.
    """
    z, df = jnp.broadcast_arrays(z, df)
    zero = z == 0
    zs = jnp.where(zero, 1.0, lax.stop_gradient(z))
    z2 = zs * zs
    nz = df + z2
    x, y = df / nz, z2 / nz
    a, b = 0.5 * df, jnp.full_like(df, 0.5)
    direct = x < (a + 1.0) / (a + b + 2.0)
    A, Bb, X = jnp.where(direct, a, b), jnp.where(direct, b, a), jnp.where(direct, x, y)
    lbeta = gammaln(a) + gammaln(b) - gammaln(a + b)
    pre = jnp.exp(a * jnp.log(x) + b * jnp.log(y) - lbeta)
    r = pre * _betacf(A, Bb, X) / A
    tail = jnp.where(direct, r, 1.0 - r)  # P(|T| > |z|)
    F = jnp.where(zero, 0.5, jnp.where(zs > 0, 1.0 - 0.5 * tail, 0.5 * tail))
    pdf = jnp.exp(
        gammaln(0.5 * (df + 1.0))
        - gammaln(0.5 * df)
        - 0.5 * jnp.log(df * math.pi)
        - 0.5 * (df + 1.0) * jnp.log1p(lax.stop_gradient(z) ** 2 / df)
    )
    return F + lax.stop_gradient(pdf) * (z - lax.stop_gradient(z))


def _unwrap(d):
    while type(d).__name__ == "ExpandedDistribution":
        d = d.base_dist
    return d


def component_cdf(comp, x):
    """CDF of a supported univariate component at ``x`` (broadcast), else None."""
    base = _unwrap(comp)
    name = type(base).__name__
    if name == "Normal":
        return 0.5 * (1.0 + jax.scipy.special.erf((x - base.loc) / (base.scale * math.sqrt(2.0))))
    if name == "Cauchy":
        return jnp.arctan((x - base.loc) / base.scale) / math.pi + 0.5
    if name == "Laplace":
        z = (x - base.loc) / base.scale
        return 0.5 - 0.5 * jnp.sign(z) * jnp.expm1(-jnp.abs(z))
    if name == "StudentT":
        return student_t_cdf_standard((x - base.loc) / base.scale, base.df)
    return None


SUPPORTED = ("Normal", "Cauchy", "StudentT", "Laplace")


def reparameterizable(mix) -> bool:
    comp = mix.component_distribution
    return comp.event_shape == () and type(_unwrap(comp)).__name__ in SUPPORTED


def implicit_reparam(mix, x):
    """``x`` (drawn without gradient) with the implicit-reparameterization gradient attached."""
    x = lax.stop_gradient(x)
    w = mix.mixing_distribution.probs
    cdf = component_cdf(mix.component_distribution, jnp.expand_dims(x, -1))
    F = jnp.sum(w * cdf, axis=-1)
    p = lax.stop_gradient(jnp.exp(mix.log_prob(x)))
    safe_p = jnp.where(p > 0, p, 1.0)
    return x - jnp.where(p > 0, (F - lax.stop_gradient(F)) / safe_p, 0.0)


class MixtureSameFamily(nd.MixtureSameFamily):
    """numpyro's MixtureSameFamily with a pathwise (implicit) gradient for univariate mixtures.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist, ops
    >>> with dg.use_backend("numpyro"):  # doctest: +SKIP
    ...     m = dist.MixtureSameFamily(dist.Categorical(probs=ops.asarray([0.3, 0.7])),
    ...                                dist.Normal(ops.asarray([-1.0, 1.0]), 1.0))
    >>> m.has_rsample  # doctest: +SKIP
    True
    """

    @property
    def has_rsample(self) -> bool:
        return reparameterizable(self)

    def sample_with_intermediates(self, key, sample_shape=()):
        x, inter = super().sample_with_intermediates(key, sample_shape)
        if reparameterizable(self):
            x = implicit_reparam(self, x)
        return x, inter

    def sample(self, key, sample_shape=()):
        return self.sample_with_intermediates(key, sample_shape)[0]

    def rsample(self, key, sample_shape=()):
        return self.sample(key, sample_shape)
