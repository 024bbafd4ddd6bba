"""``fit(batch=[...])``: one fit per batch member (data, init values, learning rate), and per
seed, in one compiled program (``docs/batch.md``).

The neutral half: it checks the members (one :class:`~dualguide.errors.SpecError` naming the
member and the argument), decides whether they can share one program, hands the runs to the
backend's ``fitloop.fit_batch`` and turns its outputs into :class:`~dualguide.infer.FitResult`
objects.  Members that cannot share a program are fitted one after the other, and the reason
is logged (``logging.getLogger("dualguide")``, INFO).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _state
from .contract import BatchRun, CannotVectorize, FitOutput
from .errors import EstimatorMismatchWarning, FitError, SpecError
from .optim import Optimizer, as_optimizer

log = logging.getLogger("dualguide")

#: what a batch member may set (each falls back to the ``fit`` argument of the same name)
MEMBER_KEYS = ("model_args", "model_kwargs", "optim", "init_params", "seed")


@dataclass
class _Member:
    args: tuple
    kwargs: dict
    opt: Optimizer
    optim: Any  # as the user gave it (for the one-by-one fits)
    init: dict
    seed: int


def _members(batch, kw: dict, seeds: list[int] | None) -> list[_Member]:
    if isinstance(batch, dict) or isinstance(batch, (str, bytes)):
        raise SpecError(
            "fit: batch must be a list of dicts, one per member, e.g. "
            "batch=[{'model_args': (x1,)}, {'model_args': (x2,)}]"
        )
    try:
        items = list(batch)
    except TypeError:
        raise SpecError(
            f"fit: batch must be a list of dicts, one per member, got {batch!r:.80}"
        ) from None
    if not items:
        raise SpecError(
            "fit: batch is empty; give at least one member, e.g. batch=[{'model_args': (x,)}]"
        )
    out = []
    for i, m in enumerate(items):
        if not isinstance(m, dict):
            raise SpecError(
                f"fit: batch[{i}] is a {type(m).__name__}; each member is a dict of fit "
                f"arguments ({', '.join(MEMBER_KEYS)})"
            )
        unknown = sorted(set(m) - set(MEMBER_KEYS))
        if unknown:
            raise SpecError(
                f"fit: batch[{i}] sets {', '.join(map(repr, unknown))}, which a member cannot "
                f"vary; a member may set {', '.join(MEMBER_KEYS)} (the rest is shared: pass it "
                "to fit itself)"
            )
        if "seed" in m and seeds is not None:
            raise SpecError(
                f"fit: batch[{i}] sets 'seed' and fit has seeds=[...]; give seeds=[...] (every "
                "member with every seed) or a seed per member, not both"
            )
        args = m.get("model_args", kw["model_args"])
        if not isinstance(args, (tuple, list)):
            raise SpecError(
                f"fit: batch[{i}]['model_args'] must be a tuple (or list) of arguments, got "
                f"{type(args).__name__}; for one argument write 'model_args': (data,)"
            )
        kwargs = m.get("model_kwargs", kw["model_kwargs"]) or {}
        if not isinstance(kwargs, dict):
            raise SpecError(
                f"fit: batch[{i}]['model_kwargs'] must be a dict, got {type(kwargs).__name__}"
            )
        seed = m.get("seed", kw["seed"])
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise SpecError(f"fit: batch[{i}]['seed'] must be an integer >= 0, got {seed!r}")
        optim = m.get("optim", kw["optim"])
        try:
            opt = as_optimizer(optim)
        except SpecError as e:
            raise SpecError(f"fit: batch[{i}]['optim']: {e}") from None
        try:
            init = {
                **_state.check_init_params(kw["init_params"]),
                **_state.check_init_params(m.get("init_params")),
            }
        except SpecError as e:
            raise SpecError(f"fit: batch[{i}]['init_params']: {e}") from None
        out.append(_Member(tuple(args), dict(kwargs), opt, optim, init, int(seed)))
    return out


def _leaf(x) -> tuple[str, Any]:
    """``("array", numpy array)`` for numbers and arrays, ``("object", x)`` for the rest."""
    try:
        a = np.asarray(x)
    except Exception:
        return "object", x
    if a.dtype == object:
        return "object", x
    return "array", a


def _same_shapes(members: list[_Member]) -> str | None:
    """Refuse members whose data differ in shape or kind (naming the member and the argument);
    return why they cannot share one program (None: they can)."""
    first = members[0]
    why = None
    for i, m in enumerate(members[1:], 1):
        if len(m.args) != len(first.args):
            raise SpecError(
                f"fit: batch[{i}] has {len(m.args)} model_args and batch[0] has "
                f"{len(first.args)}; the members of a batch give the model the same arguments"
            )
        if sorted(m.kwargs) != sorted(first.kwargs):
            raise SpecError(
                f"fit: batch[{i}] has model_kwargs {sorted(m.kwargs)} and batch[0] has "
                f"{sorted(first.kwargs)}; the members of a batch give the model the same arguments"
            )
        pairs = [(f"model_args[{k}]", a, first.args[k]) for k, a in enumerate(m.args)]
        pairs += [(f"model_kwargs[{k!r}]", v, first.kwargs[k]) for k, v in m.kwargs.items()]
        for name, x, x0 in pairs:
            kind, a = _leaf(x)
            kind0, a0 = _leaf(x0)
            if kind != kind0:
                raise SpecError(
                    f"fit: batch[{i}] {name} is not the same kind of value as batch[0]'s"
                )
            if kind == "object":
                if x is not x0 and why is None:
                    why = f"batch[{i}] {name} is not an array and differs from batch[0]'s"
                continue
            if a.shape != a0.shape:
                raise SpecError(
                    f"fit: batch[{i}] {name} has shape {a.shape} and batch[0]'s has shape "
                    f"{a0.shape}; a batch runs as one program, so its members' data must have "
                    "equal shapes (fit data of other shapes in a separate fit call)"
                )
            floats = (a.dtype.kind == "f", a0.dtype.kind == "f")
            if floats[0] != floats[1]:
                raise SpecError(
                    f"fit: batch[{i}] {name} has dtype {a.dtype} and batch[0]'s has dtype "
                    f"{a0.dtype}; give every member the same kind of number (float or integer)"
                )
            if not floats[0] and why is None and not np.array_equal(a, a0):
                why = (
                    f"batch[{i}] {name} (integers or booleans) differs from batch[0]'s; such "
                    "values can be sizes or indices, so a compiled program bakes them in"
                )
    return why


def _optim_obstacle(members: list[_Member]) -> str | None:
    o0 = members[0].opt
    for i, m in enumerate(members[1:], 1):
        o = m.opt
        if o == o0:
            continue
        if callable(o.lr) or callable(o0.lr):
            return f"batch[{i}] has another learning-rate schedule than batch[0]"
        if (o.name, tuple(o.betas), o.eps, o.clip_norm, o.lrd, o.extra) != (
            o0.name,
            tuple(o0.betas),
            o0.eps,
            o0.clip_norm,
            o0.lrd,
            o0.extra,
        ):
            return (
                f"batch[{i}]'s optimizer differs from batch[0]'s in more than lr "
                f"({o!r} vs {o0!r}); one program varies the learning rate only"
            )
    return None


def fit_batch(
    model: Callable,
    guide: Callable,
    b,
    batch: Sequence[dict[str, Any]],
    seeds: list[int] | None,
    loss_obj,
    kw: dict,
) -> list:
    """:func:`dualguide.fit` with ``batch=[...]`` (its arguments checked, ``b`` resolved)."""
    from .infer import FitResult, _check_signature, _result

    members = _members(batch, kw, seeds)
    for i, m in enumerate(members):
        for fn, role in ((model, "model"), (guide, "guide")):
            try:
                _check_signature(fn, role, m.args, m.kwargs)
            except SpecError as e:
                raise SpecError(f"batch[{i}]: {e}") from None
    why = _same_shapes(members) or _optim_obstacle(members)
    m0 = members[0]
    if loss_obj.name != "Trace_ELBO":
        from .elbo import check_program

        check_program(loss_obj, model, guide, b, m0.args, m0.kwargs)
        why = why or f"loss={loss_obj.name} runs fit by fit"
    if not kw["jit"]:
        why = why or "jit=False"
    from .elbo import warn_estimator_mismatch

    warn_estimator_mismatch(loss_obj, guide, b, m0.args, m0.kwargs)
    if kw["check"]:
        from .doctor import fit_checks

        fit_checks(model, guide, b, m0.args, m0.kwargs, m0.init, m0.seed, kw["on_nonfinite"])
    runs_of = [(i, s) for i, mb in enumerate(members) for s in (seeds or [mb.seed])]

    outs: list[FitOutput] = []
    if why is None:
        from .render import render

        rm, rg = render(model, b), render(guide, b)
        runs = [
            BatchRun(
                member=i,
                seed=s,
                args=tuple(b.to_array(a) for a in members[i].args),
                kwargs={k: b.to_array(v) for k, v in members[i].kwargs.items()},
                opt=members[i].opt,
                init=members[i].init,
            )
            for i, s in runs_of
        ]
        with _state.param_overrides(None) as hook:
            try:
                outs = _state.feature(b, "fitloop").fit_batch(
                    b,
                    rm,
                    rg,
                    runs,
                    num_steps=kw["num_steps"],
                    num_particles=loss_obj.num_particles,
                    on_nonfinite=kw["on_nonfinite"],
                    progress=kw["progress"],
                    jit=kw["jit"],
                )
            except CannotVectorize as e:
                why = str(e)
        if outs:
            unknown = sorted(set().union(*(mb.init for mb in members)) - set(hook.constraints))
            if unknown:
                raise SpecError(
                    f"fit: init_params has {', '.join(map(repr, unknown))}, which the guide and "
                    f"model never declare (they declare "
                    f"{', '.join(map(repr, sorted(hook.constraints))) or 'no params'})"
                )
            opts = [members[i].opt for i, _ in runs_of]
            results = [
                _result(o, b, loss_obj.num_particles, s, opt, hook)
                for o, (_, s), opt in zip(outs, runs_of, opts)
            ]
    if not outs:
        log.info("fit (%s, batch): one program unavailable (%s); member by member", b.name, why)
        results = _one_by_one(model, guide, b, members, seeds, kw)
    for r, (i, _) in zip(results, runs_of):
        r.member = i
    return _done(results, members, seeds, b.name, FitResult)


def _one_by_one(model, guide, b, members, seeds, kw) -> list:
    """Each member's fit (its seeds vectorized by ``fit(seeds=...)``), flattened to runs."""
    from .infer import FitResult, fit

    out: list = []
    for m in members:
        try:
            with warnings.catch_warnings():  # fit already warned once, not once per member
                warnings.simplefilter("ignore", EstimatorMismatchWarning)
                r = fit(
                    model,
                    guide,
                    backend=b.name,
                    model_args=m.args,
                    model_kwargs=m.kwargs,
                    optim=m.optim,
                    num_steps=kw["num_steps"],
                    num_particles=kw["num_particles"],
                    seed=m.seed if seeds is None else 0,
                    seeds=seeds,
                    init_params=m.init,
                    on_nonfinite=kw["on_nonfinite"],
                    progress=kw["progress"],
                    jit=kw["jit"],
                    check=False,
                    loss=kw["loss"],
                )
        except FitError as e:  # a member that stopped: the others go on, as in one program
            res = e.result
            ok = isinstance(res, FitResult) and res.stopped_at is not None
            ok = ok or (isinstance(res, list) and all(isinstance(x, FitResult) for x in res))
            if not ok:
                raise
            r = res
        out.extend(r if isinstance(r, list) else [r])
    return out


def _done(results: list, members, seeds, backend: str, FitResult) -> list:
    """Group the runs per member (a list per member with ``seeds``) and raise one FitError
    naming every run that stopped."""
    if seeds is None:
        grouped: list = results
    else:
        k = len(seeds)
        grouped = [results[i * k : (i + 1) * k] for i in range(len(members))]
    bad = [(r.member, r.seed) for r in results if r.stopped_at is not None]
    if bad:
        which = ", ".join(f"batch[{i}] (seed {s})" for i, s in bad)
        raise FitError(
            f"fit ({backend}, batch): {which} hit a non-finite loss or gradient and stopped "
            "there (the others ran to the end); .result holds every member's result (pass "
            "on_nonfinite='skip' to drop such steps)",
            grouped,
        )
    return grouped
