"""What ``port`` carries besides the models and guides: data, ``MODEL_ARGS`` and autoguides.

So that ``port`` -> ``crosscheck`` -> ``export`` works as one round trip:

* module-level data stays numpy (``jnp.array(x)`` / ``torch.tensor(x)`` at the top level of a
  file become ``np.asarray(x)``), so importing the ported file makes no framework array and the
  data serve either backend;
* the arguments the native fitting code passes to the model (``svi.run(key, steps, X, y)`` in
  NumPyro, ``svi.step(X, y)`` in Pyro) become ``MODEL_ARGS = (X, y)`` (and ``MODEL_KWARGS``),
  which ``dualguide crosscheck`` / ``check`` / ``export`` read;
* a native autoguide (``AutoNormal(model, ...)``, its ``init_loc_fn=init_to_median``) becomes
  the neutral one (``dg.autoguides.AutoNormal(model, init_loc_fn="median")``) instead of being
  dropped with the fitting code.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import _table
from ._porter import Porter
from ._source import Source, bound_names, loaded_names

__all__ = [
    "ExportedFile",
    "FilePorter",
    "ModelArgs",
    "find_model_args",
    "is_portable_fitting",
    "drop_section_marks",
    "strip_export",
]

#: where each framework keeps its autoguides and init strategies
AUTOGUIDE_MODULES = {
    "numpyro": ("numpyro.infer.autoguide.", "numpyro.infer."),
    "pyro": ("pyro.infer.autoguide.", "pyro.infer."),
}
#: native init strategy function -> the neutral strategy name
INIT_STRATEGIES = {fn: name for name, (fn, _pyro_fn) in _table.AUTOGUIDE_INITS.items()}
#: array constructors that, at the top level of a file, make numpy data instead
DATA_CONSTRUCTORS = ("asarray", "zeros", "ones", "arange", "linspace", "eye", "full")
#: native dtype names -> numpy's
DTYPES = {
    "float32": "float32",
    "float": "float32",
    "float64": "float64",
    "double": "float64",
    "int32": "int32",
    "int": "int32",
    "int64": "int64",
    "long": "int64",
    "bool": "bool",
    "bool_": "bool",
    "uint8": "uint8",
}
#: torch's casting methods -> numpy dtype (for top-level data)
TORCH_CASTS = {
    "float": "float32",
    "double": "float64",
    "long": "int64",
    "int": "int32",
    "bool": "bool_",
}
#: SVI classes, and per method the number of leading arguments that are not the model's
SVI_CLASSES = {
    "numpyro": ("numpyro.infer.SVI", "numpyro.infer.svi.SVI"),
    "pyro": ("pyro.infer.SVI", "pyro.infer.svi.SVI"),
}
SVI_METHODS = {
    "numpyro": {"run": 2, "init": 1, "update": 1, "evaluate": 1},
    "pyro": {"step": 0, "evaluate_loss": 0},
}
#: jax loops that port as Python loops (dg.infer.scan / fori_loop) in fitting code only
HOST_LOOPS = ("jax.lax.scan", "jax.lax.fori_loop")
#: keywords of those methods that belong to SVI, not to the model
SVI_KEYWORDS = {"progress_bar", "stable_update", "forward_mode_differentiation", "init_state"}


def _native_name(q: str, fw: str) -> str | None:
    """``AutoNormal`` / ``init_to_median`` for a qualified name in one of the framework's
    autoguide modules (``numpyro.infer.autoguide.AutoNormal``), else None."""
    for prefix in AUTOGUIDE_MODULES[fw]:
        if q.startswith(prefix):
            return q.rsplit(".", 1)[1]
    return None


def autoguide_class(q: str, fw: str) -> str | None:
    """The neutral autoguide a native qualified name stands for, or None."""
    name = _native_name(q, fw)
    return name if name in _table.AUTOGUIDE_PARAMS else None


def is_portable_fitting(q: str, fw: str) -> bool:
    """Fitting-module names that port (autoguides and their init strategies)."""
    name = _native_name(q, fw)
    return name is not None and (name in _table.AUTOGUIDE_PARAMS or name in INIT_STRATEGIES)


# -------------------------------------------------------------------------------------------
# a file written by ``dualguide export``: its generated sections are not the user's program
# -------------------------------------------------------------------------------------------
#: the export's marks (dualguide/porting/export.py writes them)
EXPORT_MARK = "written by `dualguide export`"
MODELS_SECTION = "# --- the model(s) and guide(s) "
FIT_SECTION = "# --- fit natively "
#: names the export binds after the fit section that are the user's data, kept
EXPORT_DATA = {"MODEL_ARGS", "MODEL_KWARGS"}


@dataclass
class ExportedFile:
    """What :func:`strip_export` found in a file ``dualguide export`` wrote."""

    #: names bound by the generated helper sections (``masked``, ``_obs``, ``_asarray``,
    #: ``transformed``, inlined classes such as ``LKJCholesky``)
    helpers: set[str]
    #: the original program's docstring the export carried ("Original: ..."), or None
    docstring: str | None
    #: the line of the models section (for the note)
    lineno: int


def strip_export(stmts: list[ast.stmt], src_text: str, docstring: str | None):
    """Drop the sections ``dualguide export`` generated from a file it wrote.

    Returns ``(kept statements, ExportedFile)``, or ``(stmts, None)`` for any other file.
    The helper sections before the models (support masking, ``_obs``, ``_asarray``,
    ``transformed``, inlined backend classes) and the fitting code after them (but
    ``MODEL_ARGS``/``MODEL_KWARGS``) are dropped; :class:`FilePorter` reads the models'
    calls of those helpers back as the neutral API they were written from.
    """
    if not docstring or EXPORT_MARK not in docstring.splitlines()[0]:
        return stmts, None
    lines = src_text.splitlines()
    start = next((i + 1 for i, ln in enumerate(lines) if ln.startswith(MODELS_SECTION)), None)
    end = next((i + 1 for i, ln in enumerate(lines) if ln.startswith(FIT_SECTION)), None)
    if start is None:
        return stmts, None
    helpers: set[str] = set()
    kept = []
    for st in stmts:
        if st.lineno < start:
            helpers |= bound_names(st)
        elif end is not None and st.lineno > end:
            # MODEL_ARGS = (X,) is the user's data; the export's empty () and {} are not
            value = getattr(st, "value", None)
            empty = isinstance(value, (ast.Tuple, ast.Dict)) and not (
                value.elts if isinstance(value, ast.Tuple) else value.keys
            )
            if bound_names(st) and bound_names(st) <= EXPORT_DATA and not _calls(st) and not empty:
                kept.append(st)
        else:
            kept.append(st)
    return kept, ExportedFile(helpers, _original_docstring(docstring), start)


def drop_section_marks(text: str) -> str:
    """The ported text without the export's section comments (and the blank lines they
    leave)."""
    lines = [ln for ln in text.split("\n") if not ln.startswith((MODELS_SECTION, FIT_SECTION))]
    out = "\n".join(lines)
    while "\n\n\n\n" in out:
        out = out.replace("\n\n\n\n", "\n\n\n")
    return out


def _calls(st: ast.stmt) -> bool:
    return any(isinstance(n, ast.Call) for n in ast.walk(st))


def _original_docstring(doc: str) -> str | None:
    """The text between "Original: " and "Needs only" of an export's docstring."""
    lines = doc.splitlines()
    at = next((i for i, ln in enumerate(lines) if ln.startswith("Original:")), None)
    if at is None:
        return None
    out = [lines[at][len("Original:") :].strip()]
    for ln in lines[at + 1 :]:
        if ln.startswith("Needs only "):
            break
        out.append(ln[4:] if ln.startswith("    ") else ln)
    return "\n".join(out).strip() or None


