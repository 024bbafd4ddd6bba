"""Porting native code: a guide (and model) written in plain NumPyro or plain Pyro, rewritten neutral.

``port(path)`` reads a Python file written against NumPyro (``numpyro``,
``jax.numpy``) or Pyro (``pyro``, ``torch``), and rewrites it against dualguide
using the table of correspondences (:mod:`dualguide._table`) in reverse:

* imports -> ``import dualguide as dg``, ``from dualguide import constraints, ops``,
  ``from dualguide import distributions as dist``;
* ``numpyro.param/sample/plate/factor/deterministic`` (or ``pyro.*``) -> ``dg.*``;
* distributions, constraints and optimizers by name (with keyword renames, e.g.
  NumPyro's ``mixing_distribution=`` -> ``mixture_distribution=``; NumPyro's
  ``Adam(step_size, b1, b2)`` -> ``dg.optim.Adam(lr=..., betas=(...))``);
* ``jnp``/``torch`` math -> :mod:`dualguide.ops` (``torch.cat(xs, dim=1)`` ->
  ``ops.concatenate(xs, dim=1)``, ``x.exp()`` -> ``ops.exp(x)``, ``torch.zeros(2, 3)``
  -> ``ops.zeros((2, 3))``);
* param inits: ``torch.tensor(1.0)`` / ``jnp.array(1.0)`` -> ``1.0``; a NumPyro init
  callable's unused ``rng_key`` argument is dropped (the neutral one takes none).

Fitting code (``SVI``, ``svi.run``, the ``__main__`` block) is dropped with a
note -- fit the ported program with :func:`dualguide.fit`.  Constructs with no
neutral counterpart (``numpyro.handlers``, ``jax.lax``, ``jax.random``, ``pyro.poutine``,
``sample_shape=``, unknown distributions...) are listed with their line numbers
in a :class:`PortError`.  The result is then verified: every ported function
that takes no arguments is traced on both backends (:func:`dualguide.trace`), and
on the original framework its sites (names, distributions, shapes, values and
log densities with the same seed) must equal the original's.

>>> from dualguide.porting.port import port
>>> result = port("tests/data/numpyro_guide_nofactor.py")   # doctest: +SKIP
>>> print(result.report())                                    # doctest: +SKIP
"""

from __future__ import annotations

import ast
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import _table
from ..errors import SpecError
from .export import (
    Rewriter,
    Source,
    arg_value,
    bind,
    bound_names,
    is_main_guard,
    loaded_names,
    module_aliases,
    qualname,
    statement_chunks,
)

__all__ = ["port", "PortError", "PortResult"]

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
    },
}
#: native constants -> neutral ops constant
CONSTANTS = {
    "numpyro": {"jax.numpy.pi": "pi", "jax.numpy.e": "e", "jax.numpy.inf": "inf"},
    "pyro": {"torch.pi": "pi", "torch.e": "e", "torch.inf": "inf"},
}
#: torch reductions whose keyword is keepdim (neutral: keepdims)
REDUCTIONS = {"sum", "prod", "mean", "max", "min", "logsumexp"}
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
#: torch tensor methods with no jax counterpart of the same meaning
TORCH_ONLY_METHODS = {
    "view",
    "size",
    "detach",
    "numpy",
    "float",
    "double",
    "long",
    "int",
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
    "clamp",
    "softmax",
    "log_softmax",
    "norm",
    "requires_grad_",
    "unsqueeze_",
    "add_",
    "mul_",
    "copy_",
    "zero_",
    "fill_",
    "type",
}


class PortError(SpecError):
    """Constructs with no neutral counterpart; ``problems`` lists (file, line, message)."""

    def __init__(
        self,
        message: str,
        problems: list[tuple[str, int, str]] | None = None,
        result: PortResult | None = None,
    ):
        super().__init__(message)
        self.problems = list(problems or [])
        self.result = result


@dataclass
class Verification:
    """How one ported function traced on one backend."""

    function: str
    backend: str
    ok: bool
    sites: list[str] = field(default_factory=list)
    message: str = ""


