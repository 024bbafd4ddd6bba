"""docs/support_matrix.md is generated from the table and is up to date."""

from __future__ import annotations

from dualguide import _support_matrix


def test_support_matrix_is_up_to_date():
    text = _support_matrix.render()
    assert "MISSING REASON" not in text, "a class both frameworks have needs a reason"
    assert _support_matrix.DOC.read_text() == text, (
        "docs/support_matrix.md is out of date: run python -m dualguide._support_matrix"
    )