class FilePorter(Porter):
    """The porter for a whole file: also autoguides, and numpy data at the top level."""

    def __init__(
        self,
        src: Source,
        framework: str,
        aliases: dict[str, str],
        module_names: set,
        calls_primitive: Callable[[ast.stmt], bool],
    ):
        super().__init__(src, framework, aliases, module_names)
        #: which top-level statements call primitives (``NativeFile.calls_primitive``): the
        #: other functions are host code (fitting, printing) and read results the numpy way
        self.calls_primitive = calls_primitive
        #: names of an export's generated helpers (:func:`strip_export`), read back as the
        #: neutral API they were written from
        self.export_helpers: set[str] = set()
        #: True while rewriting a top-level statement that is not a function or class
        self.data_level = False
        #: whether the ported code uses ``np``
        self.uses_numpy = False
        #: True inside a top-level function that is not a model or guide (fitting, printing)
        self.host_level = False
        #: names bound to an autoguide (``guide = AutoNormal(model)``), for their methods
        self.autoguide_names: set[str] = set()
        #: the neutral autoguide class each of those names is bound to
        self.autoguide_kinds: dict[str, str] = {}
        #: notes on rewritten host code, (line, message), for the port's report
        self.notes: list[tuple[int, str]] = []

    def emit_statement(self, stmt: ast.stmt) -> str:
        """A top-level statement; data statements make numpy arrays, and functions that are
        not models or guides read results the numpy way."""
        defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
        self.data_level = not isinstance(stmt, defs)
        self.host_level = isinstance(stmt, defs[:2]) and not self.calls_primitive(stmt)
        try:
            return self.emit(stmt)
        finally:
            self.data_level = self.host_level = False

    def emit_data(self, node: ast.expr) -> str:
        """An expression evaluated at import time (data)."""
        self.data_level = True
        try:
            return self.emit(node)
        finally:
            self.data_level = False

    def rule(self, node) -> str | None:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and (q := self.q(node.value.func)) is not None
            and (kind := autoguide_class(q, self.fw)) is not None
        ):
            names = {t.id for t in node.targets if isinstance(t, ast.Name)}
            self.autoguide_names |= names
            self.autoguide_kinds.update(dict.fromkeys(names, kind))
        if (
            (self.data_level or self.host_level)
            and self.fw == "numpyro"
            and isinstance(node, ast.Subscript)
            and (text := self._autoguide_param(node)) is not None
        ):
            return text
        if (
            (self.data_level or self.host_level)
            and self.fw == "pyro"
            and isinstance(node, ast.Attribute)
            and node.attr == "data"
            and self._reads_param(node.value)
        ):
            # pyro.param("m").data: the param's value without its grad; a neutral param read
            # outside a program is the value already (jax arrays have no .data)
            return self.emit(node.value)
        if self.data_level and isinstance(node, ast.Lambda):
            self.data_level = False  # a lambda's body runs later, with the model
            try:
                return self.splice(node)
            finally:
                self.data_level = True
        return super().rule(node)

    def call(self, node: ast.Call) -> str | None:
        if self.export_helpers:
            text = self.export_helper(node)
            if text is not None:
                return text
        q = self.q(node.func)
        if q is not None:
            ag = autoguide_class(q, self.fw)
            if ag is not None:
                return self.autoguide(ag, node)
            if q in HOST_LOOPS and not (self.data_level or self.host_level):
                # dg.infer.scan is a Python loop over numpy results: fitting code only
                self.problem(
                    node,
                    f"{q} has no neutral counterpart inside a model or guide (dg.infer."
                    f"{q.rsplit('.', 1)[1]} is a Python loop for fitting code)",
                )
                return self.src.segment(node)
        return super().call(node)

    def export_helper(self, node: ast.Call) -> str | None:
        """A call of an export's helper, as the neutral code it was written from:
        ``masked(dist.Gamma)(a, b)`` -> ``dist.Gamma(a, b)``, ``_obs(y)`` -> ``y``,
        ``_asarray(x)`` -> ``ops.asarray(x)``, ``transformed(...)`` -> ``dg.transformed(...)``,
        an inlined class (``LKJCholesky(3, c)``) -> ``dist.LKJCholesky(3, c)``."""
        f = node.func
        if (
            isinstance(f, ast.Call)
            and isinstance(f.func, ast.Name)
            and f.func.id == "masked"
            and "masked" in self.export_helpers
            and len(f.args) == 1
        ):
            q = self.q(f.args[0])
            if q is not None and q in self.rev.dists:
                return self.dist(self.rev.dists[q], node)
            return None
        if not (isinstance(f, ast.Name) and f.id in self.export_helpers):
            return None
        if f.id == "_obs" and len(node.args) == 1 and not node.keywords:
            return self.emit(node.args[0])
        if f.id == "_asarray" and len(node.args) == 1 and not node.keywords:
            return f"{self.ns('ops')}.asarray({self.emit(node.args[0])})"
        if f.id == "transformed":
            return self.call_text(node, self.ns("dg") + ".transformed")
        if f.id in _table.DISTRIBUTIONS:  # inlined with the neutral argument order
            return self.dist(f.id, node, native_order=False)
        if f.id in _table.TRANSFORMS:  # NumPyro's TanhTransform, written out by the export
            return self.transform(f.id, node)
        return None

    def _autoguide_param(self, node: ast.Subscript) -> str | None:
        """``params["x_auto_loc"]``, a NumPyro autoguide param read from a fit's params, ->
        ``guide.translate(params, to="numpyro")["x_auto_loc"]``: on Pyro the fit's params
        have Pyro's names (``AutoNormal.locs.x``); translate gives NumPyro's on both."""
        key = node.slice
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            return None
        from ..autoguides import _pattern

        owners = {
            name
            for name, kind in self.autoguide_kinds.items()
            if kind != "AutoGuideList"
            and any(
                _pattern(p.name).match(key.value) for p in _table.AUTOGUIDE_PARAMS[kind].numpyro
            )
        }
        if len(owners) != 1:
            return None
        (guide,) = owners
        self.notes.append(
            (
                node.lineno,
                f"{self.src.segment(node)}: NumPyro's name of an autoguide param, read through "
                f'{guide}.translate(..., to="numpyro") (on Pyro the fit names it as Pyro does)',
            )
        )
        return f'{guide}.translate({self.emit(node.value)}, to="numpyro")[{self.src.segment(key)}]'

    def _reads_param(self, node) -> bool:
        """``pyro.param(...)`` or ``pyro.get_param_store()[...]``."""
        if isinstance(node, ast.Subscript):
            node = node.value
            return isinstance(node, ast.Call) and self.q(node.func) == "pyro.get_param_store"
        return isinstance(node, ast.Call) and self.q(node.func) == "pyro.param"

    def method(self, node: ast.Call) -> str | None:
        assert isinstance(node.func, ast.Attribute)
        f = node.func
        if (
            self.fw == "pyro"
            and f.attr in ("median", "quantiles")
            and isinstance(f.value, ast.Name)
            and f.value.id in self.autoguide_names
        ):
            self.problem(
                node,
                f"Pyro's {f.value.id}.{f.attr}(*model_args) reads the param store; the "
                f"neutral autoguide's takes the fitted params: {f.value.id}.{f.attr}"
                f"(params{', quantiles' if f.attr == 'quantiles' else ''}, model_args=(...)) "
                "with the params of dg.fit(...) or dg.infer.SVI(...).params",
            )
            return self.src.segment(node)
        if (
            isinstance(f.value, ast.Name)
            and (kind := self.autoguide_kinds.get(f.value.id)) is not None
            and (self.data_level or self.host_level)
        ):
            from .. import autoguides

            if not callable(getattr(getattr(autoguides, kind), f.attr, None)):
                self.problem(
                    node,
                    f"{f.value.id}.{f.attr}: the neutral {kind} has no {f.attr} (it has median, "
                    "quantiles, sample_posterior, translate"
                    + (", get_posterior" if kind == "AutoLaplaceApproximation" else "")
                    + ")",
                )
                return self.src.segment(node)
            if f.attr == "get_posterior":
                self.notes.append(
                    (
                        node.lineno,
                        f"{f.value.id}.get_posterior(...) returns the Laplace Gaussian's loc, "
                        "scale_tril and covariance_matrix as numpy arrays (a dict; post.loc reads "
                        "too), not a distribution: draw with sample_posterior",
                    )
                )
        if not (self.data_level or self.host_level):
            return super().method(node)
        # top-level data and results read outside the model are numpy: torch's conversion
        # methods get numpy's spelling; numpy's own methods (``.astype``) stay as written
        assert isinstance(node.func, ast.Attribute)
        if self.fw == "pyro" and not node.args and not node.keywords:
            name = node.func.attr
            if name in ("numpy", "detach", "cpu"):
                return self.emit(node.func.value)
            if name in TORCH_CASTS:
                self.uses_numpy = True
                return f"{self.emit(node.func.value)}.astype(np.{TORCH_CASTS[name]})"
            if name == "clone":
                return f"{self.emit(node.func.value)}.copy()"
        if self.data_level:
            return self.splice(node)
        return super().method(node)

    def op(self, name: str, node: ast.Call) -> str:
        if not (self.data_level and name in DATA_CONSTRUCTORS):
            return super().op(name, node)
        self.uses_numpy = True
        items = [self.emit(a) for a in node.args]
        if self.fw == "pyro" and name in ("zeros", "ones") and len(items) > 1:
            items = [f"({', '.join(items)})"]
        for k in node.keywords:
            if k.arg in ("requires_grad", "device"):
                continue
            if k.arg == "dtype":
                dq = self.q(k.value)
                last = (dq or self.src.segment(k.value)).rsplit(".", 1)[-1].strip("'\"")
                if last not in DTYPES:
                    self.problem(node, f"dtype={self.src.segment(k.value)} has no numpy spelling")
                    continue
                items.append(f"dtype=np.{DTYPES[last]}")
                continue
            items.append(f"{k.arg}={self.emit(k.value)}" if k.arg else f"**{self.emit(k.value)}")
        return f"np.{name}({', '.join(items)})"

    def autoguide(self, kind: str, node: ast.Call) -> str:
        """``AutoNormal(model, init_loc_fn=init_to_median, ...)`` -> the neutral autoguide."""
        func = self.ns("dg") + ".autoguides." + kind
        ov: dict[int, str] = {}
        append: list[str] = []
        renames = {v: k for k, v in _table.AUTOGUIDE_ARGS.get(kind, {}).items()}
        given = {k.arg for k in node.keywords}
        for k in node.keywords:
            if kind == "AutoIAFNormal" and k.arg == "nonlinearity":
                self.problem(
                    node,
                    f"AutoIAFNormal: nonlinearity={self.src.segment(k.value)} has no neutral "
                    "form; write nonlinearity='elu', 'relu' or 'tanh'",
                )
            if self.fw == "numpyro" and k.arg in renames:
                ov[id(k)] = f"{renames[k.arg]}={self.emit(k.value)}"
        if kind == "AutoIAFNormal" and self.fw == "pyro":
            # Pyro's own defaults, written out (the neutral defaults are NumPyro's)
            if "num_transforms" not in given:
                append.append("num_transforms=1")
            if "nonlinearity" not in given:
                append.append('nonlinearity="relu"')
            if "hidden_dim" not in given:
                self.problem(
                    node,
                    "AutoIAFNormal without hidden_dim: Pyro's default ([3 * latent dim + 1]) "
                    "has no neutral form; write hidden_dim=[...]",
                )
        for k in node.keywords:
            if k.arg != "init_loc_fn":
                continue
            v = k.value
            q = self.q(v.func if isinstance(v, ast.Call) else v)
            name = _native_name(q, self.fw) if q else None
            if name in INIT_STRATEGIES and not isinstance(v, ast.Call):
                ov[id(k)] = f"init_loc_fn={INIT_STRATEGIES[name]!r}"
            elif name == "init_to_value" and isinstance(v, ast.Call):
                vals = [kk.value for kk in v.keywords if kk.arg == "values"] + v.args[:1]
                if vals:
                    ov[id(k)] = f"init_loc_fn={self.emit(vals[0])}"
                else:
                    self.problem(node, "init_to_value() without values= has no neutral form")
            elif name in INIT_STRATEGIES and isinstance(v, ast.Call) and not (v.args or v.keywords):
                ov[id(k)] = f"init_loc_fn={INIT_STRATEGIES[name]!r}"
            else:
                self.problem(
                    node,
                    f"{kind}: init_loc_fn={self.src.segment(v)} has no neutral counterpart "
                    f"(use one of {', '.join(repr(s) for s in INIT_STRATEGIES.values())})",
                )
        default = native_init_default(self.fw, kind)
        if (
            "init_loc_fn" not in given
            and None not in given  # **options may carry it
            and len(node.args) < 2  # Pyro's AutoDelta(model, init_to_median) positional
            and default != "feasible"  # the neutral default
        ):
            # the original's own default, written out: the port starts where it starts
            append.append(f"init_loc_fn={default!r}")
        return self.call_text(node, func, ov, append)


