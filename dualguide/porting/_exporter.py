"""The exporter's rewriter: neutral code in, one backend's native code out.

:class:`Exporter` rewrites a model or guide node by node (see
:class:`~dualguide.porting._source.Rewriter`): primitives, distributions,
constraints and ops become the native spellings of :mod:`dualguide._table`, plain
numbers become tensors where torch needs them, and every native name used is
recorded in :class:`Needs` (imports, generated helpers, inlined backend modules).
"""

from __future__ import annotations

import ast
import inspect
import sys
from dataclasses import dataclass, field

from .. import _table
from ._source import Rewriter, Source, arg_value, bind, local_names, qualname
from ._vocab import (
    BACKENDS,
    CONSTRAINT_IMPORT,
    DIST_IMPORT,
    ELEMENTWISE,
    IMPORTS,
    KEEPDIMS_KEYWORD,
    OP_CONSTANTS,
    PRIMITIVE_ARGS,
    RANDOM,
    REAL_SUPPORT,
    REDUCTIONS,
    SCANS,
    TORCH_DEFAULTS,
    TORCH_KEYWORDS,
    USER_DIST_METHODS,
    canonical,
    classify,
    dualguide_refs,
    dualguide_refs_import,
    not_exported,
)


@dataclass
class Needs:
    """Imports and helpers the exported code uses."""

    imports: set = field(default_factory=set)
    helpers: list = field(default_factory=list)
    #: backend modules whose code is inlined -> the class the export uses from it
    inlined: dict = field(default_factory=dict)
    #: the first line that marks sites for enumeration (the fit must use TraceEnum_ELBO)
    enumerated: int | None = None

    def helper(self, name: str) -> None:
        if name not in self.helpers:
            self.helpers.append(name)


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
            c = classify(canonical(q)) if q is not None else None
            return c is not None and c[0] == "const" and c[1] != "newaxis"
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
        if isinstance(node, ast.ClassDef) and self.user_dist_bases(node):
            return self.user_dist(node)
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
                self.problem(node, not_exported(q))
                return self.src.segment(node)
            kind, name = c
            if kind == "primitive":
                return self.primitive(name, node)
            if kind == "dist":
                return self.dist(name, node)
            if kind == "op":
                return self.op(name, node)
            if kind == "transform":
                return self.dist_transform(name, node)
            if kind == "transformed":
                return self.transformed(node)
            if kind == "bijection":
                return self.bijection(name, node)
            if kind == "autoguide":
                return self.autoguide(name, node)
            if kind == "enum":
                return self.enum(name, node)
            if kind == "userdist":
                self.problem(node, f"{q}(...): subclass it (a user-defined distribution)")
                return self.src.segment(node)
            return None  # constraint factories: the Attribute rule renames them
        if isinstance(node, (ast.Attribute, ast.Name)):
            q = qualname(node, self.aliases)
            if q is None:
                return None
            q = canonical(q)
            c = classify(q)
            if c is None:
                self.problem(node, not_exported(q))
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
            if kind == "enum":  # @dg.config_enumerate, @dg.markov
                if name == "config_enumerate":
                    self.note_enumerated(node)
                return self.enum_name(name)
            if kind == "userdist":
                self.problem(
                    node,
                    f"{q} can only be exported as the base class of a user-defined distribution",
                )
                return self.src.segment(node)
            self.problem(node, f"{q} can only be exported as a call")
            return self.src.segment(node)
        return None

    # user-defined distributions (issue 12) ----------------------------------------------
    def user_dist_bases(self, node: ast.ClassDef) -> list[ast.expr]:
        """The bases of ``node`` that are ``dist.Distribution`` (a user-defined distribution)."""
        out = []
        for b in node.bases:
            q = qualname(b, self.aliases)
            c = classify(canonical(q)) if q is not None else None
            if c is not None and c[0] == "userdist":
                out.append(b)
        return out

    def user_dist(self, node: ast.ClassDef) -> str:
        """``class X(dist.Distribution)`` -> ``class X(UserDistribution)``, a native subclass.

        ``UserDistribution`` (written into the export, ``_native.user_dist_source``) subclasses the
        framework's base class and defines its ``sample`` / ``rsample`` / ``log_prob`` on the
        user's neutral methods, renamed ``_sample(key, sample_shape)`` and ``_log_prob(value)``
        (-inf outside the support, as in dualguide)."""
        self.needs.helper("userdist")
        for line in (
            ["import jax", "import jax.numpy as jnp", DIST_IMPORT["numpyro"]]
            if self.backend == "numpyro"
            else ["import torch", DIST_IMPORT["pyro"]]
        ):
            self.needs.imports.add(line)
        self.needs.imports.add(CONSTRAINT_IMPORT[self.backend])
        ov: dict[int, str] = {id(b): "UserDistribution" for b in self.user_dist_bases(node)}
        for st in node.body:
            if isinstance(st, ast.FunctionDef) and st.name in USER_DIST_METHODS:
                text = self.emit(st)
                new = USER_DIST_METHODS[st.name]
                ov[id(st)] = text.replace(f"def {st.name}(", f"def {new}(", 1)
            elif isinstance(st, ast.FunctionDef) and st.name == "rsample":
                self.problem(
                    st,
                    f"{node.name}.rsample: a user-defined distribution writes sample(key, "
                    "sample_shape) and sets has_rsample = True (dualguide makes rsample of it)",
                )
        return self.splice(node, ov)

    # enumeration (issue 14) ----------------------------------------------------------------
    def enum_name(self, name: str) -> str:
        """The native spelling of a ``dualguide.enum`` name (the first of its ``_table.ENUM``
        row), its module imported."""
        native = _table.ENUM[name][self.i][0]
        self.needs.imports.add(f"import {native.rsplit('.', 1)[0]}")
        return native

    def note_enumerated(self, node) -> None:
        if self.needs.enumerated is None:
            self.needs.enumerated = getattr(node, "lineno", 0)

    def enum(self, name: str, node: ast.Call) -> str:
        """``dg.config_enumerate(model)``, ``dg.markov(range(T))``, ``ops.Vindex(x)``,
        ``dg.infer_discrete(model, first_available_dim=-1, temperature=0)``: the framework's
        own (the same arguments in both)."""
        if name == "config_enumerate":
            self.note_enumerated(node)
        if name == "infer_discrete" and self.backend == "numpyro":
            t = next((k.value for k in node.keywords if k.arg == "temperature"), None)
            if t is None and len(node.args) > 2:
                t = node.args[2]
            if not (isinstance(t, ast.Constant) and t.value == 0):
                self.problem(
                    node,
                    "dg.infer_discrete: only temperature=0 (MAP) is exported to NumPyro "
                    "(NumPyro's takes its rng_key when it is built; dualguide draws one per "
                    "call); decode with temperature=0 or run the neutral program",
                )
        return self.call_text(node, self.enum_name(name))

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
        inf = b.get("infer")
        if name == "sample" and inf is not None and "enumerate" in self.src.segment(inf):
            self.note_enumerated(node)
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
        if name == "sample" and self.backend == "pyro" and b.get("obs") is not None:
            # dualguide's input rule: integer and bool observations reach Pyro as floats
            a = b["obs"]
            self.needs.helper("obs")
            self.use("torch.as_tensor")
            ov[id(a)] = f"obs=_obs({self.emit(arg_value(a))})"
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

    def autoguide(self, kind: str, node: ast.Call) -> str:
        """``dg.autoguides.AutoNormal(model, init_loc_fn="median", ...)`` -> the native autoguide,
        with dualguide's pinned default init strategy (``init_to_feasible``) written out."""
        pkg = "numpyro.infer" if self.backend == "numpyro" else "pyro.infer.autoguide"
        self.needs.imports.add(f"from {pkg.split('.infer')[0]}.infer.autoguide import {kind}")
        strategy = "feasible"
        ov: dict[int, str] = {}
        append = []
        renames = _table.AUTOGUIDE_ARGS.get(kind, {}) if self.backend == "numpyro" else {}
        for k in node.keywords:
            if k.arg in renames:  # NumPyro's keyword for a neutral (Pyro) one
                ov[id(k)] = f"{renames[k.arg]}={self.emit(k.value)}"
            if kind == "AutoIAFNormal" and k.arg == "nonlinearity":
                self.problem(
                    node, "AutoIAFNormal: nonlinearity= is not exported (the default ELU is)"
                )
            if k.arg != "init_loc_fn":
                continue
            v = k.value
            if isinstance(v, ast.Constant) and v.value in _table.AUTOGUIDE_INITS:
                strategy = v.value
                ov[id(k)] = ""
            elif isinstance(v, ast.Dict):
                self.needs.imports.add(f"from {pkg} import init_to_value")
                ov[id(k)] = f"init_loc_fn=init_to_value(values={self.emit(v)})"
                strategy = ""
            else:
                self.problem(node, f"{kind}: init_loc_fn={self.src.segment(v)} cannot be exported")
        if strategy:
            fn = _table.AUTOGUIDE_INITS[strategy][self.i]
            self.needs.imports.add(f"from {pkg} import {fn}")
            append.append(f"init_loc_fn={fn}")
        if any(v == "" for v in ov.values()):
            items = [self.emit(a) for a in node.args]
            items += [
                ov.get(id(k)) or f"{k.arg}={self.emit(k.value)}"
                for k in node.keywords
                if ov.get(id(k)) != ""
            ]
            return f"{kind}({', '.join(items + append)})"
        return self.call_text(node, kind, ov, append)

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
            a = v.args
            if len(a.posonlyargs + a.args) > 1 or a.vararg or a.kwonlyargs or a.kwarg:
                self.problem(
                    v,
                    "a param's init callable takes no arguments (Pyro's convention) or one, "
                    "the init key",
                )
                return self.emit(v)
            key = (a.posonlyargs + a.args)[0].arg if a.posonlyargs + a.args else None
            self.locals.append(local_names(v))
            try:
                body = self.param_init(v.body)
            finally:
                self.locals.pop()
            if self.backend == "numpyro":
                return f"lambda {key or '_rng_key'}: {body}"
            # Pyro calls the init with no argument: the key is (), which a torch
            # distribution's .sample(key) reads as sample_shape=() (ops.random drops it)
            return f"lambda {key}=(): {body}" if key else f"lambda: {body}"
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
            if self.backend == "pyro":  # the inlined class builds on _SupportMasked
                self.dist_needs_mask_helper()
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
        if self.backend == "pyro" and name not in _table.PYRO_FLOAT_ARGS_OK:
            # pyro classes such as ZeroInflatedDistribution read a float argument's .shape
            for a in node.args:
                if _float_literal(a):
                    ov[id(a)] = f"{self.use('torch.tensor')}({self.emit(a)})"
            for k in node.keywords:
                if k.arg and _float_literal(k.value):
                    ov[id(k)] = f"{k.arg}={self.use('torch.tensor')}({self.emit(k.value)})"
        return self.call_text(node, func, ov)

    def dist_transform(self, name: str, node: ast.Call) -> str:
        """A neutral transform (``dist.transforms.X(...)``, ``dist.biject_to(c)``) as the
        framework's class, from the rows of ``_table.TRANSFORMS``."""
        if name == "biject_to":
            return self.call_text(node, self.use("dist.transforms.biject_to"))
        spec = _table.TRANSFORMS[name]
        native = spec.numpyro if self.i == 0 else spec.pyro
        if native is None:  # NumPyro's TanhTransform: the backend's own class, written out
            self.needs.helper("transform:" + name)
            return self.call_text(node, name)
        ov = {}
        if (
            self.backend == "numpyro"
            and name == "AffineTransform"
            and (len(node.args) > 2 or any(k.arg == "event_dim" for k in node.keywords))
        ):
            return self.affine_event_dim(node)
        if self.backend == "numpyro" and spec.rename:
            # NumPyro's own keywords (and argument order): every argument by keyword
            for a, k in zip(node.args, spec.args):
                ov[id(a)] = f"{spec.rename.get(k, k)}={self.emit(a)}"
            for kw in node.keywords:
                if kw.arg in spec.rename:
                    ov[id(kw)] = f"{spec.rename[kw.arg]}={self.emit(kw.value)}"
        return self.call_text(node, self.use("dist.transforms." + native), ov)

    def affine_event_dim(self, node: ast.Call) -> str:
        """``AffineTransform(loc, scale, event_dim=k)`` for NumPyro, whose AffineTransform has
        no event_dim (its domain argument, made independent, leaves it without a codomain):
        ``IndependentTransform(AffineTransform(loc, scale), k)``, the map the NumPyro backend
        runs (``backends/numpyro/dists.py``)."""
        named = dict(zip(("loc", "scale", "event_dim"), node.args))
        for kw in node.keywords:
            if kw.arg is None or kw.arg in named or kw.arg not in ("loc", "scale", "event_dim"):
                self.problem(
                    node,
                    "dist.transforms.AffineTransform(...) with event_dim: give loc, scale and "
                    "event_dim by position or by their names (no **kwargs) to export it to "
                    "NumPyro",
                )
                return self.src.segment(node)
            named[kw.arg] = kw.value
        if len(node.args) > 3 or "loc" not in named or "scale" not in named:
            self.problem(
                node,
                "dist.transforms.AffineTransform(loc, scale, event_dim): loc and scale are "
                "needed, and no more arguments",
            )
            return self.src.segment(node)
        affine = self.use("dist.transforms.AffineTransform")
        wrap = self.use("dist.transforms.IndependentTransform")
        loc, scale, k = (self.emit(named[a]) for a in ("loc", "scale", "event_dim"))
        return f"{wrap}({affine}({loc}, {scale}), {k})"

    # ops ---------------------------------------------------------------------------------
    def op(self, name: str, node: ast.Call) -> str:
        from .. import ops as neutral_ops

        native = self.use(_table.OPS[name][self.i])
        try:
            fn: object = neutral_ops
            for part in name.split("."):  # random.normal
                fn = getattr(fn, part)
            sig = inspect.signature(fn)  # type: ignore[arg-type]
        except (TypeError, ValueError, AttributeError):  # pragma: no cover
            return self.call_text(node, native)
        params = [
            p.name
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        if name == "einsum" or any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values()):
            return self.call_text(node, native)  # (*arrays): the native call takes them alike
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
        self.dtype_literal(b, ov)
        k = b.get("keepdims")
        if name in KEEPDIMS_KEYWORD and k is not None and not isinstance(k, ast.keyword):
            ov[id(k)] = f"keepdims={self.emit(k)}"
        if name == "solve_triangular" and "upper" in b:
            u = b["upper"]
            uv = arg_value(u)
            lower = (
                repr(not uv.value)
                if isinstance(uv, ast.Constant) and isinstance(uv.value, bool)
                else f"not ({self.emit(uv)})"
            )
            ov[id(u)] = f"lower={lower}"
        if name in RANDOM and "shape" in b:
            self.shape_tuple(b["shape"], ov)
        key = b.get("key")
        if name in RANDOM and key is not None:
            kv = arg_value(key)
            if isinstance(kv, ast.Constant) and isinstance(kv.value, int):  # an int seed
                t = f"{self.use('jax.random.PRNGKey')}({kv.value})"
                ov[id(key)] = f"key={t}" if isinstance(key, ast.keyword) else t
        return self.call_text(node, native, ov)

    def dtype_literal(self, b: dict, ov: dict) -> None:
        """``ops.astype(x, "int32")``: the neutral dtype name as the framework's dtype."""
        d = b.get("dtype")
        if d is None:
            return
        v = arg_value(d)
        if isinstance(v, ast.Constant) and v.value in _table.OP_DTYPES:
            t = self.use(_table.OP_DTYPES[v.value][self.i])
            ov[id(d)] = f"dtype={t}" if isinstance(d, ast.keyword) else t

    def shape_tuple(self, a, ov: dict) -> None:
        """An int shape written as a tuple (jax.random takes only sequences)."""
        v = arg_value(a)
        if isinstance(v, ast.Constant) and isinstance(v.value, int):
            t = f"({self.emit(v)},)"
            ov[id(a)] = f"shape={t}" if isinstance(a, ast.keyword) else t

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
        ax = v.get("dim", v.get("axis"))
        if name in SCANS and (ax is None or (isinstance(ax, ast.Constant) and ax.value is None)):
            x = self.tensor(v["x"])
            return f"{native}({self.use('torch.reshape')}({x}, (-1,)), 0)"
        if name in RANDOM:
            return self.random_pyro(name, native, v)
        if name == "linspace" and "endpoint" in v:
            e = v["endpoint"]
            if not (isinstance(e, ast.Constant) and e.value is True):
                self.problem(node, "ops.linspace(..., endpoint=False) cannot be exported to torch")
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
        if name == "solve_triangular" and isinstance(v.get("b"), (ast.Name, ast.Attribute)):
            # torch takes only matrix right-hand sides: a vector b goes in as one column
            a_t, b_t = self.emit(v["a"]), self.emit(v["b"])
            up = self.emit(v["upper"]) if "upper" in v else "False"
            return (
                f"({native}({a_t}, {b_t}[..., None], upper={up})[..., 0] "
                f"if {b_t}.dim() == 1 else {native}({a_t}, {b_t}, upper={up}))"
            )
        if name in ("sort", "take", "flip", "eye"):
            return self.op_pyro_shaped(name, node, native, b, v)
        if name == "transpose" and "axes" not in b:
            self.problem(
                node, "ops.transpose(x) without axes cannot be exported to torch; give axes"
            )
        ov = {}
        self.dtype_literal(b, ov)
        k = b.get("keepdims")
        if name in KEEPDIMS_KEYWORD and k is not None and not isinstance(k, ast.keyword):
            ov[id(k)] = f"keepdims={self.emit(k)}"  # torch.var's 3rd argument is unbiased
        renames = TORCH_KEYWORDS.get(name, {})
        for k, a in b.items():
            if k in renames:
                text = self.emit(arg_value(a))
                ov[id(a)] = f"{renames[k]}={text}" if isinstance(a, ast.keyword) else text
            if name == "linspace" and k == "endpoint":
                ov[id(a)] = ""
        append = []
        if name in TORCH_DEFAULTS:
            arg, default = TORCH_DEFAULTS[name]
            if arg not in b and not (arg == "axis" and "dim" in b):
                append.append(f"{arg}={default}")
        if any(t == "" for t in ov.values()):
            return self._rebuild(native, node, b, drop=("endpoint",), overrides=ov)
        return self.call_text(node, native, ov, append)

    def op_pyro_shaped(self, name: str, node: ast.Call, native: str, b: dict, v: dict) -> str:
        """The ops whose torch call differs in shape from the neutral one (issue 12)."""
        x = self.emit(v["x"]) if "x" in v else ""
        axis = v.get("dim", v.get("axis"))
        no_axis = axis is None or (isinstance(axis, ast.Constant) and axis.value is None)
        if name == "sort":  # torch.sort returns (values, indices)
            items = [x] + ([] if no_axis else [f"dim={self.emit(axis)}"])
            if "descending" in v:
                items.append(f"descending={self.emit(v['descending'])}")
            return f"{native}({', '.join(items)}).values"
        if name == "take":  # torch.take reads the flattened array, index_select one axis
            idx = self.emit(v["indices"])
            if no_axis:
                return f"{self.use('torch.take')}({x}, {idx})"
            return f"{native}({x}, {self.emit(axis)}, {idx})"
        if name == "flip":  # torch.flip takes a tuple of dims, no None
            if no_axis:
                return f"{native}({x}, tuple(range({x}.ndim)))"
            if isinstance(axis, ast.Tuple):
                return f"{native}({x}, {self.emit(axis)})"
            a = self.emit(axis)
            if isinstance(axis, (ast.Constant, ast.UnaryOp)):
                return f"{native}({x}, ({a},))"
            return f"{native}({x}, {a} if isinstance({a}, tuple) else ({a},))"
        # eye(n, m=None, k=0): torch.eye has no diagonal offset
        n = self.emit(v["n"])
        m = n if v.get("m") is None or _is_none(v["m"]) else self.emit(v["m"])
        k = v.get("k")
        if k is None or (isinstance(k, ast.Constant) and k.value == 0):
            return f"{native}({n}, {m})" if "m" in v else f"{native}({n})"
        kt = self.emit(k)
        ones = f"{self.use('torch.ones')}({n}, {m})"
        return f"{self.use('torch.tril')}({self.use('torch.triu')}({ones}, {kt}), {kt})"

    def random_pyro(self, name: str, native: str, v: dict) -> str:
        """``ops.random.normal(key, shape)`` -> ``torch.randn(shape)``: torch's generator."""
        shape = v.get("shape")
        s = "()" if shape is None else self.emit(shape)
        key = v.get("key")
        if isinstance(key, ast.Constant) and isinstance(key.value, int):  # an int seed
            s += f", generator={self.use('torch.Generator')}().manual_seed({key.value})"
        if name == "random.normal":
            return f"{native}({s})"
        draw = f"{native}({s})"
        lo, hi = v.get("minval"), v.get("maxval")
        if lo is None and hi is None:
            return draw
        lo_t = "0.0" if lo is None else self.emit(lo)
        hi_t = "1.0" if hi is None else self.emit(hi)
        return f"({lo_t} + ({hi_t} - {lo_t}) * {draw})"

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


def _is_none(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _float_literal(node) -> bool:
    """``1.5`` or ``-1.5``: a float literal."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) is float
