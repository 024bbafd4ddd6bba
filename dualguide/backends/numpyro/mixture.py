"""A MixtureSameFamily that samples with a pathwise gradient (implicit reparameterization).

The math (component CDFs, the StudentT continued fraction, the gradient shift
``x - (F - stop_gradient(F)) / stop_gradient(p)``) is written once in
:mod:`dualguide._mixture_math` and shared with the Pyro backend; this module adds what
needs JAX: the continued fraction's loop as a ``lax.fori_loop`` (cheap to compile) and the
density without gradient.  Components: Normal, Cauchy, StudentT, Laplace.  Other
components, or components with event dims, keep NumPyro's own sampler.  ``log_prob`` is
NumPyro's, unchanged.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro.distributions as nd
from jax import lax

from ..._mixture_math import SUPPORTED, implicit_shift, reparameterizable, student_t_cdf_standard

__all__ = [
    "SUPPORTED",
    "MixtureSameFamily",
    "implicit_reparam",
    "reparameterizable",
    "student_t_cdf_standard",
]


def fori(n, body, init):
    """:data:`dualguide._mixture_math.Loop` as one ``lax.fori_loop`` (m as a float)."""
    dtype = init[0].dtype
    return lax.fori_loop(1, n + 1, lambda m, carry: body(m.astype(dtype), carry), init)


def implicit_reparam(mix, x):
    """``x`` (drawn without gradient) with the implicit-reparameterization gradient attached."""
    x = lax.stop_gradient(x)
    p = lax.stop_gradient(jnp.exp(mix.log_prob(x)))
    return implicit_shift(mix, x, p, fori)


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
