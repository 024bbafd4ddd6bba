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

The work is shared out: :mod:`._source` (the source toolkit, shared with the
porter), :mod:`._vocab` and :mod:`._exporter` (the rewriting rules),
:mod:`._native` (helper code generated from the package's own neutral code) and
:mod:`._script` (the fit script).  This module reads the file, decides what is
exported, and assembles the module.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._files import load_file
from ._exporter import Exporter
from ._native import helper_sections
from ._script import FitSettings, main_block
from ._source import (
    ExportError,
    Source,
    bound_names,
    drop_dependents,
    ensure_compiles,
    is_main_guard,
    loaded_names,
    module_aliases,
    split_docstring,
    statement_chunks,
)
from ._vocab import BACKENDS, classify, dualguide_refs, dualguide_refs_import, not_exported

__all__ = ["export", "ExportError"]

#: names the exported code defines or imports: the user's code must not bind them
INTRODUCED = {
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
    "_obs",
    "_native_data",
    "_SupportMasked",
    "UserDistribution",
    "_NeutralKey",
    "make_elbo",
    "nt",
    "nc",
    "TanhTransform",
}
#: the model data a file may define (crosscheck, check and export read them)
DATA_NAMES = {"MODEL_ARGS", "MODEL_KWARGS"}
#: dualguide names that are namespaces, not exportable names
NAMESPACES = ("dualguide", "dualguide.distributions", "dualguide.ops", "dualguide.constraints")


@dataclass
class Program:
    """A neutral file read for export: its parts, and the statements that are not exported."""

    path: Path
    src: Source
    globals: dict
    aliases: dict[str, str]
    docstring: str | None = None
    future: list[ast.stmt] = field(default_factory=list)
    imports: list[ast.stmt] = field(default_factory=list)
    stmts: list[ast.stmt] = field(default_factory=list)
    #: (statement, why) for each statement not exported
    dropped: list[tuple[ast.stmt, str]] = field(default_factory=list)
    #: the names the statements dropped for their dualguide use bind
    bad_names: set[str] = field(default_factory=set)
    kept: list[ast.stmt] = field(default_factory=list)
    #: the file's ``MODEL_ARGS = ...`` / ``MODEL_KWARGS = ...`` statements
    data: list[ast.stmt] = field(default_factory=list)

    def problem_lines(self, problems: list[tuple[str, int, str]]) -> str:
        return "\n".join(f"  {p}:{ln}: {msg}" for p, ln, msg in problems)


# -------------------------------------------------------------------------------------------
# reading the file: what is exported
# -------------------------------------------------------------------------------------------
def read_program(path: Path, module: types.ModuleType | None) -> Program:
    """Parse ``path`` and sort its top-level statements (docstring, imports, code)."""
    src = Source(path.read_text(encoding="utf-8"), str(path))
    if module is None:
        module = load_file(str(path))
    aliases = module_aliases(src.tree, "dualguide")
    if not aliases:
        raise ExportError(f"{path}: does not import dualguide; nothing to export")
    prog = Program(path, src, vars(module), aliases)
    doc, body = split_docstring(src.tree.body)
    if doc is not None:
        prog.docstring = doc.value.value  # type: ignore[attr-defined]
    for s in body:
        if isinstance(s, ast.ImportFrom) and s.module == "__future__":
            prog.future.append(s)
        elif dualguide_refs_import(s):
            continue
        elif isinstance(s, (ast.Import, ast.ImportFrom)):
            prog.imports.append(s)
        elif is_main_guard(s):
            prog.dropped.append((s, "the __main__ block (replaced by one that fits natively)"))
        elif isinstance(s, ast.Assign) and bound_names(s) and bound_names(s) <= DATA_NAMES:
            prog.data.append(s)
        else:
            prog.stmts.append(s)
    return prog


def drop_unexportable(prog: Program) -> None:
    """Statements using dualguide beyond the exportable vocabulary are dropped, and so is
    whatever depends on them (e.g. FIT_SETTINGS with dg.optim, a main() calling dg.fit)."""
    bad: dict[int, tuple[int, str]] = {}
    for s in prog.stmts:
        for n, q in dualguide_refs(s, prog.aliases):
            if classify(q) is None or q in NAMESPACES:
                bad.setdefault(id(s), (n.lineno, q))
                break
    prog.bad_names = drop_dependents(
        prog.stmts, bad, lambda s, name: (s.lineno, f"{name} (not exported)")
    )
    prog.kept = [s for s in prog.stmts if id(s) not in bad]
    for s in prog.stmts:
        if id(s) in bad:
            line, why = bad[id(s)]
            prog.dropped.append((s, f"uses {why} (line {line})"))


def explain_dropped(prog: Program, wanted: str) -> None:
    """Raise, with every line, if the model or guide ``wanted`` was dropped."""
    kept_names = {n for s in prog.kept for n in bound_names(s)}
    if wanted in kept_names:
        return
    path = str(prog.path)
    for s, _why in prog.dropped:
        if wanted not in bound_names(s):
            continue
        problems = [
            (path, n.lineno, not_exported(q))
            for n, q in dualguide_refs(s, prog.aliases)
            if classify(q) is None
        ]
        problems += [
            (path, n.lineno, f"{n.id} uses dualguide beyond models and guides")
            for n in ast.walk(s)
            if isinstance(n, ast.Name) and n.id in prog.bad_names and n.id != wanted
        ]
        raise ExportError(
            f"{path}:{s.lineno}: {wanted} cannot be exported:\n{prog.problem_lines(problems)}",
            problems,
        )


def models_and_guides(prog: Program) -> tuple[list[str], list[str]]:
    """The kept functions named like models, and those named like guides."""
    kept_names = {n for s in prog.kept for n in bound_names(s)}
    g = prog.globals
    funcs = [n for n in kept_names if callable(g.get(n)) and not isinstance(g.get(n), type)]
    return (
        sorted(n for n in funcs if "model" in n.lower()),
        sorted(n for n in funcs if "guide" in n.lower()),
    )


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


def check_clashes(prog: Program, pieces: list[tuple[Any, str]]) -> None:
    """The user's code must not bind a name the exported code introduces."""
    for s, _t in pieces:
        clash = bound_names(s) & INTRODUCED
        if clash:
            n = sorted(clash)[0]
            raise ExportError(
                f"{prog.path}:{s.lineno}: the name {n!r} is used by the exported code; "
                "rename it in the source"
            )


def used_imports(prog: Program, pieces: list[tuple[Any, str]]) -> list[str]:
    """The user's own (non-dualguide) imports the exported code still uses."""
    used: set[str] = set()
    for s, _t in pieces:
        used |= loaded_names(s)
    return [prog.src.segment(s) for s in prog.imports if bound_names(s) & used]


# -------------------------------------------------------------------------------------------
# the export
# -------------------------------------------------------------------------------------------
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
    prog = read_program(path, module)
    drop_unexportable(prog)
    models, guides = models_and_guides(prog)
    for wanted in (model or "model", guide or "guide"):
        explain_dropped(prog, wanted)
    the_model = _pick(models, model, "model", "model", str(path)) if models or model else None
    the_guide = _pick(guides, guide, "guide", "guide", str(path))
    ex = Exporter(prog.src, backend, prog.aliases, prog.globals)
    pieces = statement_chunks(prog.src, prog.kept, ex.emit)
    data = [ex.emit(s) for s in prog.data] if prog.data else None
    if ex.problems:
        raise ExportError(
            f"{path}: cannot export to {backend}:\n{prog.problem_lines(ex.problems)}", ex.problems
        )
    if settings is None:
        settings = dict(prog.globals.get("FIT_SETTINGS") or {})
    if ex.needs.enumerated is not None:
        loss = FitSettings.read(settings).loss
        if loss.name != "TraceEnum_ELBO":
            raise ExportError(
                f"{path}:{ex.needs.enumerated}: the program marks sites for enumeration, but "
                f"the exported fit would use {loss.name}, which samples them instead of "
                "summing them out; give FIT_SETTINGS = {'loss': dg.infer.TraceEnum_ELBO("
                "max_plate_nesting=...)} in the file (or settings=)"
            )
    tail, notes = main_block(
        backend, settings, models, guides, the_model, the_guide, ex.needs, data
    )
    check_clashes(prog, pieces)
    head = header(prog, backend, notes, the_model, the_guide)
    helpers, helper_imports = helper_sections(ex.needs, backend, str(path))
    imports = imports_block(ex.needs.imports | helper_imports, used_imports(prog, pieces))
    if prog.future:
        imports = "\n".join(prog.src.segment(s) for s in prog.future) + "\n\n" + imports
    sections = [
        imports,
        *helpers,
        "# --- the model(s) and guide(s) " + "-" * 62 + "\n" + "".join(t for _s, t in pieces),
        "# --- fit natively " + "-" * 75 + "\n" + tail.lstrip("\n"),
    ]
    text = (
        "\n".join(_wrap_doc(head))
        + "\n\n"
        + "\n\n\n".join(sec.strip("\n") for sec in sections)
        + "\n"
    )
    ensure_compiles(
        text,
        f"<export of {path}>",
        lambda e: ExportError(
            f"{path}: the exported {backend} code does not compile "
            f"(line {e.lineno}: {e.msg}); please report this"
        ),
    )
    return text


def header(
    prog: Program, backend: str, notes: list[str], the_model: str | None, the_guide: str
) -> list[str]:
    """The exported module's docstring, line by line: what it is, how it differs, what is not in it."""
    from .. import __version__

    path = prog.path
    other = "pyro" if backend == "numpyro" else "numpyro"
    framework = "NumPyro (JAX)" if backend == "numpyro" else "Pyro (PyTorch)"
    docstring = prog.docstring
    # the original docstring, whole (port reads it back from between "Original: " and
    # "Needs only"); only its first line when it has backslashes or quotes that the
    # docstring written here could misread
    orig = inspect.cleandoc(docstring).splitlines() if docstring and docstring.strip() else []
    if any(ch in (docstring or "") for ch in ("\\", '"""')):
        orig = orig[:1]
    head = [
        f'"""{path.name} in plain {framework}: written by `dualguide export` '
        f"(dualguide {__version__}).",
        "",
    ]
    if orig:  # indented: _wrap_doc leaves the lines as they are
        head += ["Original:", *(f"    {ln}" if ln else "" for ln in orig), ""]
    head += [
        f"Needs only {backend} (no dualguide, no {other}). Fits model {the_model!r} with "
        f"guide {the_guide!r} natively:"
        if the_model
        else f"Needs only {backend} (no dualguide, no {other}). The file has no model: call "
        f"fit(your_model, {the_guide}) to fit guide {the_guide!r} natively.",
        "",
        f"    python {path.stem}_{backend}.py [--model NAME] [--guide NAME] [--steps N] "
        "[--seed S] [--json]",
        "",
        "Differences from a dualguide fit:",
        *[f"- {d}" for d in differences(backend) + notes],
    ]
    if prog.dropped:
        head += ["", "Not exported (they use dualguide beyond models and guides):"]
        for s, why in prog.dropped:
            names = ", ".join(sorted(bound_names(s))) or (
                "if __name__ == '__main__'" if is_main_guard(s) else "a statement"
            )
            head.append(f"- line {s.lineno}: {names}: {why}")
    head.append('"""')
    return head


def differences(backend: str) -> list[str]:
    """How every export to ``backend`` differs from a dualguide fit."""
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
        diffs.append(
            "several ELBO particles run one after another (vectorize_particles=False), so the "
            "model never sees a particle dimension, as in NumPyro and dualguide"
        )
    return diffs


def _wrap_doc(lines: list[str], width: int = 99) -> list[str]:
    out = []
    for ln in lines:
        if len(ln) <= width or ln.startswith("    "):
            out.append(ln)
        else:
            indent = "  " if ln.startswith("- ") else ""
            out.extend(textwrap.wrap(ln, width, subsequent_indent=indent))
    return out


def imports_block(native: set[str], user: list[str]) -> str:
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
