"""dualguide's own Pyro fitting loop: Pyro's ELBO, fewer Python operations per step.

Each step computes what ``pyro.infer.SVI.step`` with ``JitTrace_ELBO`` (or
``Trace_ELBO``) computes, with dualguide's Adam (:func:`.optim.adam_update_`, the
update :class:`.optim.DualAdam` runs).  With ``jit=True`` the first step runs ``JitTrace_ELBO`` exactly as Pyro
does (its ``torch.jit`` trace of the model and guide with the params as inputs);
after that the loop calls that same traced ELBO directly, bypassing what Pyro
redoes in Python on every step (param-store lookups, poutine handlers, one
``torch.optim`` object per param):

* all unconstrained params live in one flat tensor whose slices feed the traced
  ELBO, so the gradient is one tensor;
* gradient (``torch.autograd.grad``), non-finite check and the Adam update run in
  one TorchScript call, operating on that flat tensor;
* a fit of more than :data:`RECORD_MIN_STEPS` steps records the step and its gradient
  once as one program of ATen ops (:func:`_record_grad_program`): the traced ELBO (one
  particle) or the traced particle under ``torch.func.vmap`` (vectorized particles), with
  autograd's backward ops; it is checked bit for bit against the op-by-op step (run with
  eager autograd) before it replaces it.  No autograd engine runs per step after that.

The random draws, the loss and the gradient are those of ``JitTrace_ELBO``
(same trace, same generator), so a fit gives the losses the step-by-step Pyro
loop gives.  When the program cannot be traced, the loop falls back to
``Trace_ELBO`` step by step and warns why (:class:`JitFallbackWarning`, naming the op and
the site where the trace failed there).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from typing import Optional, Tuple  # noqa: UP035  (TorchScript reads the annotations)

import numpy as np
import pyro
import torch
from pyro import poutine

from ... import _inputs
from ..._progress import Progress
from ...contract import CannotVectorize, FitOutput
from .optim import adam_update_, bias_correction, make_optimizer

log = logging.getLogger("dualguide")


#: fits of more steps than this record the vmapped particles' step as one program
#: (:func:`_record_grad_program`): recording costs about as much as 100-300 op-by-op steps
RECORD_MIN_STEPS = 200


class JitFallbackWarning(UserWarning):
    """A Pyro fit runs ``Trace_ELBO`` because its program cannot be traced (the message says why)."""


class _AdamStep(torch.nn.Module):
    """One step on the flat unconstrained params: ``fn``'s loss and gradient, the non-finite
    check, Adam in place.  Holds the Adam constants; subclasses say how the gradient is
    obtained (:meth:`loss_and_grad`).  Both are TorchScript-scripted."""

    def __init__(self, fn, b1: float, b2: float, eps: float, clip: float, do_clip: bool):
        super().__init__()
        self.fn = fn
        self.b1 = b1
        self.b2 = b2
        self.eps = eps
        self.clip = clip
        self.do_clip = do_clip

    def loss_and_grad(self, flat: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:  # noqa: UP006, UP045
        raise NotImplementedError

    def forward(
        self,
        flat: torch.Tensor,
        m: torch.Tensor,
        v: torch.Tensor,
        lr: float,
        bc1: float,
        bc2: float,
    ) -> Tuple[float, int]:  # noqa: UP006
        loss, g = self.loss_and_grad(flat)
        lv = float(loss.item())
        if not math.isfinite(lv):
            return lv, 1
        if g is None:
            return lv, 0
        # one pass: a non-finite sum flags a non-finite element (or an overflowing sum,
        # which the exact check then clears)
        if not math.isfinite(float(g.sum().item())):
            if not bool(torch.isfinite(g).all().item()):
                return lv, 2
        with torch.no_grad():
            adam_update_(
                flat, g, m, v, lr, bc1, bc2, self.b1, self.b2, self.eps, self.clip, self.do_clip
            )
        return lv, 0


class _Step(_AdamStep):
    """:class:`_AdamStep` for ``fn`` returning ``[loss, surrogate]``: autograd differentiates
    the surrogate."""

    def loss_and_grad(self, flat: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:  # noqa: UP006, UP045
        out = self.fn(flat)
        grads = torch.autograd.grad([out[1]], [flat], allow_unused=True)
        return out[0], grads[0]


class _FlatELBO(torch.nn.Module):
    """The traced ELBO of ``JitTrace_ELBO``, fed from slices of one flat tensor."""

    def __init__(self, traced, sizes, shapes, args):
        super().__init__()
        self.traced = traced
        self.sizes = sizes
        self.shapes = shapes
        self.args = args

    def forward(self, flat):
        parts = [x.reshape(s) for x, s in zip(flat.split(self.sizes), self.shapes)]
        return self.traced(*parts, *self.args)


def _simplify(graph) -> None:
    """Fold the trace's constants: Pyro's trace holds many Python numbers as 0-dim tensors of
    other dtypes (each costs a cast per step) and constant sub-expressions of the model's
    densities.  TorchScript's own passes; nondeterministic ops (the draws) are left alone.
    Skipped if this torch lacks them."""
    passes = (
        "_jit_pass_inline",
        "_jit_pass_constant_propagation",
        "_jit_pass_peephole",
        "_jit_pass_cse",
        "_jit_pass_dce",
    )
    try:
        for name in passes:
            getattr(torch._C, name)(graph)
    except Exception as e:  # pragma: no cover - a torch without these passes
        log.debug("fit (pyro): graph passes skipped (%s)", e)


def _bias_corrections(beta: float, n: int) -> np.ndarray:
    """``1 - beta**(t+1)`` in the current float dtype for t = 0..n-1 (:func:`.optim.bias_correction`)."""
    return np.array([bias_correction(beta, t) for t in range(n)])


class _VmapFlatELBO(torch.nn.Module):
    """One traced particle fed from the flat tensor, vmapped over the particles
    (:class:`.particles.ParticleELBO`): the mean ``[loss, surrogate]``.  Plain Python: the
    tracer cannot record ``vmap``, so this and its step run op by op around the traced
    particle."""

    def __init__(self, elbo, traced, sizes, shapes, args):
        super().__init__()
        self.elbo = elbo
        self.traced = traced
        self.sizes = sizes
        self.shapes = shapes
        self.args = args

    def forward(self, flat):
        parts = [x.reshape(s) for x, s in zip(flat.split(self.sizes), self.shapes)]
        return self.elbo._vmap(lambda: self.traced(*parts, *self.args), traced=True)


class _GradStep(_AdamStep):
    """:class:`_AdamStep` for ``fn`` returning the loss and the gradient itself
    (:func:`_record_grad_program`): no autograd at run time."""

    def loss_and_grad(self, flat: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:  # noqa: UP006, UP045
        out = self.fn(flat)
        return out[0], out[1]


class _Unrecordable(RuntimeError):
    """The vmapped particle did something :func:`_record_grad_program` cannot replay."""


def _record_grad_program(fn, flat: torch.Tensor):
    """Record ``x -> (loss, d surrogate / dx)`` of ``fn`` (``x -> [loss, surrogate]``) as one
    graph of ATen ops, below ``torch.func.vmap`` and autograd, traced into TorchScript.

    The vmapped ELBO runs op by op through functorch's batching layer and autograd's
    engine, each costing microseconds per op and particle-independent; the recorded
    program runs the very batched kernels (same draws, same order, same gradient
    formulas: eager autograd's backward ops are recorded too) in one TorchScript call.
    ``torch.fx``'s ``make_fx`` records the same program but costs about a second of
    Python per call here; this recorder keeps to what the step needs."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves as pytree_leaves
    from torch.utils._pytree import tree_map
    from torch.utils.weak import WeakTensorKeyDictionary

    ops: list[tuple] = []  # (op, args, kwargs): tensors as slot numbers (_Slot)
    slots = WeakTensorKeyDictionary()  # tensor -> slot; holds no tensor alive (memory)
    values: list = []  # slot -> the constant tensor, or None (computed)

    def slot_of(t) -> _Slot:
        hit = slots.get(t)
        if hit is not None:
            return hit
        s = _Slot(len(values))
        values.append(t.detach())  # a constant: a tensor the program did not compute
        slots[t] = s
        return s

    def arg(a):
        if isinstance(a, torch.Tensor):
            return slot_of(a)
        if isinstance(a, (torch.Generator, torch.SymInt, torch.SymFloat)):
            raise _Unrecordable(f"argument {type(a).__name__}")
        return a

    def define(t) -> None:
        s = _Slot(len(values))
        values.append(None)
        slots[t] = s

    class Recorder(TorchDispatchMode):
        @classmethod
        def _should_skip_dynamo(cls):  # no torch._dynamo import (seconds) for a plain mode
            return False

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            fargs, fkw = tree_map(arg, args), tree_map(arg, kwargs)
            out = func(*args, **kwargs)
            if isinstance(out, torch.Tensor):
                outs: tuple = (out,)
            elif isinstance(out, (tuple, list)) and all(isinstance(o, torch.Tensor) for o in out):
                outs = tuple(out)
            elif out is None:
                outs = ()
            else:  # a Python number read back: control flow on data
                raise _Unrecordable(f"{func} returns {type(out).__name__}")
            for o in outs:
                define(o)
            ops.append(
                (
                    func,
                    fargs,
                    fkw,
                    [slots[o] for o in outs],
                    out is outs[0] if outs else True,
                )
            )
            return out

    x = flat.detach().clone()
    define(x)
    with torch.enable_grad(), torch.jit.optimized_execution(False), Recorder():
        xg = x.detach().requires_grad_(True)
        out = fn(xg)
        (g,) = torch.autograd.grad([out[1]], [xg], allow_unused=True)
        if g is None:
            g = torch.zeros_like(x)
        loss = out[0].detach()
    res = []
    for t in (loss, g):
        hit = slots.get(t)
        if hit is None:
            raise _Unrecordable("an output not made by a recorded op")
        res.append(hit)

    # each computed value is dropped after its last use (the replay's peak memory)
    last: dict[int, int] = {}
    for i, (_, fargs, fkw, _, _) in enumerate(ops):
        for a in pytree_leaves((fargs, fkw)):
            if isinstance(a, _Slot) and values[a] is None:
                last[a] = i
    drop: list[list[int]] = [[] for _ in ops]
    for s, i in last.items():
        if s not in res:
            drop[i].append(s)
    for i, (_, _, _, outs, _) in enumerate(ops):
        drop[i].extend(s for s in outs if s not in last and s not in res)  # never read

    def replay(x):
        vals = list(values)
        vals[0] = x
        get = lambda a: vals[a] if isinstance(a, _Slot) else a
        for (func, fargs, fkw, outs, single), dead in zip(ops, drop):
            r = func(*tree_map(get, fargs), **tree_map(get, fkw))
            if single:
                if outs:
                    vals[outs[0]] = r
            else:
                for s, o in zip(outs, r):
                    vals[s] = o
            for s in dead:
                vals[s] = None
        return vals[res[0]], vals[res[1]]

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(replay, (flat.detach(),), check_trace=False)
    _simplify(traced.graph)
    return traced


class _Slot(int):
    """A recorded tensor's place in :func:`_record_grad_program`'s value list."""


class _JitLoop:
    """Built from a ``ParticleELBO`` (jit) that has run its first step; runs the others."""

    def __init__(self, elbo, store, args, opt, num_steps):
        cf = elbo._loss_and_surrogate_loss  # pyro.ops.jit.CompiledFunction
        if len(cf.compiled) != 1 or not cf._param_names:
            raise RuntimeError("unexpected JitTrace_ELBO state")
        traced = next(iter(cf.compiled.values()))
        self.names = list(cf._param_names)
        self.store = store
        self.ups = [store[name].unconstrained() for name in self.names]
        shapes = [tuple(u.shape) for u in self.ups]
        sizes = [u.numel() for u in self.ups]
        with torch.no_grad():
            flat = torch.cat([u.detach().reshape(-1) for u in self.ups])
        self.flat = flat.requires_grad_(True)
        self.m = torch.zeros_like(flat)
        self.v = torch.zeros_like(flat)
        b1, b2 = opt.betas
        clip = opt.clip_norm
        hyper = (float(b1), float(b2), float(opt.eps), float(clip or 0.0), clip is not None)
        if getattr(elbo, "vmap_particles", 0):
            # the particles are vmapped around the traced particle: record the vmapped
            # ELBO and its gradient as one program (else the step runs in Python)
            _simplify(traced.graph)
            vflat = _VmapFlatELBO(elbo, traced, sizes, shapes, tuple(args))
            self.step_mod = _Step(vflat, *hyper)
            if num_steps > RECORD_MIN_STEPS:
                self._to_record = (vflat, hyper)  # after the first step (see record)
        else:
            rng = torch.get_rng_state()  # tracing runs the ELBO once: keep its draws out
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.jit's deprecation notices
                fe = torch.jit.trace(
                    _FlatELBO(traced, sizes, shapes, tuple(args)), (self.flat,), check_trace=False
                )
            torch.set_rng_state(rng)
            _simplify(fe.graph)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.step_mod = torch.jit.script(_Step(fe, *hyper))
            if num_steps > RECORD_MIN_STEPS:
                self._to_record = (fe, hyper)
        self.lrs = [float(opt.lr_at(t)) for t in range(num_steps)]
        self.bc1 = _bias_corrections(b1, num_steps).tolist()
        self.bc2 = _bias_corrections(b2, num_steps).tolist()
        self.t = 0

    _to_record: tuple | None = None

    def record(self) -> None:
        """Swap the Python step for the recorded program, if it replays the step exactly.
        Called once the first step's autograd graph is gone (peak memory)."""
        if self._to_record is None:
            return
        vflat, hyper = self._to_record
        self._to_record = None
        rng = torch.get_rng_state()
        try:
            prog = _record_grad_program(vflat, self.flat)
            # the check: one step of each from the same draws gives the same loss and gradient
            torch.set_rng_state(rng)
            loss_r, g_r = prog(self.flat.detach())
            torch.set_rng_state(rng)
            with torch.jit.optimized_execution(False):
                out = vflat(self.flat)
            (g,) = torch.autograd.grad([out[1]], [self.flat], allow_unused=True)
            if g is None:
                g = torch.zeros_like(self.flat)
            if not (torch.equal(out[0].detach(), loss_r) and torch.equal(g, g_r)):
                raise _Unrecordable("the recorded step differs from the vmapped one")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                step = torch.jit.script(_GradStep(prog, *hyper))
        except Exception as e:
            log.debug("fit (pyro): vmapped particles run op by op (%s: %s)", type(e).__name__, e)
        else:
            self.step_mod = step
            self.flat = self.flat.detach()  # the step computes its own gradient
        finally:
            torch.set_rng_state(rng)

    def adam_first(self, loss_tensor, surrogate):
        """Step 0: JitTrace_ELBO already computed the loss; differentiate and update."""
        grads = torch.autograd.grad(surrogate, self.ups, allow_unused=True)
        lv = float(loss_tensor.detach())
        if not math.isfinite(lv):
            return lv, 1
        g = torch.cat(
            [
                (gi if gi is not None else torch.zeros_like(u)).reshape(-1)
                for gi, u in zip(grads, self.ups)
            ]
        )
        if not bool(torch.isfinite(g).all()):
            return lv, 2
        return lv, self._update(g)

    def _update(self, g):
        st = self.step_mod
        t = self.t
        with torch.no_grad():
            adam_update_(
                self.flat,
                g,
                self.m,
                self.v,
                self.lrs[t],
                self.bc1[t],
                self.bc2[t],
                st.b1,
                st.b2,
                st.eps,
                st.clip,
                st.do_clip,
            )
        self.t += 1
        return 0

    def step(self):
        t = self.t
        lv, bad = self.step_mod.forward(
            self.flat, self.m, self.v, self.lrs[t], self.bc1[t], self.bc2[t]
        )
        if not bad:
            self.t = t + 1
        return lv, bad

    def write_back(self):
        """Copy the flat params into the param store's unconstrained tensors."""
        with torch.no_grad():
            for u, x in zip(self.ups, self.flat.split([u.numel() for u in self.ups])):
                u.copy_(x.reshape(u.shape))


def _warn_no_gradient(store, params) -> None:
    """Warn about params the loss does not reach: they would silently stay at their init."""
    from ...errors import CheckWarning

    dead = sorted(store.param_name(p) or "?" for p in params if p.grad is None)
    if dead:
        warnings.warn(
            f"fit (pyro): param(s) {', '.join(map(repr, dead))} get no gradient from the loss "
            "and will stay at their initial values; a param turned into a Python number "
            "(float(p), p.item(), p.detach(), numpy) is cut off from autodiff: compute with "
            "dualguide.ops instead",
            CheckWarning,
            stacklevel=2,
        )


def fit(
    backend,
    model,
    guide,
    args,
    kwargs,
    opt,
    *,
    num_steps,
    num_particles,
    seed,
    on_nonfinite,
    progress,
    jit,
) -> FitOutput:
    """The Pyro backend's ``fit`` (see :func:`dualguide.fit` for the contract)."""
    from . import _jit_safety
    from .particles import ParticleELBO

    t0 = time.perf_counter()
    store = pyro.get_param_store()
    skip = on_nonfinite == "skip"
    losses = np.full(num_steps, np.nan, dtype=_inputs.float_np())
    skipped, stopped_at, message, what = [], None, "", ""
    elbo_name = "JitTrace_ELBO" if jit else "Trace_ELBO"
    bar = Progress(num_steps, "pyro", progress)
    done = 0
    pyro_log = logging.getLogger("pyro")
    prev_level = pyro_log.level
    pyro_log.setLevel(max(prev_level, logging.WARNING))
    with store.scope(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fast = None
        optim = None
        elbo = ParticleELBO(num_particles, jit=jit)

        def eager_step(i):
            nonlocal optim
            if optim is None:
                optim = make_optimizer(opt)
            with poutine.trace(param_only=True) as cap:
                loss = elbo.loss_and_grads(model, guide, *args, **kwargs)
            params = [s["value"].unconstrained() for s in cap.trace.nodes.values()]
            params = list({id(p): p for p in params}.values())
            bad = 0
            if not math.isfinite(loss):
                bad = 1
            else:
                grads = [p.grad for p in params if p.grad is not None]
                if grads and not bool(torch.stack([g.isfinite().all() for g in grads]).all()):
                    bad = 2
            if not bad:
                optim(params)
            if i == 0:
                _warn_no_gradient(store, params)
            for p in params:
                p.grad = None
            return loss, bad

        try:
            for i in range(num_steps):
                if i == 0 and jit:
                    try:
                        with warnings.catch_warnings(record=True) as caught:
                            warnings.simplefilter("always", torch.jit.TracerWarning)
                            loss_t, surrogate = elbo.loss_and_surrogate_loss(
                                model, guide, *args, **kwargs
                            )
                        _jit_safety(caught)
                        if not surrogate.requires_grad:  # JitTrace_ELBO would fail to backprop
                            raise RuntimeError("no param reaches the loss")
                    except Exception as e:
                        reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                        log.info("fit (pyro): JitTrace_ELBO failed (%s); using Trace_ELBO", reason)
                        warnings.warn(
                            f"fit (pyro): JitTrace_ELBO failed ({reason}); running Trace_ELBO "
                            "instead, several times slower per step",
                            JitFallbackWarning,
                            stacklevel=3,
                        )
                        store.clear()
                        torch.manual_seed(seed)
                        elbo_name, elbo = "Trace_ELBO", ParticleELBO(num_particles, jit=False)
                        loss, bad = eager_step(i)
                    else:
                        try:
                            fast = _JitLoop(elbo, store, args, opt, num_steps)
                        except Exception as e:  # e.g. a Pyro whose internals moved: its own loop
                            log.debug("fit (pyro): fast loop unavailable (%s)", e)
                            fast = None
                        if fast is not None:
                            loss, bad = fast.adam_first(loss_t, surrogate)
                            loss_t = surrogate = None  # free the first step's graph
                            fast.record()
                        else:
                            optim = make_optimizer(opt)
                            surrogate.backward()
                            loss = float(loss_t.detach())
                            params = list(
                                {
                                    id(p): p
                                    for p in (store[n].unconstrained() for n in store.keys())
                                }.values()
                            )
                            bad = 0 if math.isfinite(loss) else 1
                            if not bad and not all(
                                bool(p.grad.isfinite().all()) for p in params if p.grad is not None
                            ):
                                bad = 2
                            if not bad:
                                optim(params)
                            for p in params:
                                p.grad = None
                elif fast is not None:
                    loss, bad = fast.step()
                else:
                    loss, bad = eager_step(i)
                losses[i] = loss
                if not bad:
                    done = i + 1
                elif skip:
                    what = what or ("loss" if bad == 1 else "gradient")
                    skipped.append(i)
                    done = i + 1
                else:
                    what = "loss" if bad == 1 else "gradient"
                    stopped_at = i
                    break
                if (i & 63) == 63 or i == num_steps - 1:
                    bar.update(64 if (i & 63) == 63 else (i & 63) + 1, float(loss))
        except KeyboardInterrupt:
            message = f"interrupted after {done} steps"
            log.warning("fit (pyro): %s; returning the params so far", message)
        finally:
            bar.close()
            pyro_log.setLevel(prev_level)
            if fast is not None:
                fast.write_back()
        last_good = {k: v.detach().cpu().numpy().copy() for k, v in store.items()}
    n = stopped_at + 1 if stopped_at is not None else done
    return FitOutput(
        params=last_good,
        losses=losses[:n],
        steps_done=done,
        wall_time=time.perf_counter() - t0,
        elbo=elbo_name,
        skipped=skipped,
        stopped_at=stopped_at,
        message=message,
        what=what or "loss or gradient",
    )


# ------------------------------------------------------------------------------------------
# many seeds in one program
# ------------------------------------------------------------------------------------------
def _run_seeds(
    elbo,
    cf,
    inits,
    args,
    opt,
    num_steps,
    skip,
    S,
    progress,
    *,
    lr_table=None,
    arg_dims=None,
    randomness="different",
):
    """The loop of :func:`fit_batch`: one flat param row per run,
    ``vmap``-ed.  ``lr_table`` ``(S, num_steps)``: a learning rate per run and step (None: the
    one ``opt``); ``arg_dims``: per model argument, 0 when ``args`` holds one row per run (None:
    every run has the same ``args``); ``randomness``: ``"same"`` gives every run the draws of one
    fit (runs with the same seed), ``"different"`` each run its own."""
    traced = next(iter(cf.compiled.values()))
    names = list(cf._param_names)
    store = pyro.get_param_store()
    shapes = [tuple(inits[0][n].shape) for n in names]
    sizes = [int(np.prod(s)) for s in shapes]
    with torch.no_grad():
        flat = torch.stack([torch.cat([ini[n].reshape(-1) for n in names]) for ini in inits])
    flat.requires_grad_(True)
    m, v = torch.zeros_like(flat), torch.zeros_like(flat)
    b1, b2 = opt.betas
    clip = opt.clip_norm
    if lr_table is None:
        lrs = torch.tensor([float(opt.lr_at(t)) for t in range(num_steps)], dtype=flat.dtype)
    else:
        lrs = torch.as_tensor(lr_table, dtype=flat.dtype)
    rows = torch.arange(S)
    bc1 = torch.tensor(_bias_corrections(b1, num_steps), dtype=flat.dtype)
    bc2 = torch.tensor(_bias_corrections(b2, num_steps), dtype=flat.dtype)
    t = torch.zeros(S, dtype=torch.long)
    active = torch.ones(S, dtype=torch.bool)
    losses = np.full((S, num_steps), np.nan, dtype=_inputs.float_np())
    stopped: list[int | None] = [None] * S
    skipped: list[list[int]] = [[] for _ in range(S)]

    if arg_dims is None:

        def per_seed(f):
            parts = [x.reshape(s) for x, s in zip(f.split(sizes), shapes)]
            return elbo._vmap(lambda: traced(*parts, *args), traced=True)

        batched = torch.func.vmap(per_seed, randomness=randomness)
    else:

        def per_run(f, *a):
            parts = [x.reshape(s) for x, s in zip(f.split(sizes), shapes)]
            return elbo._vmap(lambda: traced(*parts, *a), traced=True)

        vm = torch.func.vmap(per_run, in_dims=(0, *arg_dims), randomness=randomness)
        batched = lambda f: vm(f, *args)
    bar = Progress(num_steps, "pyro", progress)
    done, message = 0, ""
    try:
        with torch.jit.optimized_execution(False):
            for i in range(num_steps):
                out = batched(flat)
                (g,) = torch.autograd.grad(out[:, 1].sum(), [flat], allow_unused=True)
                if g is None:
                    g = torch.zeros_like(flat)
                loss = out[:, 0].detach()
                ok = torch.isfinite(loss) & torch.isfinite(g).all(-1)
                upd = ok & active
                with torch.no_grad():
                    tt = t.clamp(max=num_steps - 1)
                    x0, m0, v0 = flat.detach().clone(), m.clone(), v.clone()
                    adam_update_(
                        flat,
                        torch.where(upd[:, None], g, torch.zeros_like(g)),
                        m,
                        v,
                        (lrs[tt] if lr_table is None else lrs[rows, tt])[:, None],  # type: ignore[arg-type]
                        bc1[tt][:, None],  # type: ignore[arg-type]
                        bc2[tt][:, None],  # type: ignore[arg-type]
                        float(b1),
                        float(b2),
                        float(opt.eps),
                        float(clip or 0.0),
                        clip is not None,
                    )
                    if not bool(upd.all()):
                        keep = ~upd[:, None]
                        flat.copy_(torch.where(keep, x0, flat))
                        m.copy_(torch.where(keep, m0, m))
                        v.copy_(torch.where(keep, v0, v))
                    t += upd.long()
                losses[:, i] = loss.numpy()
                okn = ok.numpy()
                for j in np.nonzero(~okn & active.numpy())[0]:
                    if skip:
                        skipped[j].append(i)
                    else:
                        stopped[j] = i
                        active[j] = False
                done = i + 1
                if not bool(active.any()):
                    break
                if (i & 63) == 63 or i == num_steps - 1:
                    bar.update(64 if (i & 63) == 63 else (i & 63) + 1, float(loss.nanmean()))
    except KeyboardInterrupt:
        message = f"interrupted after {done} steps"
        log.warning("fit (pyro): %s; returning the params so far", message)
    finally:
        bar.close()
    params: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for n, part, s in zip(names, flat.detach().split(sizes, dim=-1), shapes):
            u = part.reshape((S,) + s)
            params[n] = _constrain(store, n, u).cpu().numpy().copy()
    return params, losses, stopped, skipped, done, message


def _constrain(store, name, u):
    """Constrained values of param ``name`` from a batch of unconstrained ones."""
    from torch.distributions import biject_to

    c = store._constraints[name]
    return biject_to(c)(u)


# ------------------------------------------------------------------------------------------
# a batch of members (data, init values, learning rate) x seeds in one program
# ------------------------------------------------------------------------------------------
def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))
    return a is b


