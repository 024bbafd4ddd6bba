"""The one table of name correspondences between the neutral API, NumPyro and Pyro.

Rendering (``dualguide.backends.*``), native source export and porting all read
this table; nothing else in the package spells a framework name.  Each entry is
plain data, so this module imports neither framework.

Conventions
-----------
* Distribution entries: ``neutral name -> Dist(numpyro=..., pyro=..., ...)``.
  ``rename`` maps a neutral keyword (Pyro's spelling) to the NumPyro spelling
  where the two frameworks disagree.
* Constraint entries: ``neutral name -> (numpyro attribute, pyro attribute)``
  in ``numpyro.distributions.constraints`` / ``torch.distributions.constraints``.
* Op entries: ``neutral name -> (numpyro expression, pyro expression)`` used for
  source export and porting; the callables themselves live in each backend.
* Optimizers: neutral name -> the native class each backend builds on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BACKENDS = ("numpyro", "pyro")

#: pip extra that installs each backend's framework
EXTRAS = {"numpyro": "numpyro", "pyro": "pyro"}

#: top-level module that must be importable for each backend
FRAMEWORK_MODULES = {"numpyro": ("numpyro", "jax"), "pyro": ("pyro", "torch")}


@dataclass(frozen=True)
class Dist:
    """One distribution's names in both frameworks."""

    numpyro: str
    pyro: str
    #: neutral keyword -> numpyro keyword (neutral follows Pyro)
    rename: dict = field(default_factory=dict)
    #: False for distributions that cannot be sampled (models only)
    samplable: bool = True
    #: arguments that are constraints and must be converted
    constraint_args: tuple = ()
    #: the neutral positional argument names, for porting and error messages
    args: tuple = ()


DISTRIBUTIONS: dict[str, Dist] = {
    "Normal": Dist("Normal", "Normal", args=("loc", "scale")),
    "Cauchy": Dist("Cauchy", "Cauchy", args=("loc", "scale")),
    "StudentT": Dist("StudentT", "StudentT", args=("df", "loc", "scale")),
    "Laplace": Dist("Laplace", "Laplace", args=("loc", "scale")),
    "LogNormal": Dist("LogNormal", "LogNormal", args=("loc", "scale")),
    "HalfNormal": Dist("HalfNormal", "HalfNormal", args=("scale",)),
    "HalfCauchy": Dist("HalfCauchy", "HalfCauchy", args=("scale",)),
    "Gamma": Dist("Gamma", "Gamma", args=("concentration", "rate")),
    "Beta": Dist("Beta", "Beta", args=("concentration1", "concentration0")),
    "Exponential": Dist("Exponential", "Exponential", args=("rate",)),
    "Uniform": Dist("Uniform", "Uniform", args=("low", "high")),
    "ImproperUniform": Dist(
        "ImproperUniform",
        "ImproperUniform",
        samplable=False,
        constraint_args=("support",),
        args=("support", "batch_shape", "event_shape"),
    ),
    "Bernoulli": Dist("Bernoulli", "Bernoulli", args=("probs", "logits")),
    "Categorical": Dist("Categorical", "Categorical", args=("probs", "logits")),
    "MultivariateNormal": Dist(
        "MultivariateNormal",
        "MultivariateNormal",
        args=("loc", "covariance_matrix", "precision_matrix", "scale_tril"),
    ),
    "Dirichlet": Dist("Dirichlet", "Dirichlet", args=("concentration",)),
    "Delta": Dist("Delta", "Delta", args=("v", "log_density", "event_dim")),
    "MixtureSameFamily": Dist(
        "MixtureSameFamily",
        "MixtureSameFamily",
        rename={"mixture_distribution": "mixing_distribution"},
        args=("mixture_distribution", "component_distribution"),
    ),
}

CONSTRAINTS: dict[str, tuple[str, str]] = {
    "real": ("real", "real"),
    "positive": ("positive", "positive"),
    "interval": ("interval", "interval"),
    "unit_interval": ("unit_interval", "unit_interval"),
    "simplex": ("simplex", "simplex"),
    "lower_cholesky": ("lower_cholesky", "lower_cholesky"),
    "real_vector": ("real_vector", "real_vector"),
    "greater_than": ("greater_than", "greater_than"),
    "less_than": ("less_than", "less_than"),
    "positive_definite": ("positive_definite", "positive_definite"),
}

#: constraints that take arguments, with their argument names
CONSTRAINT_ARGS: dict[str, tuple[str, ...]] = {
    "interval": ("lower_bound", "upper_bound"),
    "greater_than": ("lower_bound",),
    "less_than": ("upper_bound",),
}

