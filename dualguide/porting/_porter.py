"""The porter's rewriter: one framework's native code in, the neutral API out.

:class:`Porter` rewrites node by node (see
:class:`~dualguide.porting._source.Rewriter`): primitives, distributions, ops,
constraints and optimizers by the reversed table (:mod:`._port_table`), keyword
renames, torch tensor methods as ``ops`` calls, param inits as plain numbers.
What has no neutral counterpart is recorded as a problem with its line.
"""

from __future__ import annotations

import ast
import re

from .. import _table
from ._port_table import (
    BROADCAST_ALL,
    FLOAT32,
    RANDOM,
    REDUCTIONS,
    TORCH_DTYPE_METHODS,
    TORCH_KEYWORDS,
    TORCH_ONLY_METHODS,
    USER_DIST_BASES,
    VALIDATE_SAMPLE,
    _expand,
    dtype_names,
    native_canonical,
    reverse_table,
)
from ._source import Rewriter, Source, arg_value, bind, bound_names, loaded_names, qualname


def _dict_keys(cls: ast.ClassDef) -> set | None:
    """The literal keys of ``arg_constraints = {...}`` in a class body, else None."""
    for st in cls.body:
        if isinstance(st, ast.Assign) and bound_names(st) == {"arg_constraints"}:
            v = st.value
            if isinstance(v, ast.Dict) and all(isinstance(k, ast.Constant) for k in v.keys):
                return {k.value for k in v.keys}  # type: ignore[union-attr]
    return None


