"""NumPyro classes for the table rows where NumPyro's own class differs from Pyro's.

* ``ZeroInflatedPoisson``: Pyro's ``(rate, *, gate=None, gate_logits=None)``; NumPyro's own
  class takes ``(gate, rate)`` in that order and no ``gate_logits``.
* ``ProjectedNormal``: NumPyro's ``log_prob`` is finite off the sphere; here it is -inf there,
  as for every other dualguide distribution.

Plain numpyro code (the export inlines it).
"""

import jax.numpy as jnp
import numpyro.distributions as dist


class ZeroInflatedPoisson:
    """``ZeroInflatedPoisson(rate, gate=...)`` or ``(rate, gate_logits=...)``, as in Pyro."""

    def __new__(cls, rate, *, gate=None, gate_logits=None, validate_args=None):
        return dist.ZeroInflatedDistribution(
            dist.Poisson(rate), gate=gate, gate_logits=gate_logits, validate_args=validate_args
        )


class ProjectedNormal(dist.ProjectedNormal):
    """NumPyro's ProjectedNormal with log_prob -inf for values off the unit sphere."""

    def log_prob(self, value):
        lp = super().log_prob(value)
        return jnp.where(self.support.check(value), lp, -jnp.inf)


def _int_count(n):
    """A float ``total_count`` as an int: NumPyro's binomial sampler indexes a table with it.
    float64 counts become int64, so log_prob's gammaln(n + 1) stays in float64."""
    n = jnp.asarray(n)
    if not jnp.issubdtype(n.dtype, jnp.floating):
        return n
    return n.astype(jnp.int64 if n.dtype == jnp.float64 else jnp.int32)


class Binomial:
    """NumPyro's Binomial, also sampling when ``total_count`` is a float (as in Pyro)."""

    def __new__(cls, total_count=1, probs=None, logits=None, *, validate_args=None):
        return dist.Binomial(_int_count(total_count), probs, logits, validate_args=validate_args)


class BetaBinomial:
    """NumPyro's BetaBinomial, also sampling when ``total_count`` is a float (as in Pyro)."""

    def __new__(cls, concentration1, concentration0, total_count=1, *, validate_args=None):
        return dist.BetaBinomial(
            concentration1, concentration0, _int_count(total_count), validate_args=validate_args
        )


class MultivariateStudentT(dist.MultivariateStudentT):
    """NumPyro's MultivariateStudentT with ``df`` broadcast to the whole batch shape.

    NumPyro 0.22 only prepends size-1 dims to a scalar ``df``, so its chi-square draw is
    shared by every batch element (batch draws are then dependent); Pyro broadcasts it.
    """

    def __init__(self, df, loc=0.0, scale_tril=None, *, validate_args=None):
        batch = jnp.broadcast_shapes(jnp.shape(df), jnp.shape(loc)[:-1], jnp.shape(scale_tril)[:-2])
        super().__init__(jnp.broadcast_to(df, batch), loc, scale_tril, validate_args=validate_args)
