"""What the exporter knows: dualguide names, how they are spelled, and what each one is.

``classify`` sorts a canonical dualguide name (``dualguide.distributions.Normal``)
into the kinds the exporter has rules for (primitive, dist, constraint, op,
constant, transformed, bijection); the tables here are the exporter's own
additions to :mod:`dualguide._table` (argument names, reductions, elementwise ops,
the imports each native prefix needs).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from .. import _table
from ._source import qualname

BACKENDS = _table.BACKENDS
PRIMITIVE_ARGS = {
    "param": ("name", "init_value", "constraint", "event_dim"),
    "sample": ("name", "fn", "obs"),
    "plate": ("name", "size", "subsample_size", "dim"),
    "factor": ("name", "log_factor"),
    "deterministic": ("name", "value", "event_dim"),
}
#: neutral distributions whose support is all reals: Pyro's support masking is a no-op for them
REAL_SUPPORT = {"Normal", "Cauchy", "StudentT", "Laplace", "MultivariateNormal"}
#: neutral ops that reduce over ``axis`` (``dim=`` is the neutral alias)
REDUCTIONS = {"sum", "prod", "mean", "max", "min", "logsumexp"}
ELEMENTWISE = {
    "exp",
    "log",
    "log1p",
    "expm1",
    "sqrt",
    "square",
    "abs",
    "sin",
    "cos",
    "tan",
    "arcsin",
    "arccos",
    "arctan",
    "sinh",
    "cosh",
    "tanh",
    "sigmoid",
    "softplus",
    "erf",
    "isfinite",
    "arctan2",
    "logaddexp",
    "maximum",
    "minimum",
    "det",
    "inv",
    "cholesky",
    "slogdet",
    "matmul",
    "zeros_like",
    "ones_like",
    "power",
    "logit",
    "expit",
    "erfc",
    "digamma",
    "floor",
    "ceil",
    "isnan",
    "outer",
    "solve",
    "isinf",
    "logical_not",
    "logical_and",
    "logical_or",
}
OP_CONSTANTS = {"pi": "math.pi", "e": "math.e", "inf": "math.inf", "newaxis": "None"}
#: neutral ops that scan along ``axis`` (None: along the flattened array, spelled out for torch)
SCANS = {"cumsum", "cumprod"}
#: op -> {neutral keyword: torch keyword} where torch names an argument otherwise (torch takes
#: numpy's ``axis``/``keepdims`` itself)
TORCH_KEYWORDS = {
    "linspace": {"num": "steps"},
    "tril": {"k": "diagonal"},
    "triu": {"k": "diagonal"},
    "tensordot": {"axes": "dims"},
    "sort": {"axis": "dim"},
    "argsort": {"axis": "dim"},
    "vecdot": {"axis": "dim"},
    "flip": {"axis": "dims", "dim": "dims"},
    "roll": {"shift": "shifts", "axis": "dims", "dim": "dims"},
}
#: op -> (argument, default) that torch requires and the neutral op defaults
TORCH_DEFAULTS = {
    "softmax": ("axis", "-1"),
    "log_softmax": ("axis", "-1"),
    "var": ("correction", "0"),  # torch's default is 1
    "std": ("correction", "0"),
    "argsort": ("stable", "True"),  # the array API's sort is stable; torch's default is not
}
#: ops whose ``keepdims`` jax takes only as a keyword (jnp.sum's 3rd argument is dtype)
KEEPDIMS_KEYWORD = {
    "sum",
    "prod",
    "mean",
    "max",
    "min",
    "var",
    "std",
    "all",
    "any",
    "argmax",
    "argmin",
}
#: ops of the neutral random source (``ops.random``): their key is dropped for torch
RANDOM = {"random.normal", "random.uniform"}


#: import line for each native prefix the table spells
IMPORTS = {
    "jnp.": "import jax.numpy as jnp",
    "jax.scipy.linalg.": "import jax.scipy.linalg",
    "jax.scipy.": "import jax.scipy.special",
    "jax.": "import jax",
    "torch.": "import torch",
    "numpyro.": "import numpyro",
    "pyro.": "import pyro",
    "math.": "import math",
    "np.": "import numpy as np",
    "dist.": None,  # backend-specific, below
    "constraints.": None,
}
DIST_IMPORT = {
    "numpyro": "import numpyro.distributions as dist",
    "pyro": "import pyro.distributions as dist",
}
CONSTRAINT_IMPORT = {
    "numpyro": "from numpyro.distributions import constraints",
    "pyro": "from torch.distributions import constraints",
}


#: the methods of a user-defined distribution (``dist.Distribution`` subclass) that the
#: export renames: the exported base class (``UserDistribution``) defines the framework's
#: ``sample`` / ``rsample`` / ``log_prob`` on top of them
USER_DIST_METHODS = {"sample": "_sample", "log_prob": "_log_prob"}
#: the names the export's user-distribution helper section binds
USER_DIST_HELPERS = ("UserDistribution", "_NeutralKey")
#: canonical dualguide name -> its row of ``_table.ENUM`` (the native spellings)
ENUM_NAMES = {
    "dualguide.config_enumerate": "config_enumerate",
    "dualguide.enum.config_enumerate": "config_enumerate",
    "dualguide.markov": "markov",
    "dualguide.enum.markov": "markov",
    "dualguide.infer_discrete": "infer_discrete",
    "dualguide.enum.infer_discrete": "infer_discrete",
    "dualguide.ops.Vindex": "ops.Vindex",
    "dualguide.enum.Vindex": "ops.Vindex",
}


def canonical(q: str) -> str:
    """Spell a dualguide name the one way the export table knows."""
    for old, new in (
        ("dualguide.primitives.", "dualguide."),
        ("dualguide.distributions.constraints", "dualguide.constraints"),
        ("dualguide.transforms.", "dualguide."),
    ):
        if q.startswith(old):
            q = new + q[len(old) :]
    return q


def classify(q: str) -> tuple[str, str] | None:
    """(kind, neutral name) of a canonical dualguide name, or None if export has no rule."""
    parts = q.split(".")
    if len(parts) == 2 and parts[1] in _table.PRIMITIVES:
        return "primitive", parts[1]
    if len(parts) == 3 and parts[1] == "distributions" and parts[2] in _table.DISTRIBUTIONS:
        return "dist", parts[2]
    if len(parts) == 3 and parts[1] == "constraints" and parts[2] in _table.CONSTRAINTS:
        return "constraint", parts[2]
    if len(parts) == 4 and parts[1] == "ops" and ".".join(parts[2:]) in _table.OPS:
        return "op", ".".join(parts[2:])  # ops.random.normal
    if len(parts) == 3 and parts[1] == "ops":
        if parts[2] in _table.OPS:
            return "op", parts[2]
        if parts[2] in OP_CONSTANTS:
            return "const", parts[2]
    if len(parts) == 4 and parts[1:3] == ["distributions", "transforms"]:
        if parts[3] in _table.TRANSFORMS or parts[3] == "biject_to":
            return "transform", parts[3]  # issue 12: neutral transforms
    if q == "dualguide.distributions.biject_to":
        return "transform", "biject_to"
    if q == "dualguide.distributions.Distribution":
        return "userdist", "Distribution"  # the base class of a user-defined distribution
    if q in ENUM_NAMES:
        return "enum", ENUM_NAMES[q]  # issue 14: config_enumerate, markov, Vindex...
    if q in ("dualguide.transformed",):
        return "transformed", "transformed"
    if len(parts) == 3 and parts[1] == "bijections":
        return "bijection", parts[2]
    if len(parts) == 3 and parts[1] == "autoguides" and parts[2] in _table.AUTOGUIDE_PARAMS:
        return "autoguide", parts[2]
    return None


def dualguide_refs(node, aliases: dict[str, str]) -> Iterable[tuple[ast.expr, str]]:
    """Every maximal dualguide name chain under ``node``: (node, canonical qualified name)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.Attribute, ast.Name)):
            q = qualname(n, aliases)
            if q is not None:
                yield n, canonical(q)
                continue
        stack.extend(ast.iter_child_nodes(n))