#: each framework's default ``init_loc_fn`` per autoguide (as the neutral strategy name) where
#: the call gives none; dualguide's own default is "feasible".  NumPyro: init_to_median for
#: AutoDelta, init_to_uniform for the others; Pyro: init_to_feasible for AutoNormal and
#: AutoIAFNormal (AutoNormalizingFlow), init_to_median for the others.
NATIVE_INIT_DEFAULTS = {
    "numpyro": ({"AutoDelta": "median"}, "uniform"),
    "pyro": ({"AutoNormal": "feasible", "AutoIAFNormal": "feasible"}, "median"),
}


def native_init_default(fw: str, kind: str) -> str:
    """The neutral name of ``fw``'s default ``init_loc_fn`` for the autoguide ``kind``.

    >>> native_init_default("numpyro", "AutoDelta"), native_init_default("pyro", "AutoNormal")
    ('median', 'feasible')
    """
    per_kind, other = NATIVE_INIT_DEFAULTS[fw]
    return per_kind.get(kind, other)


# -------------------------------------------------------------------------------------------
# MODEL_ARGS from the fitting code
# -------------------------------------------------------------------------------------------
@dataclass
class ModelArgs:
    """The model arguments of the first SVI call found in the native file."""

    lineno: int
    call: str
    args: list[ast.expr] = field(default_factory=list)
    keywords: list[ast.keyword] = field(default_factory=list)

    def names(self) -> set[str]:
        out: set[str] = set()
        for a in [*self.args, *(k.value for k in self.keywords)]:
            out |= loaded_names(a)
        return out


def find_model_args(tree: ast.Module, q, fw: str) -> ModelArgs | None:
    """The data passed to the model by the file's own SVI loop (``svi.run(key, n, X, y)``,
    ``svi.step(X, y)``...), looked for anywhere in the file, ``__main__`` block included.

    ``q`` maps a name node to its canonical qualified name (or None).
    """
    svi_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            if q(node.value.func) in SVI_CLASSES[fw]:
                svi_names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    found: list[ModelArgs] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner, method = node.func.value, node.func.attr
        skip = SVI_METHODS[fw].get(method)
        if skip is None:
            continue
        is_svi = (isinstance(owner, ast.Name) and owner.id in svi_names) or (
            isinstance(owner, ast.Call) and q(owner.func) in SVI_CLASSES[fw]
        )
        if not is_svi or any(isinstance(a, ast.Starred) for a in node.args):
            continue
        kws = [k for k in node.keywords if k.arg is not None and k.arg not in SVI_KEYWORDS]
        if fw == "numpyro" and method == "run":
            kws = [k for k in kws if k.arg not in ("init_params",)]
        found.append(ModelArgs(node.lineno, f"svi.{method}", list(node.args[skip:]), kws))
    return min(found, key=lambda m: m.lineno) if found else None
