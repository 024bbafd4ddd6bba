"""Transformed latents on torch: outputs and their Jacobian by reverse-mode autodiff.

``J`` is built row by row: row ``r`` is the gradient of output number ``r``
summed over the batch, with respect to every base number, taken with
``create_graph=True`` so that log|det J| stays differentiable in the params.
Summing over the batch gives every batch element its own row at once because
the map acts on each batch element separately.  Plain autograd ops only, so the
guide still traces under ``torch.jit.trace`` (Pyro's ``JitTrace_ELBO``).

Under a trace, torch's gradients of ops that save their *output* (``exp``, ``tanh``,
``sigmoid``, ``sqrt``, ``softmax``, ``1 / x``, ...) cannot be recorded: autograd hands the
backward a fresh copy of that output, which the tracer does not know, and the trace fails
("Cannot insert a Tensor that requires grad as a constant").  So while tracing, ``fn`` runs
under :class:`_InputSaved`, which computes those ops through small autograd functions that
save their *input* and recompute the derivative from it: the same values and derivatives,
recorded as plain ops.  An op still not traceable raises :class:`JitUnsafe` naming the op
and the site, and the fit warns and runs ``Trace_ELBO`` (``dualguide.fit``).
"""

from __future__ import annotations

import math
import warnings

import torch
from torch.overrides import TorchFunctionMode

from ...contract import Plan, _as_outputs
from ...errors import DualGuideError


class JitUnsafe(DualGuideError):
    """The map's Jacobian cannot be recorded by ``torch.jit.trace`` (names the op and site)."""


class _Elementwise(torch.autograd.Function):
    """``fwd(x)`` whose backward is ``g * deriv(x)``: saves the input, not the output."""

    @staticmethod
    def forward(ctx, x, fwd, deriv):
        ctx.deriv = deriv
        ctx.save_for_backward(x)
        return fwd(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ctx.deriv(x), None, None


class _Softmax(torch.autograd.Function):
    """softmax (kind 0), log_softmax (1) or logsumexp with keepdim (2) along ``dim``."""

    @staticmethod
    def forward(ctx, x, dim, kind):
        ctx.dim, ctx.kind = dim, kind
        ctx.save_for_backward(x)
        if kind == 0:
            return torch.softmax(x, dim)
        if kind == 1:
            return torch.log_softmax(x, dim)
        return torch.logsumexp(x, dim, keepdim=True)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        s = torch.softmax(x, ctx.dim)
        if ctx.kind == 0:
            return s * (g - (g * s).sum(ctx.dim, keepdim=True)), None, None
        if ctx.kind == 1:
            return g - s * g.sum(ctx.dim, keepdim=True), None, None
        return g * s, None, None


class _Pow(torch.autograd.Function):
    """``x ** y`` for two tensors, saving the inputs."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return torch.pow(x, y)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        gx = g * y * torch.pow(x, y - 1)
        gy = g * torch.pow(x, y) * torch.log(x)
        return _unbroadcast(gx, x.shape), _unbroadcast(gy, y.shape)


def _unbroadcast(g, shape):
    while g.dim() > len(shape):
        g = g.sum(0)
    for i, n in enumerate(shape):
        if n == 1 and g.shape[i] != 1:
            g = g.sum(i, keepdim=True)
    return g


def _sig_d(x):
    s = torch.sigmoid(x)
    return s * (1 - s)


#: torch functions whose gradient saves the output -> (forward, derivative from the input)
_ELEMENTWISE = {
    "exp": (torch.exp, torch.exp),
    "expm1": (torch.expm1, torch.exp),
    "sqrt": (torch.sqrt, lambda x: 0.5 / torch.sqrt(x)),
    "rsqrt": (torch.rsqrt, lambda x: -0.5 / (x * torch.sqrt(x))),
    "tan": (torch.tan, lambda x: 1 + torch.tan(x) ** 2),
    "tanh": (torch.tanh, lambda x: 1 - torch.tanh(x) ** 2),
    "sigmoid": (torch.sigmoid, _sig_d),
    "expit": (torch.sigmoid, _sig_d),
    "special_expit": (torch.sigmoid, _sig_d),
    "reciprocal": (torch.reciprocal, lambda x: -1 / (x * x)),
    "exp2": (torch.exp2, lambda x: torch.exp2(x) * math.log(2.0)),
}
_SOFTMAX = {"softmax": 0, "log_softmax": 1, "special_softmax": 0, "special_log_softmax": 1}
#: ops whose torch gradient saves the output and that have no replacement here
_UNSUPPORTED = {
    "CumprodBackward0": "cumprod",
    "ProdBackward0": "prod",
    "ProdBackward1": "prod",
    "LinalgVectorNormBackward0": "norm",
    "NormBackward1": "norm",
    "LinalgDetBackward0": "det",
    "LinalgSlogdetBackward0": "slogdet",
    "LinalgInvExBackward0": "inv",
    "LinalgCholeskyExBackward0": "cholesky",
    "LinalgSolveExBackward0": "solve",
    "LinalgSolveTriangularBackward0": "solve_triangular",
    "PowBackward1": "power",
    "PowBackward2": "power",
}


def _dim_arg(args, kwargs, pos):
    d = kwargs.get("dim", args[pos] if len(args) > pos else None)
    return d if isinstance(d, int) else None


class _InputSaved(TorchFunctionMode):
    """While tracing: route output-saving ops through input-saving autograd functions."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        x = args[0] if args else None
        if isinstance(x, torch.Tensor) and x.requires_grad and x.is_floating_point():
            if name in _ELEMENTWISE and len(args) == 1 and not kwargs:
                fwd, deriv = _ELEMENTWISE[name]
                return _Elementwise.apply(x, fwd, deriv)
            if name in _SOFTMAX and not kwargs.get("dtype") and len(args) <= 2:
                d = _dim_arg(args, kwargs, 1)
                if d is not None:
                    return _Softmax.apply(x, d, _SOFTMAX[name])
            if name == "logsumexp" and len(args) <= 3:
                d = _dim_arg(args, kwargs, 1)
                keep = kwargs.get("keepdim", args[2] if len(args) > 2 else False)
                if d is not None:
                    out = _Softmax.apply(x, d, 2)
                    return out if keep else out.squeeze(d)
            if (
                name in ("__rtruediv__", "__rdiv__")
                and len(args) == 2
                and not isinstance(args[1], torch.Tensor)
            ):
                return args[1] * _Elementwise.apply(x, *_ELEMENTWISE["reciprocal"])
        if name in ("pow", "__pow__", "__rpow__") and len(args) == 2 and not kwargs:
            a, b = (args[1], args[0]) if name == "__rpow__" else args
            if isinstance(b, torch.Tensor) and b.requires_grad:
                a = a if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=b.dtype)
                return _Pow.apply(a, b)
        return func(*args, **kwargs)


