"""Subcommands of the ``dualguide`` command and their shared helpers."""

from __future__ import annotations

from .._files import load_file
from ..errors import SpecError

__all__ = ["load_file", "find_callable"]


def find_callable(mod, path: str, name: str | None, candidates: tuple[str, ...], role: str):
    """The function called ``name`` in ``mod``, or the first of ``candidates`` that exists."""
    names = (name,) if name else candidates
    for n in names:
        fn = getattr(mod, n, None)
        if callable(fn):
            return fn
    have = sorted(k for k, v in vars(mod).items() if callable(v) and not k.startswith("_"))
    raise SpecError(
        f"{path}: no {role} function {' or '.join(repr(n) for n in names)} "
        f"(functions in the file: {', '.join(have) or 'none'}); name it with --{role}"
    )