@dataclass
class PortResult:
    """The ported source, what was dropped, and the verification by tracing."""

    source: str
    framework: str
    path: str
    notes: list[tuple[int, str]] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    verification: list[Verification] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        """Every traced function ran on both backends and matched the original."""
        return bool(self.verification) and all(v.ok for v in self.verification)

    def report(self) -> str:
        """A plain-text report: dropped code, and per function and backend the trace result."""
        name = "NumPyro" if self.framework == "numpyro" else "Pyro"
        lines = [f"{self.path}: ported from {name}: {', '.join(self.functions) or 'no functions'}"]
        for ln, msg in self.notes:
            lines.append(f"  note {self.path}:{ln}: {msg}")
        for v in self.verification:
            status = "ok" if v.ok else "FAILED"
            what = f"{len(v.sites)} sites ({', '.join(v.sites)})" if v.sites else v.message
            if v.backend == "-":
                status = "-"
            lines.append(f"  {v.function:<24} {v.backend:<20} {status:<7} {what}")
        if self.verification:
            lines.append("verified: " + ("yes" if self.verified else "NO"))
        return "\n".join(lines)


# -------------------------------------------------------------------------------------------
# names
# -------------------------------------------------------------------------------------------
def _expand(spelling: str) -> str:
    """A table spelling (``jnp.exp``) as a fully qualified name (``jax.numpy.exp``)."""
    head, _, rest = spelling.partition(".")
    return f"{_table.NATIVE_MODULE_ALIASES.get(head, head)}.{rest}"


def native_canonical(q: str) -> str:
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
    return Reverse(prims, dists, cons, ops, CONSTANTS[framework], optim)


def detect_framework(tree: ast.Module, path: str) -> str:
    found = set()
    for node in ast.walk(tree):
        mods = []
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            mods = [node.module]
        for m in mods:
            top = m.split(".")[0]
            for fw, pkgs in FRAMEWORK_PACKAGES.items():
                if top in pkgs:
                    found.add(fw)
            if top == "dualguide":
                raise PortError(f"{path}: already imports dualguide; nothing to port")
    if not found:
        raise PortError(f"{path}: imports neither numpyro/jax nor pyro/torch; nothing to port")
    if len(found) > 1:
        raise PortError(
            f"{path}: imports both NumPyro/JAX and Pyro/torch; port one framework's code at a time"
        )
    return found.pop()


