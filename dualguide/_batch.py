"""``fit(batch=[...])``: one fit per batch member (data, init values, learning rate), and per
seed, in one compiled program (``docs/batch.md``).

The neutral half: it checks the members (one :class:`~dualguide.errors.SpecError` naming the
member and the argument), decides whether they can share one program, hands the runs to the
backend's ``fitloop.fit_batch`` and turns its outputs into :class:`~dualguide.infer.FitResult`
objects.  Members that cannot share a program are fitted one after the other, and the reason
is logged (``logging.getLogger("dualguide")``, INFO); so is a member whose params get other
constraints than batch[0]'s (built from its data), which is fitted on its own.
``fit(seeds=[...])`` is the one-member case (``batch=None``): one seed loop, one error path.
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
    batch: Sequence[dict[str, Any]] | None,
    seeds: list[int] | None,
    loss_obj,
    kw: dict,
) -> list:
    """:func:`dualguide.fit` with ``batch=[...]``, or with ``batch=None`` and ``seeds=[...]``
    (the one member of ``fit``'s own arguments, a flat list of results); its arguments
    checked, ``b`` resolved."""
    from .infer import _check_signature

    what = "seeds" if batch is None else "batch"
    members = _members([{}] if batch is None else batch, kw, seeds)

    def where(i: int) -> str:
        return "" if batch is None else f"batch[{i}]: "

    for i, m in enumerate(members):
        for fn, role in ((model, "model"), (guide, "guide")):
            try:
                _check_signature(fn, role, m.args, m.kwargs)
            except SpecError as e:
                raise SpecError(f"{where(i)}{e}") from None
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
    # what the program sees can differ only in the members whose data differ from batch[0]'s
    other_data = [i for i, m in enumerate(members[1:], 1) if _other_data(m, m0)]
    if kw["check"]:
        from .doctor import fit_checks

        for i in [0, *other_data]:
            m = members[i]
            try:
                fit_checks(model, guide, b, m.args, m.kwargs, m.init, m.seed, kw["on_nonfinite"])
            except SpecError as e:
                raise SpecError(f"{where(i)}{e}") from None
    alone = _constraint_clashes(model, guide, b, members, other_data) if why is None else {}
    for i, clash in alone.items():
        log.info("fit (%s, batch): batch[%d] fitted on its own: %s", b.name, i, clash)
    together = [i for i in range(len(members)) if i not in alone]

    results: dict[int, list] = {}
    if why is None:
        try:
            results = _one_program(model, guide, b, members, together, seeds, loss_obj, kw)
        except CannotVectorize as e:
            why = str(e)
    if why is not None:
        by = "seed by seed" if batch is None else "member by member"
        log.info("fit (%s, %s): one program unavailable (%s); %s", b.name, what, why, by)
    rest = [i for i in range(len(members)) if i not in results]
    alone_ms = [members[i] for i in rest]
    for i, rs in zip(rest, _one_by_one(model, guide, b, alone_ms, seeds, kw, batch is None)):
        results[i] = rs
    if batch is not None:
        for i, rs in results.items():
            for r in rs:
                r.member = i
    return _done([results[i] for i in range(len(members))], seeds, what, b.name)


def _other_data(m: _Member, m0: _Member) -> bool:
    """Whether member ``m`` gives the model other arguments than ``m0`` (same shapes: checked)."""
    pairs = list(zip(m.args, m0.args)) + [(v, m0.kwargs[k]) for k, v in m.kwargs.items()]
    for x, x0 in pairs:
        if x is x0:
            continue
        kind, a = _leaf(x)
        kind0, a0 = _leaf(x0)
        if kind == "object" or kind0 == "object" or not np.array_equal(a, a0):
            return True
    return False


def _declared(model, guide, b, m: _Member) -> dict:
    """The constraint of every param the guide and model declare on member ``m``'s data (one
    concrete trace of each)."""
    from .render import render

    args = tuple(b.to_array(a) for a in m.args)
    kwargs = {k: b.to_array(v) for k, v in m.kwargs.items()}
    with _state.param_overrides(m.init) as hook:
        for fn in (guide, model):
            b.trace(render(fn, b), args, kwargs, m.seed)
    return hook.constraints


def _constraint_clashes(model, guide, b, members: list[_Member], which: list[int]) -> dict:
    """``{i: why}`` for the members (among ``which``) whose params get other constraints than
    batch[0]'s (a constraint built from the data, say ``interval(0, y.max())``): one program
    would give them batch[0]'s, so they are fitted on their own."""
    if not which:
        return {}
    try:
        first = _declared(model, guide, b, members[0])
    except Exception as e:  # the fit itself meets (and reports) what stops the trace
        log.debug("fit (%s, batch): params of batch[0] not traced (%s)", b.name, e)
        return {}
    if not any(c.args for c in first.values()):
        # no bound a member's data could set (positive, simplex, ...: choosing another kind
        # by the data is Python control flow on traced data, which both backends' compiled
        # programs refuse): the other members need no trace
        return {}
    out = {}
    for i in which:
        try:
            mine = _declared(model, guide, b, members[i])
        except Exception as e:
            out[i] = f"its params could not be traced to compare with batch[0]'s ({e})"
            continue
        for name in sorted(set(first) | set(mine)):
            c, c0 = mine.get(name), first.get(name)
            if c != c0:
                out[i] = (
                    f"param {name!r} has constraint {c} there and {c0} in batch[0] (a "
                    "constraint computed from the data); one program would give it batch[0]'s"
                )
                break
    return out


