"""Pyro's side of :mod:`dualguide.elbo`: the native estimator of a row of ``_table.ELBOS``
driven as ``pyro.infer.SVI.step`` does (``loss_and_grads`` then the optimizer), in a fresh
param-store scope and RNG fork, with dualguide's non-finite rules.

Particles are not vectorized (``vectorize_particles=False``): each particle runs the program
once, so the model never sees a particle dimension -- the same estimator as NumPyro's vmap.
With ``jit`` the first step tries Pyro's ``Jit<name>`` (JitTraceGraph_ELBO, JitTraceEnum_ELBO;
RenyiELBO has none) and falls back to the plain class, logging why, when the program cannot be
traced safely (as ``fit`` does for JitTrace_ELBO).

``TraceMeanField_ELBO`` is the exception (:class:`_JitTraceMeanField`): Pyro's (1.9)
``JitTraceMeanField_ELBO.differentiable_loss`` caches its compiled function under one attribute
(``_differentiable_loss``) and tests another (``_loss_and_surrogate_loss``), so it builds a new
``torch.jit.trace`` on every call: three runs of the program per step, and each trace's graph
kept (measured: 27 steps/s and +1.4 MB per step where the plain class runs 500 steps/s with flat
memory).  dualguide runs step 0 with the plain ``TraceMeanField_ELBO`` (it creates the params as
Pyro's does), then traces once with the RNG state saved and restored, and calls that one
trace for the other steps: the draws, losses and gradients of Pyro's plain
``TraceMeanField_ELBO`` SVI (to float rounding), 2-5x faster than it."""

from __future__ import annotations

import logging
import math
import time
import warnings
from typing import Any

import numpy as np
import pyro
import pyro.infer as pi
import torch
from pyro import poutine
from pyro.infer.util import zero_grads

from ... import _inputs
from ..._progress import Progress
from ..._table import ELBOS
from ...contract import FitOutput
from ...errors import SpecError
from . import _jit_safety
from .fitloop import JitFallbackWarning

log = logging.getLogger("dualguide")


def fit(
    backend: Any,
    model: Any,
    guide: Any,
    args: tuple,
    kwargs: dict,
    opt: Any,
    *,
    loss: str,
    options: dict,
    num_steps: int,
    num_particles: int,
    seed: int,
    on_nonfinite: str,
    progress: bool | None,
    jit: bool,
) -> FitOutput:
    """Fit with ``pyro.infer.<ELBOS[loss][1]>(num_particles, **options)``."""
    t0 = time.perf_counter()
    store = pyro.get_param_store()
    skip = on_nonfinite == "skip"
    losses = np.full(num_steps, np.nan, dtype=_inputs.float_np())
    skipped: list[int] = []
    stopped_at, what, message, done = None, "", "", 0
    bar = Progress(num_steps, "pyro", progress)
    pyro_log = logging.getLogger("pyro")
    prev_level = pyro_log.level
    pyro_log.setLevel(max(prev_level, logging.WARNING))
    with store.scope(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        name = ELBOS[loss][1]
        # TraceMeanField: step 0 runs the plain class, the trace is made before step 1
        late_jit = jit and name == "TraceMeanField_ELBO"
        if jit and not late_jit and hasattr(pi, "Jit" + name):
            name = "Jit" + name
        elbo = _make(name, num_particles, options)
        optim = backend.optimizer(opt)

        # the data are fixed for the whole fit: bound here, they are constants of a jit trace
        def m() -> Any:
            return model(*args, **kwargs)

        def g() -> Any:
            return guide(*args, **kwargs)

        last: dict[str, np.ndarray] = {}
        try:
            for i in range(num_steps):
                if i == 1 and late_jit:
                    elbo, name = _trace_mean_field(elbo, name, m, g, num_particles, options)
                with poutine.trace(param_only=True) as cap:
                    if i == 0 and name != ELBOS[loss][1]:
                        try:
                            with warnings.catch_warnings(record=True) as caught:
                                warnings.simplefilter("always", torch.jit.TracerWarning)
                                value = float(elbo.loss_and_grads(m, g))
                            _jit_safety(caught)
                        except Exception as e:
                            reason = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
                            log.info("fit (pyro): %s failed (%s); using %s", name, reason, loss)
                            warnings.warn(
                                f"fit (pyro): {name} failed ({reason}); running {loss} instead, "
                                "several times slower per step",
                                JitFallbackWarning,
                                stacklevel=3,
                            )
                            store.clear()
                            torch.manual_seed(seed)
                            name = ELBOS[loss][1]
                            elbo = _make(name, num_particles, options)
                            value = float(elbo.loss_and_grads(m, g))
                    else:
                        value = float(elbo.loss_and_grads(m, g))
                found: dict[int, Any] = {}
                for site in cap.trace.nodes.values():
                    p = site["value"].unconstrained()  # type: ignore[union-attr]
                    found[id(p)] = p
                params = list(found.values())
                if i == 0:
                    last = _snapshot(store)
                losses[i] = value
                ok = math.isfinite(value)
                if not ok:
                    what = "loss"
                elif not all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in params):
                    ok, what = False, "gradient"
                done = i + 1
                if ok:
                    optim(params)
                    zero_grads(params)
                    last = _snapshot(store)
                else:
                    zero_grads(params)
                    if skip:
                        skipped.append(i)
                    else:
                        stopped_at, done = i, i
                        break
                bar.update(1, value)
        except KeyboardInterrupt:
            message = f"interrupted after {done} steps"
        finally:
            bar.close()
            pyro_log.setLevel(prev_level)
    return FitOutput(
        params=last,
        losses=losses[: done + (1 if stopped_at is not None else 0)],
        steps_done=done,
        wall_time=time.perf_counter() - t0,
        elbo=name + _extra(options),
        skipped=skipped,
        stopped_at=stopped_at,
        message=message,
        what=what or "loss",
    )


