"""Neutral transforms for ``dist.TransformedDistribution``, and ``biject_to``.

Write them as in Pyro (``dist.transforms.ExpTransform()``,
``dist.transforms.AffineTransform(loc, scale)``); each backend renders a neutral
transform to its framework's class (the rows of ``TRANSFORMS`` in ``dualguide/_table.py``).
A neutral transform is also callable on jax or torch arrays (the array's framework answers),
has ``.inv``, ``log_abs_det_jacobian(x, y)``, and ``native(backend)``.

``biject_to(constraint)`` is the framework's own bijection from unconstrained space onto the
constraint's set (``constraint`` neutral, or the native ``d.support`` of a distribution).

>>> import dualguide as dg
>>> from dualguide import distributions as dist
>>> t = dist.transforms.ComposeTransform(
...     [dist.transforms.AffineTransform(1.0, 2.0), dist.transforms.ExpTransform()])
>>> t
ComposeTransform([AffineTransform(1.0, 2.0), ExpTransform()])
>>> with dg.use_backend("pyro"):
...     d = dist.TransformedDistribution(dist.Normal(0.0, 1.0), [t])
...     round(float(d.log_prob(dg.ops.asarray(3.0))), 4)
-2.7119
>>> with dg.use_backend("numpyro"):
...     d = dist.TransformedDistribution(dist.Normal(0.0, 1.0), [t])
...     round(float(d.log_prob(dg.ops.asarray(3.0))), 4)
-2.7119
"""

from __future__ import annotations

from typing import Any

from . import _state
from ._table import TRANSFORMS
from .errors import SpecError

__all__ = ["Transform", "biject_to", *TRANSFORMS]


class Transform:
    """A neutral transform: a row of ``_table.TRANSFORMS`` with its arguments.

    ``parts`` (for ``ComposeTransform``) and ``base_transform`` may be neutral transforms.
    """

    __slots__ = ("name", "args", "kwargs", "inverted", "_native")

    def __init__(self, name: str, args: tuple = (), kwargs: dict | None = None, inverted=False):
        if name not in TRANSFORMS and name != "biject_to":
            from .errors import unknown_name

            raise unknown_name("dualguide.distributions.transforms", "transform", name, TRANSFORMS)
        self.name = name
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.inverted = inverted
        self._native: dict = {}

    def __repr__(self) -> str:
        parts = [_short(a) for a in self.args] + [
            f"{k}={_short(v)}" for k, v in self.kwargs.items()
        ]
        s = f"{self.name}({', '.join(parts)})"
        return f"{s}.inv" if self.inverted else s

    @property
    def inv(self) -> Transform:
        """The inverse transform."""
        return Transform(self.name, self.args, self.kwargs, not self.inverted)

    def native(self, backend: Any = None) -> Any:
        """The framework's transform object on ``backend`` (default: the active one)."""
        b = _state.resolve(backend)
        t = self._native.get(b.name)
        if t is None:
            t = self._native[b.name] = _state.feature(b, "dists").transform(self)
        return t

    def _for(self, x):
        b = _state.backend_of_type(type(x)) or _state.current()
        return self.native(b)

    def __call__(self, x):
        return self._for(x)(x)

    def log_abs_det_jacobian(self, x, y):
        """log|det dy/dx| as the framework computes it."""
        return self._for(x).log_abs_det_jacobian(x, y)


def _short(a) -> str:
    if isinstance(a, (Transform, int, float, str, bool)) or a is None:
        return repr(a)
    if isinstance(a, (list, tuple)) and all(isinstance(p, Transform) for p in a):
        return repr(list(a))
    return type(a).__name__


def _factory(name: str):
    spec = TRANSFORMS[name]

    def make(*args, **kwargs) -> Transform:
        if len(args) > len(spec.args):
            raise SpecError(
                f"dist.transforms.{name} takes {len(spec.args)} argument(s) "
                f"({', '.join(spec.args)}), got {len(args)}"
            )
        bad = [k for k in kwargs if k not in spec.args]
        if bad:
            raise SpecError(
                f"dist.transforms.{name} got an unexpected keyword {bad[0]!r}; its arguments "
                f"are ({', '.join(spec.args)})"
            )
        return Transform(name, args, kwargs)

    make.__name__ = make.__qualname__ = name
    make.__doc__ = (
        f"Neutral ``{name}({', '.join(spec.args)})``: numpyro's "
        f"{spec.numpyro or '(built by dualguide)'} or pyro's {spec.pyro}."
    )
    return make


for _name in TRANSFORMS:
    globals()[_name] = _factory(_name)

AffineTransform = globals()["AffineTransform"]
ExpTransform = globals()["ExpTransform"]
SigmoidTransform = globals()["SigmoidTransform"]
TanhTransform = globals()["TanhTransform"]
SoftplusTransform = globals()["SoftplusTransform"]
PowerTransform = globals()["PowerTransform"]
LowerCholeskyAffine = globals()["LowerCholeskyAffine"]
ComposeTransform = globals()["ComposeTransform"]
StickBreakingTransform = globals()["StickBreakingTransform"]
CorrCholeskyTransform = globals()["CorrCholeskyTransform"]


def biject_to(constraint: Any) -> Transform:
    """The framework's bijection from unconstrained reals onto ``constraint``'s set.

    ``constraint`` is a neutral constraint (``dg.constraints.positive``) or a native one
    of the backend it is used on (``d.support``).

    >>> import dualguide as dg
    >>> from dualguide import constraints, distributions as dist
    >>> t = dist.biject_to(constraints.interval(0.0, 2.0))
    >>> with dg.use_backend("numpyro"):
    ...     round(float(t(dg.ops.asarray(0.0))), 4)
    1.0
    """
    return Transform("biject_to", (constraint,))


def to_native(x: Any, backend: Any) -> Any:
    """``x`` with every neutral transform in it (also inside lists) rendered for ``backend``."""
    if isinstance(x, Transform):
        return x.native(backend)
    if isinstance(x, (list, tuple)):
        return type(x)(to_native(a, backend) for a in x)
    return x
