"""Native source export: a neutral model and guide written out as plain NumPyro or plain Pyro code.

``export(source, backend=...)`` reads the Python file that defines a neutral
model and guide and writes a self-contained module in the native framework: no
``dualguide`` import, only that framework (and numpy).  It rewrites the source
itself (comments and layout of untouched code are kept): ``dg.param/sample/
plate/factor/deterministic`` become ``numpyro.*`` / ``pyro.*``, neutral
distributions, constraints and ops become the native ones named in
:mod:`dualguide._table`, and a ``__main__`` block fits the program with the
native SVI and the example's ``FIT_SETTINGS`` (optimizer, steps, particles)
and prints the fitted params.

>>> import dualguide as dg
>>> src = dg.export("examples/seed_gaussian.py", backend="pyro")   # doctest: +SKIP
>>> "import dualguide" in src                                       # doctest: +SKIP
False

What the exported code does, and where it differs from a dualguide fit, is
listed in the module's docstring (and in ``docs/export_and_port.md``).  A
construct that cannot be written out natively raises :class:`ExportError`
naming ``file:line``.
"""

from __future__ import annotations

import ast
import inspect
import math
import sys
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _table
from ..errors import SpecError

__all__ = ["export", "ExportError"]

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
}
OP_CONSTANTS = {"pi": "math.pi", "e": "math.e", "inf": "math.inf"}


