"""Transformed latents: base latents, a map, and the model's latents as Delta sites with log|det J|.

The one call
------------
::

    outputs = dg.transformed(names, base, fn, event_dims=None)

* ``names`` -- the model latents the map produces: one name (``"x"``; the call
  then returns one array) or a sequence (``("x", "y")``; a tuple comes back).
* ``base`` -- ``{site name: distribution}`` in the order ``fn`` takes them.  Each
  is sampled as an auxiliary guide site (``infer={"is_auxiliary": True}``), with
  any event shape, inside any plates.
* ``fn`` -- ``fn(*base_values) -> output`` or a tuple of outputs, written with
  :mod:`dualguide.ops` (so it runs on jax and torch arrays); or a named
  bijection from :data:`bijections`, whose closed-form log|det| is then used.
* ``event_dims`` -- the event dims of each output (an int for all, or one per
  name); default 0 (with a bijection: the base's event dims).

Each output is recorded as ``sample(name, Delta(value, log_density=..., event_dim=...))``.
The guide's total log density is ``sum log q(u) - log|det d(outputs)/d(inputs)|``:
the whole ``-log|det J|`` is carried by the **first** output's Delta site (its
``log_density``), the other outputs' Delta sites carry 0.  ``J`` is the square
matrix of derivatives of all output numbers with respect to all base numbers of
one batch element (inputs and outputs flattened over their event dims and
concatenated in order).  Dims left of the event dims are batch dims (plates,
vectorized particles, batch shapes of the base distributions): ``fn`` must act
on each batch element separately, as every vectorized program must.  The
Jacobian comes from each backend's autodiff (``jax.linearize`` + ``vmap`` on
NumPyro, ``torch.autograd.grad`` with ``create_graph`` on Pyro), vectorized over
all batch dims, so it is differentiable and works under ``jit`` /
``JitTrace_ELBO``.  A map whose output and input sizes differ raises a
:class:`~dualguide.errors.SpecError` naming the sites and both sizes.

Why the Jacobian matters
------------------------
The guide must be a density over the model's latents (x, y), not over the base
latents u.  If (x, y) = f(u), then log q(x, y) = log q(u) - log|det df/du|.
Recording x and y as Delta sites without that term makes every ELBO estimate
off by the expected log|det|; for the rotated mixture (x, y from u by a map of
determinant 1 / sin 2 theta) the ELBO at the optimum is 2.4103 instead of
log Z = 2.4806, off by log|sin 1.2|.  The fitted parameters hardly move (the
fit is dominated by the sharp dependence on theta), so only the ELBO value --
model comparison, evidence, convergence checks -- exposes the missing term.

Example (the rotated mixture, ten lines)::

    import dualguide as dg
    from dualguide import constraints, ops, distributions as dist

    def guide():
        b = dg.param("b", 0.5, constraint=constraints.positive)
        t = dg.param("theta", 0.3, constraint=constraints.interval(0.0, ops.pi / 2))
        mix = dist.MixtureSameFamily(dist.Categorical(probs=ops.asarray([0.5, 0.5])),
                                     dist.Normal(ops.stack([-b, b]), 0.5 ** 0.5))
        dg.transformed(("x", "y"), {"u1": mix, "u2": dist.Cauchy(0.0, 1.0)},
                       lambda u1, u2: ((u1 + u2) / (2 * ops.cos(t)),
                                       (u2 - u1) / (2 * ops.sin(t))))

Introspection (for checkers)
----------------------------
Each output's Delta site carries ``infer["dualguide_transformed"]``, a dict with
``inputs`` (base site names), ``outputs`` (output names), ``base_event_dims``,
``event_dims``, ``logdet_site`` (the output whose Delta carries ``-log|det|``),
``method`` (``"autodiff"`` or the bijection's repr) and ``fn`` (the map; it
closes over the values of that run).  :func:`jacobian` and
:func:`log_abs_det_jacobian` evaluate the map's Jacobian at given base values
(numpy in, numpy out), e.g. to test invertibility::

    info = sites["x"].infer["dualguide_transformed"]
    J = dg.transforms.jacobian(info["fn"], [sites[n].value for n in info["inputs"]],
                               base_event_dims=info["base_event_dims"],
                               event_dims=info["event_dims"], backend="numpyro")
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import _state, ops
from .contract import Plan, _as_outputs, _describe  # noqa: F401  (Plan: re-exported)
from .errors import SpecError

__all__ = [
    "transformed",
    "bijections",
    "Bijection",
    "jacobian",
    "log_abs_det_jacobian",
]

INFER_KEY = "dualguide_transformed"


def _backend_module(b):
    return _state.feature(b, "transforms")


# ------------------------------------------------------------------------------------------
# argument checks and shape bookkeeping (pure Python, shared by both backends)
# ------------------------------------------------------------------------------------------
def _check_names(names) -> tuple[str, ...]:
    if isinstance(names, str):
        names_t: tuple = (names,)
    else:
        try:
            names_t = tuple(names)
        except TypeError:
            raise SpecError(
                f"transformed: names must be a site name or a sequence of names, got {names!r}"
            ) from None
    if not names_t or not all(isinstance(n, str) and n for n in names_t):
        raise SpecError(f"transformed: names must be non-empty strings, got {names!r}")
    if len(set(names_t)) != len(names_t):
        raise SpecError(f"transformed: names {names_t} repeat a name; each output needs its own")
    return names_t


def _check_base(base, names_t) -> list[tuple[str, Any]]:
    if isinstance(base, Mapping):
        items = list(base.items())
    else:
        try:
            items = [tuple(it) for it in base]
        except TypeError:
            items = None
        if items is None or not all(len(it) == 2 for it in items):
            raise SpecError(
                f"transformed ({', '.join(names_t)}): base must be a dict "
                "{site name: distribution}, e.g. {'u': dist.Normal(0.0, 1.0)}"
            )
    if not items:
        raise SpecError(
            f"transformed ({', '.join(names_t)}): base is empty; give at least one base site"
        )
    for bname, _ in items:
        if not isinstance(bname, str) or not bname:
            raise SpecError(
                f"transformed ({', '.join(names_t)}): base site name {bname!r} is not a string"
            )
        if bname in names_t:
            raise SpecError(
                f"transformed: {bname!r} is both a base site and an output; give the base latent "
                "its own name (e.g. 'u_' + name)"
            )
    return items


def _check_event_dims(event_dims, names_t, default=0) -> list[int]:
    if event_dims is None:
        return [default] * len(names_t)
    if isinstance(event_dims, (int, np.integer)) and not isinstance(event_dims, bool):
        eds = [int(event_dims)] * len(names_t)
    else:
        try:
            eds = [int(e) for e in event_dims]
        except (TypeError, ValueError):
            raise SpecError(
                f"transformed ({', '.join(names_t)}): event_dims must be an int or one int per "
                f"output, got {event_dims!r}"
            ) from None
        if len(eds) != len(names_t):
            raise SpecError(
                f"transformed ({', '.join(names_t)}): event_dims has {len(eds)} entries for "
                f"{len(names_t)} outputs"
            )
    if any(e < 0 for e in eds):
        raise SpecError(f"transformed ({', '.join(names_t)}): event_dims must be >= 0, got {eds}")
    return eds


# ------------------------------------------------------------------------------------------
# the primitive
# ------------------------------------------------------------------------------------------
def transformed(
    names: str | Sequence[str],
    base: Mapping[str, Any],
    fn: Callable | Bijection,
    event_dims: int | Sequence[int] | None = None,
):
    """Sample ``base`` latents, map them with ``fn``, record the outputs as Delta sites ``names``.

    The guide's log density becomes ``log q(u) - log|det d(outputs)/d(u)|``, with
    the log-det from the backend's autodiff (or a bijection's closed form), so
    the recorded latents carry their true density.  The first output's Delta
    carries ``-log|det|``, the others 0.  Returns the output (one name) or a
    tuple of outputs.  See the module docstring for the full rules.

    Why the Jacobian matters: the guide must be a density over the model's
    latents, and ``log q(x, y) = log q(u) - log|det df/du|``.  Delta sites
    written by hand without the term make the ELBO wrong by E[log|det|]; for the
    rotated mixture below (det = 1 / sin 2 theta) the ELBO at the optimum is
    2.4102 instead of log Z = 2.4806.  The fitted params barely move (theta is
    pinned by a very sharp objective), so only the ELBO value exposes it.

    The construction in ten lines (``examples/rotated_mixture.py``):

    >>> import math
    >>> import dualguide as dg
    >>> from dualguide import constraints, ops, distributions as dist
    >>> def guide():
    ...     b = dg.param("b", 0.5, constraint=constraints.positive)
    ...     t = dg.param("theta", 0.3, constraint=constraints.interval(0.0, math.pi / 2))
    ...     u1 = dist.MixtureSameFamily(dist.Categorical(probs=ops.asarray([0.5, 0.5])),
    ...                                 dist.Normal(ops.stack([-b, b]), 1 / math.sqrt(2)))
    ...     return dg.transformed(
    ...         ("x", "y"), {"u1": u1, "u2": dist.Cauchy(0.0, 1.0)},
    ...         lambda u1, u2: ((u1 + u2) / (2 * ops.cos(t)), (u2 - u1) / (2 * ops.sin(t))))
    >>> sites = dg.trace(guide, backend="numpyro")
    >>> sites["x"].dist, sites["u1"].infer["is_auxiliary"]
    ('Delta', True)
    >>> round(float(sites["x"].log_prob), 4) == round(math.log(math.sin(0.6)), 4)
    True
    """
    from . import distributions as dist
    from .primitives import sample

    b = _state.current()
    names_t = _check_names(names)
    items = _check_base(base, names_t)
    in_names = tuple(n for n, _ in items)
    desc = _describe(names_t, in_names)
    us, in_eds = [], []
    for bname, d in items:
        u = sample(bname, d, infer={"is_auxiliary": True})
        us.append(u)
        in_eds.append(len(getattr(d, "event_shape", ())))
    if isinstance(fn, Bijection):
        outs, logdet, out_eds = _apply_bijection(fn, us, in_eds, names_t, in_names, event_dims, b)
        method = repr(fn)
    elif callable(fn):
        out_eds = _check_event_dims(event_dims, names_t)
        outs, J, _plan = _backend_module(b).jacobian(
            fn, us, in_eds, out_eds, in_names, names_t, True
        )
        logdet = _backend_module(b).logabsdet(J)
        method = "autodiff"
    else:
        raise SpecError(f"{desc}: fn must be a function or a dg.bijections object, got {fn!r}")
    info = {
        "inputs": list(in_names),
        "outputs": list(names_t),
        "base_event_dims": list(in_eds),
        "event_dims": list(out_eds),
        "logdet_site": names_t[0],
        "method": method,
        "fn": fn,
    }
    values = []
    for j, (name, out, ed) in enumerate(zip(names_t, outs, out_eds)):
        ld = -logdet if j == 0 else ops.zeros_like(logdet)
        v = sample(name, dist.Delta(out, log_density=ld, event_dim=ed), infer={INFER_KEY: info})
        values.append(v)
    return values[0] if isinstance(names, str) else tuple(values)


def _apply_bijection(bij, us, in_eds, names_t, in_names, event_dims, b):
    desc = _describe(names_t, in_names)
    mod = _backend_module(b)
    if len(us) == 1:
        (u,), (e_in,) = us, in_eds
        if e_in < bij.event_dim:
            raise SpecError(
                f"{desc}: {bij!r} acts on event_dim {bij.event_dim} but base {in_names[0]!r} has "
                f"event_dim {e_in}; declare the base's event dims (e.g. .to_event(1))"
            )
        if len(names_t) != 1:
            raise SpecError(f"{desc}: a bijection of one base latent has one output; give one name")
        eds = _check_event_dims(event_dims, names_t, default=e_in)
        if eds[0] != e_in:
            raise SpecError(
                f"{desc}: a bijection keeps the shape of its input, so the output's event_dims "
                f"is {e_in} (got {eds[0]})"
            )
        y = bij(u)
        ld = _sum_right(bij.log_abs_det_jacobian(u, y), e_in - bij.event_dim)
        return [y], ld, eds
    if any(e != 0 for e in in_eds) or bij.event_dim > 1:
        raise SpecError(
            f"{desc}: with several base latents a bijection acts on them stacked as a vector, so "
            f"each must be a scalar (event_dims {in_eds}) and the bijection act on vectors"
        )
    if len(names_t) != len(us):
        raise SpecError(
            f"{desc}: a bijection of {len(us)} stacked scalars gives {len(us)} outputs, "
            f"but {len(names_t)} names were given"
        )
    eds = _check_event_dims(event_dims, names_t)
    if any(e != 0 for e in eds):
        raise SpecError(
            f"{desc}: outputs of a bijection of stacked scalars are scalars (event_dims 0)"
        )
    v = ops.stack(mod.broadcast(*us), axis=-1)
    y = bij(v)
    ld = _sum_right(bij.log_abs_det_jacobian(v, y), 1 - bij.event_dim)
    return [y[..., j] for j in range(len(us))], ld, eds


def _sum_right(x, n: int):
    for _ in range(n):
        x = ops.sum(x, axis=-1)
    return x


# ------------------------------------------------------------------------------------------
# introspection
# ------------------------------------------------------------------------------------------
def _prepare(fn, base_values, base_event_dims, event_dims, backend):
    b = _state.resolve(backend)
    if isinstance(base_values, Mapping):
        in_names = tuple(base_values)
        vals = list(base_values.values())
    else:
        vals = list(base_values) if isinstance(base_values, (list, tuple)) else [base_values]
        in_names = tuple(f"input{i}" for i in range(len(vals)))
    in_eds = _check_event_dims(base_event_dims, in_names)
    return b, in_names, vals, in_eds


def jacobian(
    fn: Callable,
    base_values: Sequence[Any] | Mapping[str, Any],
    *,
    base_event_dims: int | Sequence[int] | None = None,
    event_dims: int | Sequence[int] | None = None,
    backend: str | None = None,
) -> np.ndarray:
    """Jacobian of ``fn`` at ``base_values``: shape ``batch + (outputs size, inputs size)``.

    Inputs and outputs are flattened over their event dims (``base_event_dims``,
    ``event_dims``; default 0) and concatenated in order; dims to the left are
    batch dims.  The map need not be square here (a checker can see both sizes).
    Values may be numpy arrays; the result is a numpy array.

    >>> import numpy as np
    >>> J = jacobian(lambda a, b: (a + b, a - b), [np.zeros(3), np.zeros(3)],
    ...              backend="numpyro")
    >>> J.shape, J[0].tolist()
    ((3, 2, 2), [[1.0, 1.0], [1.0, -1.0]])
    """
    b, in_names, vals, in_eds = _prepare(fn, base_values, base_event_dims, event_dims, backend)
    with _state.use_backend(b.name):
        us = [b.ops.asarray(np.asarray(v, dtype=np.float32)) for v in vals]
        probe = _as_outputs(fn(*us), "jacobian", 1)
        out_names = tuple(f"output{j}" for j in range(len(probe)))
        eds = _check_event_dims(event_dims, out_names)
        _, J, _plan = _backend_module(b).jacobian(fn, us, in_eds, eds, in_names, out_names, False)
    return b.to_numpy(J)


def log_abs_det_jacobian(
    fn: Callable,
    base_values: Sequence[Any] | Mapping[str, Any],
    *,
    base_event_dims: int | Sequence[int] | None = None,
    event_dims: int | Sequence[int] | None = None,
    backend: str | None = None,
) -> np.ndarray:
    """log|det J| of a square map ``fn`` at ``base_values``, one number per batch element.

    A :class:`Bijection` gives its closed form; any other callable its autodiff value.

    >>> import numpy as np
    >>> log_abs_det_jacobian(lambda u: 3.0 * u, [np.ones(2)], backend="pyro")
    array([1.0986123, 1.0986123], dtype=float32)
    """
    b, in_names, vals, in_eds = _prepare(fn, base_values, base_event_dims, event_dims, backend)
    with _state.use_backend(b.name):
        us = [b.ops.asarray(np.asarray(v, dtype=np.float32)) for v in vals]
        if isinstance(fn, Bijection):
            probe = (None,) * (len(us) if len(us) > 1 else 1)
            out_names = tuple(f"output{j}" for j in range(len(probe)))
            _, ld, _ = _apply_bijection(fn, us, in_eds, out_names, in_names, event_dims, b)
            return b.to_numpy(ld)
        probe = _as_outputs(fn(*us), "log_abs_det_jacobian", 1)
        out_names = tuple(f"output{j}" for j in range(len(probe)))
        eds = _check_event_dims(event_dims, out_names)
        mod = _backend_module(b)
        _, J, _plan = mod.jacobian(fn, us, in_eds, eds, in_names, out_names, True)
        return b.to_numpy(mod.logabsdet(J))


# ------------------------------------------------------------------------------------------
# named bijections with closed-form log|det|
# ------------------------------------------------------------------------------------------
class Bijection:
    """An invertible map with a closed-form log|det J|, written with neutral ops.

    ``event_dim`` is the number of rightmost dims it acts on jointly (0:
    elementwise; 1: vectors).  ``log_abs_det_jacobian(x, y)`` returns one number
    per element of ``x.shape[:-event_dim]``.
    """

    event_dim = 0

    def __call__(self, x):
        raise NotImplementedError

    def inverse(self, y):
        raise NotImplementedError

    def log_abs_det_jacobian(self, x, y):
        raise NotImplementedError


def _num(x):
    return ops.asarray(x) if isinstance(x, (int, float, list, tuple, np.ndarray)) else x


class _Affine(Bijection):
    def __init__(self, loc, scale):
        self.loc, self.scale = loc, scale

    def __call__(self, x):
        return self.loc + self.scale * x

    def inverse(self, y):
        return (y - self.loc) / self.scale

    def log_abs_det_jacobian(self, x, y):
        return ops.log(ops.abs(_num(self.scale))) + ops.zeros_like(x)

    def __repr__(self):
        return "bijections.affine(loc, scale)"


class _Linear(Bijection):
    event_dim = 1

    def __init__(self, matrix):
        self.matrix = matrix

    def __call__(self, x):
        return ops.einsum("...ij,...j->...i", _num(self.matrix), x)

    def inverse(self, y):
        return ops.einsum("...ij,...j->...i", ops.inv(_num(self.matrix)), y)

    def log_abs_det_jacobian(self, x, y):
        _, ld = ops.slogdet(_num(self.matrix))
        return ld + ops.zeros_like(x[..., 0])

    def __repr__(self):
        return "bijections.linear(matrix)"


class _Rotation(Bijection):
    event_dim = 1

    def __init__(self, angle):
        self.angle = angle

    def _cs(self):
        a = _num(self.angle)
        return ops.cos(a), ops.sin(a)

    def __call__(self, x):
        c, s = self._cs()
        return ops.stack([c * x[..., 0] - s * x[..., 1], s * x[..., 0] + c * x[..., 1]], axis=-1)

    def inverse(self, y):
        c, s = self._cs()
        return ops.stack([c * y[..., 0] + s * y[..., 1], -s * y[..., 0] + c * y[..., 1]], axis=-1)

    def log_abs_det_jacobian(self, x, y):
        return ops.zeros_like(x[..., 0])

    def __repr__(self):
        return "bijections.rotation(angle)"


class _Exp(Bijection):
    def __call__(self, x):
        return ops.exp(x)

    def inverse(self, y):
        return ops.log(y)

    def log_abs_det_jacobian(self, x, y):
        return x + ops.zeros_like(y)

    def __repr__(self):
        return "bijections.exp()"


class _Log(Bijection):
    def __call__(self, x):
        return ops.log(x)

    def inverse(self, y):
        return ops.exp(y)

    def log_abs_det_jacobian(self, x, y):
        return -y

    def __repr__(self):
        return "bijections.log()"


class _Sigmoid(Bijection):
    def __call__(self, x):
        return ops.sigmoid(x)

    def inverse(self, y):
        return ops.log(y) - ops.log1p(-y)

    def log_abs_det_jacobian(self, x, y):
        return -ops.softplus(-x) - ops.softplus(x)

    def __repr__(self):
        return "bijections.sigmoid()"


class _Compose(Bijection):
    def __init__(self, parts):
        if not parts or not all(isinstance(p, Bijection) for p in parts):
            raise SpecError(f"bijections.compose: expected bijections, got {parts!r}")
        self.parts = tuple(parts)
        self.event_dim = max(p.event_dim for p in self.parts)

    def __call__(self, x):
        for p in self.parts:
            x = p(x)
        return x

    def inverse(self, y):
        for p in reversed(self.parts):
            y = p.inverse(y)
        return y

    def log_abs_det_jacobian(self, x, y):
        total = None
        for p in self.parts:
            y = p(x)
            ld = _sum_right(p.log_abs_det_jacobian(x, y), self.event_dim - p.event_dim)
            total = ld if total is None else total + ld
            x = y
        return total

    def __repr__(self):
        return f"bijections.compose({', '.join(map(repr, self.parts))})"


class _Bijections:
    """Named bijections with closed-form log|det J| (use as ``fn`` of :func:`transformed`).

    >>> from dualguide.transforms import bijections
    >>> f = bijections.compose(bijections.affine(1.0, 2.0), bijections.exp())
    >>> f.event_dim
    0
    """

    Bijection = Bijection

    @staticmethod
    def affine(loc, scale) -> Bijection:
        """``y = loc + scale * x`` elementwise; log|det| = log|scale| per element."""
        return _Affine(loc, scale)

    @staticmethod
    def linear(matrix) -> Bijection:
        """``y = matrix @ x`` on vectors (event_dim 1); log|det| = log|det matrix|."""
        return _Linear(matrix)

    @staticmethod
    def rotation(angle) -> Bijection:
        """2-D rotation by ``angle`` on vectors of length 2 (event_dim 1); log|det| = 0."""
        return _Rotation(angle)

    @staticmethod
    def exp() -> Bijection:
        """``y = exp(x)``; log|det| = x per element."""
        return _Exp()

    @staticmethod
    def log() -> Bijection:
        """``y = log(x)`` for positive x; log|det| = -log x per element."""
        return _Log()

    @staticmethod
    def sigmoid() -> Bijection:
        """``y = 1 / (1 + exp(-x))``; log|det| = log y + log(1 - y) per element."""
        return _Sigmoid()

    @staticmethod
    def compose(*parts: Bijection) -> Bijection:
        """Apply ``parts`` in order (first one first); log-dets add up."""
        return _Compose(parts)

    def __repr__(self) -> str:
        return "dualguide.bijections"


#: the named bijections: affine, linear, rotation, exp, log, sigmoid, compose
bijections = _Bijections()


# ------------------------------------------------------------------------------------------
# a many-particle ELBO estimate (private: the examples and tests use it; the general
# estimator lives in dualguide.crosscheck)
# ------------------------------------------------------------------------------------------
def _elbo_estimate(
    model: Callable,
    guide: Callable,
    params: Mapping[str, Any],
    *,
    backend: str | None = None,
    num_particles: int = 100_000,
    seed: int = 0,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
) -> tuple[float, float]:
    """(mean, standard error) of ``log p - log q`` over ``num_particles`` guide draws at ``params``."""
    from .render import render

    b = _state.resolve(backend)
    m, g = render(model, b), render(guide, b)
    args = tuple(b.to_array(a) for a in model_args)
    kwargs = {k: b.to_array(v) for k, v in (model_kwargs or {}).items()}
    with _state.param_overrides(dict(params)):
        s = _backend_module(b).elbo_samples(m, g, args, kwargs, int(num_particles), int(seed))
    return float(np.mean(s)), float(np.std(s) / math.sqrt(s.size))
