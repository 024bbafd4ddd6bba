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
    #: framework -> its own positional order (its keywords), where it is not ``args``: a port
    #: from that framework writes positional arguments as keywords
    #: (``tests/test_port_dist_order.py`` checks this against the frameworks' signatures)
    native_args: dict = field(default_factory=dict)
    #: arguments that are neutral transforms (``dualguide.dist_transforms``) or lists of them
    transform_args: tuple = ()


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
    # issue 12: every distribution Pyro 1.9 and NumPyro 0.22 share with the same meaning.
    # NumPyro's split classes (BinomialProbs/Logits, ...) are behind the one name its factory
    # function takes; tests/test_dist_parity.py checks every row on both backends.
    "Poisson": Dist("Poisson", "Poisson", args=("rate",)),
    "Binomial": Dist("Binomial", "Binomial", args=("total_count", "probs", "logits")),
    "Multinomial": Dist("Multinomial", "Multinomial", args=("total_count", "probs", "logits")),
    "NegativeBinomial": Dist(
        "NegativeBinomial", "NegativeBinomial", args=("total_count", "probs", "logits")
    ),
    "GammaPoisson": Dist("GammaPoisson", "GammaPoisson", args=("concentration", "rate")),
    "Geometric": Dist("Geometric", "Geometric", args=("probs", "logits")),
    "BetaBinomial": Dist(
        "BetaBinomial", "BetaBinomial", args=("concentration1", "concentration0", "total_count")
    ),
    "DirichletMultinomial": Dist(
        "DirichletMultinomial", "DirichletMultinomial", args=("concentration", "total_count")
    ),
    "ZeroInflatedPoisson": Dist(
        "ZeroInflatedPoisson",
        "ZeroInflatedPoisson",
        args=("rate", "gate", "gate_logits"),
        native_args={"numpyro": ("gate", "rate")},  # NumPyro's ZeroInflatedPoisson(gate, rate)
    ),
    "ZeroInflatedDistribution": Dist(
        "ZeroInflatedDistribution",
        "ZeroInflatedDistribution",
        args=("base_dist", "gate", "gate_logits"),
    ),
    "OrderedLogistic": Dist("OrderedLogistic", "OrderedLogistic", args=("predictor", "cutpoints")),
    "InverseGamma": Dist("InverseGamma", "InverseGamma", args=("concentration", "rate")),
    "Weibull": Dist("Weibull", "Weibull", args=("scale", "concentration")),
    "Gumbel": Dist("Gumbel", "Gumbel", args=("loc", "scale")),
    "Logistic": Dist("Logistic", "Logistic", args=("loc", "scale")),
    "Pareto": Dist("Pareto", "Pareto", args=("scale", "alpha")),
    "Chi2": Dist("Chi2", "Chi2", args=("df",)),
    "VonMises": Dist("VonMises", "VonMises", args=("loc", "concentration")),
    "Kumaraswamy": Dist("Kumaraswamy", "Kumaraswamy", args=("concentration1", "concentration0")),
    "AsymmetricLaplace": Dist(
        "AsymmetricLaplace", "AsymmetricLaplace", args=("loc", "scale", "asymmetry")
    ),
    "SoftLaplace": Dist("SoftLaplace", "SoftLaplace", args=("loc", "scale")),
    "RelaxedBernoulli": Dist(
        "RelaxedBernoulli", "RelaxedBernoulli", args=("temperature", "probs", "logits")
    ),
    "LowRankMultivariateNormal": Dist(
        "LowRankMultivariateNormal",
        "LowRankMultivariateNormal",
        args=("loc", "cov_factor", "cov_diag"),
    ),
    "MultivariateStudentT": Dist(
        "MultivariateStudentT", "MultivariateStudentT", args=("df", "loc", "scale_tril")
    ),
    "LKJ": Dist("LKJ", "LKJ", rename={"dim": "dimension"}, args=("dim", "concentration")),
    "LKJCholesky": Dist(
        "LKJCholesky", "LKJCholesky", rename={"dim": "dimension"}, args=("dim", "concentration")
    ),
    "Wishart": Dist(
        "Wishart",
        "Wishart",
        rename={
            "df": "concentration",
            "covariance_matrix": "scale_matrix",
            "precision_matrix": "rate_matrix",
        },
        args=("df", "covariance_matrix", "precision_matrix", "scale_tril"),
    ),
    "ProjectedNormal": Dist("ProjectedNormal", "ProjectedNormal", args=("concentration",)),
    "SineBivariateVonMises": Dist(
        "SineBivariateVonMises",
        "SineBivariateVonMises",
        args=(
            "phi_loc",
            "psi_loc",
            "phi_concentration",
            "psi_concentration",
            "correlation",
            "weighted_correlation",
        ),
    ),
    "SineSkewed": Dist("SineSkewed", "SineSkewed", args=("base_dist", "skewness")),
    "FoldedDistribution": Dist("FoldedDistribution", "FoldedDistribution", args=("base_dist",)),
    "Independent": Dist(
        "Independent",
        "Independent",
        rename={"base_distribution": "base_dist"},
        args=("base_distribution", "reinterpreted_batch_ndims"),
    ),
    "ExpandedDistribution": Dist(
        "ExpandedDistribution", "ExpandedDistribution", args=("base_dist", "batch_shape")
    ),
    "MaskedDistribution": Dist(
        "MaskedDistribution", "MaskedDistribution", args=("base_dist", "mask")
    ),
    "TransformedDistribution": Dist(
        "TransformedDistribution",
        "TransformedDistribution",
        transform_args=("transforms",),
        args=("base_distribution", "transforms"),
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

#: distributions whose Pyro classes take Python floats as they are; the others get tensors
#: (the Pyro backend converts float arguments, and the export writes ``torch.tensor(x)``)
PYRO_FLOAT_ARGS_OK = frozenset(
    "Normal Cauchy StudentT Laplace LogNormal HalfNormal HalfCauchy Gamma Beta Exponential "
    "Uniform ImproperUniform Bernoulli Categorical MultivariateNormal Dirichlet Delta "
    "MixtureSameFamily".split()
)

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
    "lgamma": ("jax.scipy.special.gammaln", "torch.lgamma"),
    "sign": ("jnp.sign", "torch.sign"),
    "stop_gradient": ("jax.lax.stop_gradient", "torch.detach"),
    "logaddexp": ("jnp.logaddexp", "torch.logaddexp"),
    "logsumexp": ("jax.scipy.special.logsumexp", "torch.logsumexp"),
    "sum": ("jnp.sum", "torch.sum"),
    "prod": ("jnp.prod", "torch.prod"),
    "mean": ("jnp.mean", "torch.mean"),
    "max": ("jnp.max", "torch.amax"),
    "min": ("jnp.min", "torch.amin"),
    "cumsum": ("jnp.cumsum", "torch.cumsum"),
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
    "broadcast_to": ("jnp.broadcast_to", "torch.broadcast_to"),
    "broadcast_arrays": ("jnp.broadcast_arrays", "torch.broadcast_tensors"),
    "take_along_axis": ("jnp.take_along_axis", "torch.take_along_dim"),
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
    # the array surface (issue 12): Python array API names and semantics where it fixes them
    "power": ("jnp.power", "torch.pow"),
    "cumprod": ("jnp.cumprod", "torch.cumprod"),
    "transpose": ("jnp.transpose", "torch.permute"),
    "permute_dims": ("jnp.permute_dims", "torch.permute"),
    "moveaxis": ("jnp.moveaxis", "torch.moveaxis"),
    "squeeze": ("jnp.squeeze", "torch.squeeze"),
    "astype": ("jnp.astype", "torch.Tensor.to"),
    "linspace": ("jnp.linspace", "torch.linspace"),
    "full_like": ("jnp.full_like", "torch.full_like"),
    "softmax": ("jax.nn.softmax", "torch.softmax"),
    "log_softmax": ("jax.nn.log_softmax", "torch.log_softmax"),
    "logit": ("jax.scipy.special.logit", "torch.special.logit"),
    "expit": ("jax.scipy.special.expit", "torch.special.expit"),
    "erfc": ("jax.scipy.special.erfc", "torch.special.erfc"),
    "digamma": ("jax.scipy.special.digamma", "torch.special.digamma"),
    "floor": ("jnp.floor", "torch.floor"),
    "ceil": ("jnp.ceil", "torch.ceil"),
    "isnan": ("jnp.isnan", "torch.isnan"),
    "argmax": ("jnp.argmax", "torch.argmax"),
    "argmin": ("jnp.argmin", "torch.argmin"),
    "tril": ("jnp.tril", "torch.tril"),
    "triu": ("jnp.triu", "torch.triu"),
    "outer": ("jnp.outer", "torch.outer"),
    "solve": ("jnp.linalg.solve", "torch.linalg.solve"),
    "solve_triangular": ("jax.scipy.linalg.solve_triangular", "torch.linalg.solve_triangular"),
    "norm": ("jnp.linalg.norm", "torch.linalg.norm"),
    "var": ("jnp.var", "torch.var"),
    "std": ("jnp.std", "torch.std"),
    "all": ("jnp.all", "torch.all"),
    "any": ("jnp.any", "torch.any"),
    "isinf": ("jnp.isinf", "torch.isinf"),
    "logical_not": ("jnp.logical_not", "torch.logical_not"),
    "logical_and": ("jnp.logical_and", "torch.logical_and"),
    "logical_or": ("jnp.logical_or", "torch.logical_or"),
    "diagonal": ("jnp.linalg.diagonal", "torch.linalg.diagonal"),
    "tensordot": ("jnp.tensordot", "torch.tensordot"),
    "sort": ("jnp.sort", "torch.sort"),  # torch's returns (values, indices): .values
    "argsort": ("jnp.argsort", "torch.argsort"),
    "take": ("jnp.take", "torch.index_select"),  # axis=None: torch.take
    "flip": ("jnp.flip", "torch.flip"),
    "roll": ("jnp.roll", "torch.roll"),
    "vecdot": ("jnp.vecdot", "torch.linalg.vecdot"),
    "kron": ("jnp.kron", "torch.kron"),
    "searchsorted": ("jnp.searchsorted", "torch.searchsorted"),
    # the neutral random source for param inits: ops.random.normal(key, shape)
    "random.normal": ("jax.random.normal", "torch.randn"),
    "random.uniform": ("jax.random.uniform", "torch.rand"),
}

