"""Helper code written into an export: generated from the package's own code, never copied.

``native_source(obj, backend)`` takes the source of a neutral function, class or
module written against :mod:`dualguide.ops` (``inspect.getsource``), rewrites it
with the exporter's rules (``ops.where`` -> ``torch.where``, ...) and returns the
native code.  The export's support masking (:mod:`dualguide._support`) and the
log|det J| of ``transformed`` (:func:`logabsdet`) are generated that way;
:func:`inline_module` writes out a backend module of plain framework code (a
distribution dualguide replaces, e.g. the pathwise ``MixtureSameFamily``).
What stays a string here is framework code with no neutral counterpart: the
``_asarray`` conversion and the Jacobian of ``transformed`` by each framework's
autodiff.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import types
from pathlib import Path
from typing import Any

from .. import _state, _support
from .._linalg import logabsdet  # the neutral log|det J| (one import: where it lives may move)
from ._exporter import Exporter, Needs
from ._source import (
    ExportError,
    Rewriter,
    Source,
    module_aliases,
    split_docstring,
    statement_chunks,
)
from ._vocab import dualguide_refs_import

__all__ = ["native_source", "inline_module", "helper_sections"]

#: native helpers with no neutral source (pyro only): dualguide's ops.asarray on torch
HELPERS = {
    "asarray": """
def _asarray(x):
    \"\"\"A tensor of ``x``: floating point as float32 (dualguide's ops.asarray).\"\"\"
    t = torch.as_tensor(x)
    return t.float() if t.is_floating_point() else t
""",
    "obs": """