# -------------------------------------------------------------------------------------------
# the rewriter
# -------------------------------------------------------------------------------------------
class Porter(Rewriter):
    """Rewrites one framework's native code into the neutral API."""

    def __init__(self, src: Source, framework: str, aliases: dict[str, str], module_names: set):
        super().__init__(src)
        self.fw = framework
        self.aliases = aliases
        self.rev = reverse_table(framework)
        self.module_names = module_names  # names bound to imported modules
        self.used: set[str] = set()  # neutral namespaces used: dg, ops, dist, constraints

    def q(self, node) -> str | None:
        q = qualname(node, self.aliases)
        return native_canonical(q) if q is not None else None

    def ns(self, name: str) -> str:
        self.used.add(name.split(".")[0])
        return name

    def is_float32(self, node) -> bool:
        q = self.q(node)
        if q in FLOAT32:
            return True
        return isinstance(node, ast.Constant) and node.value in ("float32",)

    def strip_dtype(self, node: ast.Call, b: dict, what: str, extra=()) -> dict[int, str]:
        """Keywords that only say float32 (or requires_grad, device) are dropped."""
        drop = {}
        for k in node.keywords:
            if k.arg == "dtype":
                if self.is_float32(k.value):
                    drop[id(k)] = ""
                else:
                    self.problem(
                        node,
                        f"{what}: dtype={self.src.segment(k.value)} has no "
                        "neutral counterpart (dualguide arrays are float32)",
                    )
            elif k.arg in ("requires_grad", "device", *extra):
                drop[id(k)] = ""
        return drop

    # ------------------------------------------------------------------------------------
    def rule(self, node) -> str | None:
        if isinstance(node, ast.JoinedStr):
            return self.src.segment(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, (ast.Attribute, ast.Name)):
            q = self.q(node)
            if q is None:
                return None
            return self.name(node, q)
        return None

    def name(self, node, q: str) -> str:
        r = self.rev
        if q in r.constraints:
            return self.ns("constraints") + "." + r.constraints[q]
        if q in r.constants:
            return self.ns("ops") + "." + r.constants[q]
        if q in r.dists:
            return self.ns("dist") + "." + r.dists[q]
        if q in r.ops:
            return self.ns("ops") + "." + r.ops[q]
        if q in r.primitives:
            return self.ns("dg") + "." + r.primitives[q]
        self.problem(node, f"{q} has no neutral counterpart")
        return self.src.segment(node)

    def call(self, node: ast.Call) -> str | None:
        q = self.q(node.func)
        r = self.rev
        if q is None:
            if isinstance(node.func, ast.Attribute):
                return self.method(node)
            return None
        if q in r.primitives:
            return self.primitive(r.primitives[q], node)
        if q in r.dists:
            return self.dist(r.dists[q], node)
        if q in r.ops:
            return self.op(r.ops[q], node)
        if q in r.optimizers:
            return self.optimizer(r.optimizers[q], node)
        if (
            q.rsplit(".", 1)[0]
            in ("numpyro.distributions.constraints", "torch.distributions.constraints")
            and q in r.constraints
        ):
            return None  # a constraint factory: the name rule renames it
        self.problem(node, f"{q} has no neutral counterpart")
        return self.src.segment(node)

    # primitives -------------------------------------------------------------------------
    def primitive(self, name: str, node: ast.Call) -> str:
        func = self.ns("dg") + "." + name
        what = f"{'numpyro' if self.fw == 'numpyro' else 'pyro'}.{name}"
        if name == "param":
            b = bind(node, ("name", "init_value", "constraint", "event_dim"), what, self)
            if b is None:
                return self.src.segment(node)
            ov = {}
            for k in node.keywords:
                if k.arg not in ("name", "init_value", "init_tensor", "constraint", "event_dim"):
                    self.problem(node, f"{what}: argument {k.arg}= has no neutral counterpart")
                if k.arg == "init_tensor":
                    ov[id(k)] = f"init_value={self.param_init(k.value)}"
            init = b.get("init_value")
            if init is not None:
                t = self.param_init(arg_value(init))
                ov[id(init)] = f"init_value={t}" if isinstance(init, ast.keyword) else t
            return self.call_text(node, func, ov)
        if name == "sample":
            b = bind(node, ("name", "fn", "obs"), what, self, varkw=True)
            if b is None:
                return self.src.segment(node)
            for k in node.keywords:
                if k.arg in ("sample_shape", "rng_key", "obs_mask"):
                    hint = " (use .expand(shape) or a plate)" if k.arg == "sample_shape" else ""
                    self.problem(node, f"{what}: {k.arg}= has no neutral counterpart{hint}")
            if self.fw == "pyro" and len(node.args) > 2:
                self.problem(
                    node,
                    "pyro.sample: positional arguments after the distribution are "
                    "passed to it by Pyro; give obs= by keyword",
                )
            return self.call_text(node, func)
        if name == "plate":
            if self.fw == "pyro":
                if len(node.args) > 3:
                    self.problem(
                        node,
                        "pyro.plate: the 4th positional argument (subsample) has "
                        "no neutral counterpart",
                    )
                for k in node.keywords:
                    if k.arg in ("subsample", "device", "use_cuda"):
                        self.problem(node, f"pyro.plate: {k.arg}= has no neutral counterpart")
            return self.call_text(node, func)
        if name == "factor":
            for k in node.keywords:
                if k.arg == "has_rsample":
                    v = k.value
                    if not (isinstance(v, ast.Constant) and v.value in (True, None)):
                        self.problem(
                            node,
                            "pyro.factor: has_rsample=False has no neutral "
                            "counterpart (dualguide differentiates factors pathwise)",
                        )
                    b = {"has_rsample": k}
                    items = [self.emit(a) for a in node.args] + [
                        f"{kk.arg}={self.emit(kk.value)}"
                        for kk in node.keywords
                        if kk is not b["has_rsample"]
                    ]
                    return f"{func}({', '.join(items)})"
            return self.call_text(node, func)
        return self.call_text(node, func)

    def literal(self, node) -> bool:
        """A number or a (nested) list/tuple of numbers, written out."""
        if isinstance(node, (ast.List, ast.Tuple)):
            return bool(node.elts) and all(self.literal(e) for e in node.elts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return self.literal(node.operand)
        return (
            isinstance(node, ast.Constant)
            and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool)
        )

    def param_init(self, v) -> str:
        """A param's init value the neutral way: plain numbers, or a no-argument callable."""
        if isinstance(v, ast.Lambda):
            args = v.args
            names = [a.arg for a in args.posonlyargs + args.args]
            if self.fw == "numpyro" and len(names) == 1 and not args.vararg:
                if names[0] in loaded_names(v.body):
                    self.problem(
                        v,
                        "numpyro.param: an init function that uses its rng_key has "
                        "no neutral counterpart (neutral init callables take no "
                        "arguments); draw the init with numpy instead",
                    )
                return f"lambda: {self.param_init(v.body)}"
            return f"lambda: {self.param_init(v.body)}" if not names else self.emit(v)
        if isinstance(v, ast.Call):
            q = self.q(v.func)
            if q is not None and self.rev.ops.get(q) == "asarray" and len(v.args) == 1:
                inner = v.args[0]
                extra = [
                    k
                    for k in v.keywords
                    if not (
                        (k.arg == "dtype" and self.is_float32(k.value))
                        or k.arg in ("requires_grad", "device")
                    )
                ]
                if not extra and self.literal(inner):
                    return self.emit(inner)
        return self.emit(v)

    # distributions ----------------------------------------------------------------------
    def dist(self, name: str, node: ast.Call) -> str:
        spec = _table.DISTRIBUTIONS[name]
        func = self.ns("dist") + "." + name
        ov = {}
        if self.fw == "numpyro" and spec.rename:
            back = {v: k for k, v in spec.rename.items()}
            for k in node.keywords:
                if k.arg in back:
                    ov[id(k)] = f"{back[k.arg]}={self.emit(k.value)}"
        return self.call_text(node, func, ov)

    # ops ---------------------------------------------------------------------------------
    def op(self, name: str, node: ast.Call) -> str:
        func = self.ns("ops") + "." + name
        what = self.src.segment(node.func)
        ov = self.strip_dtype(node, {}, what)
        if self.fw == "numpyro":
            if name == "clip":
                for k in node.keywords:
                    if k.arg in ("a_min", "a_max"):
                        ov[id(k)] = f"{k.arg[2:]}={self.emit(k.value)}"
            if name == "where" and len(node.args) == 1:
                self.problem(
                    node, "jnp.where with one argument (indices) has no neutral counterpart"
                )
            if name == "logsumexp" and any(k.arg in ("b", "return_sign") for k in node.keywords):
                self.problem(node, "logsumexp(b=..., return_sign=...) has no neutral counterpart")
            return self._call(node, func, ov)
        # torch
        if name in REDUCTIONS:
            if (
                name in ("max", "min")
                and (len(node.args) > 1 or any(k.arg == "dim" for k in node.keywords))
                and self.q(node.func) in ("torch.max", "torch.min")
            ):
                self.problem(
                    node,
                    f"torch.{name}(x, dim) returns (values, indices); use "
                    f"torch.a{name}(x, dim) (neutral ops.{name}) instead",
                )
            for k in node.keywords:
                if k.arg == "keepdim":
                    ov[id(k)] = f"keepdims={self.emit(k.value)}"
            return self._call(node, func, ov)
        if name in ("zeros", "ones", "eye") and len(node.args) > 1 and name != "eye":
            dims = ", ".join(self.emit(a) for a in node.args)
            kws = [f"{k.arg}={self.emit(k.value)}" for k in node.keywords if id(k) not in ov]
            return f"{func}(({dims}){''.join(', ' + k for k in kws)})"
        if name == "softplus" and any(k.arg in ("beta", "threshold") for k in node.keywords):
            self.problem(node, "softplus(beta=, threshold=) has no neutral counterpart")
        if name == "asarray":
            return self._call(node, func, ov)
        return self._call(node, func, ov)

    def _call(self, node: ast.Call, func: str, ov: dict) -> str:
        """The call with its function renamed; overrides of "" drop keywords."""
        if any(v == "" for v in ov.values()):
            items = [self.emit(a) for a in node.args]
            for k in node.keywords:
                if ov.get(id(k)) == "":
                    continue
                items.append(
                    ov[id(k)]
                    if id(k) in ov
                    else (f"{k.arg}={self.emit(k.value)}" if k.arg else f"**{self.emit(k.value)}")
                )
            return f"{func}({', '.join(items)})"
        return self.call_text(node, func, ov)

    # tensor methods ---------------------------------------------------------------------
    def method(self, node: ast.Call) -> str | None:
        f = node.func
        recv = f.value
        if isinstance(recv, ast.Name) and recv.id in self.module_names:
            return None
        m = f.attr
        if self.fw == "numpyro":
            if m == "astype":
                self.problem(node, "x.astype(...) has no neutral counterpart (arrays are float32)")
            return None
        x = self.emit(recv)
        torch_fn = {
            v.split(".")[-1]: k for k, v in ((k, _expand(v[1])) for k, v in _table.OPS.items())
        }
        if (
            m in torch_fn
            and not node.args
            and not node.keywords
            and m not in ("sum", "prod", "mean", "max", "min", "reshape", "where", "stack")
        ):
            return f"{self.ns('ops')}.{torch_fn[m]}({x})"
        if m == "pow" and len(node.args) == 1 and not node.keywords:
            atoms = (ast.Name, ast.Attribute, ast.Call, ast.Subscript, ast.Constant)
            k = self.emit(node.args[0])
            x = x if isinstance(recv, atoms) else f"({x})"
            k = k if isinstance(node.args[0], atoms) else f"({k})"
            return f"({x} ** {k})"
        if m == "unsqueeze" and len(node.args) == 1:
            return f"{self.ns('ops')}.expand_dims({x}, {self.emit(node.args[0])})"
        if m == "transpose" and len(node.args) == 2:
            return (
                f"{self.ns('ops')}.swapaxes({x}, {self.emit(node.args[0])}, "
                f"{self.emit(node.args[1])})"
            )
        if m in ("sum", "prod", "mean", "logsumexp", "amax", "amin") and (
            node.args or node.keywords
        ):
            name = {"amax": "max", "amin": "min"}.get(m, m)
            items = (
                [x]
                + [self.emit(a) for a in node.args]
                + [
                    f"{'keepdims' if k.arg == 'keepdim' else k.arg}={self.emit(k.value)}"
                    for k in node.keywords
                ]
            )
            return f"{self.ns('ops')}.{name}({', '.join(items)})"
        if m in ("max", "min") and (node.args or node.keywords):
            self.problem(
                node, f"x.{m}(dim) returns (values, indices) in torch; use x.a{m}(dim) instead"
            )
        if m in TORCH_ONLY_METHODS:
            self.problem(node, f"the tensor method .{m}() has no neutral counterpart")
        return None

    # optimizers -------------------------------------------------------------------------
    def optimizer(self, name: str, node: ast.Call) -> str:
        func = self.ns("dg") + f".optim.{name}"
        if self.fw == "pyro":
            if node.args and isinstance(node.args[0], ast.Dict):
                allowed = {"lr", "betas", "eps"} | (
                    {"clip_norm", "lrd"} if name == "ClippedAdam" else set()
                )
                for k in node.args[0].keys:
                    if isinstance(k, ast.Constant) and k.value not in allowed:
                        self.problem(
                            node,
                            f"pyro.optim.{name}: setting {k.value!r} has no "
                            f"neutral counterpart (allowed: {', '.join(sorted(allowed))})",
                        )
            return self.call_text(node, func)
        mp = _table.NUMPYRO_OPTIM_ARGS
        b = bind(node, ("step_size",), f"numpyro.optim.{name}", self, varkw=True)
        if b is None:
            return self.src.segment(node)
        items, betas = [], {}
        for a in node.args:
            items.append(f"lr={self.emit(a)}")
        for k in node.keywords:
            if k.arg == mp["lr"]:
                items.append(f"lr={self.emit(k.value)}")
            elif k.arg in mp["betas"]:
                betas[k.arg] = self.emit(k.value)
            elif k.arg in ("eps", "clip_norm"):
                items.append(f"{k.arg}={self.emit(k.value)}")
            else:
                self.problem(node, f"numpyro.optim.{name}: {k.arg}= has no neutral counterpart")
        if betas:
            b1, b2 = mp["betas"]
            items.append(f"betas=({betas.get(b1, '0.9')}, {betas.get(b2, '0.999')})")
        return f"{func}({', '.join(items)})"


