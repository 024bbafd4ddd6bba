"""``svi.init`` as a compiled program that takes the params' concrete init values as
arguments (used by :func:`.fitloop._init`).

Compiled with its init values as constants, the program would give every later fit the
first fit's values (``init_params``, an autoguide's new init locations, draws from numpy's
global generator); run eagerly, ``svi.init`` compiles one XLA kernel per op and shape at
a program's second fit (seconds for a mixture guide).  Here a first, abstract pass of
``svi.init`` records each param's concrete init value (:class:`InitInputs` in recording
mode), and the compiled program gets them back as arguments (substituting mode): one
program per model, guide and shapes, right for any init values.

While a pass runs (:func:`concrete_inits`) the backend's ``param`` hands on a concrete
init value as checked numpy (inside a trace a JAX conversion would be a tracer, outside
one it compiles a kernel), so the value the handler sees is concrete, as an autoguide's
are.  Values computed inside the trace (a callable init of the key, an init derived from the
model arguments) stay in the program, computed from its inputs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
from numpyro.primitives import Messenger

#: True while :func:`concrete_inits` is active (read by the backend's ``param``)
CONCRETE = False


@contextlib.contextmanager
def concrete_inits() -> Iterator[None]:
    """Within: the backend's ``param`` converts concrete init values outside any trace."""
    global CONCRETE
    saved, CONCRETE = CONCRETE, True
    try:
        yield
    finally:
        CONCRETE = saved


def is_concrete(v: Any) -> bool:
    """A value fixed before the trace: an array or number, not a tracer or an init function."""
    return v is not None and not callable(v) and not isinstance(v, jax.core.Tracer)


class InitInputs(Messenger):
    """Records (``inputs is None``) or substitutes (``inputs``: name -> value) the concrete
    init values of the param sites of ``fn``; ``found`` collects them in order."""

    def __init__(self, fn: Any, box: dict):
        super().__init__(fn)
        self.box = box  # {"inputs": None or dict, "found": dict}, shared by model and guide

    def process_message(self, msg: dict) -> None:
        if msg["type"] != "param":
            return
        name, inputs = msg["name"], self.box["inputs"]
        if msg["value"] is not None:  # substituted by an inner handler
            if inputs is None:
                if is_concrete(msg["value"]):
                    self.box["found"][name] = msg["value"]
            elif name in inputs:
                msg["value"] = inputs[name]
            return
        init = msg["args"][0] if msg["args"] else None
        if inputs is None:
            if is_concrete(init):
                self.box["found"][name] = init
                # the program sees a JAX value, as from the backend's param outside a pass
                msg["args"] = (jnp.asarray(init),) + tuple(msg["args"][1:])
        elif name in inputs:
            msg["args"] = (inputs[name],) + tuple(msg["args"][1:])
