"""Pyro's ``ZeroInflatedPoisson(rate, *, gate=None, gate_logits=None)`` on NumPyro.

NumPyro's own class takes ``(gate, rate)`` in that order and no ``gate_logits``; this builds
the same distribution from NumPyro's ``ZeroInflatedDistribution`` over ``Poisson(rate)``.
Plain numpyro code (the export inlines it).
"""

import numpyro.distributions as dist


class ZeroInflatedPoisson:
    """``ZeroInflatedPoisson(rate, gate=...)`` or ``(rate, gate_logits=...)``, as in Pyro."""

    def __new__(cls, rate, *, gate=None, gate_logits=None, validate_args=None):
        return dist.ZeroInflatedDistribution(
            dist.Poisson(rate), gate=gate, gate_logits=gate_logits, validate_args=validate_args
        )
