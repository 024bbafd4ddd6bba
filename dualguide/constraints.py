"""Neutral constraints: plain descriptors that each backend turns into its own.

Use them as Pyro does: ``constraint=constraints.positive`` on a param, or as the
support of :class:`~dualguide.distributions.ImproperUniform`.

>>> from dualguide import constraints
>>> constraints.interval(0.0, 1.5)
interval(0.0, 1.5)
>>> constraints.positive.name
'positive'
"""

from __future__ import annotations

import math

from ._table import CONSTRAINT_ARGS, CONSTRAINTS
from .errors import SpecError

__all__ = ["Constraint", *CONSTRAINTS]


class Constraint:
    """A neutral constraint: a name from the table plus plain-number arguments."""

    __slots__ = ("name", "args", "_native")

    def __init__(self, name: str, args: tuple = ()):
        if name not in CONSTRAINTS:
            raise SpecError(
                f"unknown constraint {name!r}; known constraints: {', '.join(sorted(CONSTRAINTS))}"
            )
        self.name = name
        self.args = tuple(args)
        self._native: dict = {}

    def __repr__(self) -> str:
        if self.args:
            return f"{self.name}({', '.join(repr(a) for a in self.args)})"
        return self.name

    def __eq__(self, other) -> bool:
        return isinstance(other, Constraint) and (self.name, self.args) == (other.name, other.args)

    def __hash__(self) -> int:
        return hash((self.name, self.args))

    def __call__(self, *args):
        raise SpecError(f"constraint {self.name!r} takes no arguments")

    def check(self, value) -> bool:
        """Whether a numpy-like ``value`` satisfies the constraint (all elements)."""
        import numpy as np

        v = np.asarray(value, dtype=float)
        n = self.name
        if n in ("real", "real_vector"):
            return bool(np.all(np.isfinite(v)))
        if n == "positive":
            return bool(np.all(v > 0))
        if n == "unit_interval":
            return bool(np.all((v >= 0) & (v <= 1)))
        if n == "interval":
            lo, hi = self.args
            return bool(np.all((v >= lo) & (v <= hi)))
        if n == "greater_than":
            return bool(np.all(v > self.args[0]))
        if n == "less_than":
            return bool(np.all(v < self.args[0]))
        if n == "simplex":
            return bool(np.all(v >= 0) and np.allclose(v.sum(-1), 1.0, atol=1e-5))
        if n == "lower_cholesky":
            return bool(
                v.ndim >= 2
                and np.allclose(v, np.tril(v))
                and np.all(np.diagonal(v, axis1=-2, axis2=-1) > 0)
            )
        if n == "positive_definite":
            try:
                np.linalg.cholesky(v)
                return True
            except np.linalg.LinAlgError:
                return False
        return True

    def __reduce__(self):
        # backend objects cached in _native are not part of the value
        return (Constraint.from_dict, (self.to_dict(),))

    def to_dict(self) -> dict:
        """Plain-Python form, for files: ``{"name": ..., "args": [...]}``."""
        return {"name": self.name, "args": [float(a) for a in self.args]}

    @classmethod
    def from_dict(cls, d: dict) -> Constraint:
        """Inverse of :meth:`to_dict`."""
        name = d["name"]
        args = tuple(d.get("args", ()))
        if name in CONSTRAINT_ARGS:
            return _ParamConstraint(name, args)
        return _SINGLETONS[name]


class _ParamConstraint(Constraint):
    __slots__ = ()


#: constraints with arguments by (name, arguments): a program builds interval(0, 1) at every
#: call, the checks below run once per distinct call
_MADE: dict[tuple, Constraint] = {}


def _make(name: str):
    argnames = CONSTRAINT_ARGS[name]

    def factory(*args):
        key = (name, *args)
        try:
            return _MADE[key]
        except (KeyError, TypeError):  # not made yet, or an unhashable argument (refused below)
            pass
        c = _checked(args)
        if len(_MADE) < 1024 and all(type(a) in (float, int) for a in args):
            _MADE[key] = c
        return c

    def _checked(args):
        if len(args) != len(argnames):
            raise SpecError(
                f"constraints.{name} takes {len(argnames)} argument(s) "
                f"({', '.join(argnames)}), got {len(args)}"
            )
        vals = []
        for a, an in zip(args, argnames):
            try:
                vals.append(float(a))
            except (TypeError, ValueError):
                raise SpecError(
                    f"constraints.{name}: {an} must be a plain number, got {a!r}"
                ) from None
        if name == "interval" and not vals[0] < vals[1]:
            raise SpecError(
                f"constraints.interval({vals[0]}, {vals[1]}): lower bound must be below upper bound"
            )
        if any(math.isnan(v) for v in vals):
            raise SpecError(f"constraints.{name}: bounds must not be NaN")
        return _ParamConstraint(name, tuple(vals))

    factory.__name__ = name
    factory.__doc__ = f"Neutral ``{name}({', '.join(argnames)})`` constraint."
    return factory


_SINGLETONS: dict[str, Constraint] = {}
for _name in CONSTRAINTS:
    if _name in CONSTRAINT_ARGS:
        globals()[_name] = _make(_name)
    else:
        _SINGLETONS[_name] = globals()[_name] = Constraint(_name)

# names the type checker can see
real: Constraint = _SINGLETONS["real"]
positive: Constraint = _SINGLETONS["positive"]
unit_interval: Constraint = _SINGLETONS["unit_interval"]
simplex: Constraint = _SINGLETONS["simplex"]
lower_cholesky: Constraint = _SINGLETONS["lower_cholesky"]
real_vector: Constraint = _SINGLETONS["real_vector"]
positive_definite: Constraint = _SINGLETONS["positive_definite"]


def as_constraint(c, where: str = "constraint") -> Constraint:
    """Coerce ``c`` (a neutral constraint or its name) to a :class:`Constraint`."""
    if isinstance(c, Constraint):
        return c
    if isinstance(c, str) and c in _SINGLETONS:
        return _SINGLETONS[c]
    if callable(c) and getattr(c, "__name__", None) in CONSTRAINT_ARGS:
        raise SpecError(
            f"{where}: constraints.{c.__name__} needs arguments, "
            f"e.g. constraints.{c.__name__}(0.0, 1.0)"
        )
    raise SpecError(
        f"{where}: {c!r} is not a dualguide constraint; use one of dualguide.constraints "
        f"({', '.join(sorted(CONSTRAINTS))})"
    )


def __getattr__(name: str):
    """``constraints.postive`` -> an error that suggests ``constraints.positive``."""
    if name.startswith("__") and name.endswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .errors import unknown_name

    raise unknown_name("dualguide.constraints", "constraint", name, CONSTRAINTS)