#: neutral dtype name (``ops.astype(x, "int32")``) -> (NumPyro spelling, Pyro spelling)
OP_DTYPES: dict[str, tuple[str, str]] = {
    "float32": ("jnp.float32", "torch.float32"),
    "float64": ("jnp.float64", "torch.float64"),
    "int32": ("jnp.int32", "torch.int32"),
    "int64": ("jnp.int64", "torch.int64"),
    "bool": ("jnp.bool_", "torch.bool"),
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


# Autoguides ----------------------------------------------------------------------------------
# (added for porting: dualguide.autoguides, dualguide.porting read these rows)


@dataclass(frozen=True)
class AutoParam:
    """One param a native autoguide stores, as that framework names and constrains it.

    ``name`` is a template: ``{site}`` is a latent sample site.  ``constraint`` is the
    native constraint's attribute in ``numpyro.distributions.constraints`` /
    ``pyro.distributions.constraints`` (``"support"``: the site's own support), and
    ``neutral`` the neutral constraint with the same set of values (what dualguide
    records in ``FitResult.constraints`` and in saved params).  ``role`` names what
    the array means (see :data:`AUTOGUIDE_PARAMS`).
    """

    role: str
    name: str
    constraint: str = "real"
    neutral: str = "real"


@dataclass(frozen=True)
class AutoGuideSpec:
    """One autoguide's stored params in both frameworks and how to map one to the other.

    ``per_site``: one param per latent site (else one packed vector over all latents,
    each site's *unconstrained* value flattened, in the guide's site order).
    ``storage``: formulas from the stored arrays to the common roles where a framework
    stores a quantity factored (empty: the roles are stored as they are).
    """

    numpyro: tuple
    pyro: tuple
    per_site: bool
    storage: dict = field(default_factory=dict)
    #: whether the native guides have ``quantiles`` (AutoDelta has only ``median``)
    quantiles: bool = True


#: autoguide -> stored params.  Common roles: ``loc`` (unconstrained mean), ``scale``
#: (unconstrained std devs / diagonal factor), ``scale_tril`` (Cholesky factor of the
#: unconstrained covariance), ``cov_factor`` (low-rank factor W; covariance is
#: D W W^T D + D^2 with D = diag(scale), the same in both), ``value`` (AutoDelta's point,
#: constrained).  Verified against pyro-ppl 1.9.2 and numpyro 0.22.0 (numpyro's default
#: prefix "auto").
AUTOGUIDE_PARAMS: dict[str, AutoGuideSpec] = {
    "AutoNormal": AutoGuideSpec(
        numpyro=(
            AutoParam("loc", "{site}_auto_loc"),
            AutoParam("scale", "{site}_auto_scale", "softplus_positive", "positive"),
        ),
        pyro=(
            AutoParam("loc", "AutoNormal.locs.{site}"),
            AutoParam("scale", "AutoNormal.scales.{site}", "softplus_positive", "positive"),
        ),
        per_site=True,
    ),
    "AutoDelta": AutoGuideSpec(
        numpyro=(AutoParam("value", "{site}_auto_loc", "support", "support"),),
        pyro=(AutoParam("value", "AutoDelta.{site}", "support", "support"),),
        per_site=True,
        quantiles=False,
    ),
    "AutoDiagonalNormal": AutoGuideSpec(
        numpyro=(
            AutoParam("loc", "auto_loc"),
            AutoParam("scale", "auto_scale", "softplus_positive", "positive"),
        ),
        pyro=(
            AutoParam("loc", "AutoDiagonalNormal.loc"),
            AutoParam("scale", "AutoDiagonalNormal.scale", "softplus_positive", "positive"),
        ),
        per_site=False,
    ),
    "AutoMultivariateNormal": AutoGuideSpec(
        numpyro=(
            AutoParam("loc", "auto_loc"),
            AutoParam(
                "scale_tril", "auto_scale_tril", "scaled_unit_lower_cholesky", "lower_cholesky"
            ),
        ),
        pyro=(
            AutoParam("loc", "AutoMultivariateNormal.loc"),
            AutoParam("scale", "AutoMultivariateNormal.scale", "softplus_positive", "positive"),
            AutoParam(
                "unit_scale_tril",
                "AutoMultivariateNormal.scale_tril",
                "unit_lower_cholesky",
                "lower_cholesky",
            ),
        ),
        per_site=False,
        # Pyro factors the Cholesky factor as a scale vector times a unit-diagonal triangle
        storage={"pyro": "scale_tril = scale[:, None] * unit_scale_tril"},
    ),
    "AutoLowRankMultivariateNormal": AutoGuideSpec(
        numpyro=(
            AutoParam("loc", "auto_loc"),
            AutoParam("cov_factor", "auto_cov_factor"),
            AutoParam("scale", "auto_scale", "softplus_positive", "positive"),
        ),
        pyro=(
            AutoParam("loc", "AutoLowRankMultivariateNormal.loc"),
            AutoParam("cov_factor", "AutoLowRankMultivariateNormal.cov_factor"),
            AutoParam(
                "scale", "AutoLowRankMultivariateNormal.scale", "softplus_positive", "positive"
            ),
        ),
        per_site=False,
    ),
    # the MAP point of the packed unconstrained latents; the covariance is computed from the
    # Hessian at that point, not stored
    "AutoLaplaceApproximation": AutoGuideSpec(
        numpyro=(AutoParam("loc", "auto_loc"),),
        pyro=(AutoParam("loc", "AutoLaplaceApproximation.loc"),),
        per_site=False,
    ),
    # one masked autoregressive network (MADE) per flow ({flow}), {layer}: its masked dense
    # layers in order; ``skip``: the input-to-output skip layer (skip_connections=True).
    # NumPyro keeps a network's stax params as one pytree ``auto_arn__{flow}$params``;
    # dualguide's rendering registers each leaf as its own param under the names below.
    # torch's Linear stores the weight as (out, in), stax as (in, out): translation transposes.
    "AutoIAFNormal": AutoGuideSpec(
        numpyro=(
            AutoParam("weight", "auto_arn__{flow}$params.layers.{layer}.W"),
            AutoParam("bias", "auto_arn__{flow}$params.layers.{layer}.b"),
            AutoParam("skip", "auto_arn__{flow}$params.skip.W"),
        ),
        pyro=(
            AutoParam("weight", "AutoIAFNormal.transform$$${flow}.arn.layers.{layer}.weight"),
            AutoParam("bias", "AutoIAFNormal.transform$$${flow}.arn.layers.{layer}.bias"),
            AutoParam("skip", "AutoIAFNormal.transform$$${flow}.arn.skip_layer.weight"),
        ),
        per_site=False,
        # (no ``storage`` formula: a transpose maps element to element, gradients alike)
        quantiles=False,
    ),
}

#: neutral AutoIAFNormal keyword -> NumPyro's keyword (the neutral names are Pyro's)
AUTOGUIDE_ARGS: dict[str, dict[str, str]] = {
    "AutoIAFNormal": {"hidden_dim": "hidden_dims", "num_transforms": "num_flows"},
}

#: native autoguide constraints that are not neutral constraints -> the neutral constraint
#: that contains their values (same values for the softplus ones; ``unit_lower_cholesky``
#: further fixes the diagonal to 1).  The unconstraining transform differs, not the values.
AUTOGUIDE_CONSTRAINTS: dict[str, str] = {
    "softplus_positive": "positive",
    "scaled_unit_lower_cholesky": "lower_cholesky",
    "unit_lower_cholesky": "lower_cholesky",
    "softplus_lower_cholesky": "lower_cholesky",
    # torch says nonnegative for the support of HalfNormal, Gamma, Exponential, HalfCauchy
    # where NumPyro says positive; both frameworks unconstrain it with exp, never reaching 0
    "nonnegative": "positive",
}

#: neutral autoguide init strategy -> (numpyro, pyro) function in
#: numpyro.infer.initialization / pyro.infer.autoguide.initialization
AUTOGUIDE_INITS: dict[str, tuple[str, str]] = {
    "feasible": ("init_to_feasible", "init_to_feasible"),
    "median": ("init_to_median", "init_to_median"),
    "mean": ("init_to_mean", "init_to_mean"),
    "uniform": ("init_to_uniform", "init_to_uniform"),
    "sample": ("init_to_sample", "init_to_sample"),
    "value": ("init_to_value", "init_to_value"),
}

#: init strategy -> its keyword arguments and their neutral defaults (the same in both
#: frameworks: NumPyro's and Pyro's init_to_median take num_samples=15, init_to_uniform
#: radius=2)
AUTOGUIDE_INIT_ARGS: dict[str, dict[str, object]] = {
    "feasible": {},
    "median": {"num_samples": 15},
    "mean": {},
    "uniform": {"radius": 2.0},
    "sample": {},
    "value": {"values": None},
}


# Native optimizers and module aliases -----------------------------------------------------------
# (added for source export and porting: dualguide.porting.export / .port read these rows)

#: neutral optimizer -> (the NumPyro class, the Pyro class) a user of each framework writes.
#: NumPyro takes keywords (see NUMPYRO_OPTIM_ARGS); Pyro one dict of torch-style settings
#: with the neutral names (lr, betas, eps, clip_norm, lrd).
NATIVE_OPTIMIZERS: dict[str, tuple[str, str]] = {
    "Adam": ("numpyro.optim.Adam", "pyro.optim.Adam"),
    "ClippedAdam": ("numpyro.optim.ClippedAdam", "pyro.optim.ClippedAdam"),
}

#: neutral optimizer argument -> NumPyro keyword (``betas`` is NumPyro's ``b1, b2``)
NUMPYRO_OPTIM_ARGS: dict[str, object] = {
    "lr": "step_size",
    "betas": ("b1", "b2"),
    "eps": "eps",
    "clip_norm": "clip_norm",
}

#: short module names the OPS spellings use -> the module they stand for
NATIVE_MODULE_ALIASES: dict[str, str] = {"jnp": "jax.numpy"}


#: the arguments each distribution requires, as Pyro's signature does (NumPyro has defaults for
#: some, e.g. ``Normal(loc=0, scale=1)``): the one rule of both backends (``dualguide._inputs``).
#: ``"a|b"``: exactly one of them.  A row without an entry is checked by the framework alone.
DIST_REQUIRED: dict[str, tuple[str, ...]] = {
    "Normal": ("loc", "scale"),
    "Cauchy": ("loc", "scale"),
    "StudentT": ("df",),
    "Laplace": ("loc", "scale"),
    "LogNormal": ("loc", "scale"),
    "HalfNormal": ("scale",),
    "HalfCauchy": ("scale",),
    "Gamma": ("concentration", "rate"),
    "Beta": ("concentration1", "concentration0"),
    "Exponential": ("rate",),
    "Uniform": ("low", "high"),
    "ImproperUniform": ("support", "batch_shape", "event_shape"),
    "Bernoulli": ("probs|logits",),
    "Categorical": ("probs|logits",),
    "MultivariateNormal": ("loc", "covariance_matrix|precision_matrix|scale_tril"),
    "Dirichlet": ("concentration",),
    "Delta": ("v",),
    "MixtureSameFamily": ("mixture_distribution", "component_distribution"),
    # the rows added for issue 12 (read off pyro-ppl 1.9.2's signatures)
    "Poisson": ("rate",),
    "Binomial": ("probs|logits",),
    "Multinomial": ("probs|logits",),
    "NegativeBinomial": ("total_count", "probs|logits"),
    "GammaPoisson": ("concentration", "rate"),
    "Geometric": ("probs|logits",),
    "BetaBinomial": ("concentration1", "concentration0"),
    "DirichletMultinomial": ("concentration",),
    "ZeroInflatedPoisson": ("rate", "gate|gate_logits"),
    "ZeroInflatedDistribution": ("base_dist", "gate|gate_logits"),
    "OrderedLogistic": ("predictor", "cutpoints"),
    "InverseGamma": ("concentration", "rate"),
    "Weibull": ("scale", "concentration"),
    "Gumbel": ("loc", "scale"),
    "Logistic": ("loc", "scale"),
    "Pareto": ("scale", "alpha"),
    "Chi2": ("df",),
    "VonMises": ("loc", "concentration"),
    "Kumaraswamy": ("concentration1", "concentration0"),
    "AsymmetricLaplace": ("loc", "scale", "asymmetry"),
    "SoftLaplace": ("loc", "scale"),
    "RelaxedBernoulli": ("temperature", "probs|logits"),
    "LowRankMultivariateNormal": ("loc", "cov_factor", "cov_diag"),
    "MultivariateStudentT": ("df", "loc", "scale_tril"),
    "LKJ": ("dim",),
    "LKJCholesky": ("dim",),
    "Wishart": ("df", "covariance_matrix|precision_matrix|scale_tril"),
    "ProjectedNormal": ("concentration",),
    "SineBivariateVonMises": ("phi_loc", "psi_loc", "phi_concentration", "psi_concentration"),
    "SineSkewed": ("base_dist", "skewness"),
    "FoldedDistribution": ("base_dist",),
    "Independent": ("base_distribution", "reinterpreted_batch_ndims"),
    "ExpandedDistribution": ("base_dist",),
    "MaskedDistribution": ("base_dist", "mask"),
    "TransformedDistribution": ("base_distribution", "transforms"),
}


# Canonical distribution identity -----------------------------------------------------------------
# (added for crosscheck: a site's distribution compared across frameworks by what it is, not by
# the class that implements it)

#: native class name -> the neutral distribution it is.  NumPyro implements some families as
#: one class per parametrization (``Bernoulli(logits=...)`` is a ``BernoulliLogits``); Pyro has
#: one class per family.  Verified against numpyro 0.22.0 and pyro-ppl 1.9.2.
DIST_ALIASES: dict[str, str] = {
    "BernoulliProbs": "Bernoulli",
    "BernoulliLogits": "Bernoulli",
    "CategoricalProbs": "Categorical",
    "CategoricalLogits": "Categorical",
    "MultinomialProbs": "Multinomial",
    "MultinomialLogits": "Multinomial",
    "BinomialProbs": "Binomial",
    "BinomialLogits": "Binomial",
    "GeometricProbs": "Geometric",
    "GeometricLogits": "Geometric",
    # NumPyro's ZeroInflatedDistribution(base, gate=...) is a ZeroInflatedProbs (Logits)
    "ZeroInflatedProbs": "ZeroInflatedDistribution",
    "ZeroInflatedLogits": "ZeroInflatedDistribution",
}

#: neutral distribution -> the more general one it is a case of.  NumPyro's
#: ``ZeroInflatedPoisson(gate, rate)`` is a class of its own, while dualguide's NumPyro backend
#: builds it as ``ZeroInflatedDistribution(Poisson(rate), gate=...)`` (a ZeroInflatedProbs):
#: the same distribution, told apart by its values and log densities, not by its class.
DIST_CASE_OF: dict[str, str] = {"ZeroInflatedPoisson": "ZeroInflatedDistribution"}


def same_dist(a: str | None, b: str | None) -> bool:
    """Whether native class names ``a`` and ``b`` may be the same distribution: the same
    neutral identity (:func:`canonical_dist`), or one a case of the other (:data:`DIST_CASE_OF`).

    >>> same_dist("ZeroInflatedPoisson", "ZeroInflatedProbs"), same_dist("Normal", "Cauchy")
    (True, False)
    """
    ca, cb = canonical_dist(a), canonical_dist(b)
    return ca == cb or DIST_CASE_OF.get(ca or "", ca) == DIST_CASE_OF.get(cb or "", cb)


def canonical_dist(name: str | None) -> str | None:
    """The neutral identity of a native distribution class name (itself if it has no alias).

    >>> canonical_dist("BernoulliLogits"), canonical_dist("Bernoulli"), canonical_dist("Normal")
    ('Bernoulli', 'Bernoulli', 'Normal')
    """
    if name is None:
        return None
    if name in DIST_ALIASES:
        return DIST_ALIASES[name]
    for neutral, row in DISTRIBUTIONS.items():
        if name in (row.numpyro, row.pyro):
            return neutral
    return name


# Effect handlers, reparameterizers, SVI (dualguide.handlers, dualguide.reparam, dualguide.svi) ---

#: neutral handler -> (the numpyro.handlers class, the pyro.poutine function) it renders to.
#: condition / substitute / do / replay render to subclasses that add dualguide's documented
#: behaviour (docs/handlers.md); the others are the frameworks' own.
HANDLERS: dict[str, tuple[str, str]] = {
    "seed": ("seed", "seed"),
    "trace": ("trace", "trace"),
    "replay": ("replay", "replay"),
    "condition": ("condition", "condition"),
    "do": ("do", "do"),
    "block": ("block", "block"),
    "substitute": ("substitute", "substitute"),
    "scale": ("scale", "scale"),
    "mask": ("mask", "mask"),
    "reparam": ("reparam", "reparam"),
    "uncondition": ("uncondition", "uncondition"),
}

#: reparameterizers both frameworks have: neutral name -> (numpyro.infer.reparam class,
#: pyro.infer.reparam class)
REPARAMS: dict[str, tuple[str, str]] = {
    "LocScaleReparam": ("LocScaleReparam", "LocScaleReparam"),
}

#: neutral ELBO -> (numpyro.infer class, pyro.infer class) of the SVI object (dualguide.svi)
ELBOS: dict[str, tuple[str, str]] = {
    "Trace_ELBO": ("Trace_ELBO", "Trace_ELBO"),
    "TraceMeanField_ELBO": ("TraceMeanField_ELBO", "TraceMeanField_ELBO"),
    # issue 14 (docs/elbo.md): no baselines on either side (NumPyro's has none)
    "TraceGraph_ELBO": ("TraceGraph_ELBO", "TraceGraph_ELBO"),
    "RenyiELBO": ("RenyiELBO", "RenyiELBO"),
    # issue 14: discrete latents summed out exactly (docs/elbo.md); max_plate_nesting required
    "TraceEnum_ELBO": ("TraceEnum_ELBO", "TraceEnum_ELBO"),
}

#: discrete latents by enumeration (dualguide.enum): the ``dg.<name>`` a native spelling ports
#: to -> (its NumPyro spellings, its Pyro spellings).  Verified against numpyro 0.22.0 and
#: pyro-ppl 1.9.2; NumPyro's are in numpyro.contrib.funsor (they need funsor).
ENUM: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "config_enumerate": (
        (
            "numpyro.contrib.funsor.config_enumerate",
            "numpyro.contrib.funsor.infer_util.config_enumerate",
        ),
        ("pyro.infer.config_enumerate", "pyro.infer.enum.config_enumerate"),
    ),
    "markov": (
        ("numpyro.contrib.funsor.markov", "numpyro.contrib.funsor.enum_messenger.markov"),
        ("pyro.markov", "pyro.poutine.markov"),
    ),
    "infer_discrete": (
        ("numpyro.contrib.funsor.infer_discrete", "numpyro.contrib.funsor.discrete.infer_discrete"),
        ("pyro.infer.infer_discrete", "pyro.infer.discrete.infer_discrete"),
    ),
    "ops.Vindex": (
        ("numpyro.ops.indexing.Vindex", "numpyro.contrib.indexing.Vindex"),
        ("pyro.ops.indexing.Vindex",),
    ),
    "infer.TraceEnum_ELBO": (
        ("numpyro.infer.TraceEnum_ELBO",),
        ("pyro.infer.TraceEnum_ELBO", "pyro.infer.JitTraceEnum_ELBO"),
    ),
}