def _obs(x):
    \"\"\"An observation as Pyro's distributions take it: in the default float dtype
    (integer and bool data included: Pyro's Bernoulli needs floats, Categorical casts back).\"\"\"
    if x is None:
        return None
    return torch.as_tensor(x).to(torch.get_default_dtype())
""",
}

#: the imports of a transform class a backend defines itself (its module's own aliases)
TRANSFORM_IMPORTS = {
    "numpyro": {
        "import jax",
        "import jax.numpy as jnp",
        "import numpyro.distributions.transforms as nt",
        "from numpyro.distributions import constraints as nc",
    },
    "pyro": set(),
}

TRANSFORMED = {
    "numpyro": """
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


# -------------------------------------------------------------------------------------------
# generating native code from the package's own source
# -------------------------------------------------------------------------------------------
def _module_source(mod: types.ModuleType) -> Source:
    file = inspect.getsourcefile(mod)
    if file is None:  # pragma: no cover - every dualguide module has a file
        raise ExportError(f"the export cannot read the source of {mod.__name__}")
    return Source(Path(file).read_text(encoding="utf-8"), file)


def _definitions(src: Source, names: set[str] | None) -> list[ast.stmt]:
    """The module's top-level statements that define ``names`` (all but imports if None)."""
    _doc, body = split_docstring(src.tree.body)
    out = []
    for s in body:
        if isinstance(s, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(s, ast.If) and ast.unparse(s.test) == "TYPE_CHECKING":
            continue  # type aliases for the checker
        targets = {t.id for t in getattr(s, "targets", ()) if isinstance(t, ast.Name)}
        if "__all__" in targets:
            continue
        if names is None or (
            isinstance(s, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and s.name in names
        ):
            out.append(s)
        elif targets & names:
            out.append(s)
    return out


class _Renamed(Exporter):
    """The exporter's rules, plus renamed names (a helper the export calls by another name);
    type hints are dropped, docstrings with doctests cut to their first line."""

    def __init__(self, *args: Any, rename: dict[str, str], own: set[str]):
        super().__init__(*args)
        self.rename = rename
        self.own = own

    def rule(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name) and node.id in self.rename:
            return self.rename[node.id]
        if isinstance(node, ast.Name) and node.id in self.own:
            return node.id  # defined by the same output (or a neutral module it writes)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in self.rename or node.func.id in self.own:
                return self.splice(node)  # a call of such a function: its arguments rewritten
        if isinstance(node, ast.arg) and node.annotation is not None:
            return node.arg  # type hints name types the export does not import
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            and ">>>" in node.value.value
        ):  # a docstring with doctests shows dualguide usage: keep its first line
            return repr(node.value.value.strip().splitlines()[0])
        text = super().rule(node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            ret = re.escape(self.src.segment(node.returns))
            text = re.sub(r"\)\s*->\s*" + ret + r"\s*:", "):", text or "", count=1)
        return text


def native_source(
    obj: Any,
    backend: str,
    *,
    rename: dict[str, str] | None = None,
    names: set[str] | None = None,
    own: set[str] | None = None,
) -> tuple[str, set[str]]:
    """The native code of a neutral function, class or module, and the imports it needs.

    ``obj`` is written against :mod:`dualguide.ops` (and the neutral names the
    exporter knows); its source (``inspect.getsource``) is rewritten with the
    exporter's rules for ``backend``.  For a module, every top-level definition
    but the imports and ``__all__`` is written.  ``rename`` renames the
    definitions (and their uses) in the output.  ``names`` picks the definitions of a
    module (functions, classes and constants); ``own`` names functions defined elsewhere
    in the same output, called by name.
    """
    mod = obj if isinstance(obj, types.ModuleType) else sys.modules[obj.__module__]
    src = _module_source(mod)
    if obj is not mod:
        names = {obj.__name__}
    stmts = _definitions(src, names)
    defined = {getattr(s, "name", "") for s in stmts}
    aliases = module_aliases(src.tree, "dualguide", mod.__name__)
    # names the module imports from other neutral modules the output also writes
    own = (
        set(own or ())
        | defined
        | {
            a.asname or a.name
            for s in src.tree.body
            if isinstance(s, ast.ImportFrom) and s.level and s.module in _NEUTRAL
            for a in s.names
        }
    )
    rename = dict(rename or {})
    ex = _Renamed(src, backend, aliases, vars(mod), rename=rename, own=own)
    text = "".join(t for _s, t in statement_chunks(src, stmts, ex.emit)).lstrip("\n")
    if ex.problems or ex.needs.helpers or ex.needs.inlined:  # pragma: no cover - a package bug
        where = "; ".join(f"{p}:{ln}: {msg}" for p, ln, msg in ex.problems)
        raise ExportError(f"{mod.__name__} cannot be written natively: {where or 'needs helpers'}")
    for old, new in rename.items():  # the definitions' own names
        for kw in ("def", "class"):
            text = text.replace(f"{kw} {old}(", f"{kw} {new}(").replace(
                f"{kw} {old}:", f"{kw} {new}:"
            )
    return text, set(ex.needs.imports)


def _section(title: str, doc: str | None) -> str:
    """A section's comment head: the title line, then the first paragraph of ``doc``."""
    para = doc.strip().split("\n\n")[0].splitlines() if doc else []
    head = [title]
    head += [("# " + ln).rstrip() for ln in para]
    return "\n".join(head)


def inline_module(modname: str, path: str) -> tuple[str, set[str]]:
    """The code of a backend module that defines a class the export uses, and its imports.

    Docstrings with doctests are cut to their first line (they show dualguide usage).
    """
    mod = sys.modules[modname]
    src = _module_source(mod)
    _doc, body = split_docstring(src.tree.body)
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
    imports: set[str] = set()
    for s in body:
        if isinstance(s, ast.ImportFrom) and s.module == "__future__":
            continue
        if isinstance(s, ast.ImportFrom) and s.level:
            names = {a.name for a in s.names}
            if names <= {"_SupportMasked"}:  # the export defines it (support masking)
                continue
            mod_name = (s.module or "").rsplit(".", 1)[-1]
            if s.level == 3 and mod_name in _NEUTRAL and all(a.asname is None for a in s.names):
                continue  # neutral math: neutral_sections() writes it natively
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

    class _Docs(Rewriter):
        def rule(self, node):
            return edits.get(id(node))

    pieces = [t for _s, t in statement_chunks(src, _definitions(src, None), _Docs(src).emit)]
    rel = "dualguide/" + modname.split(".", 1)[1].replace(".", "/") + ".py"
    title = f"# --- inlined from {rel} (plain framework code) " + "-" * 10
    head = _section(title, ast.get_docstring(src.tree, clean=False))
    return head + "\n\n\n" + "".join(pieces), imports


#: the neutral modules a backend module the export inlines may import from, and what of
#: each the export writes natively before it (None: the whole module)
_NEUTRAL: dict[str, set[str] | None] = {
    "trace": {"_WRAPPERS", "base_distribution"},
    "_mixture_math": None,
}


def neutral_sections(modnames: list[str], backend: str) -> tuple[list[str], set[str]]:
    """The native code of the neutral modules the inlined backend modules import from."""
    needed: list[str] = []
    for modname in modnames:
        src = _module_source(sys.modules[modname])
        for s in src.tree.body:
            if isinstance(s, ast.ImportFrom) and s.level == 3 and s.module in _NEUTRAL:
                if s.module == "_mixture_math" and "trace" not in needed:
                    needed.append("trace")  # _mixture_math unwraps with trace's helper
                if s.module not in needed:
                    needed.append(s.module)
    order = [m for m in _NEUTRAL if m in needed]
    own = set().union(*(_NEUTRAL[m] or set() for m in order)) if order else set()
    sections, imports = [], set()
    for m in order:
        mod = sys.modules[f"dualguide.{m}"]
        title = f"# --- dualguide/{m}.py, written natively " + "-" * (60 - len(m))
        code, imps = native_source(mod, backend, names=_NEUTRAL[m], own=own)
        doc = inspect.getdoc(mod) if _NEUTRAL[m] is None else None
        sections.append(_section(title, doc) + "\n" + code)
        imports |= imps
    return sections, imports


# -------------------------------------------------------------------------------------------
# the helper sections of an export
# -------------------------------------------------------------------------------------------
def _generated(obj: Any, backend: str, title: str, **kw: Any) -> tuple[str, set[str]]:
    code, imports = native_source(obj, backend, **kw)
    doc = inspect.getdoc(obj) if isinstance(obj, types.ModuleType) else None
    return _section(title, doc) + "\n" + code, imports


def _class_section(*classes: type) -> str:
    """The source of ``classes`` (plain framework code of one backend module), as they are,
    under a title naming their file."""
    mod = sys.modules[classes[0].__module__]
    mod_src = _module_source(mod)
    names = [c.__name__ for c in classes]
    stmts = {s.name: s for s in mod_src.tree.body if isinstance(s, ast.ClassDef)}
    rel = "dualguide/" + mod.__name__.split(".", 1)[1].replace(".", "/") + ".py"
    title = f"# --- {', '.join(names)}, from {rel} (plain framework code) "
    code = "\n\n\n".join(mod_src.segment(stmts[n]) for n in names)
    return title + "-" * max(3, 99 - len(title)) + "\n" + code


#: the module aliases each backend's user-distribution classes are written with
USER_DIST_IMPORTS = {
    "numpyro": {
        "import jax",
        "import jax.numpy as jnp",
        "import numpyro.distributions as nd",
        "from numpyro.distributions import constraints as nc",
    },
    "pyro": {"import torch", "import pyro.distributions as pd"},
}


def user_dist_source(backend: str) -> tuple[str, set[str]]:
    """The base class of an exported user-defined distribution and the imports it needs: the
    backend's own ``_NeutralKey`` and ``UserDistribution`` classes, copied as they are (one
    source for what the backend runs and what the export writes)."""
    feat = _state.feature(backend, "dists")
    return _class_section(feat._NeutralKey, feat.UserDistribution), set(USER_DIST_IMPORTS[backend])


def helper_sections(needs: Needs, backend: str, path: str) -> tuple[list[str], set[str]]:
    """The code sections of the helpers ``needs`` lists, and the imports they add."""
    sections: list[str] = []
    imports: set[str] = set()
    for h in needs.helpers:
        if h == "masked":
            title = "# --- dualguide/_support.py, written natively " + "-" * 47
            code, imps = _generated(_support, backend, title)
            sections.append(code)
            imports |= imps
        elif h in HELPERS:
            sections.append(HELPERS[h])
        elif h.startswith("transform:"):  # a transform the backend builds itself
            cls = getattr(_state.feature(backend, "dists"), h.split(":", 1)[1])
            sections.append(_class_section(cls))
            imports |= TRANSFORM_IMPORTS[backend]
        elif h == "userdist":
            code, imps = user_dist_source(backend)
            sections.append(code)
            imports |= imps
    code_n, imps_n = neutral_sections(list(needs.inlined), backend)
    sections += code_n
    imports |= imps_n
    for modname in needs.inlined:
        code, imps = inline_module(modname, path)
        sections.append(code)
        imports |= imps
    if "transformed" in needs.helpers:
        code, imps = native_source(logabsdet, backend, rename={logabsdet.__name__: "_logabsdet"})
        imports |= imps | {"import math"}
        sections.append(
            "# --- dualguide.transformed, written natively "
            + "-" * 48
            + "\n\n"
            + code.strip("\n")
            + "\n\n\n"
            + TRANSFORMED[backend].lstrip("\n")
        )
    return sections, imports