def dualguide_refs_import(node) -> list[tuple[ast.AST, str]]:
    out = []
    if isinstance(node, ast.Import):
        out = [(node, a.name) for a in node.names if a.name.split(".")[0] == "dualguide"]
    elif isinstance(node, ast.ImportFrom) and node.module:
        if node.module.split(".")[0] == "dualguide":
            out = [(node, node.module)]
    return out


#: the frameworks' own handlers of a neutral handler that export does not write yet
_HANDLER_NATIVES = {
    "scale": ("numpyro.handlers.scale", "pyro.poutine.scale"),
    "mask": ("numpyro.handlers.mask", "pyro.poutine.mask"),
    "block": ("numpyro.handlers.block", "pyro.poutine.block"),
    "condition": ("numpyro.handlers.condition", "pyro.poutine.condition"),
    "reparam": ("numpyro.handlers.reparam", "pyro.poutine.reparam"),
    "do": ("numpyro.handlers.do", "pyro.poutine.do"),
}


def not_exported(q: str) -> str:
    """Why export refuses the neutral name ``q`` inside a model or guide."""
    last = q.rsplit(".", 1)[-1]
    if q.startswith("dualguide.handlers.") and last in _HANDLER_NATIVES:
        np_name, py_name = _HANDLER_NATIVES[last]
        return (
            f"{q} inside a model or guide is not exported (not written yet: its counterparts "
            f"are {np_name} and {py_name}; write those in the exported file by hand, or run "
            "the neutral file with dg.fit / dualguide crosscheck)"
        )
    return f"{q} has no native counterpart in a model or guide"