# Transforms (issue 12) -------------------------------------------------------------------------
# (dualguide.dist_transforms builds neutral transforms from these rows; each backend's dists.py
# renders them; the support matrix and tests/test_dist_parity.py read them)


@dataclass(frozen=True)
class Trans:
    """One transform's class names in ``numpyro.distributions.transforms`` and
    ``pyro.distributions.transforms`` (None: that framework has no such class, and the
    backend's ``dists.py`` builds the same map itself)."""

    numpyro: str | None
    pyro: str | None
    #: the neutral argument names (Pyro's)
    args: tuple = ()
    #: neutral keyword -> numpyro keyword
    rename: dict = field(default_factory=dict)


#: neutral transform (Pyro's name) -> its classes.  Only transforms whose forward map, inverse
#: and log|det J| agree in both frameworks (checked by tests/test_dist_parity.py).
TRANSFORMS: dict[str, Trans] = {
    "AffineTransform": Trans("AffineTransform", "AffineTransform", ("loc", "scale", "event_dim")),
    "ExpTransform": Trans("ExpTransform", "ExpTransform"),
    "SigmoidTransform": Trans("SigmoidTransform", "SigmoidTransform"),
    "TanhTransform": Trans(None, "TanhTransform"),
    "SoftplusTransform": Trans("SoftplusTransform", "SoftplusTransform"),
    "PowerTransform": Trans("PowerTransform", "PowerTransform", ("exponent",)),
    "LowerCholeskyAffine": Trans(
        "LowerCholeskyAffine", "LowerCholeskyAffine", ("loc", "scale_tril")
    ),
    "ComposeTransform": Trans("ComposeTransform", "ComposeTransform", ("parts",)),
    "IndependentTransform": Trans(
        "IndependentTransform",
        "IndependentTransform",
        ("base_transform", "reinterpreted_batch_ndims"),
    ),
    "StickBreakingTransform": Trans("StickBreakingTransform", "StickBreakingTransform"),
    "CorrCholeskyTransform": Trans("CorrCholeskyTransform", "CorrCholeskyTransform"),
    "CorrMatrixCholeskyTransform": Trans(
        "CorrMatrixCholeskyTransform", "CorrMatrixCholeskyTransform"
    ),
    "CholeskyTransform": Trans("CholeskyTransform", "CholeskyTransform"),
    "OrderedTransform": Trans("OrderedTransform", "OrderedTransform"),
    "DiscreteCosineTransform": Trans(
        "DiscreteCosineTransform", "DiscreteCosineTransform", ("dim", "smooth")
    ),
    "HaarTransform": Trans("HaarTransform", "HaarTransform", ("dim", "flip")),
    "SimplexToOrderedTransform": Trans(
        "SimplexToOrderedTransform", "SimplexToOrderedTransform", ("anchor_point",)
    ),
    "Permute": Trans("PermuteTransform", "Permute", ("permutation",)),
    "ReshapeTransform": Trans(
        "ReshapeTransform",
        "ReshapeTransform",
        ("in_shape", "out_shape"),
        rename={"in_shape": "inverse_shape", "out_shape": "forward_shape"},
    ),
}