# -------------------------------------------------------------------------------------------
# whole-file port
# -------------------------------------------------------------------------------------------
def _calls_primitive(stmt, aliases, rev: Reverse) -> bool:
    for n in ast.walk(stmt):
        if isinstance(n, ast.Call):
            q = qualname(n.func, aliases)
            if q is not None and native_canonical(q) in rev.primitives:
                return True
    return False


def _fitting_refs(stmt, aliases, framework, rev: Reverse) -> list[tuple[int, str]]:
    """Uses of fitting APIs (SVI, handlers, RNG keys...) in a statement; optimizers excepted."""
    out = []
    stack = [stmt]
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.Attribute, ast.Name)):
            q = qualname(n, aliases)
            if q is not None:
                q = native_canonical(q)
                if q not in rev.optimizers and any(
                    q == p or q.startswith(p + ".") for p in FITTING[framework]
                ):
                    out.append((n.lineno, q))
                continue
        stack.extend(ast.iter_child_nodes(n))
    return sorted(out)


def port_source(path: str | Path) -> tuple[str, str, list[tuple[int, str]], list[str], list]:
    """Rewrite the file; return (neutral source, framework, notes, ported functions, problems)."""
    path = Path(path)
    if not path.is_file():
        raise PortError(f"{path}: no such file")
    src = Source(path.read_text(encoding="utf-8"), str(path))
    fw = detect_framework(src.tree, str(path))
    aliases: dict[str, str] = {}
    for pkg in FRAMEWORK_PACKAGES[fw]:
        aliases.update(module_aliases(src.tree, pkg))
    rev = reverse_table(fw)
    body = list(src.tree.body)
    docstring = None
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        docstring = body.pop(0)
    module_names = set()
    future, user_imports, stmts, notes = [], [], [], []
    for s in body:
        if isinstance(s, ast.ImportFrom) and s.module == "__future__":
            future.append(s)
            continue
        if isinstance(s, ast.Import):
            module_names |= {(a.asname or a.name).split(".")[0] for a in s.names}
        if isinstance(s, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in s.names] if isinstance(s, ast.Import) else [s.module or ""]
            if any(m.split(".")[0] in FRAMEWORK_PACKAGES[fw] for m in mods):
                if isinstance(s, ast.ImportFrom):
                    module_names |= {a.asname or a.name for a in s.names}
                continue
            user_imports.append(s)
            continue
        if is_main_guard(s):
            notes.append(
                (
                    s.lineno,
                    "dropped the __main__ block (fitting code): fit the ported "
                    "program with dg.fit(model, guide, ...)",
                )
            )
            continue
        stmts.append(s)
    # top-level fitting code, and what depends on it, is dropped with a note
    dropped: dict[int, str] = {}
    for s in stmts:
        refs = _fitting_refs(s, aliases, fw, rev)
        if refs and not _calls_primitive(s, aliases, rev):
            dropped[id(s)] = refs[0][1]
    changed = True
    while changed:
        changed = False
        gone = set()
        for s in stmts:
            if id(s) in dropped:
                gone |= bound_names(s)
        for s in stmts:
            if (
                id(s) not in dropped
                and loaded_names(s) & gone
                and not _calls_primitive(s, aliases, rev)
            ):
                dropped[id(s)] = sorted(loaded_names(s) & gone)[0]
                changed = True
    kept = []
    for s in stmts:
        if id(s) in dropped:
            names = ", ".join(sorted(bound_names(s))) or "a statement"
            notes.append(
                (
                    s.lineno,
                    f"dropped {names} (fitting code: uses {dropped[id(s)]}); "
                    "fit with dg.fit(model, guide, ...)",
                )
            )
        else:
            kept.append(s)
    # (a native optimizer is ported: dg.optim takes the same settings)
    porter = Porter(src, fw, aliases, module_names)
    for s in kept:
        for n in ast.walk(s):
            if isinstance(n, ast.Call):
                q = qualname(n.func, aliases)
                if q is not None and native_canonical(q) in rev.optimizers:
                    names = ", ".join(sorted(bound_names(s))) or "it"
                    notes.append(
                        (
                            n.lineno,
                            f"ported the optimizer: fit with dg.fit(model, guide, optim={names})",
                        )
                    )
    notes.sort()
    pieces = statement_chunks(src, kept, porter.emit)
    functions = [
        s.name for s in kept if isinstance(s, ast.FunctionDef) and _calls_primitive(s, aliases, rev)
    ]
    used_names = set()
    for s in kept:
        used_names |= loaded_names(s)
    clash = {"dg", "ops", "dist", "constraints"} & {n for s in kept for n in bound_names(s)}
    for n in sorted(clash):
        for s in kept:
            if n in bound_names(s):
                porter.problem(s, f"the name {n!r} is used by the neutral API; rename it")
    imports = []
    for s in user_imports:
        if bound_names(s) & used_names:
            imports.append(src.segment(s))
    neutral = (
        ["import dualguide as dg"]
        if "dg" in porter.used or any("optim" in t for _s, t in pieces)
        else []
    )
    from_names = sorted(n for n in ("constraints", "ops") if n in porter.used)
    if from_names:
        neutral.append(f"from dualguide import {', '.join(from_names)}")
    if "dist" in porter.used:
        neutral.append("from dualguide import distributions as dist")
    fw_name = "NumPyro" if fw == "numpyro" else "Pyro"
    head = []
    if docstring is not None:
        head.append(src.segment(docstring))
    head.append(
        f"# Ported from {fw_name} by `dualguide port`: runs on NumPyro and on Pyro "
        "(fit with dg.fit)."
    )
    text = "\n".join(head) + "\n\n"
    if future:
        text += "\n".join(src.segment(s) for s in future) + "\n\n"
    blocks = [b for b in (imports, neutral) if b]
    text += "\n\n".join("\n".join(b) for b in blocks) + "\n\n\n"
    text += "".join(t for _s, t in pieces).lstrip("\n")
    text = text.rstrip("\n") + "\n"
    return text, fw, notes, functions, porter.problems


