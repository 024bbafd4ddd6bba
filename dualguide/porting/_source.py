"""The source toolkit of the exporter and the porter: a file's text sliced by ast positions.

:class:`Source` holds a file's text with byte offsets (ast columns count UTF-8
bytes); :class:`Rewriter` rewrites a node's text while keeping the exact text
(comments, line breaks) of everything it leaves alone; the rest are small
questions asked of an ast (which names a statement binds or loads, what an
import alias stands for, which statements to drop with what depends on them).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from ..errors import SpecError

__all__ = [
    "ExportError",
    "Source",
    "Rewriter",
    "bind",
    "arg_value",
    "module_aliases",
    "qualname",
    "loaded_names",
    "bound_names",
    "is_main_guard",
    "local_names",
    "split_docstring",
    "drop_dependents",
    "statement_chunks",
    "ensure_compiles",
]


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


def positioned_children(node) -> list[Any]:
    """The nearest descendants of ``node`` that carry source positions, in source order."""
    out: list[Any] = []
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
def module_aliases(tree: ast.Module, package: str, module: str | None = None) -> dict[str, str]:
    """Top-level names bound by imports of ``package`` -> the qualified name they stand for.

    ``module`` (the dotted name of the module ``tree`` is) resolves relative imports.
    """
    out: dict[str, str] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                if a.name == package or a.name.startswith(package + "."):
                    if a.asname:
                        out[a.asname] = a.name
                    else:
                        out[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(stmt, ast.ImportFrom):
            absolute = _absolute(stmt, module)
            if absolute and (absolute == package or absolute.startswith(package + ".")):
                for a in stmt.names:
                    out[a.asname or a.name] = f"{absolute}.{a.name}"
    return out


def _absolute(stmt: ast.ImportFrom, module: str | None) -> str | None:
    """The absolute module name a ``from X import ...`` reads (None: unresolvable)."""
    if stmt.level == 0:
        return stmt.module
    if module is None:
        return None
    parts = module.split(".")
    if stmt.level > len(parts):
        return None
    base = parts[: len(parts) - stmt.level]
    return ".".join(base + ([stmt.module] if stmt.module else [])) or None


def qualname(node, aliases: dict[str, str]) -> str | None:
    """``dg.distributions.Normal`` -> ``"dualguide.distributions.Normal"`` (None if not imported)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in aliases:
        return ".".join([aliases[node.id], *reversed(parts)])
    return None


def loaded_names(node) -> set[str]:
    """Every name ``node`` mentions."""
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


def split_docstring(body: list[ast.stmt]) -> tuple[ast.Expr | None, list[ast.stmt]]:
    """(the module docstring's statement or None, the other statements)."""
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        return body[0], list(body[1:])
    return None, list(body)


def drop_dependents(
    stmts: list[ast.stmt],
    dropped: dict[int, Any],
    because: Callable[[ast.stmt, str], Any],
    spare: Callable[[ast.stmt], bool] | None = None,
) -> set[str]:
    """Drop, too, every statement that uses a name a dropped statement binds, until none is left.

    ``dropped`` maps ``id(stmt)`` to the reason and is extended in place with
    ``because(stmt, name)``; ``spare(stmt)`` keeps a statement whatever it uses.
    Returns the names the dropped statements bind.
    """
    while True:
        gone: set[str] = set()
        for s in stmts:
            if id(s) in dropped:
                gone |= bound_names(s)
        changed = False
        for s in stmts:
            if id(s) in dropped or (spare is not None and spare(s)):
                continue
            hit = loaded_names(s) & gone
            if hit:
                dropped[id(s)] = because(s, sorted(hit)[0])
                changed = True
        if not changed:
            return gone


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


def ensure_compiles(text: str, filename: str, fail: Callable[[SyntaxError], Exception]) -> None:
    """Raise ``fail(error)`` if the written code does not compile (a bug in a rewriter)."""
    try:
        compile(text, filename, "exec")
    except SyntaxError as e:  # pragma: no cover - a bug in the rewriter
        raise fail(e) from None
