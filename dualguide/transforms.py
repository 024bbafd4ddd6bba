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

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import _state, bijections, ops
from . import distributions as dist
from ._inputs import as_numpy, float_np
from ._linalg import logabsdet, logabsdet_entries
from .bijections import Bijection, sum_rightmost
from .contract import Plan, _as_outputs, _describe
from .errors import SpecError
from .primitives import sample

__all__ = [
    "transformed",
    "bijections",
    "Bijection",
    "jacobian",
    "log_abs_det_jacobian",
    "logabsdet",
]

INFER_KEY = "dualguide_transformed"


#: each backend's transforms module, by backend object (looked up at every ``transformed``)
_BACKEND_MODULES: dict[Any, Any] = {}


def _backend_module(b):
    m = _BACKEND_MODULES.get(b)
    if m is None:
        m = _BACKEND_MODULES[b] = _state.feature(b, "transforms")
    return m


# ------------------------------------------------------------------------------------------
# argument checks and shape bookkeeping (pure Python, shared by both backends)
# ------------------------------------------------------------------------------------------
#: names that passed :func:`_check_names` (a program passes the same names at every step)
_CHECKED_NAMES: dict[Any, tuple[str, ...]] = {}


def _check_names(names) -> tuple[str, ...]:
    try:
        return _CHECKED_NAMES[names]
    except (KeyError, TypeError):  # not checked yet, or a list (unhashable)
        pass
    names_t = _checked_names(names)
    if isinstance(names, (str, tuple)) and len(_CHECKED_NAMES) < 1024:
        _CHECKED_NAMES[names] = names_t
    return names_t


def _checked_names(names) -> tuple[str, ...]:
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
    if type(base) is dict:  # the usual base (before the slower abstract Mapping check)
        items = list(base.items())
    elif isinstance(base, Mapping):
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
    b = _state.current()
    names_t = _check_names(names)
    items = _check_base(base, names_t)
    in_names = tuple(n for n, _ in items)
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
        outs, J, plan = _backend_module(b).jacobian(
            fn, us, in_eds, out_eds, in_names, names_t, True, entries=True
        )
        logdet = _logdet(J, plan)
        method = "autodiff"
    else:
        desc = _describe(names_t, in_names)
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


def _logdet(J, plan):
    """log|det J| from a backend's Jacobian: an array, or (Pyro, maps of scalars) its entries."""
    return logabsdet_entries(J) if isinstance(J, list) else logabsdet(J, plan.d_in)


def _apply_bijection(bij, us, in_eds, names_t, in_names, event_dims, b):
    desc = _describe(names_t, in_names)
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
        ld = sum_rightmost(bij.log_abs_det_jacobian(u, y), e_in - bij.event_dim)
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
    v = ops.stack(ops.broadcast_arrays(*us), axis=-1)
    y = bij(v)
    ld = sum_rightmost(bij.log_abs_det_jacobian(v, y), 1 - bij.event_dim)
    return [y[..., j] for j in range(len(us))], ld, eds


# ------------------------------------------------------------------------------------------
# introspection
# ------------------------------------------------------------------------------------------
def _prepare(fn, base_values, base_event_dims, backend, what: str):
    """The backend, base names, base values as numpy arrays of the current float dtype and
    base event dims of an introspection call, or a SpecError naming what is wrong."""
    if not callable(fn):
        raise SpecError(f"{what}: fn must be a function or a dg.bijections object, got {fn!r}")
    b = _state.resolve(backend)
    if isinstance(base_values, Mapping):
        in_names = tuple(base_values)
        vals = list(base_values.values())
    else:
        vals = list(base_values) if isinstance(base_values, (list, tuple)) else [base_values]
        in_names = tuple(f"input{i}" for i in range(len(vals)))
    if not vals:
        raise SpecError(f"{what}: base_values is empty; give one array per input of fn")
    in_eds = _check_event_dims(base_event_dims, in_names)
    arrays = [
        as_numpy(v, f"{what}: base value {n!r}").astype(float_np()) for n, v in zip(in_names, vals)
    ]
    Plan(in_names, ("output",), [a.shape for a in arrays], in_eds)  # shapes fit, or SpecError
    return b, in_names, arrays, in_eds


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
    b, in_names, vals, in_eds = _prepare(fn, base_values, base_event_dims, backend, "jacobian")
    with _state.use_backend(b.name):
        us = [b.ops.asarray(v) for v in vals]
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
    what = "log_abs_det_jacobian"
    b, in_names, vals, in_eds = _prepare(fn, base_values, base_event_dims, backend, what)
    with _state.use_backend(b.name):
        us = [b.ops.asarray(v) for v in vals]
        if isinstance(fn, Bijection):
            probe = (None,) * (len(us) if len(us) > 1 else 1)
            out_names = tuple(f"output{j}" for j in range(len(probe)))
            _, ld, _ = _apply_bijection(fn, us, in_eds, out_names, in_names, event_dims, b)
            return b.to_numpy(ld)
        probe = _as_outputs(fn(*us), "log_abs_det_jacobian", 1)
        out_names = tuple(f"output{j}" for j in range(len(probe)))
        eds = _check_event_dims(event_dims, out_names)
        mod = _backend_module(b)
        _, J, plan = mod.jacobian(fn, us, in_eds, eds, in_names, out_names, True, entries=True)
        return b.to_numpy(_logdet(J, plan))