def _verify(
    ported_path: Path, original_path: Path, framework: str, functions: list[str], seed: int = 0
) -> list[Verification]:
    """Trace each ported function on both backends; on the original framework compare sites."""
    import inspect

    from .. import _state
    from .._cli import load_file
    from ..trace import trace

    out: list[Verification] = []
    ported = load_file(str(ported_path))
    original = None
    for fn_name in functions:
        fn = getattr(ported, fn_name, None)
        if fn is None:
            continue
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if params:
            out.append(
                Verification(
                    fn_name,
                    "-",
                    True,
                    [],
                    "not traced (takes arguments: " + ", ".join(p.name for p in params) + ")",
                )
            )
            continue
        for b in _table.BACKENDS:
            try:
                sites = trace(fn, backend=b, seed=seed)
            except Exception as e:  # noqa: BLE001 - reported, not raised
                msg = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                # a model with improper priors cannot run on its own: fine if the original
                # cannot either
                try:
                    if original is None:
                        original = load_file(str(original_path))
                    _state.load(framework).trace(getattr(original, fn_name), (), {}, seed)
                except Exception as e0:  # noqa: BLE001
                    out.append(
                        Verification(
                            fn_name,
                            b,
                            True,
                            [],
                            "cannot run standalone, like the original "
                            f"({type(e0).__name__}); e.g. a model with improper priors",
                        )
                    )
                    continue
                out.append(Verification(fn_name, b, False, [], msg))
                continue
            out.append(Verification(fn_name, b, True, list(sites)))
            if b != framework:
                continue
            try:
                if original is None:
                    original = load_file(str(original_path))
                nat = _state.load(b).trace(getattr(original, fn_name), (), {}, seed)
            except Exception as e:  # noqa: BLE001
                out.append(
                    Verification(
                        fn_name,
                        f"{b} vs original",
                        False,
                        [],
                        f"the original did not trace: {type(e).__name__}: {e}",
                    )
                )
                continue
            diff = _compare(nat, sites)
            out.append(
                Verification(
                    fn_name,
                    f"{b} vs original",
                    not diff,
                    list(sites),
                    diff or "same sites, values and log densities",
                )
            )
    return out