class ExportError(SpecError):
    """A neutral program that cannot be written out natively; the message lists ``file:line``s."""

    def __init__(self, message: str, problems: list[tuple[str, int, str]] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


# -------------------------------------------------------------------------------------------
# source text with byte offsets (ast columns count UTF-8 bytes)
# -------------------------------------------------------------------------------------------
class Source:
    """A file's text, with helpers to slice it by ast positions."""

    def __init__(self, text: str, path: str = "<string>"):
        self.text = text
        self.path = path
        self.data = text.encode("utf-8")
        self.line_starts = [0]
        for i, ch in enumerate(self.data):
            if ch == 10:  # "\n"
                self.line_starts.append(i + 1)
        try:
            self.tree = ast.parse(text, filename=path)
        except SyntaxError as e:
            raise ExportError(f"{path}:{e.lineno}: syntax error: {e.msg}") from None

    def offset(self, lineno: int, col: int) -> int:
        return self.line_starts[lineno - 1] + col

    def span(self, node) -> tuple[int, int]:
        start = self.offset(node.lineno, node.col_offset)
        decorators = getattr(node, "decorator_list", None)
        if decorators:
            first = decorators[0]
            s = self.offset(first.lineno, first.col_offset)
            at = self.data.rfind(b"@", 0, s)
            start = min(start, at if at >= 0 else s)
        return start, self.offset(node.end_lineno, node.end_col_offset)

    def slice(self, a: int, b: int) -> str:
        return self.data[a:b].decode("utf-8")

    def segment(self, node) -> str:
        return self.slice(*self.span(node))

    def lines(self, first: int, last: int) -> str:
        """Whole lines ``first..last`` (1-based, inclusive), with their newline."""
        a = self.line_starts[first - 1]
        b = self.line_starts[last] if last < len(self.line_starts) else len(self.data)
        return self.slice(a, b)


def positioned_children(node) -> list:
    """The nearest descendants of ``node`` that carry source positions, in source order."""
    out = []
    for child in ast.iter_child_nodes(node):
        if getattr(child, "end_lineno", None) is not None and hasattr(child, "col_offset"):
            out.append(child)
        else:
            out.extend(positioned_children(child))
    out.sort(key=lambda n: (n.lineno, n.col_offset))
    return out


class Rewriter:
    """Rewrite a node's source text; subclasses return replacement text from :meth:`rule`.

    Untouched code keeps its exact text (comments and line breaks inside a
    statement included); a rule builds its text from :meth:`emit` of children.
    """

    def __init__(self, src: Source):
        self.src = src
        self.problems: list[tuple[str, int, str]] = []

    def problem(self, node, message: str) -> None:
        item = (self.src.path, getattr(node, "lineno", 0), message)
        if item not in self.problems:
            self.problems.append(item)

    def rule(self, node) -> str | None:  # pragma: no cover - overridden
        return None

    def emit(self, node) -> str:
        r = self.rule(node)
        if r is not None:
            return r
        return self.splice(node)

    def splice(self, node, overrides: dict | None = None) -> str:
        """The node's text with each child's rewritten text (or ``overrides[child]``) in place."""
        start, end = self.src.span(node)
        parts, pos = [], start
        for child in positioned_children(node):
            cs, ce = self.src.span(child)
            if cs < pos or ce > end:  # decorators etc. outside the node's own span
                continue
            if overrides is not None and id(child) in overrides:
                new = overrides[id(child)]
            else:
                new = self.emit(child)
            if new != self.src.slice(cs, ce):
                parts.append(self.src.slice(pos, cs))
                parts.append(new)
                pos = ce
        parts.append(self.src.slice(pos, end))
        return "".join(parts)

    def call_text(
        self,
        node: ast.Call,
        func: str,
        overrides: dict | None = None,
        append: list[str] | None = None,
    ) -> str:
        """``node`` with its function replaced by ``func``, args overridden, keywords appended."""
        ov = dict(overrides or {})
        ov[id(node.func)] = func
        text = self.splice(node, ov)
        if append:
            # insert after the last argument (and any trailing comma), keeping the layout
            inner = text[:-1]
            body = inner.rstrip()
            tail = inner[len(body) :]
            if body.endswith(","):
                body += " "
            elif not body.endswith("("):
                body += ", "
            text = body + ", ".join(append) + tail + ")"
        return text


def bind(
    node: ast.Call, names: tuple[str, ...], what: str, rw: Rewriter, varkw: bool = False
) -> dict[str, ast.AST] | None:
    """Map a call's arguments to the parameter ``names`` (positional or keyword)."""
    out: dict[str, ast.AST] = {}
    for i, a in enumerate(node.args):
        if isinstance(a, ast.Starred):
            rw.problem(node, f"{what}(*...) cannot be written out; pass its arguments one by one")
            return None
        if i >= len(names):
            rw.problem(node, f"{what}: too many positional arguments")
            return None
        out[names[i]] = a
    for k in node.keywords:
        if k.arg is None:
            rw.problem(node, f"{what}(**...) cannot be written out; pass keywords one by one")
            return None
        if k.arg in out:
            rw.problem(node, f"{what}: argument {k.arg!r} given twice")
            return None
        if k.arg not in names and not varkw:
            continue
        out[k.arg] = k
    return out


def arg_value(a):
    """The value node of a positional argument or a keyword."""
    return a.value if isinstance(a, ast.keyword) else a


# -------------------------------------------------------------------------------------------
# name resolution
# -------------------------------------------------------------------------------------------
def module_aliases(tree: ast.Module, package: str) -> dict[str, str]:
    """Top-level names bound by imports of ``package`` -> the qualified name they stand for."""
    out: dict[str, str] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                if a.name == package or a.name.startswith(package + "."):
                    if a.asname:
                        out[a.asname] = a.name
                    else:
                        out[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(stmt, ast.ImportFrom) and stmt.module and stmt.level == 0:
            if stmt.module == package or stmt.module.startswith(package + "."):
                for a in stmt.names:
                    out[a.asname or a.name] = f"{stmt.module}.{a.name}"
    return out


def qualname(node, aliases: dict[str, str]) -> str | None:
    """``dg.distributions.Normal`` -> ``"dualguide.distributions.Normal"`` (None if not imported)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in aliases:
        return ".".join([aliases[node.id], *reversed(parts)])
    return None


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
    if len(parts) == 3 and parts[1] == "ops":
        if parts[2] in _table.OPS:
            return "op", parts[2]
        if parts[2] in OP_CONSTANTS:
            return "const", parts[2]
    if q in ("dualguide.transformed",):
        return "transformed", "transformed"
    if len(parts) == 3 and parts[1] == "bijections":
        return "bijection", parts[2]
    return None


def dualguide_refs(node, aliases: dict[str, str]) -> Iterable[tuple[ast.AST, str]]:
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


def loaded_names(node) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def bound_names(stmt) -> set[str]:
    """Names a top-level statement binds."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names}
    out = set()
    for n in ast.walk(stmt):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            out.add(n.id)
    return out


def is_main_guard(stmt) -> bool:
    t = stmt.test if isinstance(stmt, ast.If) else None
    return (
        isinstance(t, ast.Compare)
        and isinstance(t.left, ast.Name)
        and t.left.id == "__name__"
        and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in t.comparators)
    )


def local_names(fn: ast.AST) -> set[str]:
    """Names bound inside a function (arguments and assignment targets)."""
    out = set()
    for n in ast.walk(fn):
        if isinstance(n, ast.arg):
            out.add(n.arg)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            out.add(n.id)
    return out


# -------------------------------------------------------------------------------------------
# the exporter
# -------------------------------------------------------------------------------------------
@dataclass
class Needs:
    """Imports and helpers the exported code uses."""

    imports: set = field(default_factory=set)
    helpers: list = field(default_factory=list)
    #: backend modules whose code is inlined -> the class the export uses from it
    inlined: dict = field(default_factory=dict)

    def helper(self, name: str) -> None:
        if name not in self.helpers:
            self.helpers.append(name)


#: import line for each native prefix the table spells
IMPORTS = {
    "jnp.": "import jax.numpy as jnp",
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


class Exporter(Rewriter):
    """Rewrites neutral code into one backend's native code."""

    def __init__(self, src: Source, backend: str, aliases: dict[str, str], module_globals: dict):
        super().__init__(src)
        self.backend = backend
        self.i = BACKENDS.index(backend)
        self.aliases = aliases
        self.globals = module_globals
        self.needs = Needs()
        self.locals: list[set[str]] = []
        self.notes: list[str] = []

    # helpers ----------------------------------------------------------------------------
    def use(self, text: str) -> str:
        """Record the import a native name needs; return the name."""
        if text.startswith("dist."):
            self.needs.imports.add(DIST_IMPORT[self.backend])
        elif text.startswith("constraints."):
            self.needs.imports.add(CONSTRAINT_IMPORT[self.backend])
        else:
            for prefix, line in IMPORTS.items():
                if text.startswith(prefix) and line:
                    self.needs.imports.add(line)
                    break
        return text

    def is_local(self, name: str) -> bool:
        return any(name in s for s in self.locals)

    def is_number(self, node) -> bool:
        """Whether ``node`` is surely a plain Python number (so torch needs a tensor made)."""
        if isinstance(node, ast.Constant):
            return isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return self.is_number(node.operand)
        if isinstance(node, ast.BinOp):
            return self.is_number(node.left) and self.is_number(node.right)
        if isinstance(node, ast.Name):
            if self.is_local(node.id):
                return False
            v = self.globals.get(node.id, None)
            return isinstance(v, (int, float)) and not isinstance(v, bool)
        if isinstance(node, (ast.Attribute, ast.Name)):
            q = qualname(node, self.aliases)
            return q is not None and (classify(canonical(q)) or ("",))[0] == "const"
        return False

    def is_number_literal(self, node) -> bool:
        """A number, or a (nested) list/tuple of numbers."""
        if isinstance(node, (ast.List, ast.Tuple)):
            return bool(node.elts) and all(self.is_number_literal(e) for e in node.elts)
        return self.is_number(node)

    def all_float_literals(self, node) -> bool:
        if isinstance(node, (ast.List, ast.Tuple)):
            return all(self.all_float_literals(e) for e in node.elts)
        if isinstance(node, ast.UnaryOp):
            return self.all_float_literals(node.operand)
        if isinstance(node, ast.Name) and not self.is_local(node.id):
            return isinstance(self.globals.get(node.id), float)
        return isinstance(node, ast.Constant) and isinstance(node.value, float)

    def returns_array(self, node) -> bool:
        """Whether ``node`` is a call of a neutral op (so it is already a native array)."""
        if isinstance(node, ast.Call):
            q = qualname(node.func, self.aliases)
            if q is not None:
                c = classify(canonical(q))
                return c is not None and c[0] == "op"
        if isinstance(node, ast.BinOp):
            return self.returns_array(node.left) or self.returns_array(node.right)
        return False

    def tensor(self, node) -> str:
        """Text of ``node`` made a torch tensor if it is a plain number (Pyro only)."""
        t = self.emit(node)
        if self.backend == "pyro" and self.is_number(node):
            return f"{self.use('torch.as_tensor')}({t})"
        return t

    # rules ------------------------------------------------------------------------------
    def rule(self, node) -> str | None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            self.locals.append(local_names(node))
            try:
                return self.splice(node)
            finally:
                self.locals.pop()
        if isinstance(node, ast.JoinedStr):
            for n, q in dualguide_refs(node, self.aliases):
                self.problem(n, f"{q} inside an f-string cannot be exported; compute it first")
            return self.src.segment(node)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(q for _n, q in dualguide_refs_import(node)):
                self.problem(
                    node,
                    "a dualguide import inside a function cannot be exported; "
                    "import at the top of the file",
                )
            return None
        if isinstance(node, ast.Call):
            q = qualname(node.func, self.aliases)
            if q is None:
                return None
            q = canonical(q)
            c = classify(q)
            if c is None:
                self.problem(node, f"{q} has no native counterpart in a model or guide")
                return self.src.segment(node)
            kind, name = c
            if kind == "primitive":
                return self.primitive(name, node)
            if kind == "dist":
                return self.dist(name, node)
            if kind == "op":
                return self.op(name, node)
            if kind == "transformed":
                return self.transformed(node)
            if kind == "bijection":
                return self.bijection(name, node)
            return None  # constraint factories: the Attribute rule renames them
        if isinstance(node, (ast.Attribute, ast.Name)):
            q = qualname(node, self.aliases)
            if q is None:
                return None
            q = canonical(q)
            c = classify(q)
            if c is None:
                self.problem(node, f"{q} has no native counterpart in a model or guide")
                return self.src.segment(node)
            kind, name = c
            if kind == "constraint":
                return self.use("constraints." + _table.CONSTRAINTS[name][self.i])
            if kind == "const":
                return self.use(OP_CONSTANTS[name])
            if kind == "primitive":
                return self.use(_table.PRIMITIVES[name][self.i])
            if kind == "dist":
                return self.dist_class(name)
            if kind == "op":
                return self.use(_table.OPS[name][self.i])
            self.problem(node, f"{q} can only be exported as a call")
            return self.src.segment(node)
        return None

    # primitives -------------------------------------------------------------------------
    def primitive(self, name: str, node: ast.Call) -> str:
        native = self.use(_table.PRIMITIVES[name][self.i])
        names = PRIMITIVE_ARGS[name]
        what = f"dualguide.{name}"
        b = bind(
            node,
            names + (("has_rsample",) if name == "factor" else ()),
            what,
            self,
            varkw=name == "sample",
        )
        if b is None:
            return self.src.segment(node)
        ov: dict[int, str] = {}
        # arguments numpyro/pyro take only as keywords (or in another position)
        keyword_only = {
            "param": ("constraint", "event_dim"),
            "sample": ("obs",),
            "plate": ("subsample_size", "dim"),
            "factor": (),
            "deterministic": (),
        }
        for arg in keyword_only[name]:
            a = b.get(arg)
            if a is not None and not isinstance(a, ast.keyword):
                ov[id(a)] = f"{arg}={self.emit(a)}"
        append = []
        if name == "param" and "init_value" in b:
            a = b["init_value"]
            v = arg_value(a)
            text = self.param_init(v)
            ov[id(a)] = f"init_value={text}" if isinstance(a, ast.keyword) else text
        if name == "factor":
            hr = b.get("has_rsample")
            lf = b.get("log_factor")
            if hr is not None:
                if not (isinstance(hr.value, ast.Constant) and hr.value.value in (True, None)):
                    self.problem(
                        node,
                        "dualguide.factor: only has_rsample=True can be exported "
                        "(dualguide differentiates factors pathwise)",
                    )
                return self._rebuild(
                    native,
                    node,
                    b,
                    drop=("has_rsample",),
                    extra=["has_rsample=True"] if self.backend == "pyro" else [],
                )
            if lf is not None and self.backend == "pyro":
                if self.is_number(arg_value(lf)):
                    t = self.tensor(arg_value(lf))
                    ov[id(lf)] = f"log_factor={t}" if isinstance(lf, ast.keyword) else t
            if self.backend == "pyro":
                append.append("has_rsample=True")
        if name == "deterministic":
            v = b.get("value")
            if v is not None and self.backend == "pyro" and self.is_number(arg_value(v)):
                t = self.tensor(arg_value(v))
                ov[id(v)] = f"value={t}" if isinstance(v, ast.keyword) else t
            if self.backend == "numpyro" and "event_dim" in b:
                return self._rebuild(native, node, b, drop=("event_dim",), overrides=ov)
        return self.call_text(node, native, ov, append)

    def _rebuild(self, func: str, node: ast.Call, b: dict, drop=(), extra=(), overrides=None):
        """``func(...)`` from the bound arguments minus ``drop``, in source order, plus ``extra``."""
        items = []
        for a in list(node.args) + list(node.keywords):
            if any(b.get(d) is a for d in drop):
                continue
            if overrides and id(a) in overrides:
                items.append(overrides[id(a)])
            elif isinstance(a, ast.keyword):
                items.append(f"{a.arg}={self.emit(a.value)}")
            else:
                items.append(self.emit(a))
        return f"{func}({', '.join([*items, *extra])})"

    def param_init(self, v) -> str:
        """A param's initial value, as the native framework wants it (float32)."""
        if isinstance(v, ast.Lambda):
            if v.args.args or v.args.vararg or v.args.kwonlyargs:
                self.problem(v, "a param's init callable takes no arguments (Pyro's convention)")
                return self.emit(v)
            self.locals.append(local_names(v))
            try:
                body = self.param_init(v.body)
            finally:
                self.locals.pop()
            return f"lambda _rng_key: {body}" if self.backend == "numpyro" else f"lambda: {body}"
        if isinstance(v, ast.Name) and not self.is_local(v.id) and callable(self.globals.get(v.id)):
            if self.backend == "numpyro":
                return f"lambda _rng_key: {self.use('jnp.asarray')}({v.id}(), dtype=jnp.float32)"
            return f"lambda: {self.use('torch.as_tensor')}({v.id}(), dtype=torch.float32)"
        t = self.emit(v)
        if self.returns_array(v):
            return t
        if self.backend == "numpyro":
            if self.is_number_literal(v) and self.all_float_literals(v):
                return f"{self.use('jnp.array')}({t})"
            return f"{self.use('jnp.asarray')}({t}, dtype=jnp.float32)"
        if self.is_number_literal(v) and self.all_float_literals(v):
            return f"{self.use('torch.tensor')}({t})"
        if self.is_number_literal(v):
            return f"{self.use('torch.tensor')}({t}, dtype=torch.float32)"
        return f"{self.use('torch.as_tensor')}({t}, dtype=torch.float32)"

    # distributions ----------------------------------------------------------------------
    def dist_class(self, name: str) -> str:
        spec = _table.DISTRIBUTIONS[name]
        native = self.use("dist." + (spec.numpyro if self.i == 0 else spec.pyro))
        override = self.override(name)
        if override is not None:
            return override
        if self.backend == "pyro" and name not in REAL_SUPPORT:
            self.needs.helper("masked")
            self.use("torch.where")
            self.use("math.inf")
            return f"masked({native})"
        return native

    def dist_needs_mask_helper(self) -> None:
        self.needs.helper("masked")
        self.use("torch.where")
        self.use("math.inf")

    def override(self, name: str) -> str | None:
        """The class name of a distribution dualguide replaces in this backend (None if none).

        The module defining the replacement (``dualguide/backends/<b>/<x>.py``, plain
        framework code) is inlined into the export.
        """
        from .. import _state

        cls = _state.load(self.backend).override(name)
        if cls is None:
            return None
        mod = sys.modules[cls.__module__]
        if mod.__name__ not in self.needs.inlined:
            self.needs.inlined[mod.__name__] = cls.__name__
        return cls.__name__

    def dist(self, name: str, node: ast.Call) -> str:
        spec = _table.DISTRIBUTIONS[name]
        func = self.dist_class(name)
        ov = {}
        if self.backend == "numpyro" and spec.rename:
            for k in node.keywords:
                if k.arg is None:
                    self.problem(
                        node,
                        f"dist.{name}(**...) cannot be exported (keywords renamed "
                        "in NumPyro); pass keywords one by one",
                    )
                elif k.arg in spec.rename:
                    ov[id(k)] = f"{spec.rename[k.arg]}={self.emit(k.value)}"
        return self.call_text(node, func, ov)

    # ops ---------------------------------------------------------------------------------
    def op(self, name: str, node: ast.Call) -> str:
        from .. import ops as neutral_ops

        native = self.use(_table.OPS[name][self.i])
        try:
            sig = inspect.signature(getattr(neutral_ops, name))
        except (TypeError, ValueError, AttributeError):  # pragma: no cover
            return self.call_text(node, native)
        params = [
            p.name
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        if name == "einsum":
            return self.call_text(node, native)
        b = bind(node, tuple(params), f"dualguide.ops.{name}", self)
        if b is None:
            return self.src.segment(node)
        if self.backend == "numpyro":
            return self.op_numpyro(name, node, native, b)
        return self.op_pyro(name, node, native, b)

    def op_numpyro(self, name, node, native, b) -> str:
        ov = {}
        if "dim" in b:
            d = b["dim"]
            ov[id(d)] = f"axis={self.emit(d.value)}"
        if name == "asarray":
            x = arg_value(b["x"])
            if self.is_number_literal(x) and not self.all_float_literals(x):
                return self.call_text(node, native, ov)
            return self.call_text(node, native, ov)
        if name == "full":
            return self.call_text(node, native, ov, ["dtype=" + self.use("jnp.float32")])
        if name == "to_numpy":
            return self.call_text(node, self.use("np.asarray"), ov)
        return self.call_text(node, native, ov)

    def op_pyro(self, name, node, native, b) -> str:
        v = {k: arg_value(a) for k, a in b.items()}
        if name in REDUCTIONS:
            x = self.tensor(v["x"])
            axis = v.get("dim", v.get("axis"))
            keep = v.get("keepdims")
            if axis is None or (isinstance(axis, ast.Constant) and axis.value is None):
                if name == "logsumexp":
                    return f"{native}({self.use('torch.reshape')}({x}, (-1,)), dim=0)"
                if keep is not None and not (isinstance(keep, ast.Constant) and not keep.value):
                    self.problem(
                        node,
                        f"ops.{name}(..., keepdims=True) over all axes cannot be "
                        "exported to torch; give axis=",
                    )
                if name in ("max", "min"):
                    return f"{self.use('torch.' + name)}({x})"
                return f"{native}({x})"
            if name == "prod" and isinstance(axis, ast.Tuple):
                self.problem(
                    node,
                    "ops.prod over a tuple of axes cannot be exported to torch; "
                    "reduce one axis at a time",
                )
            args = [x, f"dim={self.emit(axis)}"]
            if keep is not None:
                args.append(f"keepdim={self.emit(keep)}")
            return f"{native}({', '.join(args)})"
        if name in ("stack", "concatenate"):
            xs = v["xs"]
            if isinstance(xs, (ast.List, ast.Tuple)):
                inner = ", ".join(self.tensor(e) for e in xs.elts)
                xs_t = f"[{inner}]" if isinstance(xs, ast.List) else f"({inner},)"
            else:
                xs_t = self.emit(xs)
            axis = v.get("dim", v.get("axis"))
            return f"{native}({xs_t}" + (f", dim={self.emit(axis)})" if axis is not None else ")")
        if name in ELEMENTWISE:
            ov = {}
            for k, a in b.items():
                if self.is_number(arg_value(a)):
                    t = self.tensor(arg_value(a))
                    ov[id(a)] = f"{k}={t}" if isinstance(a, ast.keyword) else t
            return self.call_text(node, native, ov)
        if name == "asarray":
            x = v["x"]
            if self.is_number_literal(x):
                return f"{self.use('torch.as_tensor')}({self.emit(x)})"
            self.needs.helper("asarray")
            self.use("torch.as_tensor")
            return f"_asarray({self.emit(x)})"
        if name == "full":
            shape = v["shape"]
            s = self.emit(shape)
            if isinstance(shape, ast.Constant) and isinstance(shape.value, int):
                s = f"({s},)"
            return f"{native}({s}, {self.emit(v['fill_value'])}, dtype={self.use('torch.float32')})"
        if name == "arange":
            items = [self.emit(v["start"])]
            if "stop" in v:
                items.append(self.emit(v["stop"]))
                if "step" in v:
                    items.append(self.emit(v["step"]))
            return f"{native}({', '.join(items)})"
        if name == "clip":
            return self.call_text(node, native)
        if name == "to_numpy":
            return f"{self.emit(v['x'])}.detach().cpu().numpy()"
        if name == "where":
            return self.call_text(node, native)
        return self.call_text(node, native)

    # transformed latents ----------------------------------------------------------------
    def transformed(self, node: ast.Call) -> str:
        b = bind(node, ("names", "base", "fn", "event_dims"), "dualguide.transformed", self)
        if b is None:
            return self.src.segment(node)
        self.needs.helper("transformed")
        for line in (
            ["import jax", "import jax.numpy as jnp", "import numpyro", DIST_IMPORT["numpyro"]]
            if self.backend == "numpyro"
            else ["import torch", "import pyro", DIST_IMPORT["pyro"]]
        ):
            self.needs.imports.add(line)
        if self.backend == "pyro":
            self.dist_needs_mask_helper()
        return self.call_text(node, "transformed")

    def bijection(self, name: str, node: ast.Call) -> str:
        self.problem(node, f"dualguide.bijections.{name} cannot be exported by this version")
        return self.src.segment(node)


def dualguide_refs_import(node) -> list[tuple[ast.AST, str]]:
    out = []
    if isinstance(node, ast.Import):
        out = [(node, a.name) for a in node.names if a.name.split(".")[0] == "dualguide"]
    elif isinstance(node, ast.ImportFrom) and node.module:
        if node.module.split(".")[0] == "dualguide":
            out = [(node, node.module)]
    return out


# -------------------------------------------------------------------------------------------
# helpers and the __main__ block written into the exported module
# -------------------------------------------------------------------------------------------
def statement_chunks(src: Source, stmts: list, render: Callable) -> list[tuple[Any, str]]:
    """Each statement's text (``render(stmt)``) with its comment lines above it, trailing
    comment, and as many blank lines before it as in the source (at most 2)."""
    out = []
    for i, s in enumerate(stmts):
        decorators = getattr(s, "decorator_list", None)
        top = decorators[0].lineno if decorators else s.lineno
        first = top
        while first > 1 and src.lines(first - 1, first - 1).lstrip().startswith("#"):
            first -= 1
        blanks = 0
        while first - blanks > 1 and not src.lines(first - blanks - 1, first - blanks - 1).strip():
            blanks += 1
        lead = src.lines(first, top - 1) if first < top else ""
        s_start, s_end = src.span(s)
        prefix = src.slice(src.line_starts[top - 1], s_start)
        tail_end = (
            src.line_starts[s.end_lineno] if s.end_lineno < len(src.line_starts) else len(src.data)
        )
        suffix = src.slice(s_end, tail_end)
        text = lead + prefix + render(s) + suffix
        defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        if i and (isinstance(s, defs) or isinstance(stmts[i - 1], defs)):
            blanks = 2
        out.append((s, ("\n" * min(blanks, 2) if i else "") + text))
    return out


HELPERS = {
    "masked": """
# dualguide gives a value outside a distribution's support log_prob = -inf, as NumPyro does;
# plain Pyro raises a ValueError instead. masked(cls) keeps dualguide's behaviour (parameters
# are still validated as Pyro does by default).
class _SupportMasked:
    \"\"\"Mixin: no exception for out-of-support values; their log_prob is -inf.\"\"\"

    def _validate_sample(self, value):
        pass

    def log_prob(self, value):
        lp = super().log_prob(value)
        return torch.where(self.support.check(value), lp, lp.new_full((), -math.inf))

    def to_event(self, reinterpreted_batch_ndims=None):
        d = super().to_event(reinterpreted_batch_ndims)
        d._validate_args = False  # the masked base handles values outside the support
        return d


_MASKED = {}


def masked(cls):
    \"\"\"``cls`` with log_prob = -inf outside its support instead of a ValueError.\"\"\"
    if cls not in _MASKED:
        _MASKED[cls] = type(cls.__name__, (_SupportMasked, cls), {})
    return _MASKED[cls]
""",
    "asarray": """
def _asarray(x):
    \"\"\"A tensor of ``x``: floating point as float32 (dualguide's ops.asarray).\"\"\"
    t = torch.as_tensor(x)
    return t.float() if t.is_floating_point() else t
""",
}

#: dualguide.transformed, written natively (the export's copy of dualguide/transforms.py)
TRANSFORMED = {
    "numpyro": """
def _logabsdet(J):
    \"\"\"log|det J| over the last two dims (closed forms for 1x1 and 2x2, as dualguide).\"\"\"
    if J.shape[-1] == 1:
        return jnp.log(jnp.abs(J[..., 0, 0]))
    if J.shape[-1] == 2:
        return jnp.log(jnp.abs(J[..., 0, 0] * J[..., 1, 1] - J[..., 0, 1] * J[..., 1, 0]))
    return jnp.linalg.slogdet(J)[1]


def transformed(names, base, fn, event_dims=None):
    \"\"\"dualguide.transformed: sample ``base``, map it with ``fn``, record the outputs as Deltas.

    The first output's Delta carries -log|det J| of the map (J per batch element, by JAX's
    forward-mode autodiff), so the guide's density is the density of the outputs.
    \"\"\"
    single = isinstance(names, str)
    names = (names,) if single else tuple(names)
    us, in_eds = [], []
    for site, d in base.items():
        us.append(numpyro.sample(site, d, infer={"is_auxiliary": True}))
        in_eds.append(len(d.event_shape))
    event_dims = 0 if event_dims is None else event_dims
    out_eds = [event_dims] * len(names) if isinstance(event_dims, int) else list(event_dims)
    batch = jnp.broadcast_shapes(*[jnp.shape(u)[: jnp.ndim(u) - e] for u, e in zip(us, in_eds)])
    events = [jnp.shape(u)[jnp.ndim(u) - e :] for u, e in zip(us, in_eds)]
    xs = [jnp.broadcast_to(u, batch + ev) for u, ev in zip(us, events)]

    def f(*a):
        out = fn(*a)
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)

    outs, f_jvp = jax.linearize(f, *xs)
    out_events = [o.shape[o.ndim - e :] if e else () for o, e in zip(outs, out_eds)]
    size = sum(math.prod(ev) for ev in events)
    if sum(math.prod(ev) for ev in out_events) != size:
        raise ValueError(f"transformed {names}: the map is not square")
    eye = jnp.eye(size, dtype=jnp.float32)
    tangents, start = [], 0
    for ev in events:  # one one-hot tangent per base number, repeated over the batch
        n = math.prod(ev)
        t = eye[:, start : start + n].reshape((size,) + (1,) * len(batch) + ev)
        tangents.append(jnp.broadcast_to(t, (size,) + batch + ev))
        start += n
    columns = [jnp.broadcast_to(t, (size,) + batch + ev).reshape((size,) + batch + (-1,))
               for t, ev in zip(jax.vmap(f_jvp)(*tangents), out_events)]
    J = jnp.moveaxis(jnp.concatenate(columns, axis=-1), 0, -1)  # batch + (outputs, inputs)
    logdet = _logabsdet(J)
    values = []
    for j, (name, out, ev, e) in enumerate(zip(names, outs, out_events, out_eds)):
        log_density = -logdet if j == 0 else jnp.zeros_like(logdet)
        value = jnp.broadcast_to(out, batch + ev)
        values.append(numpyro.sample(name, dist.Delta(value, log_density=log_density, event_dim=e)))
    return values[0] if single else tuple(values)
""",
    "pyro": """
def _logabsdet(J):
    \"\"\"log|det J| over the last two dims (closed forms for 1x1 and 2x2, as dualguide).\"\"\"
    if J.shape[-1] == 1:
        return torch.log(torch.abs(J[..., 0, 0]))
    if J.shape[-1] == 2:
        return torch.log(torch.abs(J[..., 0, 0] * J[..., 1, 1] - J[..., 0, 1] * J[..., 1, 0]))
    return torch.linalg.slogdet(J).logabsdet


def transformed(names, base, fn, event_dims=None):
    \"\"\"dualguide.transformed: sample ``base``, map it with ``fn``, record the outputs as Deltas.

    The first output's Delta carries -log|det J| of the map (J per batch element, row by row
    with torch.autograd.grad and create_graph=True, so it stays differentiable in the params),
    so the guide's density is the density of the outputs.
    \"\"\"
    single = isinstance(names, str)
    names = (names,) if single else tuple(names)
    us, in_eds = [], []
    for site, d in base.items():
        us.append(pyro.sample(site, d, infer={"is_auxiliary": True}))
        in_eds.append(len(d.event_shape))
    event_dims = 0 if event_dims is None else event_dims
    out_eds = [event_dims] * len(names) if isinstance(event_dims, int) else list(event_dims)
    batch = torch.broadcast_shapes(*[u.shape[: u.dim() - e] for u, e in zip(us, in_eds)])
    grad_on = torch.is_grad_enabled()
    with torch.enable_grad():
        xs = []
        for u, e in zip(us, in_eds):
            u = u.expand(batch + u.shape[u.dim() - e :])
            xs.append(u if u.requires_grad else u.detach().requires_grad_())
        outs = fn(*xs)
        outs = tuple(outs) if isinstance(outs, (tuple, list)) else (outs,)
        outs = [o.expand(batch + (o.shape[o.dim() - e :] if e else ())) for o, e in zip(outs, out_eds)]
        flat = torch.cat([o.reshape(batch + (-1,)) for o in outs], dim=-1)
        size = sum(x.reshape(batch + (-1,)).shape[-1] for x in xs)
        if flat.shape[-1] != size:
            raise ValueError(f"transformed {names}: the map is not square")
        rows = []
        for r in range(size):
            if not flat.requires_grad:
                rows.append(flat.new_zeros(batch + (size,)))
                continue
            grads = torch.autograd.grad(flat[..., r].sum(), xs, create_graph=True, allow_unused=True)
            rows.append(torch.cat([(g if g is not None else torch.zeros_like(x)).reshape(batch + (-1,))
                                   for g, x in zip(grads, xs)], dim=-1))
        J = torch.stack(rows, dim=-2)  # batch + (outputs, inputs)
    if not grad_on:
        outs, J = [o.detach() for o in outs], J.detach()
    logdet = _logabsdet(J)
    values = []
    for j, (name, out, e) in enumerate(zip(names, outs, out_eds)):
        log_density = -logdet if j == 0 else torch.zeros_like(logdet)
        values.append(pyro.sample(name, dist.Delta(out, log_density=log_density, event_dim=e)))
    return values[0] if single else tuple(values)
""",
}


def inline_module(modname: str, path: str) -> tuple[str, set[str]]:
    """The code of a backend module that defines a class the export uses, and its imports.

    Docstrings with doctests are cut to their first line (they show dualguide usage).
    """
    mod = sys.modules[modname]
    file = inspect.getsourcefile(mod)
    src = Source(Path(file).read_text(encoding="utf-8"), file)
    imports: set[str] = set()
    body = list(src.tree.body)
    doc = ""
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        doc = body.pop(0).value.value
    edits: dict[int, str] = {}
    for node in ast.walk(src.tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and node.body:
            d = node.body[0]
            if (
                isinstance(d, ast.Expr)
                and isinstance(d.value, ast.Constant)
                and isinstance(d.value.value, str)
                and ">>>" in d.value.value
            ):
                first = d.value.value.strip().splitlines()[0]
                edits[id(d)] = '"""' + first + '"""'
    kept = []
    for s in body:
        if isinstance(s, ast.ImportFrom) and s.module == "__future__":
            continue
        if isinstance(s, ast.ImportFrom) and s.level:
            names = {a.name for a in s.names}
            if names <= {"_SupportMasked"}:
                continue
            raise ExportError(
                f"{path}: the export cannot inline {modname} (it imports "
                f"{', '.join(sorted(names))} from dualguide)"
            )
        if isinstance(s, (ast.Import, ast.ImportFrom)):
            if dualguide_refs_import(s):
                raise ExportError(
                    f"{path}: the export cannot inline {modname} (it imports dualguide)"
                )
            imports.add(src.segment(s))
            continue
        if isinstance(s, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in s.targets
        ):
            continue
        kept.append(s)

    class _Docs(Rewriter):
        def rule(self, node):
            return edits.get(id(node))

    pieces = [t for _s, t in statement_chunks(src, kept, _Docs(src).emit)]
    para = doc.strip().split("\n\n")[0].splitlines() if doc else []
    rel = "dualguide/" + modname.split(".", 1)[1].replace(".", "/") + ".py"
    head = [f"# --- inlined from {rel} (plain framework code) " + "-" * 10]
    head += [("# " + ln).rstrip() for ln in para]
    return "\n".join(head) + "\n\n\n" + "".join(pieces), imports


def _fmt_float(x: float) -> str:
    return repr(float(x))


def optimizer_code(opt, backend: str) -> tuple[str, list[str]]:
    """Native optimizer construction for a neutral Optimizer, and notes on what differs."""
    from ..optim import ExponentialDecay

    notes: list[str] = []
    b1, b2 = (float(b) for b in opt.betas)
    lr = opt.lr
    if callable(lr):
        if not isinstance(lr, ExponentialDecay):
            raise ExportError(
                f"the learning-rate schedule {lr!r} cannot be written out; use "
                "dualguide.optim.exponential_decay(lr, rate, steps) or a number"
            )
        base, rate, steps = lr.lr, lr.rate, lr.steps
    else:
        base, rate, steps = float(lr), None, None
    if backend == "numpyro":
        names = _table.NATIVE_OPTIMIZERS[opt.name][0]
        terms = [_fmt_float(base)]
        if rate is not None:
            terms.append(f"{_fmt_float(rate)} ** (i / {_fmt_float(steps)})")
        if opt.lrd != 1.0:
            terms.append(f"{_fmt_float(opt.lrd)} ** (i + 1)")
        step_size = terms[0] if len(terms) == 1 else f"lambda i: {' * '.join(terms)}"
        args = [f"step_size={step_size}", f"b1={b1!r}", f"b2={b2!r}", f"eps={opt.eps!r}"]
        if opt.clip_norm is not None:
            args.append(f"clip_norm={opt.clip_norm!r}")
        return f"{names}(\n        {', '.join(args)}\n    )", notes
    # pyro: torch-style dict of settings
    native = _table.NATIVE_OPTIMIZERS[opt.name][1]
    clip, lrd = opt.clip_norm, opt.lrd
    if rate is not None:
        # lr * rate**(t/steps) * lrd**(t+1) == (lr/g) * (g*lrd)**(t+1) with g = rate**(1/steps):
        # Pyro's ClippedAdam multiplies its lr by lrd before every step
        g = rate ** (1.0 / steps)
        base, lrd = base / g, g * lrd
        native = native.rsplit(".", 1)[0] + ".ClippedAdam"
        notes.append(
            "the exponential learning-rate decay is Pyro's ClippedAdam lrd "
            f"(lr {base:.6g}, lrd {lrd:.8g} per step)"
        )
        if clip is None:
            clip = math.inf
    elif lrd != 1.0 and not native.endswith("ClippedAdam"):  # pragma: no cover - Adam has no lrd
        native = native.rsplit(".", 1)[0] + ".ClippedAdam"
    settings = {"lr": base, "betas": (b1, b2), "eps": opt.eps}
    if native.endswith("ClippedAdam"):
        settings["clip_norm"] = clip
        settings["lrd"] = lrd
        notes.append(
            "Pyro's ClippedAdam adds eps to sqrt(v) before bias correction (dualguide's "
            "Adam after it, as optax/jax do): a difference of order eps"
        )
    items = ", ".join(f"{_py(k)}: {_py(v)}" for k, v in settings.items())
    return f"{native}(\n        {{{items}}}\n    )", notes


def _py(v) -> str:
    if isinstance(v, float) and math.isinf(v):
        return "math.inf"
    if isinstance(v, tuple):
        return "(" + ", ".join(_py(x) for x in v) + ")"
    if isinstance(v, list):
        return "[" + ", ".join(_py(x) for x in v) + "]"
    if v is None:
        return "None"
    if isinstance(v, str):
        import json

        return json.dumps(v)
    return repr(v)


def _data_code(value, backend: str, what: str) -> str:
    """A literal for model data (numbers, lists, numpy arrays)."""
    import numpy as np

    if value is None or isinstance(value, (bool, str)):
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    try:
        a = np.asarray(value)
    except Exception:  # pragma: no cover
        a = None
    if a is None or a.dtype.kind not in "biuf":
        raise ExportError(
            f"{what}: only numbers and numeric arrays can be written into the export, "
            f"got {type(value).__name__}"
        )
    lit = repr(a.tolist())
    if backend == "numpyro":
        dt = "jnp.float32" if a.dtype.kind == "f" else "jnp.int32"
        return f"jnp.asarray({lit}, dtype={dt})"
    dt = "torch.float32" if a.dtype.kind == "f" else "torch.int64"
    return f"torch.tensor({lit}, dtype={dt})"


def main_block(
    backend: str,
    settings: dict,
    models: list[str],
    guides: list[str],
    model: str,
    guide: str,
    needs: Needs,
) -> tuple[str, list[str]]:
    """The ``fit`` function and ``__main__`` block of the exported module."""
    from ..optim import as_optimizer

    opt = as_optimizer(settings.get("optim"))
    opt_code, notes = optimizer_code(opt, backend)
    steps = int(settings.get("num_steps", 2000))
    particles = int(settings.get("num_particles", 1))
    seed = int(settings.get("seed", 0))
    skip = settings.get("on_nonfinite", "stop") == "skip"
    margs = settings.get("model_args", ()) or ()
    mkw = settings.get("model_kwargs", {}) or {}
    data_lines = []
    if margs or mkw:
        items = [
            _data_code(a, backend, f"FIT_SETTINGS['model_args'][{i}]") for i, a in enumerate(margs)
        ]
        data_lines.append(f"MODEL_ARGS = ({', '.join(items)}{',' if len(items) == 1 else ''})")
        kw = ", ".join(
            f"{k!r}: {_data_code(v, backend, f'model_kwargs[{k!r}]')}" for k, v in mkw.items()
        )
        data_lines.append(f"MODEL_KWARGS = {{{kw}}}")
    else:
        data_lines += ["MODEL_ARGS = ()", "MODEL_KWARGS = {}"]
    for line in ("import argparse", "import json", "import numpy as np"):
        needs.imports.add(line)
    if backend == "numpyro":
        needs.imports |= {
            "import jax",
            "import numpyro",
            "from numpyro.infer import SVI, Trace_ELBO",
        }
        if skip:
            loop = """    state = svi.init(jax.random.PRNGKey(seed), *model_args, **model_kwargs)
    update = jax.jit(svi.update)
    losses = []
    for _ in range(num_steps):
        new_state, loss = update(state, *model_args, **model_kwargs)
        # dualguide's on_nonfinite="skip": a step whose loss or update is not finite is dropped
        # (its random numbers are used up, as in the dualguide fit)
        leaves = jax.tree_util.tree_leaves(new_state.optim_state)
        if np.isfinite(loss) and all(np.all(np.isfinite(leaf)) for leaf in leaves):
            state = new_state
        else:
            state = state._replace(rng_key=new_state.rng_key)
        losses.append(float(loss))
    params = svi.get_params(state)
    losses = np.asarray(losses)"""
        else:
            loop = """    result = svi.run(
        jax.random.PRNGKey(seed), num_steps, *model_args, progress_bar=False, **model_kwargs
    )
    params, losses = result.params, np.asarray(result.losses)
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        raise FloatingPointError(f"step {bad[0]}: the loss is not finite")"""
        fit = f'''

def make_optimizer():
    """The optimizer of the dualguide fit, as NumPyro's."""
    return {opt_code}


def fit(model, guide, *, num_steps={steps}, num_particles={particles}, seed={seed},
        model_args=MODEL_ARGS, model_kwargs=MODEL_KWARGS):
    """Fit ``guide`` to ``model`` with NumPyro's SVI; return (constrained params, losses)."""
    svi = SVI(model, guide, make_optimizer(), Trace_ELBO(num_particles=num_particles))
{loop}
    return {{name: np.asarray(value) for name, value in params.items()}}, losses
'''
    else:
        needs.imports |= {
            "import math",
            "import pyro",
            "import pyro.optim",
            "import torch",
            "from pyro import poutine",
            "from pyro.infer import JitTrace_ELBO, Trace_ELBO",
        }
        on_bad = (
            (
                "optimizer(params)  # the loss is finite: take the step\n"
                '        # dualguide\'s on_nonfinite="skip": a step with a non-finite loss '
                "or gradient is dropped"
            )
            if skip
            else (
                "optimizer(params)\n        else:\n            raise FloatingPointError("
                'f"step {step}: the loss or a gradient is not finite")'
            )
        )
        fit = f'''

def make_optimizer():
    """The optimizer of the dualguide fit, as Pyro's."""
    return {opt_code}


def _loss_and_grads(elbo, model, guide, model_args, model_kwargs):
    with poutine.trace(param_only=True) as param_capture:
        loss = elbo.loss_and_grads(model, guide, *model_args, **model_kwargs)
    params = {{site["value"].unconstrained() for site in param_capture.trace.nodes.values()}}
    return loss, params


def fit(model, guide, *, num_steps={steps}, num_particles={particles}, seed={seed}, jit=True,
        model_args=MODEL_ARGS, model_kwargs=MODEL_KWARGS):
    """Fit ``guide`` to ``model`` with Pyro's SVI loop; return (constrained params, losses)."""
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    optimizer = make_optimizer()
    elbo_kw = dict(num_particles=num_particles, vectorize_particles=num_particles > 1)
    elbo = JitTrace_ELBO(ignore_jit_warnings=True, **elbo_kw) if jit else Trace_ELBO(**elbo_kw)
    losses = []
    for step in range(num_steps):
        try:
            loss, params = _loss_and_grads(elbo, model, guide, model_args, model_kwargs)
        except Exception:
            if step or not jit:
                raise
            # the program does not trace under torch.jit: fall back to Trace_ELBO
            pyro.clear_param_store()
            pyro.set_rng_seed(seed)
            elbo = Trace_ELBO(**elbo_kw)
            loss, params = _loss_and_grads(elbo, model, guide, model_args, model_kwargs)
        grads = [p.grad for p in params if p.grad is not None]
        if math.isfinite(loss) and all(bool(g.isfinite().all()) for g in grads):
            {on_bad}
        pyro.infer.util.zero_grads(params)
        losses.append(loss)
    store = pyro.get_param_store()
    return {{name: store[name].detach().numpy() for name in store.keys()}}, np.asarray(losses)
'''
    quiet = ""
    if backend == "pyro":
        needs.imports.add("import logging")
        quiet = (
            '    logging.getLogger("pyro").setLevel(logging.WARNING)  '
            '# no "Guessed max_plate_nesting" notes\n'
        )
    main = f"""

#: the functions --model and --guide can name
MODELS_AND_GUIDES = (
    {_py(sorted(models))},
    {_py(sorted(guides))},
)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Fit the exported guide with {backend}'s SVI.")
    parser.add_argument("--model", default={_py(model)}, choices=MODELS_AND_GUIDES[0] or None)
    parser.add_argument("--guide", default={_py(guide)}, choices=MODELS_AND_GUIDES[1])
    parser.add_argument("--steps", type=int, default={steps})
    parser.add_argument("--particles", type=int, default={particles})
    parser.add_argument("--seed", type=int, default={seed})
    parser.add_argument("--json", action="store_true", help="print the params as JSON")
    args = parser.parse_args(argv)
{quiet}    if args.model is None:
        parser.error("this file has no model: import it and call fit(your_model, guide)")
    params, losses = fit(globals()[args.model], globals()[args.guide], num_steps=args.steps,
                         num_particles=args.particles, seed=args.seed)
    if args.json:
        print(json.dumps({{"params": {{k: v.tolist() for k, v in params.items()}},
                          "final_loss": float(np.mean(losses[-max(1, len(losses) // 10):]))}}))
    else:
        for name, value in params.items():
            print(f"{{name}} = {{np.array2string(value, precision=4)}}")


if __name__ == "__main__":
    main()
"""
    return "\n".join(data_lines) + "\n" + fit + main, notes


# -------------------------------------------------------------------------------------------
# whole-module export
# -------------------------------------------------------------------------------------------
def _load_module(path: Path):
    from .._cli import load_file

    return load_file(str(path))


def _pick(names: list[str], wanted: str | None, default: str, role: str, path: str) -> str:
    if wanted:
        if wanted not in names:
            raise ExportError(
                f"{path}: no exportable {role} {wanted!r} "
                f"(exportable: {', '.join(names) or 'none'})"
            )
        return wanted
    if default in names:
        return default
    cands = [n for n in names if role in n.lower()]
    if len(cands) >= 1:
        return cands[0]
    raise ExportError(
        f"{path}: no {role} function found (exportable functions: "
        f"{', '.join(names) or 'none'}); name it with {role}="
    )


def export_source(
    path: str | Path,
    backend: str,
    *,
    module: types.ModuleType | None = None,
    model: str | None = None,
    guide: str | None = None,
    settings: dict | None = None,
) -> str:
    """Export the neutral program in the file ``path``; return the native module's source."""
    if backend not in BACKENDS:
        raise ExportError(f"export: backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    src = Source(path.read_text(encoding="utf-8"), str(path))
    if module is None:
        module = _load_module(path)
    mglobals = vars(module)
    aliases = module_aliases(src.tree, "dualguide")
    if not aliases:
        raise ExportError(f"{path}: does not import dualguide; nothing to export")
    body = list(src.tree.body)
    docstring = None
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        docstring = body.pop(0).value.value
    future, imports, stmts, dropped = [], [], [], []
    for s in body:
        if isinstance(s, ast.ImportFrom) and s.module == "__future__":
            future.append(s)
        elif dualguide_refs_import(s):
            continue
        elif isinstance(s, (ast.Import, ast.ImportFrom)):
            imports.append(s)
        elif is_main_guard(s):
            dropped.append((s, "the __main__ block (replaced by one that fits natively)"))
        else:
            stmts.append(s)
    # statements that use dualguide outside the exportable vocabulary are dropped, and so is
    # whatever depends on them (e.g. FIT_SETTINGS with dg.optim, a main() calling dg.fit)
    bad: dict[int, tuple[int, str]] = {}
    for s in stmts:
        for n, q in dualguide_refs(s, aliases):
            c = classify(q)
            if c is None or q in (
                "dualguide",
                "dualguide.distributions",
                "dualguide.ops",
                "dualguide.constraints",
            ):
                bad.setdefault(id(s), (n.lineno, q))
                break
    changed = True
    while changed:
        changed = False
        bad_names = set()
        for s in stmts:
            if id(s) in bad:
                bad_names |= bound_names(s)
        for s in stmts:
            if id(s) not in bad:
                hit = loaded_names(s) & bad_names
                if hit:
                    name = sorted(hit)[0]
                    bad[id(s)] = (s.lineno, f"{name} (not exported)")
                    changed = True
    kept = [s for s in stmts if id(s) not in bad]
    for s in stmts:
        if id(s) in bad:
            line, why = bad[id(s)]
            dropped.append((s, f"uses {why} (line {line})"))
    # the functions that are models or guides
    kept_names: set[str] = set()
    for s in kept:
        kept_names |= bound_names(s)
    funcs = [
        n for n in kept_names if callable(mglobals.get(n)) and not isinstance(mglobals.get(n), type)
    ]
    models = sorted(n for n in funcs if "model" in n.lower())
    guides = sorted(n for n in funcs if "guide" in n.lower())
    # the model/guide to fit (named, or the default names) dropped: say why, with every line
    for wanted in (model or "model", guide or "guide"):
        if wanted in kept_names:
            continue
        for s, _why in dropped:
            if wanted in bound_names(s):
                problems = []
                for n, q in dualguide_refs(s, aliases):
                    if classify(q) is None:
                        problems.append(
                            (
                                str(path),
                                n.lineno,
                                f"{q} has no native counterpart in a model or guide",
                            )
                        )
                for n in ast.walk(s):
                    if isinstance(n, ast.Name) and n.id in bad_names and n.id != wanted:
                        problems.append(
                            (str(path), n.lineno, f"{n.id} uses dualguide beyond models and guides")
                        )
                lines = "\n".join(f"  {p}:{ln}: {msg}" for p, ln, msg in problems)
                raise ExportError(
                    f"{path}:{s.lineno}: {wanted} cannot be exported:\n{lines}", problems
                )
    the_model = _pick(models, model, "model", "model", str(path)) if models or model else None
    the_guide = _pick(guides, guide, "guide", "guide", str(path))
    # rewrite
    ex = Exporter(src, backend, aliases, mglobals)
    pieces = statement_chunks(src, kept, ex.emit)
    if ex.problems:
        lines = "\n".join(f"  {p}:{ln}: {msg}" for p, ln, msg in ex.problems)
        raise ExportError(f"{path}: cannot export to {backend}:\n{lines}", ex.problems)
    # settings and the native fit
    if settings is None:
        settings = dict(mglobals.get("FIT_SETTINGS") or {})
    tail, notes = main_block(backend, settings, models, guides, the_model, the_guide, ex.needs)
    # names the export introduces must not clash with the user's
    introduced = {
        "dist",
        "constraints",
        "jnp",
        "jax",
        "numpyro",
        "torch",
        "pyro",
        "math",
        "np",
        "masked",
        "_asarray",
        "fit",
        "main",
        "make_optimizer",
        "MODEL_ARGS",
        "MODEL_KWARGS",
        "SVI",
        "Trace_ELBO",
        "JitTrace_ELBO",
        "poutine",
        "argparse",
        "json",
        "_loss_and_grads",
        "_MASKED",
    }
    user_imports = []
    used = set()
    for s, _t in pieces:
        used |= loaded_names(s)
    for s in imports:
        names = bound_names(s)
        if names & used:
            user_imports.append(src.segment(s))
    for s, _t in pieces:
        clash = bound_names(s) & introduced
        if clash:
            n = sorted(clash)[0]
            raise ExportError(
                f"{path}:{s.lineno}: the name {n!r} is used by the exported code; "
                "rename it in the source"
            )
    return _assemble(
        src,
        path,
        backend,
        docstring,
        future,
        user_imports,
        ex,
        pieces,
        tail,
        dropped,
        notes,
        the_model,
        the_guide,
    )


def _assemble(
    src,
    path,
    backend,
    docstring,
    future,
    user_imports,
    ex,
    pieces,
    tail,
    dropped,
    notes,
    the_model,
    the_guide,
) -> str:
    from .. import __version__

    other = "pyro" if backend == "numpyro" else "numpyro"
    framework = "NumPyro (JAX)" if backend == "numpyro" else "Pyro (PyTorch)"
    first = (docstring or "").strip().splitlines()[0] if docstring else ""
    diffs = [
        "params are initialized without dualguide's check that the init value lies inside "
        "its constraint",
    ]
    if backend == "pyro":
        diffs.append(
            "dualguide runs Pyro fits in their own param-store scope and RNG fork; "
            "fit() here uses the global ParamStore and pyro.set_rng_seed"
        )
        diffs.append(
            "the optimizer is Pyro's own (dualguide uses its torch port of jax's Adam); "
            "updates agree to float32 rounding"
        )
    diffs += notes
    head = [
        f'"""{Path(path).name} in plain {framework}: written by `dualguide export` '
        f"(dualguide {__version__}).",
        "",
    ]
    if first:
        head += [f"Original: {first}", ""]
    head += [
        f"Needs only {backend} (no dualguide, no {other}). Fits model {the_model!r} with "
        f"guide {the_guide!r} natively:"
        if the_model
        else f"Needs only {backend} (no dualguide, no {other}). The file has no model: call "
        f"fit(your_model, {the_guide}) to fit guide {the_guide!r} natively.",
        "",
        f"    python {Path(path).stem}_{backend}.py [--model NAME] [--guide NAME] [--steps N] "
        "[--seed S] [--json]",
        "",
        "Differences from a dualguide fit:",
        *[f"- {d}" for d in diffs],
    ]
    if dropped:
        head += ["", "Not exported (they use dualguide beyond models and guides):"]
        for s, why in dropped:
            names = ", ".join(sorted(bound_names(s))) or (
                "if __name__ == '__main__'" if is_main_guard(s) else "a statement"
            )
            head.append(f"- line {s.lineno}: {names}: {why}")
    head.append('"""')
    sections = []
    code_sections = []
    for h in ex.needs.helpers:
        if h == "transformed":
            continue
        code_sections.append(HELPERS[h])
    imports = set(ex.needs.imports)
    for modname in ex.needs.inlined:
        code, imps = inline_module(modname, str(path))
        code_sections.append(code)
        imports |= imps
    if "transformed" in ex.needs.helpers:
        imports.add("import math")
        code_sections.append(
            "# --- dualguide.transformed, written natively "
            + "-" * 48
            + "\n"
            + TRANSFORMED[backend]
        )
    block = _imports_block(imports, user_imports)
    if future:
        block = "\n".join(src.segment(s) for s in future) + "\n\n" + block
    sections.append(block)
    sections += code_sections
    sections.append(
        "# --- the model(s) and guide(s) " + "-" * 62 + "\n" + "".join(t for _s, t in pieces)
    )
    sections.append("# --- fit natively " + "-" * 75 + "\n" + tail.lstrip("\n"))
    text = (
        "\n".join(_wrap_doc(head))
        + "\n\n"
        + "\n\n\n".join(sec.strip("\n") for sec in sections)
        + "\n"
    )
    try:
        compile(text, f"<export of {path}>", "exec")
    except SyntaxError as e:  # pragma: no cover - a bug in the rewriter
        raise ExportError(
            f"{path}: the exported {backend} code does not compile "
            f"(line {e.lineno}: {e.msg}); please report this"
        ) from None
    return text


def _wrap_doc(lines: list[str], width: int = 99) -> list[str]:
    import textwrap

    out = []
    for ln in lines:
        if len(ln) <= width or ln.startswith("    "):
            out.append(ln)
        else:
            indent = "  " if ln.startswith("- ") else ""
            out.extend(textwrap.wrap(ln, width, subsequent_indent=indent))
    return out


def _imports_block(native: set[str], user: list[str]) -> str:
    """Standard-library imports, then third-party ones, each sorted, without duplicates."""
    lines = set(native) | set(user)

    def module(line: str) -> str:
        return line.split()[1].split(".")[0]

    def key(line: str):
        return (line.startswith("from "), line.split()[1], line)

    std = sorted((ln for ln in lines if module(ln) in sys.stdlib_module_names), key=key)
    third = sorted((ln for ln in lines if module(ln) not in sys.stdlib_module_names), key=key)
    return "\n\n".join("\n".join(b) for b in (std, third) if b)


def export(
    source: str | Path | Callable | types.ModuleType,
    backend: str,
    *,
    out: str | Path | None = None,
    model: str | None = None,
    guide: str | None = None,
    settings: dict | None = None,
) -> str:
    """Write a neutral model and guide out as a plain NumPyro or plain Pyro module.

    ``source`` is a Python file, an imported module, or a model/guide function
    (its module is exported; a function's name picks the guide or model).
    ``backend`` is ``"numpyro"`` or ``"pyro"``.  Returns the module's source and
    writes it to ``out`` when given.  The module needs only that framework:
    ``python out.py`` fits the model (``--model``) and guide (``--guide``) with
    the native SVI and the file's ``FIT_SETTINGS`` (or ``settings=``), and
    prints the fitted params (``--json`` for machines).

    >>> import dualguide as dg
    >>> code = dg.export("examples/seed_gaussian.py", backend="numpyro",
    ...                  out="seed_numpyro.py")  # doctest: +SKIP
    >>> # then: python seed_numpyro.py --json
    """
    module = None
    if isinstance(source, types.ModuleType):
        module, path = source, getattr(source, "__file__", None)
    elif callable(source) and not isinstance(source, (str, Path)):
        fn = getattr(source, "neutral", source)
        module = sys.modules.get(getattr(fn, "__module__", None) or "")
        try:
            path = inspect.getsourcefile(fn)
        except TypeError:
            path = None
        name = getattr(fn, "__name__", "")
        if "guide" in name.lower() and guide is None:
            guide = name
        elif "model" in name.lower() and model is None:
            model = name
    else:
        path = source
    if path is None:
        raise ExportError(f"export: cannot find the source file of {source!r}")
    text = export_source(path, backend, module=module, model=model, guide=guide, settings=settings)
    if out is not None:
        Path(out).write_text(text, encoding="utf-8")
    return text
