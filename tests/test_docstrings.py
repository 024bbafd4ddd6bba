"""Every docstring example in the package runs (doctest)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import dualguide
from dualguide import _state


def _modules():
    names = []
    for m in pkgutil.walk_packages(dualguide.__path__, "dualguide."):
        if ".backends." in m.name or m.name.endswith(".backends"):
            continue
        names.append(m.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    mod = importlib.import_module(name)
    prev = _state._current
    try:
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    finally:
        _state._current = prev
    assert res.failed == 0