def _one_program(model, guide, b, members, together, seeds, loss_obj, kw) -> dict[int, list]:
    """The runs of the members ``together`` (each with each seed) in one program:
    ``{member index: its results}``; raises CannotVectorize."""
    from .infer import _result
    from .render import render

    runs_of = [(i, s) for i in together for s in (seeds or [members[i].seed])]
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
        outs: list[FitOutput] = _state.feature(b, "fitloop").fit_batch(
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
    log.debug("fit (%s, batch): %d runs in one program", b.name, len(runs))
    unknown = sorted(set().union(*(members[i].init for i in together)) - set(hook.constraints))
    if unknown:
        raise SpecError(
            f"fit: init_params has {', '.join(map(repr, unknown))}, which the guide and "
            f"model never declare (they declare "
            f"{', '.join(map(repr, sorted(hook.constraints))) or 'no params'})"
        )
    out: dict[int, list] = {i: [] for i in together}
    for o, (i, s) in zip(outs, runs_of):
        out[i].append(_result(o, b, loss_obj.num_particles, s, members[i].opt, hook))
    return out


def _one_by_one(model, guide, b, members: list[_Member], seeds, kw, by_seed: bool) -> list[list]:
    """Each member's fits one after the other, a list of results per member: the one place
    runs that cannot share a program are looped over.  ``by_seed`` False: a member's seeds
    still run as one program if they can (``fit(..., seeds=seeds)``); True (that fit's own
    fallback): one ``fit(seed=s)`` per seed."""
    from .infer import FitResult, fit

    out: list[list] = []
    for m in members:
        one = dict(
            backend=b.name,
            model_args=m.args,
            model_kwargs=m.kwargs,
            optim=m.optim,
            num_steps=kw["num_steps"],
            num_particles=kw["num_particles"],
            init_params=m.init,
            on_nonfinite=kw["on_nonfinite"],
            progress=kw["progress"],
            jit=kw["jit"],
            check=False,
            loss=kw["loss"],
        )
        calls = (
            [dict(seeds=seeds)]
            if seeds is not None and not by_seed
            else [dict(seed=s) for s in (seeds or [m.seed])]
        )
        rs: list = []
        for c in calls:
            try:
                with warnings.catch_warnings():  # fit already warned once, not once per fit
                    warnings.simplefilter("ignore", EstimatorMismatchWarning)
                    r = fit(model, guide, **one, **c)
            except FitError as e:  # a run that stopped: the others go on, as in one program
                r = e.result
                ok = isinstance(r, FitResult) and r.stopped_at is not None
                ok = ok or (isinstance(r, list) and all(isinstance(x, FitResult) for x in r))
                if not ok:
                    raise
            rs.extend(r if isinstance(r, list) else [r])
        out.append(rs)
    return out


def _done(grouped: list[list], seeds, what: str, backend: str) -> list:
    """The results of ``fit(batch=...)`` (``what="batch"``: one per member, or with ``seeds``
    a list per member) or of ``fit(seeds=...)`` (``what="seeds"``: one list), and one FitError
    naming every run that stopped."""
    if what == "seeds":
        out: list = grouped[0]
        bad = [r.seed for r in out if r.stopped_at is not None]
        which = f"the fits with seed(s) {bad}"
    else:
        out = grouped if seeds is not None else [rs[0] for rs in grouped]
        stopped = [(r.member, r.seed) for rs in grouped for r in rs if r.stopped_at is not None]
        bad = stopped
        which = ", ".join(f"batch[{i}] (seed {s})" for i, s in stopped)
    if bad:
        raise FitError(
            f"fit ({backend}, {what}): {which} hit a non-finite loss or gradient and stopped "
            f"there (the others ran to the end); .result holds every {'seed' if what == 'seeds' else 'member'}'s "
            "result (pass on_nonfinite='skip' to drop such steps)",
            out,
        )
    return out
