"""Loading a user's Python file as a module (used by the exporter, the porter and the CLI)."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

from .errors import SpecError

__all__ = ["load_file"]


def load_file(path: str) -> types.ModuleType:
    """Import the Python file at ``path`` as a module; clear errors for a missing or broken file."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(
            f"{path}: no such file; give the path of a Python file with a model and a guide"
        )
    name = f"_dualguide_user_{abs(hash(str(p.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise SpecError(f"{path}: not a Python file")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except SyntaxError as e:
        raise SpecError(f"{path}:{e.lineno}: syntax error: {e.msg}") from None
    except Exception as e:
        raise SpecError(f"{path}: importing it raised {type(e).__name__}: {e}") from None
    return mod
