"""The contract between dualguide's neutral core and its backends.

A backend (``dualguide/backends/<name>/``) is a package whose ``BACKEND`` object
implements :class:`Backend`, and whose ``FEATURES`` (also ``Backend.features``)
name the framework-side half of each tool (transforms, autoguides, doctor, ...).
The neutral side reaches those modules only through
:func:`dualguide._state.feature`.  This module also holds the types that cross the
line in either direction, so that a backend imports only the kernel and this
contract, never a tool built on top (``tests/test_contract.py`` checks both rules).

Nothing here imports jax or torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from . import constraints as _c
from ._table import AUTOGUIDE_CONSTRAINTS, BACKENDS, CONSTRAINT_ARGS, CONSTRAINTS
from .constraints import Constraint
from .errors import DualGuideError, SpecError

__all__ = [
    "Backend",
    "BatchRun",
    "CannotVectorize",
    "FEATURES",
    "FEATURE_API",
    "FitOutput",
    "NotLockstepable",
    "Plan",
    "neutral_constraint",
]

#: the feature modules every backend provides (``Backend.features`` maps each name to a module
#: path), and what each must define: the functions (and namespaces) the neutral tool of the
#: same name calls through :func:`dualguide._state.feature`
FEATURE_API: dict[str, tuple[str, ...]] = {
    # native autoguides (dualguide.autoguides)
    "autoguides": (
        "make",
        "load",
        "layout",
        "median",
        "quantiles",
        "sample_posterior",
        "laplace",
        "make_list",
    ),
    # kernels of dualguide.crosscheck; NumPyro's module also has the reference-posterior
    # helpers (nuts, quadrature_objective, sample_points), which run on NumPyro only
    "crosscheck": (
        "constrain",
        "unconstrain",
        "elbo_particles",
        "grad_batches",
        "inspect",
        "lockstep_run",
        "logdensities",
        "model_logdensity",
        "sample_guide",
    ),
    # substituted and batched traces for the guide doctor (dualguide.doctor)
    "doctor": ("with_values", "batched_eval", "batched_draws"),
    # declared param shapes for dualguide.load_params
    "params": ("declared",),
    # the pyro-api backend ``dualguide.<name>`` (dualguide.porting.pyroapi)
    "pyroapi": (
        "PYRO",
        "DISTRIBUTIONS",
        "INFER",
        "OPTIM",
        "HANDLERS",
        "OPS",
        "native_param",
        "native_plate",
    ),
    # the jacobian of a transformed latent's map (dualguide.transforms; the rest is neutral)
    "transforms": ("jacobian",),
    # the framework's effect handlers behind dualguide.handlers (and dualguide.predictive)
    "handlers": ("make", "run", "context", "trace_sites", "seen", "predictive"),
    # the framework's own SVI behind dualguide.svi.SVI, and the param store it fills
    "svi": ("make", "clear_param_store", "set_rng_seed"),
    # neutral transforms, biject_to and user-defined distributions (dualguide.dist_transforms,
    # dualguide.distributions.Distribution); the framework's classes for the support matrix
    "dists": ("transform", "biject_to", "user_class", "catalog"),
    # fit with the ELBOs other than Trace_ELBO (dualguide.elbo; the framework's own estimator);
    # grad_draws and lockstep_run: the crosscheck's checks of that estimator; analytic_kl_sites:
    # where TraceMeanField_ELBO uses an analytic KL (the crosscheck compares like with like)
    "elbo": ("fit", "has_rsample_", "grad_draws", "lockstep_run", "analytic_kl_sites"),
    # discrete latents by enumeration (dualguide.enum): the framework's config_enumerate,
    # markov, infer_discrete and Vindex; ``check`` raises when the framework cannot enumerate
    # (``loss_values``: single-particle TraceEnum_ELBO values for dualguide.crosscheck)
    "enum": ("config_enumerate", "markov", "infer_discrete", "vindex", "check", "loss_values"),
    # the layers' kernels and native networks behind dualguide.nn
    "nn": ("linear", "activation", "native_module", "init_key"),
    # the fit loops; fit_batch runs many fits in one program: members (data, init, lr) x
    # seeds (dualguide.fit(batch=[...]), and dualguide.fit(seeds=...) as its one member)
    "fitloop": ("fit", "fit_batch"),
}
#: the feature names, in order
FEATURES: tuple[str, ...] = tuple(FEATURE_API)


# ---------------------------------------------------------------------------------------------
# what a backend provides
# ---------------------------------------------------------------------------------------------
@runtime_checkable
class Backend(Protocol):
    """What the neutral layer asks of a backend object (``dualguide.backends.<name>.BACKEND``).

    Arrays are the framework's own (``array_types``); ``constraint`` arguments are
    :class:`dualguide.constraints.Constraint` objects; site and param names are strings.
    """

    #: the backend's name, one of :data:`dualguide._table.BACKENDS`
    name: str
    #: the namespace answering :mod:`dualguide.ops` (one attribute per op of ``_table.OPS``)
    ops: Any
    #: the framework's array classes (``(jax.Array,)``, ``(torch.Tensor,)``)
    array_types: tuple[type, ...]
    #: feature name (every one of :data:`FEATURES`) -> module path of the backend's half
    features: Mapping[str, str]

    # conversions
    def to_array(self, x: Any) -> Any:
        """A model argument by the input rule of ``dualguide._inputs`` (floats in the current dtype)."""
        ...

    def static_shape(self, shape: Any) -> tuple[int, ...]:
        """An array's ``shape`` (a tuple, ``torch.Size``) as Python ints, read without
        freezing anything into a trace (Pyro's JIT: no ``TracerWarning``)."""
        ...

    def to_numpy(self, x: Any) -> np.ndarray:
        """A framework array (or anything array-like) -> a numpy array, detached."""
        ...

    def in_program(self) -> bool:
        """Whether a model or guide is running (any of the framework's handlers is active):
        outside one, ``dg.param(name)`` reads a fitted value, as numpy."""
        ...

    def constraint(self, c: Constraint) -> Any:
        """The framework's constraint object for neutral constraint ``c`` (cached on ``c``)."""
        ...

    # primitives
    def param(
        self, name: str, init_value: Any, constraint: Constraint, event_dim: int | None
    ) -> Any:
        """The framework's ``param`` (``init_value`` may be None, a value or a callable)."""
        ...

    def sample(
        self, name: str, fn: Any, obs: Any, infer: dict | None, kwargs: dict[str, Any]
    ) -> Any:
        """The framework's ``sample``, with clear errors for foreign or unsamplable ``fn``."""
        ...

    def plate(
        self, name: str, size: int | None, subsample_size: int | None, dim: int | None
    ) -> Any:
        """The framework's ``plate`` context manager."""
        ...

    def factor(self, name: str, log_factor: Any) -> None:
        """The framework's ``factor``."""
        ...

    def deterministic(self, name: str, value: Any, event_dim: int | None) -> Any:
        """The framework's ``deterministic`` (returns ``value`` as a framework array)."""
        ...

    # distributions
    def make_dist(self, name: str, args: tuple, kwargs: dict[str, Any]) -> Any:
        """The framework's distribution for the neutral name ``name`` (a ``_table`` row)."""
        ...

    def override(self, name: str) -> type | None:
        """The class dualguide uses instead of the framework's for distribution ``name``, or None."""
        ...

    # running
    def optimizer(self, opt: Any) -> Any:
        """The framework's optimizer for a :class:`dualguide.optim.Optimizer`."""
        ...

    def fit(
        self,
        model: Callable,
        guide: Callable,
        args: tuple,
        kwargs: dict[str, Any],
        opt: Any,
        *,
        num_steps: int,
        num_particles: int,
        seed: int,
        on_nonfinite: str,
        progress: bool | None,
        jit: bool,
    ) -> FitOutput:
        """Run SVI with ``Trace_ELBO`` on the rendered ``model`` / ``guide``.

        ``opt`` is a :class:`dualguide.optim.Optimizer`; the settings are checked by
        :func:`dualguide.fit`, which documents them; the params' init values go
        through the active :func:`dualguide._state.param_overrides`.
        """
        ...

    def trace(self, fn: Callable, args: tuple, kwargs: dict[str, Any], seed: int) -> dict:
        """Run ``fn`` once with seed ``seed``: ``{name: dualguide.trace.Site}`` in order."""
        ...

    # dtype
    def use_dtype(self, name: str) -> None:
        """Make ``name`` (``"float32"`` / ``"float64"``) the framework's float dtype (``dg.set_dtype``)."""
        ...


@dataclass
class FitOutput:
    """What a backend's fit loop returns to :func:`dualguide.fit` (numpy arrays, plain types)."""

    #: constrained params by name (the last finite ones when the fit stopped early)
    params: dict[str, np.ndarray]
    #: ``losses[i]``: the loss before update ``i``
    losses: np.ndarray
    #: steps run (fewer than asked when stopped or interrupted)
    steps_done: int
    #: seconds, compilation included
    wall_time: float
    #: the ELBO actually used (``"Trace_ELBO"``, ``"JitTrace_ELBO"``)
    elbo: str
    #: steps dropped because their loss or gradient was not finite (``on_nonfinite="skip"``)
    skipped: list[int] = field(default_factory=list)
    #: the step whose loss or gradient was not finite (``on_nonfinite="stop"``), else None
    stopped_at: int | None = None
    #: a note for the user (e.g. "interrupted at step ...")
    message: str = ""
    #: what was not finite at ``stopped_at``
    what: str = "loss or gradient"


# ---------------------------------------------------------------------------------------------
# types and helpers both sides use
# ---------------------------------------------------------------------------------------------
class CannotVectorize(DualGuideError):
    """Raised by a backend's ``fitloop.fit_batch`` when the fits cannot run as
    one program (the message says why); :func:`dualguide.fit` then fits them one after the
    other."""


@dataclass
class BatchRun:
    """One fit of ``dualguide.fit(batch=[...])`` handed to a backend's ``fitloop.fit_batch``:
    batch member ``member`` with ``seed``.  ``args`` / ``kwargs`` are the backend's arrays
    (every run has the same shapes; only float arrays differ between members), ``opt`` differs
    from the other runs' at most in ``lr`` (a number), ``init`` are the member's constrained
    init values (enter them with :meth:`init_scope` around the run's init trace)."""

    member: int
    seed: int
    args: tuple
    kwargs: dict
    opt: Any
    init: dict = field(default_factory=dict)

    def init_scope(self) -> Any:
        """A context in which the active param hook applies this run's ``init`` on top of the
        fit's own overrides (the hook of :func:`dualguide._state.param_overrides`)."""
        import contextlib

        from . import _state

        @contextlib.contextmanager
        def scope():
            hook = _state.param_hook
            if hook is None or not self.init:
                yield
                return
            saved = hook.overrides
            hook.overrides = {**saved, **self.init}
            try:
                yield
            finally:
                hook.overrides = saved

        return scope()


class NotLockstepable(DualGuideError):
    """A guide site whose distribution cannot be drawn from supplied noise in both backends."""


def neutral_constraint(native: Any, module: ModuleType, backend: str) -> Constraint | None:
    """The neutral constraint for a native constraint object (None if there is none).

    ``module`` is the native constraints module of ``backend``.  Independent
    (event) wrappers are dropped; the autoguide-only constraints map through
    :data:`dualguide._table.AUTOGUIDE_CONSTRAINTS`.
    """
    if native is None:
        return _c.real
    c = native
    while hasattr(c, "base_constraint") and hasattr(c, "reinterpreted_batch_ndims"):
        c = c.base_constraint
    i = BACKENDS.index(backend)
    for name, natives in CONSTRAINTS.items():  # singletons first
        if name not in CONSTRAINT_ARGS and getattr(module, natives[i], None) is c:
            return _c._SINGLETONS[name]
    for native_name, name in AUTOGUIDE_CONSTRAINTS.items():
        if getattr(module, native_name, None) is c:
            return _c._SINGLETONS[name]
    for name, natives in CONSTRAINTS.items():
        cls = getattr(module, natives[i], None)
        if name in CONSTRAINT_ARGS and isinstance(cls, type) and type(c) is cls:
            try:
                args = [float(getattr(c, a)) for a in CONSTRAINT_ARGS[name]]
            except (TypeError, ValueError, AttributeError):
                return None
            return getattr(_c, name)(*args)
    return None


def _describe(out_names, in_names) -> str:
    return f"transformed ({', '.join(out_names)}) <- ({', '.join(in_names)})"


def _broadcast_shapes(shapes, what: str) -> tuple:
    shapes = [tuple(s) for s in shapes]
    if all(s == shapes[0] for s in shapes):  # the usual case, without numpy's slower check
        return shapes[0] if shapes else ()
    try:
        return tuple(np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError:
        raise SpecError(
            f"{what}: batch shapes {[tuple(s) for s in shapes]} do not broadcast"
        ) from None


class Plan:
    """Shapes of one transformed call: common batch shape and per-site event sizes."""

    def __init__(self, in_names, out_names, in_shapes, in_eds):
        self.in_names, self.out_names = tuple(in_names), tuple(out_names)
        self.desc = _describe(self.out_names, self.in_names)
        batch = []
        self.in_event_shapes = []
        for n, s, e in zip(self.in_names, in_shapes, in_eds):
            s = tuple(s)
            if e > len(s):
                raise SpecError(f"{self.desc}: base {n!r} has shape {s} but event_dim {e}")
            batch.append(s[: len(s) - e])
            self.in_event_shapes.append(s[len(s) - e :])
        self.batch_shape = _broadcast_shapes(batch, self.desc)
        self.in_sizes = [math.prod(s) for s in self.in_event_shapes]
        self.d_in = sum(self.in_sizes)
        self.out_event_shapes: list[tuple] = []
        self.out_sizes: list[int] = []
        #: whether every input and output is a scalar per batch element (set by :meth:`outputs`)
        self.scalars = False
        self._checked: tuple | None = None

    def in_full_shape(self, i) -> tuple:
        return self.batch_shape + self.in_event_shapes[i]

    def outputs(self, out_shapes, out_eds) -> None:
        """Check the outputs' shapes (batch part within the inputs' batch shape)."""
        if len(out_shapes) != len(self.out_names):
            raise SpecError(
                f"{self.desc}: fn returned {len(out_shapes)} output(s) for "
                f"{len(self.out_names)} name(s); return one array per name, in order"
            )
        self.out_event_shapes = []
        for n, s, e in zip(self.out_names, out_shapes, out_eds):
            s = tuple(s)
            if e > len(s):
                raise SpecError(
                    f"{self.desc}: output {n!r} has shape {s}, fewer dims than its event_dims {e}"
                )
            ob, oe = s[: len(s) - e], s[len(s) - e :]
            try:
                full = (
                    ob
                    if ob == self.batch_shape
                    else tuple(np.broadcast_shapes(ob, self.batch_shape))
                )
            except ValueError:
                full = None
            if full != self.batch_shape:
                raise SpecError(
                    f"{self.desc}: output {n!r} has batch shape {ob} (shape {s}, event_dims {e}) "
                    f"but the base latents' batch shape is {self.batch_shape}; every output "
                    "number must come from the base numbers of its own batch element (give the "
                    "output its event dims with event_dims=, or put the base sites in the same plates)"
                )
            self.out_event_shapes.append(oe)
        self.out_sizes = [math.prod(s) for s in self.out_event_shapes]
        self.d_out = sum(self.out_sizes)
        self.scalars = all(e == () for e in self.in_event_shapes) and all(
            e == () for e in self.out_event_shapes
        )

    def outputs_checked(self, out_shapes, out_eds, square: bool) -> None:
        """:meth:`outputs`, then :meth:`check_square` when ``square``; skipped when this plan
        last passed the same check (a backend that keeps its plans per shapes, as Pyro's
        ``jacobian`` does for the program it runs eagerly at every step, checks once)."""
        key = (tuple(out_shapes), tuple(out_eds), square)
        if key != self._checked:
            self.outputs(out_shapes, out_eds)
            if square:
                self.check_square()
            self._checked = key

    def out_full_shape(self, j) -> tuple:
        return self.batch_shape + self.out_event_shapes[j]

    def check_square(self) -> None:
        if self.d_out != self.d_in:
            ins = ", ".join(f"{n}: {k}" for n, k in zip(self.in_names, self.in_sizes))
            outs = ", ".join(f"{n}: {k}" for n, k in zip(self.out_names, self.out_sizes))
            raise SpecError(
                f"{self.desc}: the map is not square: it takes {self.d_in} number(s) per batch "
                f"element ({ins}) and returns {self.d_out} ({outs}); a density needs a bijection, "
                "so inputs and outputs must have the same total size (check event_dims and the "
                "base distributions' event shapes; use .to_event to make batch dims event dims)"
            )
        if self.d_in == 0:
            raise SpecError(f"{self.desc}: the base latents have no numbers (empty event shapes)")


def _as_outputs(result, desc: str, n: int) -> tuple:
    """``fn``'s result as a tuple of ``n`` outputs (a lone array counts as one)."""
    if isinstance(result, (tuple, list)):
        return tuple(result)
    if n == 1:
        return (result,)
    raise SpecError(
        f"{desc}: fn returned a single array for {n} names; return a tuple of {n} arrays"
    )
