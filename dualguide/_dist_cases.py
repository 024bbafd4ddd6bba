"""Test parameters for every distribution and transform row of ``dualguide/_table.py``.

``tests/test_dist_parity.py`` runs each case on both backends (log_prob, moments, rsample
gradients, support, ``biject_to``) and fails for a row without a case; the support matrix
(``python -m dualguide._support_matrix``) probes the same cases.  Nothing in the library
imports this module.

Each case builds the distribution under the active backend (``ops.asarray`` makes the
backend's arrays) and lists points inside the support (and, where the support is not all
reals, points outside it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import distributions as dist
from . import ops

A = ops.asarray


@dataclass(frozen=True)
class Case:
    """How to build one distribution row and where to evaluate it."""

    #: () -> (args, kwargs) under the active backend
    make: Callable[[], tuple[tuple, dict]]
    #: points inside the support (numpy), shape (n,) + batch + event
    points: Any
    #: points outside the support (None: the support is all reals, or not checked)
    outside: Any = None
    #: the moments test: False where mean or variance is not finite (or not defined)
    moments: bool = True
    #: the rsample-gradient test differentiates this argument (None: the first float array)
    rgrad: str | int | None = 0
    #: the points are indices (NumPyro's Categorical-like classes take integer values only)
    int_points: bool = False


def _corr3():
    c = np.array([[1.0, 0.3, -0.2], [0.3, 1.0, 0.4], [-0.2, 0.4, 1.0]])
    return c


_L = np.array([[1.0, 0.0], [0.5, 0.8]])
_PROBS3 = [0.2, 0.3, 0.5]

DIST_CASES: dict[str, Case] = {
    "Normal": Case(lambda: ((A(0.3), A(1.5)), {}), [-1.0, 0.2, 2.0]),
    "Cauchy": Case(lambda: ((A(0.3), A(1.5)), {}), [-1.0, 0.2, 2.0], moments=False),
    "StudentT": Case(lambda: ((A(9.0), A(0.3), A(1.5)), {}), [-1.0, 0.2, 2.0], rgrad=1),
    "Laplace": Case(lambda: ((A(0.3), A(1.5)), {}), [-1.0, 0.2, 2.0]),
    "LogNormal": Case(lambda: ((A(0.1), A(0.4)), {}), [0.5, 1.0, 2.0], [-1.0, 0.0]),
    "HalfNormal": Case(lambda: ((A(1.5),), {}), [0.5, 1.0, 2.0], [-1.0]),
    "HalfCauchy": Case(lambda: ((A(1.5),), {}), [0.5, 1.0, 2.0], [-1.0], moments=False),
    "Gamma": Case(lambda: ((A(2.5), A(1.5)), {}), [0.5, 1.0, 2.0], [-1.0]),
    "Beta": Case(lambda: ((A(2.0), A(3.0)), {}), [0.1, 0.5, 0.9], [-0.5, 1.5]),
    "Exponential": Case(lambda: ((A(1.5),), {}), [0.5, 1.0, 2.0], [-1.0]),
    "Uniform": Case(lambda: ((A(-1.0), A(2.0)), {}), [-0.5, 0.0, 1.5], [-2.0, 3.0]),
    "ImproperUniform": Case(
        lambda: ((dist.constraints.real, (), ()), {}), [-1.0, 0.0, 3.0], moments=False
    ),
    "Bernoulli": Case(lambda: ((), {"probs": A(0.3)}), [0.0, 1.0], [0.5, 2.0], rgrad=None),
    "Categorical": Case(
        lambda: ((), {"probs": A(_PROBS3)}), [0, 2], [3], rgrad=None, int_points=True
    ),
    "MultivariateNormal": Case(
        lambda: ((A([0.0, 1.0]),), {"scale_tril": A(_L)}), [[0.0, 0.0], [1.0, 2.0]]
    ),
    "Dirichlet": Case(lambda: ((A([1.5, 2.0, 3.0]),), {}), [[0.2, 0.3, 0.5]], [[0.5, 0.6, -0.1]]),
    "Delta": Case(lambda: ((A(1.0),), {"log_density": A(0.5)}), [1.0]),
    "MixtureSameFamily": Case(
        lambda: (
            (dist.Categorical(probs=A([0.3, 0.7])), dist.Normal(A([-1.0, 1.0]), A([0.5, 1.0]))),
            {},
        ),
        [-1.0, 0.2, 2.0],
        rgrad=None,
    ),
    "Poisson": Case(lambda: ((A(3.0),), {}), [0.0, 2.0, 5.0], [-1.0, 1.5], rgrad=None),
    "Binomial": Case(
        lambda: ((A(10.0),), {"probs": A(0.3)}), [0.0, 3.0, 10.0], [-1.0, 11.0], rgrad=None
    ),
    "Multinomial": Case(
        lambda: ((10,), {"probs": A(_PROBS3)}), [[2.0, 3.0, 5.0], [0.0, 0.0, 10.0]], rgrad=None
    ),
    "NegativeBinomial": Case(
        lambda: ((A(5.0),), {"probs": A(0.4)}), [0.0, 3.0, 7.0], [-1.0], rgrad=None
    ),
    "GammaPoisson": Case(lambda: ((A(2.0), A(0.5)), {}), [0.0, 3.0, 7.0], [-1.0], rgrad=None),
    "Geometric": Case(lambda: ((), {"probs": A(0.3)}), [0.0, 1.0, 4.0], [-1.0], rgrad=None),
    "BetaBinomial": Case(
        lambda: ((A(2.0), A(3.0), A(10.0)), {}), [0.0, 3.0, 10.0], [-1.0, 11.0], rgrad=None
    ),
    "DirichletMultinomial": Case(
        lambda: ((A([1.0, 2.0, 3.0]), A(10.0)), {}), [[2.0, 3.0, 5.0], [10.0, 0.0, 0.0]], rgrad=None
    ),
    "ZeroInflatedPoisson": Case(
        lambda: ((A(2.0),), {"gate": A(0.3)}), [0.0, 1.0, 3.0], [-1.0], rgrad=None
    ),
    "ZeroInflatedDistribution": Case(
        lambda: ((dist.Poisson(A(2.0)),), {"gate_logits": A(-0.5)}),
        [0.0, 1.0, 3.0],
        [-1.0],
        rgrad=None,
    ),
    "OrderedLogistic": Case(
        lambda: ((A(0.5), A([-1.0, 0.0, 1.5])), {}), [0, 1, 3], [4], rgrad=None, int_points=True
    ),
    "InverseGamma": Case(lambda: ((A(6.0), A(2.0)), {}), [0.2, 0.5, 1.0], [-1.0]),
    "Weibull": Case(lambda: ((A(1.5), A(2.0)), {}), [0.5, 1.0, 2.0], [-1.0]),
    "Gumbel": Case(lambda: ((A(0.3), A(1.5)), {}), [-1.0, 0.2, 2.0]),
    "Logistic": Case(lambda: ((A(0.3), A(1.5)), {}), [-1.0, 0.2, 2.0]),
    "Pareto": Case(lambda: ((A(1.0), A(9.0)), {}), [1.1, 1.5, 2.0], [0.5]),
    "Chi2": Case(lambda: ((A(4.0),), {}), [0.5, 2.0, 5.0], [-1.0]),
    "VonMises": Case(lambda: ((A(0.5), A(2.0)), {}), [-1.0, 0.5, 2.0], [4.0], moments=False),
    "Kumaraswamy": Case(lambda: ((A(2.0), A(3.0)), {}), [0.1, 0.5, 0.9], [-0.5, 1.5]),
    "AsymmetricLaplace": Case(lambda: ((A(0.3), A(1.5), A(0.8)), {}), [-1.0, 0.2, 2.0]),
    "SoftLaplace": Case(lambda: ((A(0.3), A(1.5)), {}), [-1.0, 0.2, 2.0]),
    "RelaxedBernoulli": Case(
        lambda: ((A(0.5),), {"probs": A(0.3)}), [0.2, 0.7], [-0.5, 1.5], moments=False, rgrad=None
    ),
    "LowRankMultivariateNormal": Case(
        lambda: ((A([0.0, 1.0]), A([[1.0], [0.5]]), A([1.0, 2.0])), {}),
        [[0.0, 0.0], [1.0, 2.0]],
    ),
    "MultivariateStudentT": Case(
        lambda: ((A(9.0), A([0.0, 1.0]), A(_L)), {}), [[0.0, 0.0], [1.0, 2.0]], rgrad=1
    ),
    "LKJ": Case(lambda: ((3, A(2.0)), {}), [_corr3()], [np.eye(3) * 2.0], rgrad=None),
    "LKJCholesky": Case(
        lambda: ((3, A(2.0)), {}), [np.linalg.cholesky(_corr3())], [np.eye(3) * 2.0], rgrad=None
    ),
    "Wishart": Case(
        lambda: ((A(5.0),), {"scale_tril": A(_L)}),
        [[[2.0, 0.5], [0.5, 1.0]], [[4.0, 1.0], [1.0, 3.0]]],
        [[[1.0, 2.0], [2.0, 1.0]]],
        rgrad=None,
    ),
    "ProjectedNormal": Case(
        lambda: ((A([1.0, 0.5, 0.0]),), {}),
        [[1.0, 0.0, 0.0], [0.6, 0.8, 0.0]],
        [[1.0, 1.0, 0.0]],
        moments=False,
    ),
    "SineBivariateVonMises": Case(
        lambda: ((A(0.0), A(0.5), A(1.0), A(2.0), A(0.5)), {}),
        [[0.0, 0.0], [1.0, -1.0]],
        [[4.0, 0.0]],
        moments=False,
        rgrad=None,
    ),
    "SineSkewed": Case(
        lambda: (
            (dist.Independent(dist.VonMises(A([0.0, 0.5]), A([1.0, 2.0])), 1), A([0.2, -0.3])),
            {},
        ),
        [[0.0, 0.0], [1.0, -1.0]],
        [[4.0, 0.0]],
        moments=False,
        rgrad=None,
    ),
    "FoldedDistribution": Case(
        lambda: ((dist.Normal(A(0.3), A(1.0)),), {}), [0.5, 1.0, 2.0], [-1.0], rgrad=None
    ),
    "Independent": Case(
        lambda: ((dist.Normal(A([0.0, 1.0]), A([1.0, 2.0])), 1), {}),
        [[0.0, 0.0], [1.0, 2.0]],
        rgrad=None,
    ),
    "ExpandedDistribution": Case(
        lambda: ((dist.Gamma(A(2.5), A(1.5)), (3,)), {}),
        [[0.5, 1.0, 2.0]],
        [[-0.5, -1.0, -2.0]],
        rgrad=None,
    ),
    "MaskedDistribution": Case(
        lambda: ((dist.Normal(A(0.3), A(1.5)), True), {}), [-1.0, 0.2, 2.0], rgrad=None
    ),
    "TransformedDistribution": Case(
        lambda: (
            (
                dist.Normal(A(0.1), A(0.4)),
                [dist.transforms.AffineTransform(0.5, 2.0), dist.transforms.ExpTransform()],
            ),
            {},
        ),
        [0.5, 1.0, 2.0],
        [-1.0],
        rgrad=None,
    ),
}


#: rows whose frameworks disagree on one aspect, kept as each framework has it:
#: name -> (aspects, what differs).  The parity tests skip that aspect for the row; the support
#: matrix prints the text.
DIFFERENCES: dict[str, tuple[tuple[str, ...], str]] = {
    "VonMises": (
        ("support",),
        "support: NumPyro `circular` [-pi, pi] (log_prob -inf outside), Pyro `real` "
        "(the periodic density everywhere)",
    ),
    "SineBivariateVonMises": (("support",), "support: NumPyro circular, Pyro real (as VonMises)"),
    "SineSkewed": (("support",), "support: NumPyro circular, Pyro real (as VonMises)"),
    "LKJ": (("rsample",), "has_rsample: NumPyro True (onion sampler), Pyro False"),
    "LKJCholesky": (("rsample",), "has_rsample: NumPyro True (onion sampler), Pyro False"),
    "Wishart": (
        ("biject_to", "rsample"),
        "biject_to(positive_definite): NumPyro maps n(n+1)/2 reals; torch has none (its "
        "transform_to maps an n x n matrix); has_rsample: NumPyro False, Pyro True",
    ),
}


@dataclass(frozen=True)
class TCase:
    """How to build one transform row and where to evaluate it (unconstrained points)."""

    make: Callable[[], tuple[tuple, dict]]
    #: points in the transform's domain (numpy), shape (n,) + event
    points: Any


_x = [-1.0, 0.2, 1.5]
_v3 = [[0.3, -0.5, 1.2], [1.0, 0.0, -2.0]]

TRANSFORM_CASES: dict[str, TCase] = {
    "AffineTransform": TCase(lambda: ((A(0.5), A(2.0)), {}), _x),
    "ExpTransform": TCase(lambda: ((), {}), _x),
    "SigmoidTransform": TCase(lambda: ((), {}), _x),
    "TanhTransform": TCase(lambda: ((), {}), _x),
    "SoftplusTransform": TCase(lambda: ((), {}), _x),
    "PowerTransform": TCase(lambda: ((A(1.5),), {}), [0.5, 1.0, 2.0]),
    "LowerCholeskyAffine": TCase(lambda: ((A([0.0, 1.0]), A(_L)), {}), [[0.3, -0.5], [1.0, 2.0]]),
    "ComposeTransform": TCase(
        lambda: (
            ([dist.transforms.AffineTransform(0.5, 2.0), dist.transforms.SigmoidTransform()],),
            {},
        ),
        _x,
    ),
    "IndependentTransform": TCase(lambda: ((dist.transforms.ExpTransform(), 1), {}), _v3),
    "StickBreakingTransform": TCase(lambda: ((), {}), _v3),
    "CorrCholeskyTransform": TCase(lambda: ((), {}), _v3),
    "CorrMatrixCholeskyTransform": TCase(lambda: ((), {}), [_corr3()]),
    "CholeskyTransform": TCase(lambda: ((), {}), [_corr3() * 2.0]),
    "OrderedTransform": TCase(lambda: ((), {}), _v3),
    "DiscreteCosineTransform": TCase(lambda: ((), {}), _v3),
    "HaarTransform": TCase(lambda: ((), {}), [[0.3, -0.5, 1.2, 0.4]]),
    "SimplexToOrderedTransform": TCase(lambda: ((A(0.5),), {}), [[0.2, 0.3, 0.5]]),
    "Permute": TCase(lambda: ((A([2, 0, 1]),), {}), _v3),
    "ReshapeTransform": TCase(lambda: (((6,), (2, 3)), {}), [[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]]),
}
