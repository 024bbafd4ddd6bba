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

Fitting code that ports (Pyro's ``SVI`` loop; NumPyro's ``svi.init`` / ``svi.update`` /
``svi.run`` with ``jax.random.PRNGKey``, ``lax.scan`` / ``lax.fori_loop``; both on
``dg.infer.SVI``) is kept, the ``__main__`` block included; other fitting code is dropped
with a note -- fit the ported program with :func:`dualguide.fit`.  Constructs with no
neutral counterpart (``numpyro.handlers``, ``jax.lax``, ``jax.random``, ``pyro.poutine``,
``sample_shape=``, unknown distributions...) are listed with their line numbers
in a :class:`PortError`.  The result is then verified: every ported function
that takes no arguments is traced on both backends (:func:`dualguide.trace`), and
on the original framework its sites (names, distributions, shapes, values and
log densities with the same seed) must equal the original's.

>>> from dualguide.porting.port import port
>>> result = port("tests/data/numpyro_guide_nofactor.py")   # doctest: +SKIP
>>> print(result.report())                                    # doctest: +SKIP

The work is shared out: :mod:`._source` (the source toolkit, shared with the
exporter), :mod:`._port_table` and :mod:`._porter` (the rewriting rules) and
:mod:`._verify` (the verification by tracing).
"""

from __future__ import annotations

import ast
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpecError
from ._port_table import (
    FITTING,
    FRAMEWORK_PACKAGES,
    USER_DIST_BASES,
    Reverse,
    native_canonical,
    reverse_table,
)
from ._porter import Porter
from ._roundtrip import (
    SVI_CLASSES,
    FilePorter,
    autoguide_class,
    drop_section_marks,
    find_model_args,
    is_portable_fitting,
    strip_export,
)
from ._source import (
    Source,
    bound_names,
    drop_dependents,
    ensure_compiles,
    is_main_guard,
    loaded_names,
    module_aliases,
    qualname,
    split_docstring,
    statement_chunks,
)
from ._verify import Verification, verify_port

__all__ = ["port", "PortError", "PortResult", "Verification"]


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
class PortResult:
    """The ported source, what was dropped, and the verification by tracing."""

    source: str
    framework: str
    path: str
    notes: list[tuple[int, str]] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    verification: list[Verification] = field(default_factory=list)
    #: the models and guides the original fits that the port dropped, as (line, name)
    #: (:func:`dropped_programs`): a partial port, not verified
    dropped: list[tuple[int, str]] = field(default_factory=list)

    @property
    def traced(self) -> list[str]:
        """Ported functions the verification ran (on at least one backend)."""
        return sorted({v.function for v in self.verification if v.traced})

    @property
    def untraced(self) -> list[str]:
        """Ported functions the verification could not run: nothing about them was checked."""
        return sorted({v.function for v in self.verification if not v.traced} - set(self.traced))

    @property
    def verified(self) -> bool:
        """Something was traced, and every traced function ran on both backends and matched
        the original (:attr:`untraced` lists what the verification could not run), and
        nothing the original fits was dropped (:attr:`dropped`)."""
        return bool(self.traced) and all(v.ok for v in self.verification) and not self.dropped

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
            if not v.ok and v.sites and v.message and v.backend != "-":
                lines.append(f"  {'':<24} {'':<20} {'why':<7} {v.message}")  # the reason
        if self.dropped:
            what = ", ".join(f"{n} (line {ln})" for ln, n in self.dropped)
            lines.append(
                f"PARTIAL port: dropped what the original fits (its SVI's model / guide): "
                f"{what}; see the notes"
            )
        if not self.verification:
            lines.append("verified: no (verification was skipped: nothing was traced)")
        elif self.dropped:
            ok = "" if not self.traced else f"; traced and matching: {', '.join(self.traced)}"
            lines.append(f"verified: NO (a partial port{ok})")
        elif self.verified:
            lines.append(f"verified: yes, for {', '.join(self.traced)}")
        elif not self.traced:
            lines.append("verified: NO (nothing could be traced)")
        else:
            lines.append("verified: NO")
        if self.verification and self.untraced:
            lines.append(f"not verified (not traced): {', '.join(self.untraced)}")
        return "\n".join(lines)


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
                ported = (
                    rev.optimizers.keys()
                    | rev.handlers.keys()
                    | rev.reparams.keys()
                    | rev.fitting.keys()
                )
                if (
                    q not in ported
                    and not is_portable_fitting(q, framework)
                    and any(q == p or q.startswith(p + ".") for p in FITTING[framework])
                ):
                    out.append((n.lineno, q))
                continue
        stack.extend(ast.iter_child_nodes(n))
    return sorted(out)


@dataclass
class NativeFile:
    """A native file read for porting: its parts, sorted."""

    path: Path
    src: Source
    framework: str
    aliases: dict[str, str]
    rev: Reverse
    docstring: ast.Expr | None = None
    #: names bound to imported framework modules (``jnp``, ``torch``...)
    module_names: set[str] = field(default_factory=set)
    future: list[ast.stmt] = field(default_factory=list)
    user_imports: list[ast.stmt] = field(default_factory=list)
    stmts: list[ast.stmt] = field(default_factory=list)
    notes: list[tuple[int, str]] = field(default_factory=list)
    #: statements of the __main__ block kept at the top level (a guide made there)
    hoisted: list[ast.stmt] = field(default_factory=list)

    def calls_primitive(self, stmt: ast.stmt) -> bool:
        return _calls_primitive(stmt, self.aliases, self.rev)


def _makes_autoguide(stmt: ast.stmt, nf: NativeFile) -> bool:
    """``guide = AutoNormal(model, ...)``: a guide the __main__ block makes (kept, not dropped)."""
    if not (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call)):
        return False
    q = qualname(stmt.value.func, nf.aliases)
    return q is not None and is_portable_fitting(native_canonical(q), nf.framework)


def read_native(path: Path) -> NativeFile:
    """Parse ``path``, find its framework, and sort its top-level statements."""
    src = Source(path.read_text(encoding="utf-8"), str(path))
    fw = detect_framework(src.tree, str(path))
    aliases: dict[str, str] = {}
    for pkg in FRAMEWORK_PACKAGES[fw]:
        aliases.update(module_aliases(src.tree, pkg))
    nf = NativeFile(path, src, fw, aliases, reverse_table(fw))
    nf.docstring, body = split_docstring(src.tree.body)
    for s in body:
        if isinstance(s, ast.ImportFrom) and s.module == "__future__":
            nf.future.append(s)
            continue
        if isinstance(s, ast.Import):
            nf.module_names |= {(a.asname or a.name).split(".")[0] for a in s.names}
        if isinstance(s, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in s.names] if isinstance(s, ast.Import) else [s.module or ""]
            if any(m.split(".")[0] in FRAMEWORK_PACKAGES[fw] for m in mods):
                if isinstance(s, ast.ImportFrom):
                    nf.module_names |= {a.asname or a.name for a in s.names}
                continue
            nf.user_imports.append(s)
            continue
        # a __main__ block is ported like the rest (Pyro's SVI loop and NumPyro's functional
        # one run on dg.infer.SVI); drop_fitting drops it when something in it does not port
        nf.stmts.append(s)
    return nf


def is_user_dist(stmt: ast.stmt, nf: NativeFile) -> bool:
    """A user-defined distribution: a class deriving from the framework's base class (its
    ``sample`` draws with ``jax.random`` / ``torch.randn``, which port; it is not fitting code)."""
    if not isinstance(stmt, ast.ClassDef):
        return False
    for b in stmt.bases:
        q = qualname(b, nf.aliases)
        if q is not None and native_canonical(q) in USER_DIST_BASES[nf.framework]:
            return True
    return False


def drop_fitting(nf: NativeFile) -> list[ast.stmt]:
    """Top-level fitting code, and what depends on it, is dropped with a note; the rest is kept."""
    dropped: dict[int, str] = {}
    for s in nf.stmts:
        if is_user_dist(s, nf):
            continue
        refs = _fitting_refs(s, nf.aliases, nf.framework, nf.rev)
        # a program (it calls primitives) is kept; a __main__ block only if all of it ports
        if refs and (is_main_guard(s) or not nf.calls_primitive(s)):
            dropped[id(s)] = refs[0][1]

    def spare(s: ast.stmt) -> bool:
        return not is_main_guard(s) and nf.calls_primitive(s)

    drop_dependents(nf.stmts, dropped, lambda s, name: name, spare=spare)
    kept = []
    for s in nf.stmts:
        if id(s) in dropped and is_main_guard(s) and nf.framework == "numpyro":
            # a guide made there is kept at the top level
            nf.hoisted += [t for t in s.body if _makes_autoguide(t, nf)]  # type: ignore[attr-defined]
        if id(s) in dropped and is_main_guard(s):
            nf.notes.append(
                (
                    s.lineno,
                    f"dropped the __main__ block (fitting code: uses {dropped[id(s)]}); "
                    "fit the ported program with dg.fit(model, guide, ...) or dg.infer.SVI",
                )
            )
        elif id(s) in dropped:
            names = ", ".join(sorted(bound_names(s))) or "a statement"
            nf.notes.append(
                (
                    s.lineno,
                    f"dropped {names} (fitting code: uses {dropped[id(s)]}); "
                    "fit with dg.fit(model, guide, ...)",
                )
            )
        else:
            kept.append(s)
    return kept


def _uses_ported_fitting(stmt: ast.stmt, nf: NativeFile) -> bool:
    """Whether a statement uses a fitting API that ports (``SVI``, ``svi.run``'s key...)."""
    for n in ast.walk(stmt):
        if isinstance(n, (ast.Attribute, ast.Name)):
            q = qualname(n, nf.aliases)
            if q is not None and native_canonical(q) in nf.rev.fitting:
                return True
    return False


def drop_unportable_fitting(nf: NativeFile, kept: list[ast.stmt]) -> list[ast.stmt]:
    """Fitting code that uses ported APIs (a ``__main__`` block, a ``run()`` that fits) is kept
    only if all of it ports: one the rewriter cannot port (a call with no neutral counterpart)
    is dropped with a note, with what depends on it, instead of failing the file."""
    dropped: dict[int, str] = {}
    for s in kept:
        if not (is_main_guard(s) or not nf.calls_primitive(s)):
            continue
        if not (is_main_guard(s) or _uses_ported_fitting(s, nf)):
            continue
        trial = FilePorter(nf.src, nf.framework, nf.aliases, nf.module_names, nf.calls_primitive)
        trial.emit_statement(s)
        if trial.problems:
            _f, ln, msg = trial.problems[0]
            dropped[id(s)] = f"line {ln}: {msg}"
    if not dropped:
        return kept
    drop_dependents(
        kept,
        dropped,
        lambda s, name: f"uses {name}",
        spare=lambda s: not is_main_guard(s) and nf.calls_primitive(s),
    )
    out = []
    for s in kept:
        if id(s) not in dropped:
            out.append(s)
            continue
        if is_main_guard(s):
            what = "the __main__ block"
            if nf.framework == "numpyro":  # a guide made there is kept at the top level
                nf.hoisted += [t for t in s.body if _makes_autoguide(t, nf)]  # type: ignore[attr-defined]
        else:
            what = ", ".join(sorted(bound_names(s))) or "a statement"
        nf.notes.append(
            (
                s.lineno,
                f"dropped {what} (fitting code that does not port: {dropped[id(s)]}); "
                "fit the ported program with dg.fit(model, guide, ...) or dg.infer.SVI",
            )
        )
    return out


def note_optimizers(nf: NativeFile, kept: list[ast.stmt]) -> None:
    """A native optimizer is ported (dg.optim takes the same settings): say how to use it."""
    for s in kept:
        if is_main_guard(s):  # a ported SVI loop uses it there
            continue
        for n in ast.walk(s):
            if isinstance(n, ast.Call):
                q = qualname(n.func, nf.aliases)
                if q is not None and native_canonical(q) in nf.rev.optimizers:
                    # the name its own assignment binds; else the ported call itself (the
                    # statement's names are not the optimizer's: a function building it inline)
                    bound = [a for a in ast.walk(s) if isinstance(a, ast.Assign) and a.value is n]
                    names = ", ".join(sorted(bound_names(bound[0]))) if bound else ""
                    names = names or f"dg.optim.{nf.rev.optimizers[native_canonical(q)]}(...)"
                    nf.notes.append(
                        (
                            n.lineno,
                            f"ported the optimizer: fit with dg.fit(model, guide, optim={names})",
                        )
                    )


def check_clashes(porter: Porter, kept: list[ast.stmt]) -> None:
    """A name the neutral API uses, bound by the user's code, is a problem."""
    clash = {"dg", "ops", "dist", "constraints"} & {n for s in kept for n in bound_names(s)}
    for n in sorted(clash):
        for s in kept:
            if n in bound_names(s):
                porter.problem(s, f"the name {n!r} is used by the neutral API; rename it")


def imports_text(nf: NativeFile, kept: list[ast.stmt], porter: Porter, pieces: list) -> str:
    """The user's imports still used, then the neutral ones the ported code needs."""
    used_names: set[str] = set()
    for s in kept:
        used_names |= loaded_names(s)
    imports = [nf.src.segment(s) for s in nf.user_imports if bound_names(s) & used_names]
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
    blocks = [b for b in (imports, neutral) if b]
    return "\n\n".join("\n".join(b) for b in blocks)


def model_args_text(nf: NativeFile, porter: FilePorter, kept: list[ast.stmt]) -> tuple[str, str]:
    """``MODEL_ARGS = (...)`` from the data the file's own SVI loop passes to the model, and
    the same arguments as native source (to trace the original with); ``("", "")`` if none."""
    bound = {n for s in kept for n in bound_names(s)}
    if "MODEL_ARGS" in bound:
        return "", ""
    ma = find_model_args(nf.src.tree, porter.q, nf.framework)
    if ma is None or not (ma.args or ma.keywords):
        return "", ""
    missing = sorted(ma.names() - bound)
    if missing:
        nf.notes.append(
            (
                ma.lineno,
                f"MODEL_ARGS not written: the data {ma.call} passes to the model uses "
                f"{', '.join(missing)}, not defined at the top level of the file; define "
                "MODEL_ARGS = (...) there for dualguide crosscheck, check and export",
            )
        )
        return "", ""
    items = [porter.emit_data(a) for a in ma.args]
    kws = [f"{k.arg!r}: {porter.emit_data(k.value)}" for k in ma.keywords]
    native = [nf.src.segment(a) for a in ma.args]
    native_kw = [f"{k.arg!r}: {nf.src.segment(k.value)}" for k in ma.keywords]
    comma = "," if len(items) == 1 else ""
    text = (
        f"# the data the original passes to the model ({ma.call}, line {ma.lineno});\n"
        "# dualguide crosscheck, check and export read them\n"
        f"MODEL_ARGS = ({', '.join(items)}{comma})\n"
        f"MODEL_KWARGS = {{{', '.join(kws)}}}\n"
    )
    native_src = (
        f"(({', '.join(native)}{',' if len(native) == 1 else ''}), {{{', '.join(native_kw)}}})"
    )
    return text, native_src


def fit_settings_text(nf: NativeFile, porter: FilePorter, kept: list[ast.stmt]) -> str:
    """``FIT_SETTINGS = {"loss": dg.infer.<ELBO>(...), "optim": dg.optim.<X>(...)}``: the loss
    when the original fits with an ELBO other than Trace_ELBO (enumeration above all: a fit
    with Trace_ELBO would sample the enumerated sites instead), and the optimizer its SVI takes
    (ported, when a constructor with literal arguments), so ``dg.fit``, ``crosscheck`` and
    ``export`` fit as the original does; "" when there is neither (or the file defines
    FIT_SETTINGS)."""
    if "FIT_SETTINGS" in {n for s in kept for n in bound_names(s)}:
        return ""
    entries = []
    loss = _loss_setting(nf, porter)
    if loss is not None:
        entries.append(("loss", *loss))
    optim = _optim_setting(nf, porter, kept)
    if optim is not None:
        entries.append(("optim", *optim))
    if not entries:
        return ""
    what = " and ".join(f"the {k} (line {ln})" for k, ln, _ in entries)
    body = ", ".join(f'"{k}": {t}' for k, _, t in entries)
    return (
        f"# {what} the original fits with; dualguide fit, crosscheck\n"
        f"# and export read it\nFIT_SETTINGS = {{{body}}}\n"
    )


def _loss_setting(nf: NativeFile, porter: FilePorter) -> tuple[int, str] | None:
    """The original's ELBO other than Trace_ELBO, ported: (line, text), or None."""
    for node in _walk(nf.stmts):
        if not isinstance(node, ast.Call):
            continue
        q = qualname(node.func, nf.aliases)
        name = nf.rev.fitting.get(native_canonical(q)) if q is not None else None
        if not (name and name.startswith("infer.") and name.endswith("ELBO")):
            continue
        if name == "infer.Trace_ELBO":
            return None
        values = [*node.args, *(k.value for k in node.keywords)]
        given = {k.arg for k in node.keywords}
        if not all(isinstance(v, ast.Constant) for v in values) or any(k is None for k in given):
            nf.notes.append(
                (node.lineno, f"FIT_SETTINGS not written: give the {name} literal arguments")
            )
            return None
        if name == "infer.TraceEnum_ELBO" and "max_plate_nesting" not in given:
            nf.notes.append(
                (
                    node.lineno,
                    "FIT_SETTINGS not written: the TraceEnum_ELBO has no max_plate_nesting "
                    "(dualguide requires it); add FIT_SETTINGS = {'loss': "
                    "dg.infer.TraceEnum_ELBO(max_plate_nesting=...)}",
                )
            )
            return None
        args = ", ".join(nf.src.segment(a) for a in node.args)
        kws = ", ".join(f"{k.arg}={nf.src.segment(k.value)}" for k in node.keywords)
        return node.lineno, f"{porter.ns('dg')}.{name}({', '.join(x for x in (args, kws) if x)})"
    return None


def _walk(stmts: list[ast.stmt]):
    """Every node of ``stmts`` (the file's own statements: an export's generated fitting code,
    which port drops, is not among them)."""
    for st in stmts:
        yield from ast.walk(st)


def _literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _optim_setting(
    nf: NativeFile, porter: FilePorter, kept: list[ast.stmt]
) -> tuple[int, str] | None:
    """The optimizer the original's SVI takes, ported: (line, text), or None.  Only a
    constructor with literal arguments (``Adam(0.02)``, ``ClippedAdam(step_size=0.02,
    clip_norm=10.0)``), given inline or bound to a name once (the name itself when the port
    keeps it at the top level); else a note says why not."""
    svi = SVI_CLASSES[nf.framework]
    top = {n for s in kept if not is_main_guard(s) for n in bound_names(s)}
    assigned: dict[str, list[ast.expr]] = {}
    for node in _walk(nf.stmts):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    assigned.setdefault(t.id, []).append(node.value)
    found: dict[str, int] = {}
    for node in _walk(nf.stmts):
        if not isinstance(node, ast.Call):
            continue
        q = qualname(node.func, nf.aliases)
        if q is None or native_canonical(q) not in svi:
            continue
        arg = node.args[2] if len(node.args) > 2 else None
        arg = next((k.value for k in node.keywords if k.arg == "optim"), arg)
        if arg is None:
            continue
        name = arg.id if isinstance(arg, ast.Name) else None
        if name is not None and len(assigned.get(name, [])) == 1:
            arg = assigned[name][0]
        oq = qualname(arg.func, nf.aliases) if isinstance(arg, ast.Call) else None
        if (
            not isinstance(arg, ast.Call)
            or oq is None
            or native_canonical(oq) not in nf.rev.optimizers
            or not all(_literal(v) for v in [*arg.args, *(k.value for k in arg.keywords)])
            or any(k.arg is None for k in arg.keywords)
        ):
            nf.notes.append(
                (
                    node.lineno,
                    "FIT_SETTINGS['optim'] not written: the SVI's optimizer is not a constructor "
                    "with literal arguments; dg.fit and crosscheck use Adam(lr=0.01) unless "
                    "given optim=",
                )
            )
            return None
        text = name if name in top else porter.emit_data(arg)
        if porter.problems:
            return None
        found.setdefault(text, arg.lineno)
    if len(found) > 1:
        nf.notes.append(
            (
                min(found.values()),
                "FIT_SETTINGS['optim'] not written: the original's SVIs use different "
                f"optimizers ({', '.join(found)})",
            )
        )
        return None
    return next(((ln, t) for t, ln in found.items()), None)


def port_source(path: str | Path) -> tuple[str, str, list[tuple[int, str]], list[str], list, str]:
    """Rewrite the file; return (neutral source, framework, notes, ported functions, problems,
    native source of the model arguments or "")."""
    return _port_source(path)[:6]


def dropped_programs(nf: NativeFile, kept: list[ast.stmt]) -> list[tuple[int, str]]:
    """The models and guides the original fits (its SVI's first two arguments, its autoguides)
    that the port dropped, as (line, name): the port then lacks what the original fits."""
    bound_at: dict[str, int] = {}
    for s in nf.stmts:
        body = s.body if is_main_guard(s) else [s]  # type: ignore[attr-defined]
        for t in body:
            for n in bound_names(t):
                bound_at.setdefault(n, t.lineno)
    fitted: set[str] = set()
    for node in _walk(nf.stmts):
        if not isinstance(node, ast.Call):
            continue
        q = qualname(node.func, nf.aliases)
        if q is None:
            continue
        if native_canonical(q) in SVI_CLASSES[nf.framework]:
            given = [
                *node.args[:2],
                *(k.value for k in node.keywords if k.arg in ("model", "guide")),
            ]
            fitted |= {a.id for a in given if isinstance(a, ast.Name)}
    for s in nf.stmts:
        for t in s.body if is_main_guard(s) else [s]:  # type: ignore[attr-defined]
            if (
                isinstance(t, ast.Assign)
                and isinstance(t.value, ast.Call)
                and (q := qualname(t.value.func, nf.aliases)) is not None
                and autoguide_class(native_canonical(q), nf.framework) is not None
            ):
                fitted |= bound_names(t)
    have = {n for s in [*kept, *nf.hoisted] for n in bound_names(s) if not is_main_guard(s)}
    have |= {n for s in kept if is_main_guard(s) for n in bound_names(s)}
    return sorted((bound_at[n], n) for n in fitted if n in bound_at and n not in have)


def _port_source(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise PortError(f"{path}: no such file")
    nf = read_native(path)
    doc = ast.literal_eval(nf.docstring.value) if nf.docstring is not None else None
    nf.stmts, exported = strip_export(nf.stmts, nf.src.text, doc)  # a dualguide export
    kept = drop_unportable_fitting(nf, drop_fitting(nf))
    porter = FilePorter(nf.src, nf.framework, nf.aliases, nf.module_names, nf.calls_primitive)
    if exported is not None:
        porter.export_helpers = exported.helpers
        nf.notes.append(
            (
                exported.lineno,
                "a file written by dualguide export: its generated helpers and fitting code "
                "are dropped, the models' calls of them read back as the neutral API",
            )
        )
    note_optimizers(nf, kept)
    pieces = statement_chunks(nf.src, kept, porter.emit_statement)
    hoisted = [porter.emit_statement(s) for s in nf.hoisted]
    for s in nf.hoisted:
        names = ", ".join(sorted(bound_names(s)))
        nf.notes.append((s.lineno, f"kept {names} (a guide made in the __main__ block)"))
    margs, margs_native = model_args_text(nf, porter, kept + nf.hoisted)
    settings = fit_settings_text(nf, porter, kept)
    nf.notes.extend(n for n in porter.notes if n not in nf.notes)
    nf.notes.sort()
    functions = [s.name for s in kept if isinstance(s, ast.FunctionDef) and nf.calls_primitive(s)]
    check_clashes(porter, kept)
    fw_name = "NumPyro" if nf.framework == "numpyro" else "Pyro"
    head = []
    if exported is not None:  # the original program's docstring, which the export carried
        if exported.docstring:
            head.append('"""' + exported.docstring + '"""')
    elif nf.docstring is not None:
        head.append(nf.src.segment(nf.docstring))
    head.append(
        f"# Ported from {fw_name} by `dualguide port`: runs on NumPyro and on Pyro "
        "(fit with dg.fit)."
    )
    text = "\n".join(head) + "\n\n"
    if nf.future:
        text += "\n".join(nf.src.segment(s) for s in nf.future) + "\n\n"
    imports = imports_text(nf, kept, porter, pieces)
    if porter.uses_numpy and not re.search(r"^import numpy as np$", imports, re.M):
        imports = "import numpy as np\n" + imports
    text += imports + "\n\n\n"
    text += "".join(t for _s, t in pieces).lstrip("\n")
    text = text.rstrip("\n") + "\n"
    for h in hoisted:
        text += "\n\n" + h + "\n"
    if margs:
        text += "\n\n" + margs
    if settings:
        text += "\n\n" + settings
    if exported is not None:
        text = drop_section_marks(text)
    dropped = dropped_programs(nf, kept)
    return text, nf.framework, nf.notes, functions, porter.problems, margs_native, dropped


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
    text, fw, notes, functions, problems, margs, dropped = _port_source(source)
    result = PortResult(text, fw, str(source), notes, functions, dropped=dropped)
    if problems:
        lines = "\n".join(
            f"  {p}:{ln}: {msg}" for p, ln, msg in sorted(problems, key=lambda t: t[1])
        )
        raise PortError(
            f"{source}: {len(problems)} construct(s) cannot be ported:\n{lines}", problems, result
        )
    ensure_compiles(
        text,
        f"<port of {source}>",
        lambda e: PortError(
            f"{source}: the ported code does not compile (line {e.lineno}: "
            f"{e.msg}); please report this"
        ),
    )
    if out is not None:
        Path(out).write_text(text, encoding="utf-8")
    if verify:
        if out is not None:
            result.verification = verify_port(Path(out), Path(source), fw, functions, seed, margs)
        else:
            with tempfile.TemporaryDirectory() as d:
                p = Path(d) / f"{Path(source).stem}_neutral.py"
                p.write_text(text, encoding="utf-8")
                result.verification = verify_port(p, Path(source), fw, functions, seed, margs)
    return result