def _compare(want: dict, got: dict) -> str:
    """'' when the traces agree (names, kinds, distributions, shapes, values, log densities)."""
    if list(want) != list(got):
        return f"sites differ: original {list(want)}, ported {list(got)}"
    for name, w in want.items():
        g = got[name]
        if (w.type, w.dist, w.batch_shape, w.event_shape) != (
            g.type,
            g.dist,
            g.batch_shape,
            g.event_shape,
        ):
            return (
                f"site {name!r}: original {w.type} {w.dist} {w.batch_shape}+{w.event_shape}, "
                f"ported {g.type} {g.dist} {g.batch_shape}+{g.event_shape}"
            )
        for what, a, b in (("value", w.value, g.value), ("log_prob", w.log_prob, g.log_prob)):
            if (a is None) != (b is None):
                return f"site {name!r}: {what} present in only one trace"
            if a is not None and not np.allclose(
                np.asarray(a, dtype=np.float64),
                np.asarray(b, dtype=np.float64),
                rtol=1e-5,
                atol=1e-6,
                equal_nan=True,
            ):
                return f"site {name!r}: {what} differs ({a} vs {b})"
    return ""


def port(
    source: str | Path,
    *,
    out: str | Path | None = None,
    verify: bool = True,
    seed: int = 0,
) -> PortResult:
    """Rewrite a plain NumPyro or plain Pyro file into dualguide's neutral API.

    Returns a :class:`PortResult` with the neutral ``source`` (also written to
    ``out`` when given), the ``notes`` on dropped fitting code, and -- with
    ``verify`` -- the ``verification`` of every ported function that takes no
    arguments: traced on both backends, and on the original framework compared
    site by site with the original (same seed).  Constructs with no neutral
    counterpart raise :class:`PortError` listing them with line numbers.

    >>> from dualguide.porting.port import port
    >>> r = port("tests/data/numpyro_guide_nofactor.py", out="guide_neutral.py")  # doctest: +SKIP
    >>> r.verified  # doctest: +SKIP
    True
    """
    text, fw, notes, functions, problems = port_source(source)
    result = PortResult(text, fw, str(source), notes, functions)
    if problems:
        lines = "\n".join(
            f"  {p}:{ln}: {msg}" for p, ln, msg in sorted(problems, key=lambda t: t[1])
        )
        raise PortError(
            f"{source}: {len(problems)} construct(s) cannot be ported:\n{lines}", problems, result
        )
    try:
        compile(text, f"<port of {source}>", "exec")
    except SyntaxError as e:  # pragma: no cover - a bug in the rewriter
        raise PortError(
            f"{source}: the ported code does not compile (line {e.lineno}: "
            f"{e.msg}); please report this"
        ) from None
    if out is not None:
        Path(out).write_text(text, encoding="utf-8")
    if verify:
        if out is not None:
            result.verification = _verify(Path(out), Path(source), fw, functions, seed)
        else:
            with tempfile.TemporaryDirectory() as d:
                p = Path(d) / f"{Path(source).stem}_neutral.py"
                p.write_text(text, encoding="utf-8")
                result.verification = _verify(p, Path(source), fw, functions, seed)
    return result