def _make(name: str, num_particles: int, options: dict) -> Any:
    cls = _JitTraceMeanField if name == "JitTraceMeanField_ELBO" else getattr(pi, name)
    return cls(num_particles=num_particles, vectorize_particles=False, **options)


class _JitTraceMeanField(pi.JitTraceMeanField_ELBO):
    """Pyro's ``JitTraceMeanField_ELBO`` with its compiled function kept: Pyro's
    ``differentiable_loss`` tests ``_loss_and_surrogate_loss`` (always None there) but stores
    ``_differentiable_loss``, so it traced the program anew on every call (a slow step and a
    graph kept per step).  Reading the one through the other makes the first trace the only one."""

    @property
    def _loss_and_surrogate_loss(self) -> Any:
        return self.__dict__.get("_differentiable_loss")


def _trace_mean_field(
    plain: Any, name: str, m: Any, g: Any, num_particles: int, options: dict
) -> tuple[Any, str]:
    """After step 0 of a ``TraceMeanField_ELBO`` fit (run by ``plain``): trace the estimator
    once (:class:`_JitTraceMeanField`) with the torch RNG state saved and restored, so the
    traced steps draw what the plain class would draw.  Returns the ELBO and its name for the
    other steps: the plain one, with a :class:`JitFallbackWarning`, when the program cannot be
    traced safely."""
    jit_name = "JitTraceMeanField_ELBO"
    elbo = _make(jit_name, num_particles, options)
    state = torch.get_rng_state()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", torch.jit.TracerWarning)
            elbo.differentiable_loss(m, g)
        _jit_safety(caught)
    except Exception as e:
        reason = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
        log.info("fit (pyro): %s failed (%s); using %s", jit_name, reason, name)
        warnings.warn(
            f"fit (pyro): {jit_name} failed ({reason}); running {name} instead, "
            "several times slower per step",
            JitFallbackWarning,
            stacklevel=4,
        )
        return plain, name
    finally:
        torch.set_rng_state(state)
    return elbo, jit_name


def _extra(options: dict) -> str:
    extra = ", ".join(f"{k}={v!r}" for k, v in options.items())
    return f"({extra})" if extra else ""


def _snapshot(store: Any) -> dict[str, np.ndarray]:
    """The store's constrained values as numpy arrays."""
    return {k: store[k].detach().cpu().numpy().copy() for k in store.keys()}


def has_rsample_(d: Any, value: bool) -> Any:
    """``d.has_rsample_(value)`` (Pyro's own)."""
    if value and not d.has_rsample:
        raise SpecError(f"has_rsample_(True): {type(d).__name__} has no reparameterized sampler")
    return d.has_rsample_(value)


# -- the crosscheck's gradient and lockstep checks with a native estimator ----------------------
def _noisy(noise: dict | None) -> Any:
    """A context setting the guide's continuous sites from ``noise`` (the crosscheck's common
    random numbers), or nothing."""
    import contextlib

    if not noise:
        return contextlib.nullcontext()
    from .crosscheck import _NoiseMessenger

    return _NoiseMessenger(noise)


