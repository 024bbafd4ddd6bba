"""Verifying a port: every ported function traced on both backends, and against the original.

A ported function is traced (:func:`dualguide.trace`) on NumPyro and on Pyro -- with the
ported file's ``MODEL_ARGS`` / ``MODEL_KWARGS`` when it takes arguments; on the original's
framework its sites (names, distributions, shapes, values and log densities, same seed)
must equal those of the original function traced natively with the same data.  A function
that could not be traced is reported as such and the port does not count as verified.
"""

from __future__ import annotations

import inspect
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import _state, _table
from .._files import load_file
from ..trace import trace

__all__ = ["Verification", "verify_port"]


@dataclass
class Verification:
    """How one ported function traced on one backend."""

    function: str
    backend: str
    ok: bool
    sites: list[str] = field(default_factory=list)
    message: str = ""
    #: whether the function actually ran (False: not traced, so nothing was verified)
    traced: bool = True


class _Original:
    """The original native file, imported on first use; traces its functions natively."""

    def __init__(self, path: Path, framework: str, seed: int, model_args_src: str = ""):
        self.path, self.framework, self.seed = path, framework, seed
        self.model_args_src = model_args_src
        self.module: types.ModuleType | None = None

    def trace(self, fn_name: str, with_args: bool = False) -> dict:
        if self.module is None:
            self.module = load_file(str(self.path))
        fn = getattr(self.module, fn_name)
        args: tuple = ()
        kwargs: dict = {}
        if with_args:
            if self.model_args_src:  # the same expressions, evaluated in the original module
                args, kwargs = eval(self.model_args_src, vars(self.module))
            else:
                args = tuple(getattr(self.module, "MODEL_ARGS", ()) or ())
                kwargs = dict(getattr(self.module, "MODEL_KWARGS", {}) or {})
        return _state.load(self.framework).trace(fn, args, kwargs, self.seed)


def _required_args(fn) -> list[str]:
    return [
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def _first_line(e: Exception) -> str:
    """``Type: first line of the message`` (cut at 160 characters)."""
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text[:160]}" if text else type(e).__name__


def _trace_failed(
    fn_name: str, b: str, e: Exception, original: _Original, with_args: bool
) -> Verification:
    """A ported function that did not trace: fine if the original cannot run standalone either
    (e.g. a model with improper priors)."""
    msg = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    try:
        original.trace(fn_name, with_args)
    except Exception as e0:
        return Verification(
            fn_name,
            b,
            True,
            [],
            "not traced: cannot run standalone, like the original "
            f"({_first_line(e0)}); e.g. a model with improper priors",
            traced=False,
        )
    return Verification(fn_name, b, False, [], msg)


def _against_original(
    fn_name: str, b: str, sites: dict, original: _Original, with_args: bool, retrace=None
) -> Verification:
    """The ported function's trace compared site by site with the original's.

    A network's weights (``pyro.module``'s ``name$$$path`` params, ``dg.nn``'s ``name.path``)
    start from other random numbers in the two programs (torch's generator vs numpy's): the
    ported function is traced again from the original's weights (``retrace(overrides)``) and
    the names are compared with ``$$$`` read as ``.``.
    """
    try:
        nat = original.trace(fn_name, with_args)
    except Exception as e:
        return Verification(
            fn_name,
            f"{b} vs original",
            False,
            [],
            f"the original did not trace: {type(e).__name__}: {e}",
        )
    renamed = {k: k.replace("$$$", ".") for k in nat if "$$$" in k}
    # numpyro.module's stax params (traced as name.i.j): dg.nn.stax draws them with numpy
    stax = {
        k: k
        for k, s in nat.items()
        if s.type == "param"
        and isinstance(s.native, dict)
        and str(s.native.get("name", "")).endswith("$params")
    }
    if renamed or stax:
        over = {
            new: nat[old].value
            for old, new in {**renamed, **stax}.items()
            if new in sites and nat[old].type == "param" and sites[new].type == "param"
        }
        if over and retrace is not None:
            try:
                sites = retrace(over)
            except Exception as e:
                return Verification(
                    fn_name,
                    f"{b} vs original",
                    False,
                    list(sites),
                    f"the port did not trace from the original's network weights: {e}",
                )
        nat = {renamed.get(k, k): v for k, v in nat.items()}
    diff = _compare(nat, sites)
    return Verification(
        fn_name,
        f"{b} vs original",
        not diff,
        list(sites),
        diff or "same sites, values and log densities",
    )


def verify_port(
    ported_path: Path,
    original_path: Path,
    framework: str,
    functions: list[str],
    seed: int = 0,
    model_args_src: str = "",
) -> list[Verification]:
    """Trace each ported function on both backends; on the original framework compare sites.

    A function with required arguments is traced with the ported file's ``MODEL_ARGS`` /
    ``MODEL_KWARGS`` (the original with ``model_args_src``, the same data as native source).
    """
    out: list[Verification] = []
    ported = load_file(str(ported_path))
    margs = tuple(getattr(ported, "MODEL_ARGS", ()) or ())
    mkwargs = dict(getattr(ported, "MODEL_KWARGS", {}) or {})
    has_data = hasattr(ported, "MODEL_ARGS") or hasattr(ported, "MODEL_KWARGS")
    original = _Original(original_path, framework, seed, model_args_src)
    for fn_name in functions:
        fn = getattr(ported, fn_name, None)
        if fn is None:
            continue
        params = _required_args(fn)
        if params and not has_data:
            why = (
                f"not traced (takes arguments: {', '.join(params)}; define MODEL_ARGS = (...) "
                "in the ported file to trace it)"
            )
            out.append(Verification(fn_name, "-", True, [], why, traced=False))
            continue
        args, kwargs = (margs, mkwargs) if params else ((), {})
        for b in _table.BACKENDS:
            try:
                sites = trace(fn, *args, backend=b, seed=seed, **kwargs)
            except Exception as e:
                out.append(_trace_failed(fn_name, b, e, original, bool(params)))
                continue
            out.append(Verification(fn_name, b, True, list(sites)))
            if b == framework:

                def retrace(over, fn=fn, b=b, args=args, kwargs=kwargs):
                    return trace(fn, *args, backend=b, seed=seed, params=over, **kwargs)

                out.append(_against_original(fn_name, b, sites, original, bool(params), retrace))
    return out


def _compare(want: dict, got: dict) -> str:
    """'' when the traces agree (names, kinds, distributions, shapes, values, log densities)."""
    if list(want) != list(got):
        return f"sites differ: original {list(want)}, ported {list(got)}"
    for name, w in want.items():
        g = got[name]
        # NumPyro's ZeroInflatedPoisson is the ZeroInflatedProbs dualguide builds: compared by
        # what the class is (the table's aliases), and by values and log densities below
        if (w.type, w.batch_shape, w.event_shape) != (
            g.type,
            g.batch_shape,
            g.event_shape,
        ) or not _table.same_dist(w.dist, g.dist):
            return (
                f"site {name!r}: original {w.type} {w.dist} {w.batch_shape}+{w.event_shape}, "
                f"ported {g.type} {g.dist} {g.batch_shape}+{g.event_shape}"
            )
        for what, a, b in (("value", w.value, g.value), ("log_prob", w.log_prob, g.log_prob)):
            if (a is None) != (b is None):
                return f"site {name!r}: {what} present in only one trace"
            if a is not None and not np.allclose(
                np.asarray(a, dtype=np.float64),
                np.asarray(b, dtype=np.float64),
                rtol=1e-5,
                atol=1e-6,
                equal_nan=True,
            ):
                return f"site {name!r}: {what} differs ({a} vs {b})"
    return ""
