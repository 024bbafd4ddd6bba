"""Neutral distributions: call them as in Pyro; the active backend builds its native object.

``dist.Normal(0.0, scale)`` inside a rendered NumPyro guide returns a
``numpyro.distributions.Normal``; inside a rendered Pyro guide a
``pyro.distributions.Normal``.  The native object keeps its own methods
(``.to_event``, ``.expand``, ``.mask``, ``.log_prob``, ``.sample``).

Keywords follow Pyro where the frameworks differ (``MixtureSameFamily`` takes
``mixture_distribution=``).  ``ImproperUniform`` is for models only.

>>> import dualguide as dg
>>> from dualguide import distributions as dist
>>> with dg.use_backend("numpyro"):
...     d = dist.Normal(0.0, 2.0)
>>> type(d).__module__
'numpyro.distributions.continuous'
"""

from __future__ import annotations

from . import _state
from . import constraints as constraints
from . import dist_transforms as transforms
from ._dist_base import Distribution
from ._table import DISTRIBUTIONS
from .dist_transforms import biject_to

__all__ = [*DISTRIBUTIONS, "constraints", "transforms", "biject_to", "Distribution"]


class _Neutral:
    """A neutral distribution constructor; dispatches to the active backend."""

    __slots__ = ("name", "__dict__")

    def __init__(self, name: str):
        self.name = name
        spec = DISTRIBUTIONS[name]
        self.__doc__ = (
            f"Neutral ``{name}({', '.join(spec.args)})``: numpyro.distributions.{spec.numpyro} "
            f"or pyro.distributions.{spec.pyro}, whichever backend is active."
        )

    def __call__(self, *args, **kwargs):
        return _state.current().make_dist(self.name, args, kwargs)

    def __repr__(self) -> str:
        return f"dualguide.distributions.{self.name}"

    def __reduce__(self):
        return (_lookup, (self.name,))


def _lookup(name: str) -> _Neutral:
    """The neutral constructor called ``name`` (used to unpickle them)."""
    return globals()[name]


for _name in DISTRIBUTIONS:
    globals()[_name] = _Neutral(_name)

# explicit names for type checkers and readers
Normal = globals()["Normal"]
Cauchy = globals()["Cauchy"]
StudentT = globals()["StudentT"]
Laplace = globals()["Laplace"]
LogNormal = globals()["LogNormal"]
HalfNormal = globals()["HalfNormal"]
HalfCauchy = globals()["HalfCauchy"]
Gamma = globals()["Gamma"]
Beta = globals()["Beta"]
Exponential = globals()["Exponential"]
Uniform = globals()["Uniform"]
ImproperUniform = globals()["ImproperUniform"]
Bernoulli = globals()["Bernoulli"]
Categorical = globals()["Categorical"]
MultivariateNormal = globals()["MultivariateNormal"]
Dirichlet = globals()["Dirichlet"]
Delta = globals()["Delta"]
MixtureSameFamily = globals()["MixtureSameFamily"]
Poisson = globals()["Poisson"]
Binomial = globals()["Binomial"]
Multinomial = globals()["Multinomial"]
NegativeBinomial = globals()["NegativeBinomial"]
GammaPoisson = globals()["GammaPoisson"]
Geometric = globals()["Geometric"]
BetaBinomial = globals()["BetaBinomial"]
DirichletMultinomial = globals()["DirichletMultinomial"]
ZeroInflatedPoisson = globals()["ZeroInflatedPoisson"]
ZeroInflatedDistribution = globals()["ZeroInflatedDistribution"]
OrderedLogistic = globals()["OrderedLogistic"]
InverseGamma = globals()["InverseGamma"]
Weibull = globals()["Weibull"]
Gumbel = globals()["Gumbel"]
Logistic = globals()["Logistic"]
Pareto = globals()["Pareto"]
Chi2 = globals()["Chi2"]
VonMises = globals()["VonMises"]
Kumaraswamy = globals()["Kumaraswamy"]
AsymmetricLaplace = globals()["AsymmetricLaplace"]
SoftLaplace = globals()["SoftLaplace"]
RelaxedBernoulli = globals()["RelaxedBernoulli"]
LowRankMultivariateNormal = globals()["LowRankMultivariateNormal"]
MultivariateStudentT = globals()["MultivariateStudentT"]
LKJ = globals()["LKJ"]
LKJCholesky = globals()["LKJCholesky"]
Wishart = globals()["Wishart"]
ProjectedNormal = globals()["ProjectedNormal"]
SineBivariateVonMises = globals()["SineBivariateVonMises"]
SineSkewed = globals()["SineSkewed"]
FoldedDistribution = globals()["FoldedDistribution"]
Independent = globals()["Independent"]
ExpandedDistribution = globals()["ExpandedDistribution"]
MaskedDistribution = globals()["MaskedDistribution"]
TransformedDistribution = globals()["TransformedDistribution"]


def __getattr__(name: str):
    """``dist.Normall`` -> an error that suggests ``dist.Normal``."""
    if name.startswith("__") and name.endswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .errors import unknown_name

    raise unknown_name(
        "dualguide.distributions",
        "distribution",
        name,
        DISTRIBUTIONS,
        "; to add a distribution, add a row to DISTRIBUTIONS in dualguide/_table.py",
    )