class Porter(Rewriter):
    """Rewrites one framework's native code into the neutral API."""

    def __init__(self, src: Source, framework: str, aliases: dict[str, str], module_names: set):
        super().__init__(src)
        self.fw = framework
        self.aliases = aliases
        self.rev = reverse_table(framework)
        self.module_names = module_names  # names bound to imported modules
        self.used: set[str] = set()  # neutral namespaces used: dg, ops, dist, constraints
        self.dtypes = dtype_names(framework)
        #: the name of the key while a param init is written (ops.random needs it), else None
        self.init_key: str | None = None
        #: torch.sort calls whose values are taken (``.values`` or ``[0]``)
        self.sort_values: set[int] = set()
        #: the name of the neutral key while a user-defined distribution's sample is written
        self.dist_key: str | None = None
        #: True inside a user-defined distribution's class body
        self.in_user_dist = False
        #: names of an export's generated helpers (set by the file porter)
        self.export_helpers: set[str] = set()

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
        if isinstance(node, ast.ClassDef) and self.user_dist_bases(node):
            return self.user_dist(node)
        if isinstance(node, ast.JoinedStr):
            return self.src.segment(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        sort = self.sort_of(node)
        if sort is not None:  # torch.sort(x).values, torch.sort(x)[0]: ops.sort(x)
            self.sort_values.add(id(sort))
            return self.emit(sort)
        if isinstance(node, (ast.Attribute, ast.Name)):
            q = self.q(node)
            if q is None:
                return None
            return self.name(node, q)
        return None

    def sort_of(self, node) -> ast.Call | None:
        """The ``torch.sort(...)`` call of ``torch.sort(...).values`` or ``torch.sort(...)[0]``."""
        if self.fw != "pyro":
            return None
        if isinstance(node, ast.Attribute) and node.attr == "values":
            call = node.value
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and node.slice.value == 0
        ):
            call = node.value
        else:
            return None
        if isinstance(call, ast.Call) and self.rev.ops.get(self.q(call.func) or "") == "sort":
            return call
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
        if q in r.handlers:
            return self.ns("dg") + ".handlers." + r.handlers[q]
        if q in r.reparams:
            return self.ns("dg") + ".reparam." + r.reparams[q]
        if q in r.fitting:
            return self.fitting_name(r.fitting[q])
        if q in r.nn:
            return self.ns("dg") + ".nn." + r.nn[q]
        self.problem(node, f"{q} has no neutral counterpart")
        return self.src.segment(node)

    def fitting_name(self, name: str) -> str:
        """``dg.<name>`` of a ported fitting API; ``ops.Vindex`` in the ops namespace."""
        if name.startswith("ops."):
            return self.ns("ops") + name[3:]
        return self.ns("dg") + "." + name

    def call(self, node: ast.Call) -> str | None:
        q = self.q(node.func)
        r = self.rev
        if q is None:
            if isinstance(node.func, ast.Attribute):
                return self.method(node)
            return None
        if self.in_user_dist:
            text = self.user_dist_call(q, node)
            if text is not None:
                return text
        if q in r.primitives:
            return self.primitive(r.primitives[q], node)
        if q in r.dists:
            return self.dist(r.dists[q], node)
        if q in r.ops:
            return self.op(r.ops[q], node)
        if q in r.optimizers:
            return self.optimizer(r.optimizers[q], node)
        if q in r.handlers:  # dg.handlers keeps Pyro's argument names (docs/handlers.md)
            return self.call_text(node, self.ns("dg") + ".handlers." + r.handlers[q])
        if q in r.reparams:
            return self.call_text(node, self.ns("dg") + ".reparam." + r.reparams[q])
        if q in r.fitting:  # Pyro's SVI loop on dg.infer.SVI: the same arguments
            return self.call_text(node, self.fitting_name(r.fitting[q]))
        if q in r.transforms:
            return self.transform(r.transforms[q], node)
        if q in r.nn:  # dg.nn keeps torch.nn's and pyro.module's arguments (docs/nn.md)
            return self.call_text(node, self.ns("dg") + ".nn." + r.nn[q])
        if (
            q.rsplit(".", 1)[0]
            in ("numpyro.distributions.constraints", "torch.distributions.constraints")
            and q in r.constraints
        ):
            return None  # a constraint factory: the name rule renames it
        self.problem(node, f"{q} has no neutral counterpart")
        return self.src.segment(node)

    def transform(self, name: str, node: ast.Call) -> str:
        """A native transform class (or ``biject_to``) as the neutral one (Pyro's keywords)."""
        if name == "biject_to":
            return self.call_text(node, self.ns("dist") + ".biject_to")
        spec = _table.TRANSFORMS[name]
        ov = {}
        if self.fw == "numpyro" and spec.rename:
            back = {v: k for k, v in spec.rename.items()}
            if node.args:
                self.problem(node, f"{name}: pass its arguments by keyword to port it")
            for k in node.keywords:
                if k.arg in back:
                    ov[id(k)] = f"{back[k.arg]}={self.emit(k.value)}"
        return self.call_text(node, self.ns("dist") + ".transforms." + name, ov)

    # user-defined distributions (issue 12) ------------------------------------------------
    def user_dist_bases(self, node: ast.ClassDef) -> list[ast.expr]:
        """The bases of ``node`` that make it a user-defined distribution: the framework's
        base class (``numpyro.distributions.Distribution``, ``pyro.distributions.
        TorchDistribution``), or the ``UserDistribution`` of a file ``dualguide export`` wrote."""
        out = []
        for b in node.bases:
            if (
                isinstance(b, ast.Name)
                and b.id == "UserDistribution"
                and ("UserDistribution" in self.export_helpers)
            ):
                out.append(b)
            elif self.q(b) in USER_DIST_BASES[self.fw]:
                out.append(b)
        return out

    def user_dist(self, node: ast.ClassDef) -> str:
        """A native distribution subclass as a neutral one (``dist.Distribution``): its
        draws from ``key.normal(shape)`` / ``key.uniform(shape)``, its methods in ops.

        NumPyro's ``sample(key, sample_shape)`` keeps its signature (``jax.random.normal(key,
        shape)`` -> ``key.normal(shape)``); Pyro's ``rsample(sample_shape)`` (or ``sample`` when
        there is no ``rsample``) becomes ``sample(self, key, sample_shape=())``
        (``torch.randn(shape)`` -> ``key.normal(shape)``); ``reparametrized_params`` becomes
        ``has_rsample``; an export's ``_sample`` / ``_log_prob`` are read back as ``sample`` /
        ``log_prob``.
        """
        exported = any(isinstance(b, ast.Name) for b in self.user_dist_bases(node))
        ov: dict[int, str] = {id(b): self.ns("dist") + ".Distribution" for b in node.bases}
        ov.update({id(b): self.emit(b) for b in node.bases if b not in self.user_dist_bases(node)})
        methods = {st.name: st for st in node.body if isinstance(st, ast.FunctionDef)}
        keys = _dict_keys(node)
        prev = self.in_user_dist
        self.in_user_dist = True
        try:
            for st in node.body:
                if exported:
                    if isinstance(st, ast.FunctionDef) and st.name in ("_sample", "_log_prob"):
                        ov[id(st)] = self.emit(st).replace(
                            f"def {st.name}(", f"def {st.name[1:]}(", 1
                        )
                    continue
                if self.fw == "numpyro":
                    self.user_dist_numpyro(node, st, keys, ov)
                else:
                    self.user_dist_pyro(node, st, methods, ov)
            return self.splice(node, ov)
        finally:
            self.in_user_dist = prev

    def user_dist_numpyro(self, cls: ast.ClassDef, st: ast.stmt, keys, ov: dict) -> None:
        if isinstance(st, ast.FunctionDef) and st.name == "sample":
            names = [a.arg for a in st.args.posonlyargs + st.args.args]
            ov[id(st)] = self.with_dist_key(names[1] if len(names) > 1 else None, st)
        elif isinstance(st, ast.FunctionDef):
            # @validate_sample is dropped: the neutral log_prob masks the support
            drop = {id(d): "" for d in st.decorator_list if self.q(d) in VALIDATE_SAMPLE}
            text = self.splice(st, drop)
            if drop:
                text = re.sub(r"^@[ \t]*\n[ \t]*", "", text, count=1)
            ov[id(st)] = text
        elif isinstance(st, ast.Assign) and bound_names(st) == {"reparametrized_params"}:
            v = st.value
            names = (
                {e.value for e in v.elts if isinstance(e, ast.Constant)}
                if isinstance(v, (ast.List, ast.Tuple))
                and all(isinstance(e, ast.Constant) for e in v.elts)
                else None
            )
            if names is None or keys is None:
                self.problem(
                    st,
                    f"{cls.name}.reparametrized_params: write it as a list of names next to an "
                    "arg_constraints dict of literal keys (it ports to has_rsample)",
                )
                return
            # NumPyro's has_rsample: every parameter is reparametrized
            ov[id(st)] = f"has_rsample = {bool(names) and names == keys}"

    def user_dist_pyro(self, cls: ast.ClassDef, st: ast.stmt, methods: dict, ov: dict) -> None:
        if not isinstance(st, ast.FunctionDef) or st.name not in ("rsample", "sample"):
            return
        if st.name == "sample" and "rsample" in methods:
            ov[id(st)] = (
                "# sample(): rsample without gradients, which the neutral class makes itself"
            )
            return
        a = st.args
        if a.posonlyargs or len(a.args) != 2 or a.vararg or a.kwonlyargs or a.kwarg:
            self.problem(st, f"{cls.name}.{st.name}: write it as {st.name}(self, sample_shape)")
            return
        shape = a.args[1]
        sub = {id(shape): f"key, {shape.arg}"}
        if a.defaults:
            sub[id(a.defaults[0])] = "()"
        prev, self.dist_key = self.dist_key, "key"
        try:
            text = self.splice(st, sub)
        finally:
            self.dist_key = prev
        ov[id(st)] = text.replace(f"def {st.name}(", "def sample(", 1)

    def with_dist_key(self, key: str | None, fn: ast.FunctionDef) -> str:
        prev, self.dist_key = self.dist_key, key
        try:
            return self.emit(fn)
        finally:
            self.dist_key = prev

    def user_dist_call(self, q: str, node: ast.Call) -> str | None:
        """A call inside a user-defined distribution's class that the neutral class writes
        otherwise (its draws, shapes and broadcasting); None for the ordinary rules."""
        name = self.rev.ops.get(q)
        if q in BROADCAST_ALL:
            items = ", ".join(f"{self.ns('ops')}.asarray({self.emit(a)})" for a in node.args)
            return f"{self.ns('ops')}.broadcast_arrays({items})"
        if q == "torch.Size":
            return f"tuple({self.emit(node.args[0])})" if node.args else "()"
        if q == "jax.numpy.shape" and len(node.args) == 1 and not node.keywords:
            return f"tuple({self.ns('ops')}.asarray({self.emit(node.args[0])}).shape)"
        if self.dist_key is None:
            return None
        key = self.dist_key
        if self.fw == "numpyro" and q == "jax.random.split":
            # the neutral key draws fresh noise on every call: its "subkeys" are itself
            n = self.emit(node.args[1]) if len(node.args) > 1 else "2"
            return f"(({key},) * {n})"
        if name in RANDOM:
            draw = "normal" if name == "random.normal" else "uniform"
            if self.fw == "pyro":
                prev, self.init_key = self.init_key, "key"
                try:
                    text = self.random(name, node, "_", q)  # "_(key, shape)"
                finally:
                    self.init_key = prev
                return f"{key}.{draw}({text[len('_(key, ') : -1]})"
            b = bind(node, ("key", "shape", "dtype", "minval", "maxval"), q, self)
            if b is None:
                return self.src.segment(node)
            shape = self.emit(arg_value(b["shape"])) if "shape" in b else "()"
            k = arg_value(b["key"]) if "key" in b else None
            if isinstance(k, ast.Name):  # a key of the method, or a "subkey" split from it
                key = k.id
            out = f"{key}.{draw}({shape})"
            lo, hi = b.get("minval"), b.get("maxval")
            if lo is not None or hi is not None:
                lo_t = "0.0" if lo is None else self.emit(arg_value(lo))
                hi_t = "1.0" if hi is None else self.emit(arg_value(hi))
                out = f"({lo_t} + ({hi_t} - {lo_t}) * {out})"
            return out
        if q == "torch.no_grad":
            self.problem(
                node,
                "torch.no_grad in a distribution's sample has no neutral counterpart: write the "
                "draw as rsample(sample_shape) (with has_rsample = True) or as sample without "
                "no_grad; the neutral class runs sample without gradients itself",
            )
            return self.src.segment(node)
        if q.startswith(("jax.random.", "torch.rand", "torch.normal")):
            self.problem(
                node,
                f"{q} in a distribution's sample has no neutral counterpart: draw with "
                "jax.random.normal / uniform (NumPyro) or torch.randn / rand (Pyro), which "
                "port to key.normal(shape) / key.uniform(shape)",
            )
            return self.src.segment(node)
        return None

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
                if names[0] in loaded_names(v.body):  # the init uses its key: keep it
                    return f"lambda {names[0]}: {self.with_key(names[0], v.body)}"
                return f"lambda: {self.param_init(v.body)}"
            if not names and self.draws(v.body):  # lambda: torch.randn(3)
                return f"lambda key: {self.with_key('key', v.body)}"
            return f"lambda: {self.param_init(v.body)}" if not names else self.emit(v)
        if self.fw == "pyro" and self.init_key is None and self.draws(v):  # 0.1 * torch.randn(3)
            return f"lambda key: {self.with_key('key', v)}"
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

    def draws(self, node) -> bool:
        """Whether ``node`` calls the framework's random source (torch.randn, jax.random...)."""
        for n in ast.walk(node):
            if isinstance(n, ast.Call):
                q = self.q(n.func)
                if q is not None and self.rev.ops.get(q) in RANDOM:
                    return True
        return False

    def with_key(self, key: str, body) -> str:
        """A param init's body written with ``key`` as the key of its random draws."""
        prev, self.init_key = self.init_key, key
        try:
            return self.param_init(body)
        finally:
            self.init_key = prev

    # distributions ----------------------------------------------------------------------
    def dist(self, name: str, node: ast.Call, native_order: bool = True) -> str:
        """``dist.X(...)`` of the framework as the neutral ``dist.X``; with ``native_order``
        (the framework's own class, not an export's inlined one in the neutral order)
        positional arguments become keywords where the table's ``native_args`` says the
        framework's order differs."""
        spec = _table.DISTRIBUTIONS[name]
        func = self.ns("dist") + "." + name
        ov = {}
        if self.fw == "pyro":  # torch.tensor(0.2) as an argument: the neutral dists take 0.2
            for a in node.args:
                if self.tensor_of_literal(a):
                    ov[id(a)] = self.emit(a.args[0])
            for k in node.keywords:
                if k.arg and self.tensor_of_literal(k.value):
                    ov[id(k)] = f"{k.arg}={self.emit(k.value.args[0])}"
        back = {v: k for k, v in spec.rename.items()} if self.fw == "numpyro" else {}
        for k in node.keywords:
            if k.arg in back:
                ov[id(k)] = f"{back[k.arg]}={self.emit(k.value)}"
        order = spec.native_args.get(self.fw) if native_order else None
        if order is not None and node.args:
            # the framework's positional order is not the neutral one: write keywords
            for i, a in enumerate(node.args):
                if isinstance(a, ast.Starred) or i >= len(order):
                    self.problem(
                        node,
                        f"dist.{name}: write its arguments by keyword (the neutral order is "
                        f"({', '.join(spec.args)}), not the original's)",
                    )
                    break
                ov[id(a)] = f"{back.get(order[i], order[i])}={ov.get(id(a), self.emit(a))}"
        return self.call_text(node, func, ov)

    def tensor_of_literal(self, node) -> bool:
        """``torch.tensor(1.5)``: a float literal made a tensor, nothing else."""
        if not (isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords):
            return False
        a = node.args[0]
        if isinstance(a, ast.UnaryOp) and isinstance(a.op, (ast.USub, ast.UAdd)):
            a = a.operand
        return (
            isinstance(a, ast.Constant)
            and type(a.value) is float
            and self.q(node.func) in ("torch.tensor", "torch.as_tensor")
        )

    # ops ---------------------------------------------------------------------------------
    def op(self, name: str, node: ast.Call) -> str:
        func = self.ns("ops") + "." + name
        what = self.src.segment(node.func)
        if name in RANDOM:
            return self.random(name, node, func, what)
        ov = self.strip_dtype(node, {}, what)
        if name == "astype" and len(node.args) == 2:
            ov[id(node.args[1])] = self.dtype_text(node.args[1])
        if name in ("sort", "argsort"):
            for k in node.keywords:
                if k.arg == "stable":
                    ov[id(k)] = ""  # the neutral sort is stable (the array API's)
        if self.fw == "numpyro":
            for k in node.keywords:
                if name in ("var", "std") and k.arg == "ddof":
                    ov[id(k)] = f"correction={self.emit(k.value)}"
            if name == "solve_triangular":
                lower = next((k for k in node.keywords if k.arg == "lower"), None)
                if lower is None:
                    return self._call(node, func, ov)[:-1] + ", upper=True)"  # jax: lower=False
                lv = lower.value
                ov[id(lower)] = (
                    f"upper={not lv.value!r}"
                    if isinstance(lv, ast.Constant) and isinstance(lv.value, bool)
                    else f"upper=not ({self.emit(lv)})"
                )
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
        if name == "sort" and id(node) not in self.sort_values:
            self.problem(
                node,
                f"{what}(x) returns (values, indices); take {what}(x).values (neutral "
                "ops.sort) or use torch.argsort (neutral ops.argsort)",
            )
        if name == "take" and self.q(node.func) == "torch.index_select":
            b = {k.arg: k.value for k in node.keywords if k.arg}
            b.update(zip(("input", "dim", "index"), node.args))
            if set(b) != {"input", "dim", "index"}:
                self.problem(node, f"{what}: give input, dim and index")
                return self.src.segment(node)
            x, d, i = (self.emit(b[k]) for k in ("input", "dim", "index"))
            return f"{func}({x}, {i}, axis={d})"
        if name == "searchsorted" and any(k.arg in ("right", "sorter") for k in node.keywords):
            self.problem(node, f"{what}(right=, sorter=): give side='left' or side='right'")
        if name == "eye" and len(node.args) > 1:
            return self._call(node, func, ov)
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
            if name in ("var", "std"):
                for k in node.keywords:
                    if k.arg == "unbiased":
                        ov[id(k)] = ""  # written as correction=
                return self.with_correction(self._call(node, func, ov), node)
            return self._call(node, func, ov)
        if name in ("zeros", "ones", "eye") and len(node.args) > 1 and name != "eye":
            dims = ", ".join(self.emit(a) for a in node.args)
            kws = [f"{k.arg}={self.emit(k.value)}" for k in node.keywords if id(k) not in ov]
            return f"{func}(({dims}){''.join(', ' + k for k in kws)})"
        for k in node.keywords:
            if k.arg in TORCH_KEYWORDS.get(name, {}):
                ov[id(k)] = f"{TORCH_KEYWORDS[name][k.arg]}={self.emit(k.value)}"
        if name == "softplus" and any(k.arg in ("beta", "threshold") for k in node.keywords):
            self.problem(node, "softplus(beta=, threshold=) has no neutral counterpart")
        if name == "asarray":
            return self._call(node, func, ov)
        return self._call(node, func, ov)

    def with_correction(self, text: str, node: ast.Call, most_args: int = 2) -> str:
        """torch's var/std divide by N - 1 unless told; the neutral ones by N - correction
        (default 0): write torch's correction out (``unbiased=`` becomes ``correction=``)."""
        if len(node.args) > most_args:  # (x, dim, unbiased...): keepdim would be misread
            self.problem(node, f"{self.src.segment(node.func)}: give dim= and keepdim= by keyword")
        corr = "1"
        for k in node.keywords:
            if k.arg == "correction":
                return text
            if k.arg == "unbiased":
                v = k.value
                corr = (
                    str(int(v.value))
                    if isinstance(v, ast.Constant) and isinstance(v.value, bool)
                    else f"int({self.emit(v)})"
                )
        return text[:-1] + (", " if text[-2] != "(" else "") + f"correction={corr})"

    def dtype_text(self, node) -> str:
        """A native dtype (``jnp.int32``, ``torch.long``) as its neutral name (``"int32"``)."""
        q = self.q(node)
        if q in self.dtypes:
            return repr(self.dtypes[q])
        return self.emit(node)

    def random(self, name: str, node: ast.Call, func: str, what: str) -> str:
        """``jax.random.normal(key, shape)`` / ``torch.randn(*shape)`` in a param init."""
        if self.fw == "numpyro":
            text = self._call(node, func, self.strip_dtype(node, {}, what))
        else:
            for k in node.keywords:
                if k.arg not in ("dtype", "requires_grad", "device", "size"):
                    self.problem(node, f"{what}: {k.arg}= has no neutral counterpart")
            self.strip_dtype(node, {}, what, extra=("size",))
            size = next((k.value for k in node.keywords if k.arg == "size"), None)
            dims = [self.emit(a) for a in node.args]
            if size is not None:
                shape = self.emit(size)
            elif len(dims) == 1 and not (
                isinstance(node.args[0], ast.Constant) or isinstance(node.args[0], ast.Name)
            ):
                shape = dims[0]  # torch.randn((3, 2)) or torch.randn(x.shape)
            else:
                shape = f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
            text = f"{func}({self.init_key or 'key'}, {shape})"
        if self.init_key is None:
            self.problem(
                node,
                f"{what} outside a param init has no neutral counterpart (random values in a "
                "model or guide come from dg.sample; a param init may draw with its key: "
                "dg.param('w', lambda key: ops.random.normal(key, (3,))))",
            )
        return text

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
        if (
            self.in_user_dist
            and m == "_extended_shape"
            and isinstance(recv, ast.Name)
            and recv.id == "self"
            and len(node.args) <= 1
        ):  # torch's sample_shape + batch_shape + event_shape
            s = f"tuple({self.emit(node.args[0])}) + " if node.args else ""
            return f"({s}tuple(self.batch_shape) + tuple(self.event_shape))"
        if m == "astype" and len(node.args) == 1 and not node.keywords:
            return f"{self.ns('ops')}.astype({self.emit(recv)}, {self.dtype_text(node.args[0])})"
        if self.fw == "numpyro":
            return None
        x = self.emit(recv)
        if m in TORCH_DTYPE_METHODS and not node.args and not node.keywords:
            return f"{self.ns('ops')}.astype({x}, {TORCH_DTYPE_METHODS[m]!r})"
        if m == "to" and len(node.args) == 1 and self.q(node.args[0]) in self.dtypes:
            return f"{self.ns('ops')}.astype({x}, {self.dtype_text(node.args[0])})"
        if m == "clamp" and not any(k.arg is None for k in node.keywords):
            items = [x, *(self.emit(a) for a in node.args)]
            items += [f"{k.arg}={self.emit(k.value)}" for k in node.keywords]
            return f"{self.ns('ops')}.clip({', '.join(items)})"
        if m in ("softmax", "log_softmax", "cumsum", "cumprod", "norm", "argmax", "argmin") and (
            node.args or node.keywords
        ):
            if m == "norm" and (node.args or any(k.arg == "p" for k in node.keywords)):
                self.problem(
                    node, "x.norm(p, ...) has no neutral counterpart; use ops.norm(x, ord)"
                )
            items = [x, *(self.emit(a) for a in node.args)]
            items += [
                f"{'keepdims' if k.arg == 'keepdim' else k.arg}={self.emit(k.value)}"
                for k in node.keywords
            ]
            return f"{self.ns('ops')}.{m}({', '.join(items)})"
        if m in ("var", "std"):  # torch's method divides by N - 1 unless told
            items = [x, *(self.emit(a) for a in node.args)]
            items += [
                f"{'keepdims' if k.arg == 'keepdim' else k.arg}={self.emit(k.value)}"
                for k in node.keywords
                if k.arg != "unbiased"
            ]
            return self.with_correction(f"{self.ns('ops')}.{m}({', '.join(items)})", node, 1)
        if m == "permute" and node.args and not node.keywords:
            dims = [self.emit(a) for a in node.args]
            axes = dims[0] if len(dims) == 1 else f"({', '.join(dims)})"
            return f"{self.ns('ops')}.permute_dims({x}, {axes})"
        torch_fn = {
            v.split(".")[-1]: k for k, v in ((k, _expand(v[1])) for k, v in _table.OPS.items())
        }
        if (
            m in torch_fn
            and not node.args
            and not node.keywords
            and m
            not in ("sum", "prod", "mean", "max", "min", "reshape", "where", "stack", "squeeze")
            and m not in ("var", "std")
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
