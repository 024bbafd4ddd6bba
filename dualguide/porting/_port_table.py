"""The porter's vocabulary: the table of correspondences read backwards, per framework.

:func:`reverse_table` maps each native spelling (``jax.numpy.exp``,
``pyro.distributions.Normal``) to its neutral name; the tables here add what the
table does not spell: synonyms a user may write, constants, the fitting APIs
that are dropped, and torch methods with no neutral counterpart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import _table

FRAMEWORK_PACKAGES = {"numpyro": ("numpyro", "jax", "jaxlib"), "pyro": ("pyro", "torch")}

#: native call -> neutral, beyond the table's own spellings (synonyms a user may write)
SYNONYMS = {
    "numpyro": {
        "jax.numpy.array": "asarray",
        "jax.numpy.concat": "concatenate",
        "jax.numpy.absolute": "abs",
        "jax.numpy.amax": "max",
        "jax.numpy.amin": "min",
        "jax.numpy.atan2": "arctan2",
        "jax.scipy.special.expit": "sigmoid",
        "jax.numpy.logaddexp": "logaddexp",
        "jax.numpy.pow": "power",
        "jax.numpy.clip": "clip",
    },
    "pyro": {
        "torch.tensor": "asarray",
        "torch.as_tensor": "asarray",
        "torch.concat": "concatenate",
        "torch.concatenate": "concatenate",
        "torch.clip": "clip",
        "torch.absolute": "abs",
        "torch.arctan2": "arctan2",
        "torch.arcsin": "arcsin",
        "torch.arccos": "arccos",
        "torch.arctan": "arctan",
        "torch.special.expit": "sigmoid",
        "torch.max": "max",
        "torch.min": "min",
        "torch.swapaxes": "swapaxes",
        "torch.det": "det",
        "torch.inverse": "inv",
        "torch.cholesky": "cholesky",
        "torch.logit": "logit",
        "torch.erfc": "erfc",
        "torch.digamma": "digamma",
        "torch.nn.functional.softmax": "softmax",
        "torch.nn.functional.log_softmax": "log_softmax",
        "torch.take": "take",
    },
}
#: native networks -> ``dg.nn`` (dualguide.nn; docs/nn.md): torch.nn layers and ``pyro.module``.
#: NumPyro's ``numpyro.module`` and stax layers -> ``dg.nn.module`` and ``dg.nn.stax`` (sized
#: from ``input_shape`` at registration, as numpyro.module does); flax has no row.
_STAX = "jax.example_libraries.stax."
NN = {
    "numpyro": {
        "numpyro.module": "module",
        **{
            _STAX + n: "stax." + n
            for n in (
                "serial",
                "parallel",
                "Dense",
                "FanOut",
                "Relu",
                "Elu",
                "LeakyRelu",
                "Softplus",
                "Sigmoid",
                "Tanh",
                "Exp",
                "Identity",
                "Softmax",
                "LogSoftmax",
            )
        },
    },
    "pyro": {
        "pyro.module": "module",
        "pyro.random_module": "random_module",
        "torch.nn.Module": "Module",
        "torch.nn.Linear": "Linear",
        "torch.nn.Sequential": "Sequential",
        "torch.nn.ReLU": "ReLU",
        "torch.nn.LeakyReLU": "LeakyReLU",
        "torch.nn.ELU": "ELU",
        "torch.nn.Softplus": "Softplus",
        "torch.nn.Tanh": "Tanh",
        "torch.nn.Sigmoid": "Sigmoid",
        "torch.nn.Identity": "Identity",
        "torch.nn.Softmax": "Softmax",
        "torch.nn.LogSoftmax": "LogSoftmax",
        "torch.nn.functional.linear": "linear",
        "torch.nn.functional.relu": "relu",
        "torch.nn.functional.leaky_relu": "leaky_relu",
        "torch.nn.functional.elu": "elu",
    },
}
#: native constants -> neutral ops constant
CONSTANTS = {
    "numpyro": {
        "jax.numpy.pi": "pi",
        "jax.numpy.e": "e",
        "jax.numpy.inf": "inf",
        "jax.numpy.newaxis": "newaxis",
    },
    "pyro": {"torch.pi": "pi", "torch.e": "e", "torch.inf": "inf"},
}
#: torch reductions whose keyword is keepdim (neutral: keepdims)
REDUCTIONS = {
    "sum",
    "prod",
    "mean",
    "max",
    "min",
    "logsumexp",
    "argmax",
    "argmin",
    "norm",
    "var",
    "std",
    "all",
    "any",
}
#: neutral ops of the random source: only a param init has a key for them
RANDOM = {"random.normal", "random.uniform"}
#: torch keyword -> neutral keyword, per op, where torch names an argument otherwise
TORCH_KEYWORDS = {
    "linspace": {"steps": "num"},
    "tril": {"diagonal": "k"},
    "triu": {"diagonal": "k"},
    "tensordot": {"dims": "axes"},
    "flip": {"dims": "axis"},
    "roll": {"shifts": "shift", "dims": "axis"},
}
#: torch tensor methods that convert the dtype -> the neutral dtype name
TORCH_DTYPE_METHODS = {
    "float": "float32",
    "double": "float64",
    "int": "int32",
    "long": "int64",
    "bool": "bool",
}


def dtype_names(framework: str) -> dict[str, str]:
    """Native dtype (``jax.numpy.int32``, ``torch.int32``) -> neutral dtype name."""
    i = _table.BACKENDS.index(framework)
    out = {_expand(v[i]): k for k, v in _table.OP_DTYPES.items()}
    if framework == "pyro":
        out.update({"torch.float": "float32", "torch.double": "float64", "torch.long": "int64"})
    return out


#: keywords that say "float32" and can be dropped
FLOAT32 = {"jax.numpy.float32", "torch.float32", "torch.float"}
#: native modules whose use is fitting code (dropped at the top level, a problem in programs)
FITTING = {
    "numpyro": (
        "numpyro.infer",
        "numpyro.optim",
        "numpyro.handlers",
        "jax.random",
        "numpyro.set_platform",
        "numpyro.set_host_device_count",
        "jax.jit",
        "numpyro.enable_x64",
        "numpyro.enable_validation",
    ),
    "pyro": (
        "pyro.infer",
        "pyro.optim",
        "pyro.poutine",
        "pyro.set_rng_seed",
        "pyro.clear_param_store",
        "pyro.get_param_store",
        "pyro.enable_validation",
        "torch.manual_seed",
        "torch.set_default_dtype",
        "torch.no_grad",
    ),
}
#: fitting APIs that are ported, not dropped: native -> the dualguide name (``dg.<name>``).
#: Pyro's stateful SVI loop and NumPyro's functional one (init / update / run, in a Python
#: loop or lax.scan / fori_loop) both map onto dg.infer.SVI (docs/handlers.md); a key is its
#: int seed (dg.infer.PRNGKey).  NumPyro's ``Predictive(rng_key, ...)`` call has no row.
PORTED_FITTING: dict[str, dict[str, str]] = {
    "numpyro": {
        "numpyro.infer.SVI": "infer.SVI",
        "numpyro.infer.svi.SVI": "infer.SVI",
        "numpyro.infer.Trace_ELBO": "infer.Trace_ELBO",
        "numpyro.infer.TraceMeanField_ELBO": "infer.TraceMeanField_ELBO",
        "numpyro.infer.TraceGraph_ELBO": "infer.TraceGraph_ELBO",
        "numpyro.infer.RenyiELBO": "infer.RenyiELBO",
        "jax.random.PRNGKey": "infer.PRNGKey",
        "jax.jit": "infer.jit",
        "jax.lax.scan": "infer.scan",
        "jax.lax.fori_loop": "infer.fori_loop",
    },
    "pyro": {
        "pyro.infer.SVI": "infer.SVI",
        "pyro.infer.Trace_ELBO": "infer.Trace_ELBO",
        "pyro.infer.JitTrace_ELBO": "infer.Trace_ELBO",
        "pyro.infer.TraceMeanField_ELBO": "infer.TraceMeanField_ELBO",
        "pyro.infer.Predictive": "infer.Predictive",
        "pyro.clear_param_store": "clear_param_store",
        "pyro.get_param_store": "get_param_store",
        "pyro.set_rng_seed": "set_rng_seed",
        "torch.manual_seed": "set_rng_seed",
    },
}
#: a user-defined distribution's native base class (issue 12): a subclass of one of these whose
#: methods use mapped ops ports to a ``dist.Distribution`` subclass (dualguide/_dist_base.py)
USER_DIST_BASES = {
    "numpyro": (
        "numpyro.distributions.Distribution",
        "numpyro.distributions.distribution.Distribution",
    ),
    "pyro": (
        "pyro.distributions.TorchDistribution",
        "pyro.distributions.torch_distribution.TorchDistribution",
    ),
}
#: shape helpers of a distribution's methods: native -> how the neutral code writes them
BROADCAST_ALL = (
    "torch.distributions.utils.broadcast_all",
    "pyro.distributions.util.broadcast_all",
)
VALIDATE_SAMPLE = ("numpyro.distributions.util.validate_sample",)
#: torch tensor methods with no jax counterpart of the same meaning
TORCH_ONLY_METHODS = {
    "view",
    "size",
    "detach",
    "numpy",
    "to",
    "cpu",
    "cuda",
    "clone",
    "new_tensor",
    "new_zeros",
    "new_ones",
    "new_full",
    "masked_fill",
    "index_select",
    "t",
    "expand_as",
    "repeat",
    "requires_grad_",
    "unsqueeze_",
    "add_",
    "mul_",
    "copy_",
    "zero_",
    "fill_",
    "type",
}


def _expand(spelling: str) -> str:
    """A table spelling (``jnp.exp``) as a fully qualified name (``jax.numpy.exp``)."""
    head, _, rest = spelling.partition(".")
    return f"{_table.NATIVE_MODULE_ALIASES.get(head, head)}.{rest}"


#: names a framework re-exports at its top level (``pyro/__init__.py``: ``from pyro.poutine
#: import condition, do``) -> the name the table reads
REEXPORTS = {"pyro.condition": "pyro.poutine.condition", "pyro.do": "pyro.poutine.do"}


def native_canonical(q: str) -> str:
    if q in REEXPORTS:
        return REEXPORTS[q]
    for old, new in (
        ("numpyro.primitives.", "numpyro."),
        ("pyro.primitives.", "pyro."),
        ("pyro.distributions.constraints.", "torch.distributions.constraints."),
        ("jax.numpy.linalg.", "jax.numpy.linalg."),
    ):
        if q.startswith(old):
            q = new + q[len(old) :]
    return q


@dataclass
class Reverse:
    """The table read backwards for one framework."""

    primitives: dict
    dists: dict
    constraints: dict
    ops: dict
    constants: dict
    optimizers: dict
    #: native handler (``pyro.poutine.scale``) -> neutral ``dg.handlers`` name
    handlers: dict = field(default_factory=dict)
    #: native reparameterizer class -> neutral ``dualguide.reparam`` name
    reparams: dict = field(default_factory=dict)
    #: ported fitting API (``pyro.infer.SVI``) -> ``dg.<name>`` (PORTED_FITTING)
    fitting: dict = field(default_factory=dict)
    #: native transform class (and biject_to) -> neutral transform name (issue 12)
    transforms: dict = field(default_factory=dict)
    #: native network API -> ``dg.nn`` name (:data:`NN`)
    nn: dict = field(default_factory=dict)


def reverse_table(framework: str) -> Reverse:
    i = _table.BACKENDS.index(framework)
    prims = {v[i]: k for k, v in _table.PRIMITIVES.items()}
    if framework == "numpyro":
        dists = {f"numpyro.distributions.{d.numpyro}": n for n, d in _table.DISTRIBUTIONS.items()}
        cons = {
            f"numpyro.distributions.constraints.{c[0]}": n for n, c in _table.CONSTRAINTS.items()
        }
    else:
        dists = {f"pyro.distributions.{d.pyro}": n for n, d in _table.DISTRIBUTIONS.items()}
        cons = {f"torch.distributions.constraints.{c[1]}": n for n, c in _table.CONSTRAINTS.items()}
    ops = {_expand(v[i]): k for k, v in _table.OPS.items()}
    ops.update(SYNONYMS[framework])
    optim = {v[i]: k for k, v in _table.NATIVE_OPTIMIZERS.items()}
    if framework == "numpyro":
        trans = {f"numpyro.distributions.transforms.{t.numpyro}": n for n, t in _TR if t.numpyro}
        trans["numpyro.distributions.transforms.biject_to"] = "biject_to"
    else:
        trans = {}
        for mod in ("pyro.distributions.transforms", "torch.distributions.transforms"):
            trans.update({f"{mod}.{t.pyro}": n for n, t in _TR if t.pyro})
            trans[f"{mod}.biject_to"] = "biject_to"
        trans["torch.distributions.biject_to"] = "biject_to"
    mod = "numpyro.handlers" if framework == "numpyro" else "pyro.poutine"
    handlers = {f"{mod}.{v[i]}": k for k, v in _table.HANDLERS.items()}
    rmod = "numpyro.infer.reparam" if framework == "numpyro" else "pyro.infer.reparam"
    reparams = {f"{rmod}.{v[i]}": k for k, v in _table.REPARAMS.items()}
    fitting = dict(PORTED_FITTING[framework])
    fitting.update({q: k for k, v in _table.ENUM.items() for q in v[i]})  # dualguide.enum
    return Reverse(
        prims,
        dists,
        cons,
        ops,
        CONSTANTS[framework],
        optim,
        handlers=handlers,
        reparams=reparams,
        fitting=fitting,
        transforms=trans,
        nn=dict(NN[framework]),
    )


_TR = list(_table.TRANSFORMS.items())
