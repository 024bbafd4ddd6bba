"""``fit``: run the native SVI of a backend on a neutral model and guide."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np

from . import _inputs, _state

# they lived here; kept importable for code written against the old place
from ._state import ParamHook  # noqa: F401
from ._state import check_init_params as _check_init_params  # noqa: F401
from .constraints import Constraint
from .contract import FitOutput
from .errors import FitError, SpecError
from .optim import Optimizer, as_optimizer
from .render import render

__all__ = ["fit", "FitResult"]

log = logging.getLogger("dualguide")


@dataclass
class FitResult:
    """What a fit returns, backend-neutral: numpy arrays and plain Python types.

    ``params`` are constrained values; ``losses[i]`` is the loss (negative ELBO
    estimate) at the params before update ``i``.
    """

    params: dict[str, np.ndarray]
    losses: np.ndarray
    backend: str
    num_steps: int
    wall_time: float
    num_particles: int = 1
    seed: int = 0
    elbo: str = "Trace_ELBO"
    optimizer: str = ""
    constraints: dict[str, Constraint] = field(default_factory=dict)
    skipped_steps: list[int] = field(default_factory=list)
    stopped_at: int | None = None
    message: str = ""
    #: the index of the batch member this fit ran (``fit(batch=[...])``), else None
    member: int | None = None

    @property
    def steps_per_second(self) -> float:
        """Steps run per second of wall time (compilation included)."""
        return self.num_steps / self.wall_time if self.wall_time > 0 else math.inf

    def __repr__(self) -> str:
        ps = ", ".join(
            f"{k}={np.array2string(np.asarray(v), precision=4)}" for k, v in self.params.items()
        )
        return (
            f"FitResult(backend={self.backend!r}, steps={self.num_steps}, "
            f"loss={self.final_loss:.4f}, wall_time={self.wall_time:.2f}s, params: {ps})"
        )

    @property
    def final_loss(self) -> float:
        """Mean of the last 10% of finite losses (a less noisy end-of-fit loss)."""
        ls = self.losses[np.isfinite(self.losses)]
        if ls.size == 0:
            return math.nan
        return float(np.mean(ls[-max(1, ls.size // 10) :]))


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise SpecError(f"fit: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@overload
def fit(
    model: Callable,
    guide: Callable,
    *,
    backend: str | None = ...,
    model_args: tuple = ...,
    model_kwargs: dict | None = ...,
    optim: Optimizer | float | None = ...,
    num_steps: int = ...,
    num_particles: int = ...,
    seed: int = ...,
    seeds: None = ...,
    batch: None = ...,
    init_params: dict[str, Any] | None = ...,
    on_nonfinite: str = ...,
    progress: bool | None = ...,
    jit: bool = ...,
    check: bool = ...,
    loss: Any = ...,
    dtype: str | None = ...,
) -> FitResult: ...


@overload
def fit(
    model: Callable,
    guide: Callable,
    *,
    backend: str | None = ...,
    model_args: tuple = ...,
    model_kwargs: dict | None = ...,
    optim: Optimizer | float | None = ...,
    num_steps: int = ...,
    num_particles: int = ...,
    seed: int = ...,
    seeds: Sequence[int],
    batch: None = ...,
    init_params: dict[str, Any] | None = ...,
    on_nonfinite: str = ...,
    progress: bool | None = ...,
    jit: bool = ...,
    check: bool = ...,
    loss: Any = ...,
    dtype: str | None = ...,
) -> list[FitResult]: ...


@overload
def fit(
    model: Callable,
    guide: Callable,
    *,
    backend: str | None = ...,
    model_args: tuple = ...,
    model_kwargs: dict | None = ...,
    optim: Optimizer | float | None = ...,
    num_steps: int = ...,
    num_particles: int = ...,
    seed: int = ...,
    seeds: None = ...,
    batch: Sequence[dict[str, Any]],
    init_params: dict[str, Any] | None = ...,
    on_nonfinite: str = ...,
    progress: bool | None = ...,
    jit: bool = ...,
    check: bool = ...,
    loss: Any = ...,
    dtype: str | None = ...,
) -> list[FitResult]: ...


@overload
def fit(
    model: Callable,
    guide: Callable,
    *,
    backend: str | None = ...,
    model_args: tuple = ...,
    model_kwargs: dict | None = ...,
    optim: Optimizer | float | None = ...,
    num_steps: int = ...,
    num_particles: int = ...,
    seed: int = ...,
    seeds: Sequence[int],
    batch: Sequence[dict[str, Any]],
    init_params: dict[str, Any] | None = ...,
    on_nonfinite: str = ...,
    progress: bool | None = ...,
    jit: bool = ...,
    check: bool = ...,
    loss: Any = ...,
    dtype: str | None = ...,
) -> list[list[FitResult]]: ...


def fit(
    model: Callable,
    guide: Callable,
    *,
    backend: str | None = None,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    optim: Optimizer | float | None = None,
    num_steps: int = 2000,
    num_particles: int = 1,
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    batch: Sequence[dict[str, Any]] | None = None,
    init_params: dict[str, Any] | None = None,
    on_nonfinite: str = "stop",
    progress: bool | None = None,
    jit: bool = True,
    check: bool = True,
    loss: Any = "Trace_ELBO",
    dtype: str | None = None,
) -> FitResult | list[FitResult] | list[list[FitResult]]:
    """Fit ``guide`` to ``model`` with the native SVI and ``Trace_ELBO`` of ``backend``.

    NumPyro runs the whole loop under ``jit`` (``lax.scan`` over chunks of
    steps); Pyro uses ``JitTrace_ELBO`` when the program can be traced and falls
    back to ``Trace_ELBO`` otherwise, logging why (``logging.getLogger("dualguide")``).
    Particles follow NumPyro's rule on both backends: the model never sees a particle
    dimension and each particle draws its own minibatch (``docs/particles.md``; Pyro
    vmaps one particle).  ``seed`` is a plain int; a Pyro
    fit runs in its own param-store scope and RNG fork, so the global
    ``ParamStore`` and torch RNG are left as they were.

    ``init_params`` (constrained values by name) replace the guide's initial
    values, e.g. to continue a fit from another backend.  ``on_nonfinite``:
    ``"stop"`` (default) stops at the first step whose loss or gradient is NaN
    or inf and raises :class:`~dualguide.errors.FitError` carrying the last
    finite params in ``.result``; ``"skip"`` drops such steps and goes on
    (their numbers are in ``result.skipped_steps``).  A fit interrupted with
    Ctrl-C returns the params it had, with ``result.message`` saying so.

    ``check=True`` (default) first runs the guide doctor's cheap checks
    (:func:`dualguide.doctor.cheap_checks`, a few traces): errors (a model
    latent the guide lacks or fakes with ``deterministic``, an ``ImproperUniform``
    in the guide, a param-free sampler "shaped" by a guide factor, shape
    mismatches) raise :class:`~dualguide.errors.SpecError` before any step;
    warnings are issued as :class:`~dualguide.errors.CheckWarning`.  Pass
    ``check=False`` to skip them.

    ``loss`` is an ELBO of :mod:`dualguide.infer` (``Trace_ELBO`` default,
    ``TraceMeanField_ELBO``, ``TraceGraph_ELBO``, ``RenyiELBO(alpha)``) or its name; each runs the
    framework's own estimator (``docs/elbo.md``) and ``result.elbo`` names the one that ran.  A
    loss object carries its own ``num_particles``.  ``dtype="float64"`` runs this fit in float64 on
    either backend (as ``with dg.use_dtype("float64"):`` around it); None keeps the current
    dtype (:func:`dualguide.get_dtype`).

    ``seeds=[s0, s1, ...]`` (instead of ``seed``) runs one fit per seed **in one compiled
    program** and returns a list of :class:`FitResult`, one per seed, in order
    (``docs/benchmarks.md`` has the speed-ups).  NumPyro ``jax.vmap``-s the compiled loop
    over the SVI states: each seed's losses and params equal ``fit(seed=s)``'s to float32
    rounding.  Pyro ``torch.func.vmap``-s the traced ELBO over one flat param row per seed:
    each seed starts from the params ``fit(seed=s)`` starts from, but its draws come from one
    batched torch stream, so it equals ``fit(seed=s)`` in distribution, not draw for draw.
    A seed whose step is not finite stops (or skips, ``on_nonfinite="skip"``) on its own;
    with ``"stop"``, :class:`~dualguide.errors.FitError` is raised after the batch, naming
    the seeds, with the list of results in ``.result``.  ``wall_time`` is the batch's.
    Losses other than ``Trace_ELBO`` and ``jit=False`` run the seeds one after the other.
    One exception to "equals the separate fit" on NumPyro: with ``batch`` members sharing
    their init values, an autoguide whose init strategy draws (``"uniform"``, ``"sample"``,
    ``"median"``) is set up once, from the first run's key, so every run starts from its init
    values (``seeds`` alone: each seed draws its own, as ``fit(seed=s)`` does).

    ``batch=[{...}, {...}]`` runs one fit per **batch member** in one program, alone or with
    ``seeds`` (``docs/batch.md``).  A member is a dict of the arguments that differ:
    ``model_args`` / ``model_kwargs`` (data of equal shapes), ``init_params``, ``optim`` (the
    learning rate may differ) and ``seed``; the others are ``fit``'s.  Returns one
    :class:`FitResult` per member (``result.member``), or with ``seeds`` a list per member,
    one per seed; each equals the member's separate fit (float rounding).  Members that cannot
    share a program run one after the other, the reason logged.  E.g.
    ``dg.fit(model, guide, batch=[{"model_args": (y1,)}, {"model_args": (y2,)}])``.

    >>> import dualguide as dg
    >>> from dualguide import constraints, distributions as dist
    >>> def model():
    ...     dg.sample("x", dist.Normal(0.0, 2.0))
    >>> def guide():
    ...     s = dg.param("s", 1.0, constraint=constraints.positive)
    ...     dg.sample("x", dist.Normal(0.0, s))
    >>> r = dg.fit(model, guide, num_steps=3000, num_particles=8,
    ...            optim=dg.optim.ClippedAdam(lr=0.05, lrd=0.998))
    >>> round(float(r.params["s"]), 1)
    2.0
    """
    from .elbo import as_loss

    _check_int("num_particles", num_particles, 1)
    loss_obj = as_loss(loss, num_particles)
    if dtype is not None:
        with _inputs.use_dtype(dtype):
            return fit(
                model,
                guide,
                backend=backend,
                model_args=model_args,
                model_kwargs=model_kwargs,
                optim=optim,
                num_steps=num_steps,
                num_particles=num_particles,
                seed=seed,
                seeds=seeds,
                batch=batch,
                init_params=init_params,
                on_nonfinite=on_nonfinite,
                progress=progress,
                jit=jit,
                check=check,
                loss=loss,
            )
    b = _state.resolve(backend)
    opt = as_optimizer(optim)
    num_steps = _check_int("num_steps", num_steps, 1)
    num_particles = _check_int("num_particles", loss_obj.num_particles, 1)
    seed = _check_int("seed", seed, 0)
    seed_list = _check_seeds(seeds, seed)
    if on_nonfinite not in ("stop", "skip"):
        raise SpecError(f"fit: on_nonfinite must be 'stop' or 'skip', got {on_nonfinite!r}")
    if not isinstance(model_args, (tuple, list)):
        raise SpecError(
            f"fit: model_args must be a tuple (or list) of arguments, got "
            f"{type(model_args).__name__}; for one argument write model_args=(data,)"
        )
    if batch is not None or seed_list is not None:  # many fits: one program if it can
        from ._batch import fit_batch

        return fit_batch(
            model,
            guide,
            b,
            batch,
            seed_list,
            loss_obj,
            dict(
                model_args=model_args,
                model_kwargs=model_kwargs,
                optim=optim,
                num_steps=num_steps,
                num_particles=num_particles,
                seed=seed,
                init_params=init_params,
                on_nonfinite=on_nonfinite,
                progress=progress,
                jit=jit,
                check=check,
                loss=loss,
            ),
        )
    _check_signature(model, "model", model_args, model_kwargs)
    _check_signature(guide, "guide", model_args, model_kwargs)
    from .autoguides import AutoGuide

    if isinstance(guide, AutoGuide):  # its median & co. default to these arguments
        guide.remember(model_args, model_kwargs)
    if loss_obj.name != "Trace_ELBO":
        from .elbo import check_program

        check_program(loss_obj, model, guide, b, tuple(model_args), model_kwargs)
    from .elbo import warn_estimator_mismatch

    warn_estimator_mismatch(loss_obj, guide, b, tuple(model_args), model_kwargs)
    if check:
        from .doctor import fit_checks

        fit_checks(model, guide, b, model_args, model_kwargs, init_params, seed, on_nonfinite)
    m, g = render(model, b), render(guide, b)
    args = tuple(b.to_array(a) for a in model_args)
    kwargs = {k: b.to_array(v) for k, v in (model_kwargs or {}).items()}

    with _state.param_overrides(init_params) as hook:
        if loss_obj.name == "Trace_ELBO":
            out: FitOutput = b.fit(
                m,
                g,
                args,
                kwargs,
                opt,
                num_steps=num_steps,
                num_particles=num_particles,
                seed=seed,
                on_nonfinite=on_nonfinite,
                progress=progress,
                jit=jit,
            )
        else:  # the framework's own estimator (docs/elbo.md)
            out = _state.feature(b, "elbo").fit(
                b,
                m,
                g,
                args,
                kwargs,
                opt,
                loss=loss_obj.name,
                options=loss_obj.options,
                num_steps=num_steps,
                num_particles=num_particles,
                seed=seed,
                on_nonfinite=on_nonfinite,
                progress=progress,
                jit=jit,
            )
    unknown = sorted(set(hook.overrides) - set(hook.constraints))
    if unknown:
        raise SpecError(
            f"fit: init_params has {', '.join(map(repr, unknown))}, which the guide and model "
            f"never declare (they declare {', '.join(map(repr, sorted(hook.constraints))) or 'no params'})"
        )
    result = _result(out, b, num_particles, seed, opt, hook)
    if out.stopped_at is not None:
        sites = _nonfinite_note(
            model, guide, b, model_args, model_kwargs, result.params, seed + out.stopped_at
        )
        raise FitError(
            f"fit ({b.name}): step {out.stopped_at} gave a non-finite "
            f"{out.what}{sites}; stopped there and kept "
            "the last finite params in .result (pass on_nonfinite='skip' to drop such steps)",
            result,
        )
    return result


def _check_seeds(seeds, seed: int) -> list[int] | None:
    if seeds is None:
        return None
    if seed != 0:
        raise SpecError("fit: give seed= or seeds=, not both (seeds=[...] runs one fit per seed)")
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise SpecError(f"fit: seeds must be a list of integers >= 0, got {seeds!r}")
    out = [_check_int("seeds[...]", s, 0) for s in seeds]
    if not out:
        raise SpecError("fit: seeds is empty; give at least one seed")
    return out


def _result(out: FitOutput, b, num_particles: int, seed: int, opt, hook) -> FitResult:
    return FitResult(
        params=out.params,
        losses=out.losses,
        backend=b.name,
        num_steps=out.steps_done,
        wall_time=out.wall_time,
        num_particles=num_particles,
        seed=seed,
        elbo=out.elbo,
        optimizer=repr(opt),
        constraints=dict(hook.constraints),
        skipped_steps=out.skipped,
        stopped_at=out.stopped_at,
        message=out.message,
    )


def _nonfinite_note(model, guide, b, model_args, model_kwargs, params, seed) -> str:
    """Which sites have a NaN/inf log density when traced at the last finite params."""
    from .doctor import nonfinite_sites

    try:
        bad = nonfinite_sites(
            model,
            guide,
            backend=b,
            model_args=model_args,
            model_kwargs=model_kwargs,
            params=params,
            seed=seed,
        )
    except Exception:
        return ""
    if not bad:
        return (
            " (no site had a NaN/inf log density in 32 draws at the last finite params: a rare "
            "draw or a gradient did it)"
        )
    return (
        " (sites with a NaN/inf log density or value at the last finite params: "
        + ", ".join(f"{k!r} in the {where}" for k, where in bad)
        + ")"
    )


def _check_signature(fn, role: str, args, kwargs) -> None:
    """Refuse arguments the program cannot take, naming them (before any framework runs it)."""
    import inspect

    target = getattr(fn, "neutral", fn)
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return  # builtins, autoguide objects: let them speak for themselves
    try:
        sig.bind(*args, **(kwargs or {}))
    except TypeError as e:
        name = getattr(target, "__name__", role)
        raise SpecError(
            f"fit: the {role} {name}{sig} cannot be called with model_args={tuple(args)!r:.60} "
            f"and model_kwargs={dict(kwargs or {})!r:.60} ({e}); pass its data as "
            "model_args=(...) / model_kwargs={...}"
        ) from None


#: the SVI object, Predictive and the reparameterizers, imported on first access
_LAZY_INFER = {
    "SVI": ("dualguide.svi", "SVI"),
    "Trace_ELBO": ("dualguide.svi", "Trace_ELBO"),
    "TraceMeanField_ELBO": ("dualguide.svi", "TraceMeanField_ELBO"),
    "TraceGraph_ELBO": ("dualguide.svi", "TraceGraph_ELBO"),
    "RenyiELBO": ("dualguide.svi", "RenyiELBO"),
    # NumPyro's functional fitting code, ported (docs/handlers.md)
    "SVIState": ("dualguide.svi", "SVIState"),
    "SVIRunResult": ("dualguide.svi", "SVIRunResult"),
    "PRNGKey": ("dualguide.svi", "PRNGKey"),
    "scan": ("dualguide.svi", "scan"),
    "fori_loop": ("dualguide.svi", "fori_loop"),
    "jit": ("dualguide.svi", "jit"),
    "has_rsample_": ("dualguide.elbo", "has_rsample_"),
    "TraceEnum_ELBO": ("dualguide.elbo", "TraceEnum_ELBO"),
    "config_enumerate": ("dualguide.enum", "config_enumerate"),
    "infer_discrete": ("dualguide.enum", "infer_discrete"),
    "Predictive": ("dualguide.predictive", "Predictive"),
    "reparam": ("dualguide.reparam", None),
}


def __getattr__(name: str) -> Any:
    entry = _LAZY_INFER.get(name)
    if entry is None:
        raise AttributeError(f"module 'dualguide.infer' has no attribute {name!r}")
    import importlib

    mod, attr = entry
    m = importlib.import_module(mod)
    return m if attr is None else getattr(m, attr)
