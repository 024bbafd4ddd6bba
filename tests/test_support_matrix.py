"""docs/support_matrix.md is generated from the table and is up to date."""

from __future__ import annotations

from dualguide import _support_matrix


def test_support_matrix_is_up_to_date():
    text = _support_matrix.render()
    assert "MISSING REASON" not in text, "a class both frameworks have needs a reason"
    assert "MISSING NATIVE" not in text, "an op row names a function its framework lacks"
    assert _support_matrix.DOC.read_text() == text, (
        "docs/support_matrix.md is out of date: run python -m dualguide._support_matrix"
    )


def test_support_matrix_lists_every_op_with_both_names():
    from dualguide._table import OPS

    text = "\n".join(_support_matrix.render_ops())
    for name, (n, p) in OPS.items():
        assert f"| `ops.{name}` | `{n}` | `{p}` |" in text
    assert not _support_matrix._native_exists("jnp.no_such_op")
    assert not _support_matrix._native_exists("torch.linalg.no_such_op")


def test_the_support_matrix_imports_no_framework_itself():
    """It reads the frameworks' classes through the backends' dists feature (the layer rule;
    an import inside a function read as a module-level framework import by a line check)."""
    import ast
    import inspect

    from dualguide._state import feature

    tree = ast.parse(inspect.getsource(_support_matrix))
    roots = {"jax", "jaxlib", "numpyro", "torch", "pyro"}
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names] + [
        n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
    ]
    assert not [m for m in imported if m.split(".")[0] in roots]
    for b in ("numpyro", "pyro"):
        version, mods = feature(b, "dists").catalog()
        assert version and set(mods) == {"distributions", "transforms"}
        assert "Normal" in _support_matrix._classes(*mods["distributions"])