#: neutral op -> (NumPyro/JAX spelling, Pyro/torch spelling). Used by export and porting.
OPS: dict[str, tuple[str, str]] = {
    "exp": ("jnp.exp", "torch.exp"),
    "log": ("jnp.log", "torch.log"),
    "log1p": ("jnp.log1p", "torch.log1p"),
    "expm1": ("jnp.expm1", "torch.expm1"),
    "sqrt": ("jnp.sqrt", "torch.sqrt"),
    "square": ("jnp.square", "torch.square"),
    "abs": ("jnp.abs", "torch.abs"),
    "sin": ("jnp.sin", "torch.sin"),
    "cos": ("jnp.cos", "torch.cos"),
    "tan": ("jnp.tan", "torch.tan"),
    "arcsin": ("jnp.arcsin", "torch.asin"),
    "arccos": ("jnp.arccos", "torch.acos"),
    "arctan": ("jnp.arctan", "torch.atan"),
    "arctan2": ("jnp.arctan2", "torch.atan2"),
    "sinh": ("jnp.sinh", "torch.sinh"),
    "cosh": ("jnp.cosh", "torch.cosh"),
    "tanh": ("jnp.tanh", "torch.tanh"),
    "sigmoid": ("jax.nn.sigmoid", "torch.sigmoid"),
    "softplus": ("jax.nn.softplus", "torch.nn.functional.softplus"),
    "erf": ("jax.scipy.special.erf", "torch.special.erf"),
    "logaddexp": ("jnp.logaddexp", "torch.logaddexp"),
    "logsumexp": ("jax.scipy.special.logsumexp", "torch.logsumexp"),
    "sum": ("jnp.sum", "torch.sum"),
    "prod": ("jnp.prod", "torch.prod"),
    "mean": ("jnp.mean", "torch.mean"),
    "max": ("jnp.max", "torch.amax"),
    "min": ("jnp.min", "torch.amin"),
    "maximum": ("jnp.maximum", "torch.maximum"),
    "minimum": ("jnp.minimum", "torch.minimum"),
    "clip": ("jnp.clip", "torch.clamp"),
    "stack": ("jnp.stack", "torch.stack"),
    "concatenate": ("jnp.concatenate", "torch.cat"),
    "where": ("jnp.where", "torch.where"),
    "matmul": ("jnp.matmul", "torch.matmul"),
    "einsum": ("jnp.einsum", "torch.einsum"),
    "reshape": ("jnp.reshape", "torch.reshape"),
    "expand_dims": ("jnp.expand_dims", "torch.unsqueeze"),
    "swapaxes": ("jnp.swapaxes", "torch.transpose"),
    "zeros": ("jnp.zeros", "torch.zeros"),
    "ones": ("jnp.ones", "torch.ones"),
    "zeros_like": ("jnp.zeros_like", "torch.zeros_like"),
    "ones_like": ("jnp.ones_like", "torch.ones_like"),
    "full": ("jnp.full", "torch.full"),
    "arange": ("jnp.arange", "torch.arange"),
    "eye": ("jnp.eye", "torch.eye"),
    "asarray": ("jnp.asarray", "torch.as_tensor"),
    "isfinite": ("jnp.isfinite", "torch.isfinite"),
    "det": ("jnp.linalg.det", "torch.linalg.det"),
    "slogdet": ("jnp.linalg.slogdet", "torch.linalg.slogdet"),
    "inv": ("jnp.linalg.inv", "torch.linalg.inv"),
    "cholesky": ("jnp.linalg.cholesky", "torch.linalg.cholesky"),
}

#: neutral optimizer -> (NumPyro class it renders to, Pyro class it renders to)
OPTIMIZERS: dict[str, tuple[str, str]] = {
    "Adam": ("numpyro.optim.Adam", "dualguide torch Adam (same update as jax adam)"),
    "ClippedAdam": ("numpyro.optim.ClippedAdam", "dualguide torch ClippedAdam"),
}

#: the primitives, neutral -> (numpyro, pyro)
PRIMITIVES: dict[str, tuple[str, str]] = {
    "param": ("numpyro.param", "pyro.param"),
    "sample": ("numpyro.sample", "pyro.sample"),
    "plate": ("numpyro.plate", "pyro.plate"),
    "factor": ("numpyro.factor", "pyro.factor"),
    "deterministic": ("numpyro.deterministic", "pyro.deterministic"),
}


def native_name(kind: str, name: str, backend: str) -> str:
    """Return the native spelling of a neutral ``name`` of ``kind`` for ``backend``.

    >>> native_name("op", "concatenate", "pyro")
    'torch.cat'
    """
    i = BACKENDS.index(backend)
    if kind == "op":
        return OPS[name][i]
    if kind == "constraint":
        return CONSTRAINTS[name][i]
    if kind == "distribution":
        d = DISTRIBUTIONS[name]
        return d.numpyro if i == 0 else d.pyro
    if kind == "primitive":
        return PRIMITIVES[name][i]
    if kind == "optimizer":
        return OPTIMIZERS[name][i]
    raise ValueError(f"unknown kind {kind!r}")