def grad_draws(
    model: Any,
    guide: Any,
    params: dict,
    loss: str,
    options: dict,
    num_draws: int,
    num_particles: int,
    seed: int,
    args: tuple,
    kwargs: dict,
    noise: dict | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``num_draws`` independent values and gradients (w.r.t. the constrained ``params``) of
    the native ``<loss>(num_particles, **options)`` estimator (``loss_and_grads``, particles one
    after another), in a fresh param-store scope and RNG fork seeded with ``seed``.  With
    ``noise`` (``{site: {kind: (num_draws, *site shape)}}``, one particle) draw ``i`` sets the
    guide's continuous sites from ``noise[site][kind][i]``."""
    from .crosscheck import _module_leaves, _t

    fd = _inputs.float_np()
    leaves = {k: _t(v).requires_grad_(True) for k, v in params.items()}
    losses = np.empty(num_draws, dtype=np.float64)
    grads: dict[str, list] = {k: [] for k in leaves}
    store = pyro.get_param_store()
    pyro_log = logging.getLogger("pyro")
    prev_level = pyro_log.level
    pyro_log.setLevel(max(prev_level, logging.WARNING))
    try:
        with store.scope(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            _module_leaves(guide, leaves)
            elbo = _make(ELBOS[loss][1], num_particles, options)
            m = poutine.substitute(model, data=leaves)
            g = poutine.substitute(guide, data=leaves)
            for i in range(num_draws):
                for leaf in leaves.values():
                    leaf.grad = None
                nz = None
                if noise:
                    nz = {
                        s: {k: torch.from_numpy(np.asarray(v[i], fd)) for k, v in d.items()}
                        for s, d in noise.items()
                    }
                with _noisy(nz), warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="pyro.module data did not find")
                    losses[i] = float(elbo.loss_and_grads(m, g, *args, **kwargs))
                for k, leaf in leaves.items():
                    gk = leaf.grad
                    grads[k].append(
                        np.zeros(tuple(leaf.shape), fd)
                        if gk is None
                        else gk.detach().numpy().copy()
                    )
    finally:
        pyro_log.setLevel(prev_level)
    return losses, {k: np.stack(v) for k, v in grads.items()}


def lockstep_run(
    model: Any,
    guide: Any,
    u0: dict,
    constraints: dict,
    noise: dict,
    opt: Any,
    args: tuple,
    kwargs: dict,
    loss: str,
    options: dict,
    steps: int,
    num_particles: int,
) -> dict:
    """SVI with the native single-particle ``<loss>`` estimator driven by ``noise[site][kind]``
    (shape (steps, particles, *site shape)): each step's loss and gradient are the means of one
    native ``loss_and_grads`` per particle, each particle's guide drawn from its noise.  Starts
    from the unconstrained ``u0``; dualguide's torch Adam (jax's update).  Returns
    ``{"losses": (steps,), "params": {name: (steps + 1, ...)}}`` (unconstrained)."""
    from .crosscheck import _scope
    from .optim import make_optimizer

    fd = _inputs.float_np()
    losses = np.empty(steps, dtype=fd)
    traj = {k: [np.asarray(v, fd)] for k, v in u0.items()}
    tnoise = {
        s: {k: torch.from_numpy(np.asarray(v, fd)) for k, v in d.items()} for s, d in noise.items()
    }
    elbo = _make(ELBOS[loss][1], 1, options)
    with _scope(u0, constraints, 0, unconstrained=True) as store:
        optim = make_optimizer(opt)
        leaves = dict(store.named_parameters())
        for t in range(steps):
            total = 0.0
            for j in range(num_particles):
                nz = {s: {k: v[t, j] for k, v in d.items()} for s, d in tnoise.items()}
                with _noisy(nz):
                    total += float(elbo.loss_and_grads(model, guide, *args, **kwargs))
            losses[t] = total / num_particles
            for p in leaves.values():
                if p.grad is not None:
                    p.grad.div_(num_particles)
            optim(list(leaves.values()))
            for k, p in leaves.items():
                p.grad = None
                traj[k].append(p.detach().numpy().copy())
    return {"losses": losses, "params": {k: np.stack(v) for k, v in traj.items()}}


def analytic_kl_sites(
    model: Any, guide: Any, params: dict, args: tuple, kwargs: dict
) -> dict[str, bool]:
    """``{site: whether Pyro's TraceMeanField_ELBO has an analytic KL(guide || model) for it}``
    for the model's latent sites the guide samples: the ``kl_divergence`` call Pyro's estimator
    makes (torch's registry with Pyro's additions), on one run of the guide and the model
    replayed on it with ``params``."""
    from torch.distributions import kl_divergence

    from .crosscheck import _module_leaves, _t

    leaves = {k: _t(v) for k, v in params.items()}
    store = pyro.get_param_store()
    with store.scope(), torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        _module_leaves(guide, leaves)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="pyro.module data did not find")
            g = poutine.trace(poutine.substitute(guide, data=leaves)).get_trace(*args, **kwargs)
            m = poutine.trace(
                poutine.replay(poutine.substitute(model, data=leaves), trace=g)
            ).get_trace(*args, **kwargs)
    out: dict[str, bool] = {}
    for name, site in m.nodes.items():
        if site["type"] != "sample" or site["is_observed"] or name not in g.nodes:
            continue
        try:
            kl_divergence(g.nodes[name]["fn"], site["fn"])  # type: ignore[arg-type]
            out[name] = True
        except NotImplementedError:
            out[name] = False
    return out
