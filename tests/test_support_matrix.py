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