def _unsafe_ops(outs) -> list[str]:
    """Names of the ops under ``outs`` whose torch gradient cannot be traced."""
    found, seen, stack = [], set(), [o.grad_fn for o in outs if o.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        op = _UNSUPPORTED.get(type(node).__name__)
        if op and op not in found:
            found.append(op)
        stack.extend(nxt for nxt, _ in node.next_functions)
    return found


def _shape(t) -> tuple:
    """``t``'s shape as Python ints.  Under ``torch.jit.trace`` sizes come back as 0-dim tensors,
    and the plan's arithmetic on them would read them as Python values (which the fit's trace
    check refuses); the trace is specific to these shapes anyway, as Pyro's JIT traces per
    argument shapes."""
    if not torch.jit.is_tracing():
        return tuple(t.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return tuple(int(d) for d in t.shape)


def _unsafe_error(plan, outs) -> JitUnsafe:
    bad = _unsafe_ops(outs) or ["an op"]
    return JitUnsafe(
        f"{plan.desc}: the map uses {', '.join(bad)}, whose torch gradient Pyro's "
        "JitTrace_ELBO cannot record (it saves its output); write the map without "
        "it or use a dg.bijections object"
    )


def _grad(o, xs, ones, tracing, plan, outs):
    """d(sum of o)/d(xs) with ``create_graph``.  Eagerly it is seeded with ``ones`` (no ``sum``
    op, no ``SumBackward`` in the double backward); under ``torch.jit.trace`` autograd cannot
    compare a seed's traced shape with the output's, so there it differentiates ``o.sum()``."""
    try:
        if tracing:
            return torch.autograd.grad(o.sum(), xs, create_graph=True, allow_unused=True)
        return torch.autograd.grad(
            (o,), xs, grad_outputs=(ones,), create_graph=True, allow_unused=True
        )
    except RuntimeError as e:
        if not tracing or "as a constant" not in str(e):
            raise
        raise _unsafe_error(plan, outs) from None


#: plans by (input names, output names, input shapes, input event dims): Pyro runs the guide
#: eagerly at every step, so the same plan (and its shape checks) serves every step
_PLANS: dict[tuple, Plan] = {}
_MAX_PLANS = 256


def _plan(in_names, out_names, in_shapes, in_eds) -> Plan:
    key = (tuple(in_names), tuple(out_names), tuple(in_shapes), tuple(in_eds))
    plan = _PLANS.get(key)
    if plan is None:
        plan = Plan(in_names, out_names, in_shapes, in_eds)
        if len(_PLANS) < _MAX_PLANS:
            _PLANS[key] = plan
    return plan


def jacobian(fn, us, in_eds, out_eds, in_names, out_names, square, entries=False):
    """``(outputs, J, plan)``: outputs broadcast to ``batch + event``; J ``batch + (D_out, D_in)``.

    ``entries=True`` (what ``dg.transformed`` asks for): when every input and output is a
    scalar per batch element (the usual small maps), J comes back as its entries instead, a
    list of rows of arrays of the batch shape (``J[r][k] = d out_r / d in_k``), so that the
    log-det is formed from them without stacking and indexing a matrix (fewer ops in the
    step and in its backward).  Otherwise J is an array either way.
    """
    us = [
        u if isinstance(u, torch.Tensor) else torch.as_tensor(u, dtype=torch.get_default_dtype())
        for u in us
    ]
    tracing = torch.jit.is_tracing()
    in_shapes = [_shape(u) for u in us] if tracing else [tuple(u.shape) for u in us]
    plan = _plan(in_names, out_names, in_shapes, in_eds)
    if torch.is_grad_enabled():  # (the usual call: no grad-mode switch to enter)
        return _jacobian(fn, us, out_eds, square, entries, plan, in_shapes, tracing)
    with torch.enable_grad():
        outs, J, plan = _jacobian(fn, us, out_eds, square, entries, plan, in_shapes, tracing)
    outs = [o.detach() for o in outs]
    J = [[e.detach() for e in r] for r in J] if isinstance(J, list) else J.detach()
    return outs, J, plan


def _jacobian(fn, us, out_eds, square, entries, plan, in_shapes, tracing):
    """:func:`jacobian` with gradients enabled."""
    xs = []
    for i, u in enumerate(us):
        full = plan.in_full_shape(i)
        if in_shapes[i] != full:  # (an expand is one more op, and one more in the backward)
            u = u.expand(full)
        xs.append(u if u.requires_grad else u.detach().requires_grad_())
    if tracing:
        with _InputSaved():
            outs = _as_outputs(fn(*xs), plan.desc, len(plan.out_names))
    else:
        outs = _as_outputs(fn(*xs), plan.desc, len(plan.out_names))
    outs = [
        o if isinstance(o, torch.Tensor) else torch.as_tensor(o, dtype=torch.get_default_dtype())
        for o in outs
    ]
    out_shapes = [_shape(o) for o in outs] if tracing else [tuple(o.shape) for o in outs]
    plan.outputs_checked(out_shapes, out_eds, square)
    outs = [
        o if out_shapes[j] == plan.out_full_shape(j) else o.expand(plan.out_full_shape(j))
        for j, o in enumerate(outs)
    ]
    B = plan.batch_shape
    # scalar events (the usual 2-D maps): each output is its own row and each input its
    # own column, with no flattening (fewer ops in the traced step)
    scalars = plan.scalars
    if scalars:
        flat_rows = outs
    else:
        flat = torch.cat([o.reshape(B + (-1,)) for o in outs], dim=-1)
        flat_rows = [flat[..., r] for r in range(plan.d_out)]
    ones = zero = None
    rows = []
    for o_r in flat_rows:
        if not o_r.requires_grad:
            if scalars:
                zero = o_r.new_zeros(B) if zero is None else zero
                rows.append([zero] * plan.d_in)
            else:
                rows.append(o_r.new_zeros(B + (plan.d_in,)))
            continue
        if ones is None and not tracing:
            ones = torch.ones_like(o_r)
        gs = _grad(o_r, xs, ones, tracing, plan, outs)
        cols = [(g if g is not None else x.new_zeros(x.shape)) for g, x in zip(gs, xs)]
        if scalars:
            rows.append(cols)
        else:
            rows.append(torch.cat([c.reshape(B + (-1,)) for c in cols], dim=-1))
    if scalars and entries:
        J = rows
    elif scalars:
        J = torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)
    else:
        J = torch.stack(rows, dim=-2)
    return outs, J, plan


__all__ = ["jacobian", "JitUnsafe"]
