"""Small helpers over traced sites, shared by the doctor's checks: kinds, shapes, supports, text."""

from __future__ import annotations

import math

import numpy as np


def _latent(s) -> bool:
    """A sample site that is neither observed nor a factor."""
    return s.type == "sample" and not s.is_observed and not s.is_factor


def _shape(s) -> tuple:
    """The site's full shape, batch then event."""
    return tuple(s.batch_shape) + tuple(s.event_shape)


def _same(a, b) -> bool:
    """Equal values (None, integers exactly, floats to rtol 1e-6)."""
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "biu" and b.dtype.kind in "biu":
        return bool(np.array_equal(a, b))
    return bool(np.allclose(a, b, rtol=1e-6, atol=1e-7, equal_nan=True))


def _fmt_shape(s) -> str:
    """A shape as Python writes a tuple: ``(3,)``."""
    return "(" + ", ".join(str(int(d)) for d in s) + ("," if len(s) == 1 else "") + ")"


def _names(xs) -> str:
    """Names quoted and comma-separated."""
    xs = list(xs)
    return ", ".join(repr(x) for x in xs)


def _size(s) -> int:
    """How many numbers the site holds."""
    return int(np.prod(_shape(s), dtype=int))


def _nest(gsites) -> int:
    """How many batch dims (plates) the sites use: the nesting a batched run must leave free."""
    n = 0
    for s in gsites.values():
        if s.type == "sample":
            n = max(n, len(s.batch_shape))
            for f in s.native.get("cond_indep_stack", ()) or ():
                dim = getattr(f, "dim", None)
                if dim is not None:
                    n = max(n, -int(dim))
    return n


def _shapes(sites) -> dict:
    """name -> (shape, event dims) of each site."""
    return {k: (_shape(s), len(s.event_shape)) for k, s in sites.items()}


# -- supports ---------------------------------------------------------------------------------


def _support(d, b) -> dict | None:
    """A neutral description of ``d.support``: bounds for interval-like supports.

    A ``TransformedDistribution``'s bounds are its base's pushed through its transforms where
    each is monotone and known (:func:`_push`): both frameworks report the last transform's
    codomain, the whole real line for ``AffineTransform``, although ``Sigmoid`` then
    ``Affine(0, T)`` draws only in (0, T)."""
    inner = d
    while type(inner).__name__ in _SAME_SUPPORT and getattr(inner, "base_dist", None) is not None:
        inner = inner.base_dist  # a plate's expand, .to_event(), a mask: the same support
    if getattr(inner, "transforms", None) is not None and getattr(inner, "base_dist", None):
        pushed = _pushed_support(inner, b)
        if pushed is not None:
            return pushed
    c = getattr(d, "support", None)
    if c is None:
        return None
    while hasattr(c, "base_constraint"):
        c = c.base_constraint
    kind = type(c).__name__.lstrip("_")
    discrete = bool(getattr(c, "is_discrete", False))
    lo, hi = getattr(c, "lower_bound", None), getattr(c, "upper_bound", None)
    if kind in ("Real", "RealVector"):
        lo, hi = -math.inf, math.inf
    elif lo is None and hi is None:
        return {"kind": kind, "discrete": discrete, "repr": repr(c)}
    try:
        lo = -math.inf if lo is None else np.asarray(b.to_numpy(lo), dtype=float)
        hi = math.inf if hi is None else np.asarray(b.to_numpy(hi), dtype=float)
    except Exception:
        return {"kind": kind, "discrete": discrete, "repr": repr(c)}
    return {
        "kind": "bounds",
        "discrete": discrete,
        "lo": np.asarray(lo, dtype=float),
        "hi": np.asarray(hi, dtype=float),
        "repr": repr(c),
    }


#: wrappers whose support is their base distribution's (elementwise)
_SAME_SUPPORT = ("ExpandedDistribution", "Independent", "MaskedDistribution")


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


#: monotone increasing transforms (by class name, the same in both frameworks)
_INCREASING = {
    "ExpTransform": np.exp,
    "SigmoidTransform": _sigmoid,
    "TanhTransform": np.tanh,
    "SoftplusTransform": lambda x: np.logaddexp(0.0, x),
}


def _push(t, lo, hi, b):
    """The bounds ``(lo, hi)`` mapped by transform ``t``, or None for a transform not known
    to be monotone here."""
    name = type(t).__name__
    parts = getattr(t, "parts", None)
    if name == "ComposeTransform" and parts is not None:
        for p in parts:
            got = _push(p, lo, hi, b)
            if got is None:
                return None
            lo, hi = got
        return lo, hi
    f = _INCREASING.get(name)
    if f is not None:
        with np.errstate(over="ignore"):
            return f(lo), f(hi)
    if name == "AffineTransform":
        loc = np.asarray(b.to_numpy(t.loc), dtype=float)
        scale = np.asarray(b.to_numpy(t.scale), dtype=float)
        with np.errstate(invalid="ignore"):  # 0 * inf: a zero scale maps to its loc
            a, z = (
                loc + np.where(scale == 0, 0.0, scale * lo),
                loc + np.where(scale == 0, 0.0, scale * hi),
            )
        return np.minimum(a, z), np.maximum(a, z)
    return None


def _pushed_support(d, b) -> dict | None:
    base = _support(d.base_dist, b)
    if base is None or base["kind"] != "bounds" or base["discrete"]:
        return None
    lo, hi = base["lo"], base["hi"]
    for t in d.transforms:
        got = _push(t, lo, hi, b)
        if got is None:
            return None
        lo, hi = got
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    return {
        "kind": "bounds",
        "discrete": False,
        "lo": lo,
        "hi": hi,
        "repr": f"{_fmt_bounds(lo, hi)} (the base's support through the transforms)",
    }


def _fmt_bounds(lo, hi) -> str:
    """Bounds as text: ``(0, inf)``, the whole real line, or elementwise."""
    lo, hi = np.asarray(lo), np.asarray(hi)
    if lo.size and hi.size and np.all(lo == lo.flat[0]) and np.all(hi == hi.flat[0]):
        a, z = float(lo.flat[0]), float(hi.flat[0])
        if a == -math.inf and z == math.inf:
            return "the whole real line"
        return f"({_num(a)}, {_num(z)})"
    return "elementwise bounds " + f"[{lo.tolist()}, {hi.tolist()}]"


def _num(x: float) -> str:
    """A bound as text (``inf``, ``-inf``, ``2.5``)."""
    if x == math.inf:
        return "inf"
    if x == -math.inf:
        return "-inf"
    return f"{x:g}"


# -- text -------------------------------------------------------------------------------------


def _err(e: BaseException) -> str:
    """An exception in one line: its type and the first line of its message."""
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}"