def fit_batch(
    backend,
    model,
    guide,
    runs,
    *,
    num_steps,
    num_particles,
    on_nonfinite,
    progress,
    jit,
) -> list[FitOutput]:
    """The runs of ``dualguide.fit(batch=[...])`` (:class:`.contract.BatchRun`) in one program:
    :func:`_run_seeds`: one flat param row per run, the member's model arguments
    ``vmap``-ed beside it and a learning rate per run.

    When every run has the same seed (a batch of data or settings), the runs share the draws
    (``vmap(randomness="same")``), which are the draws of ``fit(seed=seed)``: each run equals
    that fit on the member's data and settings to float rounding.  With several seeds each
    run draws its own (``vmap(randomness="different")``: equal in distribution to
    ``fit(seed=s)``, not draw for draw).  ``model_kwargs`` are
    baked into Pyro's trace, so members whose kwargs differ raise
    :class:`.contract.CannotVectorize`, as does a program the batched trace cannot take."""
    from . import _jit_safety
    from .particles import ParticleELBO

    if not jit:
        raise CannotVectorize("jit=False")
    r0 = runs[0]
    for r in runs[1:]:
        for k, v in r.kwargs.items():
            if not _same(v, r0.kwargs[k]):
                raise CannotVectorize(
                    f"batch[{r.member}] model_kwargs[{k!r}] differs from batch[0]'s, and Pyro's "
                    "traced ELBO bakes model_kwargs in (pass data that varies as model_args)"
                )
    t0 = time.perf_counter()
    store = pyro.get_param_store()
    skip = on_nonfinite == "skip"
    R = len(runs)
    one_seed = all(r.seed == r0.seed for r in runs)
    args = list(r0.args)
    arg_dims: list[int | None] = []
    for k, a in enumerate(r0.args):
        if all(_same(r.args[k], a) for r in runs[1:]):
            arg_dims.append(None)
        elif isinstance(a, torch.Tensor):
            args[k] = torch.stack([r.args[k] for r in runs])
            arg_dims.append(0)
        else:  # dualguide.fit sends only arrays that differ
            raise CannotVectorize(f"batch[*] model_args[{k}] is not an array and differs")
    o0 = r0.opt
    lr_table = None
    if any(r.opt != o0 for r in runs):
        lr_table = np.array([[float(r.opt.lr_at(t)) for t in range(num_steps)] for r in runs])
    pyro_log = logging.getLogger("pyro")
    prev_level = pyro_log.level
    pyro_log.setLevel(max(prev_level, logging.WARNING))
    try:
        with store.scope(), torch.random.fork_rng(devices=[]):
            inits = []
            for r in runs:
                store.clear()
                torch.manual_seed(r.seed)
                with r.init_scope(), poutine.block():
                    guide_trace = poutine.trace(guide).get_trace(*r.args, **r.kwargs)
                    poutine.replay(model, trace=guide_trace)(*r.args, **r.kwargs)
                inits.append({n: store._params[n].detach().clone() for n in store.keys()})
            store.clear()
            torch.manual_seed(r0.seed)
            elbo = ParticleELBO(num_particles, jit=True)
            single = elbo.mode == "single"
            elbo.mode = "vmap"  # even one particle: the traced particle draws out of place
            states: list[torch.Tensor] = []
            vmap = elbo._vmap

            def spy(fn, traced=False):  # the generator's state before each particle batch
                states.append(torch.get_rng_state())
                return vmap(fn, traced)

            elbo._vmap = spy  # type: ignore[method-assign]
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", torch.jit.TracerWarning)
                    elbo.loss_and_surrogate_loss(model, guide, *r0.args, **r0.kwargs)
                _jit_safety(caught)
                cf = elbo._loss_and_surrogate_loss
                if elbo.mode != "vmap" or len(cf.compiled) != 1 or not cf._param_names:
                    raise RuntimeError("the particle did not trace for vmap")
            except Exception as e:
                first = str(e).splitlines()[0] if str(e) else ""
                raise CannotVectorize(f"{type(e).__name__}: {first}") from e
            finally:
                del elbo._vmap
            # a fit's first step draws where the traced first call drew its last particle
            # batch; one particle (Pyro's own trace, no init run) draws one batch earlier
            if len(states) >= 3:
                torch.set_rng_state(states[-2] if single else states[-1])
            out = _run_seeds(
                elbo,
                cf,
                inits,
                tuple(args),
                o0,
                num_steps,
                skip,
                R,
                progress,
                lr_table=lr_table,
                arg_dims=arg_dims,
                randomness="same" if one_seed else "different",
            )
    finally:
        pyro_log.setLevel(prev_level)
    params, losses, stopped, skipped, done, message = out
    wall = time.perf_counter() - t0
    return [
        FitOutput(
            params={k: np.array(v[j]) for k, v in params.items()},
            losses=losses[j, : (stopped[j] + 1 if stopped[j] is not None else done)],
            steps_done=stopped[j] if stopped[j] is not None else done,
            wall_time=wall,
            elbo="JitTrace_ELBO",
            skipped=skipped[j],
            stopped_at=stopped[j],
            message=message,
        )
        for j in range(R)
    ]
