"""Every docstring example in the package runs (doctest)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import dualguide


def _modules():
    """Every module of the package, the backends' included."""
    return sorted(m.name for m in pkgutil.walk_packages(dualguide.__path__, "dualguide."))


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name, backend_state):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0
