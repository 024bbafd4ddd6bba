"""The Pyro (PyTorch) backend. Every torch/pyro import of dualguide lives under this folder."""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pyro
import pyro.distributions as pd
import torch
from pyro import poutine
from pyro.poutine.block_messenger import BlockMessenger as _BlockMessenger
from pyro.poutine.plate_messenger import PlateMessenger as _Plate
from pyro.poutine.runtime import _PYRO_STACK
from pyro.poutine.trace_messenger import TraceMessenger as _TraceMessenger
from torch.distributions import constraints as tc

from ... import _inputs, _table
from ...constraints import Constraint
from ...contract import FEATURES, FitOutput
from ...errors import (
    DualGuideError,
    SpecError,
    dist_arg_error,
    foreign_dist_type,
    no_sampler_error,
)
from ...ops import _call_init
from ...optim import Optimizer
from ...trace import Site, no_sampler_name, plain_site, sample_site
from .ops import Ops, TorchKey
from .optim import make_optimizer

log = logging.getLogger("dualguide")

#: the framework side of each neutral tool: a module of this folder per contract feature
FEATURE_MODULES = {k: f"{__name__}.{k}" for k in FEATURES}

#: the current float dtype (float32 unless dg.set_dtype("float64"); use_dtype rebinds it here
#: and in every module of this backend that has an ``F32``)
F32 = torch.float64 if _inputs.get_dtype() == "float64" else torch.float32
_NEG_INF = -math.inf
_Distribution = torch.distributions.Distribution


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a)


def _native(r):
    """What ``dualguide._inputs`` returns, as tensors (float tensors in the current dtype)."""
    if isinstance(r, np.ndarray):
        return torch.tensor(r)
    if isinstance(r, tuple):
        return tuple(_native(v) for v in r)
    if isinstance(r, torch.Tensor) and r.is_floating_point() and r.dtype != F32:
        return r.to(F32)
    return r


def _obs(name, fn, obs):
    """Observations by the one input rule; Pyro's discrete log_probs take them as floats."""
    if not isinstance(obs, torch.Tensor):
        try:
            discrete = bool(getattr(fn.support, "is_discrete", False))
        except NotImplementedError:
            discrete = False
        obs = torch.tensor(_inputs.obs(obs, name, discrete))
    elif torch.jit.is_tracing():
        # under JitTrace_ELBO's trace, sizes are traced tensors: reading them as Python ints
        # would cost the JIT (a TracerWarning makes the fit fall back to Trace_ELBO); the
        # checks below already ran on the fit's first, eager, step
        return obs if obs.dtype == F32 else obs.to(F32)
    else:
        err = _inputs.obs_shape_error(name, obs.shape)
        if err is not None:
            raise err
    if obs.dtype != F32:
        obs = obs.to(F32)
    plates = _plates()
    if plates:
        _inputs.check_plates(name, tuple(obs.shape), len(getattr(fn, "event_shape", ())), plates)
    return obs


def _plates() -> list[tuple]:
    """The active plates of the program, ``(name, size, dim)`` (sizes as subsampled)."""
    return [
        (f.name, f.size if f.subsample_size is None else f.subsample_size, f.dim)
        for f in _PYRO_STACK
        if isinstance(f, _Plate) and not str(f.name).startswith(_PARTICLE_PLATES)
    ]


#: Pyro's vectorized-particle plate (not a plate of the program)
_PARTICLE_PLATES = ("num_particles", "_num_particles")


def _no_duplicate(name: str, kind: str) -> None:
    """A site name used twice in one run: one SpecError (Pyro raises a RuntimeError)."""
    msg: dict | None = None  # built at the first block (this runs at every site of every step)
    for h in reversed(_PYRO_STACK):  # innermost first, as the message travels
        if isinstance(h, _BlockMessenger):
            if msg is None:
                msg = dict(name=name, type=kind, fn=None, infer={}, kwargs={}, is_observed=False)
            if h.hide_fn(msg):
                break  # traces outside a block that hides the site never see it (AutoGuideList)
        if isinstance(h, _TraceMessenger) and name in h.trace.nodes:
            old = h.trace.nodes[name]["type"]
            if old == "sample" and h.trace.nodes[name]["infer"].get("_deterministic"):
                old = "deterministic"
            if kind != "param" or old != "param":
                raise _inputs.duplicate_error(name, kind, old)


# Support masking ---------------------------------------------------------------------------
# The documented behaviour of both backends: distribution *parameters* are validated as the
# frameworks do by default, but a *value* outside a distribution's support gets
# log_prob = -inf (NumPyro's behaviour) instead of Pyro's ValueError.


class _SupportMasked:
    """Mixin: no exception for out-of-support values; their log_prob is -inf."""

    def _validate_sample(self, value):  # parameters are still validated in __init__
        pass

    def log_prob(self, value):
        _unvalidated_bases(self)
        support = self.support
        if _real(support):
            return super().log_prob(value)
        ok = support.check(value)
        if support.is_discrete and ok.shape == value.shape:
            # an out-of-range index would fail inside log_prob (OrderedLogistic); 0 is in
            # every discrete support of torch, and its log_prob is masked below
            value = torch.where(ok, value, torch.zeros_like(value))
        lp = super().log_prob(value)
        return torch.where(ok, lp, lp.new_full((), _NEG_INF))

    def expand(self, batch_shape, _instance=None):
        try:
            return super().expand(batch_shape, _instance)
        except NotImplementedError:  # pyro's LKJ cannot expand itself
            return pd.ExpandedDistribution(self, torch.Size(batch_shape))

    def to_event(self, reinterpreted_batch_ndims=None):
        d = super().to_event(reinterpreted_batch_ndims)
        d._validate_args = False  # the base already masks; Independent must not raise
        return d


#: torch constraints that wrap a ``base_constraint`` without narrowing it: reinterpreted event
#: dims, and a mixture's support (its components' support, checked per component)
_WRAPPERS = tuple(
    c for c in (tc.independent, getattr(tc, "MixtureSameFamilyConstraint", None)) if c is not None
)


def _real(support) -> bool:
    """Whether ``support`` is the real line (possibly wrapped, see :data:`_WRAPPERS`): then no
    value lies outside it and there is nothing to mask (no check, no ``where`` in the step)."""
    while isinstance(support, _WRAPPERS):
        support = support.base_constraint
    return support is tc.real


def _unvalidated_bases(d) -> None:
    """Stop the base distributions inside ``d`` (a TransformedDistribution such as LogNormal,
    a wrapper such as Independent) from raising on the out-of-support values they are passed;
    ``d`` itself masks those to -inf."""
    for attr in ("base_dist", "_dirichlet"):  # torch's Beta keeps a Dirichlet
        base = getattr(d, attr, None)
        while base is not None and getattr(base, "_validate_args", False):
            base._validate_args = False
            base = getattr(base, "base_dist", None)


_MASKED: dict = {}


def masked(cls):
    """The support-masked subclass of a pyro distribution class (cached)."""
    sub = _MASKED.get(cls)
    if sub is None:
        sub = type(cls.__name__, (_SupportMasked, cls), {"__module__": __name__})
        _MASKED[cls] = sub
    return sub


class PyroBackend:
    """Answers the neutral API with pyro primitives and distributions."""

    name = "pyro"
    ops = Ops
    array_types: tuple[type, ...] = (torch.Tensor,)
    features = FEATURE_MODULES

    def __init__(self) -> None:
        self._dist_fns: dict = {}

    # conversions ---------------------------------------------------------------------------
    def to_array(self, x: Any) -> Any:
        return _native(_inputs.model_arg(x, self.array_types, self.name))

    def static_shape(self, shape: Any) -> tuple[int, ...]:
        return static_ints(shape)

    def to_numpy(self, x: Any) -> np.ndarray:
        if isinstance(x, torch.Tensor):
            return x.detach().cpu().numpy()
        return np.asarray(x)

    def in_program(self) -> bool:
        return bool(_PYRO_STACK)

    def constraint(self, c: Constraint) -> Any:
        native = c._native.get("pyro")
        if native is None:
            attr = getattr(tc, _table.CONSTRAINTS[c.name][1])
            native = attr(*c.args) if c.args else attr
            c._native["pyro"] = native
        return native

    def use_dtype(self, name: str) -> None:
        """Make ``name`` (``"float32"`` / ``"float64"``) torch's default dtype."""
        f = torch.float64 if name == "float64" else torch.float32
        torch.set_default_dtype(f)
        _rebind_f32(f)

    # primitives ----------------------------------------------------------------------------
    def param(
        self, name: str, init_value: Any, constraint: Constraint, event_dim: int | None
    ) -> Any:
        _no_duplicate(name, "param")
        if init_value is None:
            return pyro.param(name)
        if callable(init_value):
            fn = init_value
            init = lambda: _checked_init(name, _call_init(name, fn, TorchKey()), constraint)
        else:
            init = lambda: _checked_init(name, init_value, constraint)
        return pyro.param(name, init, constraint=self.constraint(constraint), event_dim=event_dim)

    def sample(
        self, name: str, fn: Any, obs: Any, infer: dict | None, kwargs: dict[str, Any]
    ) -> Any:
        if not isinstance(fn, _Distribution):
            _bad_fn(name, fn)
        _no_duplicate(name, "sample")
        if obs is not None:
            obs = _obs(name, fn, obs)
        try:
            return pyro.sample(name, fn, obs=obs, infer=infer, **kwargs)
        except ValueError as e:  # a batch shape that does not fit the plates: one SpecError
            err = _inputs.latent_plate_error(name, getattr(fn, "batch_shape", ()), _plates())
            if err is not None:
                raise err from e
            raise
        except NotImplementedError:
            missing = no_sampler_name(fn) if obs is None else None
            if missing is not None:  # ImproperUniform: name the site
                raise no_sampler_error(name, missing) from None
            raise

    def plate(
        self, name: str, size: int | None, subsample_size: int | None, dim: int | None
    ) -> Any:
        if size is None:
            raise _inputs.no_plate_size(name)
        n = _inputs.plate_size(name, size)
        sub = _inputs.plate_size(name, subsample_size, "subsample_size")
        trace = next(
            (h.trace for h in reversed(_PYRO_STACK) if isinstance(h, _TraceMessenger)), None
        )
        made = None if trace is None else trace.__dict__.setdefault("_dg_plates", {})
        if made is not None and name in made:
            # made again by name in one run (NumPyro allows it): the same plate object, as
            # Pyro allows entering one plate many times (a second one: duplicate site)
            key, old = made[name]
            if key == (n, sub, dim) and (sub is None or sub == n):
                return old
            if sub is not None and sub != n:
                raise _inputs.plate_reentered(name, n, sub)
            raise SpecError(
                f"plate {name!r} is made a second time in one run with another size or dim "
                f"(size {key[0]}, dim {key[2]}, then size {n}, dim {dim}): give it its own name"
            )
        try:
            p = pyro.plate(name, n, subsample_size=sub, dim=dim)
        except ValueError as e:
            m = re.search(r"subsample_size does not match len\(subsample\), (\d+) vs (\d+)", str(e))
            if m is None:
                raise
            raise _inputs.subsample_mismatch(name, int(m[1]), int(m[2])) from None
        if made is not None:
            made[name] = ((n, sub, dim), p)
        return p

    def factor(self, name: str, log_factor: Any) -> None:
        _no_duplicate(name, "factor")
        if not isinstance(log_factor, torch.Tensor):
            log_factor = _native(
                _inputs.value(log_factor, self.array_types, self.name, f"factor {name!r}")
            )
        # pyro.factor without its Unit's validation: a NaN factor then makes a NaN loss, which
        # the fit reports as a FitError naming the step (instead of a ValueError mid-step)
        unit = pd.Unit(log_factor, has_rsample=True, validate_args=False)
        pyro.sample(name, unit, obs=unit.sample(), infer={"is_auxiliary": True})

    def deterministic(self, name: str, value: Any, event_dim: int | None) -> Any:
        _no_duplicate(name, "deterministic")
        if not isinstance(value, torch.Tensor):
            value = _native(
                _inputs.value(value, self.array_types, self.name, f"deterministic {name!r}")
            )
        return pyro.deterministic(name, value, event_dim=event_dim)

    # distributions -------------------------------------------------------------------------
    def make_dist(self, name: str, args: tuple, kwargs: dict[str, Any]) -> Any:
        fn = self._dist_fns.get(name)
        if fn is None:
            fn = self._dist_fns[name] = self._dist_factory(name)
        try:
            args, kwargs = _inputs.dist_params(
                name, args, kwargs, self.array_types, _tensor, self.name
            )
            return fn(*args, **kwargs)
        except (TypeError, ValueError) as e:
            if isinstance(e, DualGuideError):
                raise
            raise dist_arg_error(name, args, kwargs, e, self.name) from None

    def override(self, name: str) -> type | None:
        """The class dualguide uses instead of pyro's for distribution ``name``, or None."""
        return _OVERRIDES.get(name)

    def _dist_factory(self, name):
        spec = _table.DISTRIBUTIONS[name]
        cls = _OVERRIDES.get(name) or masked(getattr(pd, spec.pyro))
        cargs = spec.constraint_args
        conv = self.constraint
        if spec.transform_args:  # neutral transforms -> pyro's (issue 12)
            from ...dist_transforms import to_native

            conv = lambda t: to_native(t, "pyro")
            cargs = spec.transform_args
        if not cargs:
            if name in _FLOAT_ARGS_OK:
                return cls

            def build_floats(*args, **kwargs):
                # Python floats as tensors: some pyro classes (ZeroInflatedPoisson's gate,
                # GammaPoisson, ...) take only tensors where torch's take numbers too
                args = tuple(_t(a) for a in args)
                kwargs = {k: _t(v) for k, v in kwargs.items()}
                return cls(*args, **kwargs)

            build_floats.__name__ = name
            return build_floats

        def build(*args, **kwargs):
            args = [conv(a) if _neutral_arg(a) else a for a in args]  # type: ignore[assignment]
            if kwargs:
                kwargs = {k: conv(v) if _neutral_arg(v) else v for k, v in kwargs.items()}
            return cls(*args, **kwargs)

        build.__name__ = name
        return build

    # fitting -------------------------------------------------------------------------------
    def optimizer(self, opt: Optimizer) -> Any:
        return make_optimizer(opt)

    def fit(
        self,
        model: Callable,
        guide: Callable,
        args: tuple,
        kwargs: dict[str, Any],
        opt: Optimizer,
        *,
        num_steps: int,
        num_particles: int,
        seed: int,
        on_nonfinite: str,
        progress: bool | None,
        jit: bool,
    ) -> FitOutput:
        """Pyro's JitTrace_ELBO / Trace_ELBO in dualguide's own loop (see fitloop.py)."""
        from .fitloop import fit

        try:
            return fit(
                self,
                model,
                guide,
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
        except DualGuideError as e:
            raise _own_error(e) from None

    def trace(
        self, fn: Callable, args: tuple, kwargs: dict[str, Any], seed: int
    ) -> dict[str, Site]:
        """Run ``fn`` once under ``seed`` in a fresh param-store scope and RNG fork: its sites in order."""
        store = pyro.get_param_store()
        to_numpy = self.to_numpy
        with store.scope(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            try:
                tr = poutine.trace(fn).get_trace(*args, **kwargs)
            except DualGuideError as e:
                raise _own_error(e) from None
            out = {}
            for name, s in tr.nodes.items():
                t = s["type"]
                if t == "param":
                    out[name] = plain_site(name, t, s, s.get("value"), to_numpy)
                elif t == "sample" and s["infer"].get("_deterministic"):
                    out[name] = plain_site(name, "deterministic", s, s.get("value"), to_numpy)
                elif t == "sample" and type(s["fn"]).__name__ != "_Subsample":
                    out[name] = sample_site(name, s, s["fn"], s["value"], to_numpy)
        return out


class _NotJitSafe(Exception):
    pass


def static_ints(dims: Any) -> tuple[int, ...]:
    """A shape (``torch.Size``, a tuple of sizes) as Python ints.  Under ``torch.jit.trace``
    a tensor's sizes are traced tensors; dualguide reads them only to check shapes, which a trace keeps fixed, so the conversion is not the user's
    "tensor turned into a Python value" that :func:`_jit_safety` reports (it made
    ``dg.param("loc", ops.zeros(3))`` and ``handlers.mask`` in a plate lose the JIT)."""
    if not torch.jit.is_tracing():
        return tuple(int(d) for d in dims)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return tuple(int(d) for d in dims)


_FRAMEWORK_DIRS = (
    os.path.dirname(torch.__file__),
    os.path.dirname(pyro.__file__),
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
)


def _jit_safety(caught) -> None:
    """Re-emit ordinary warnings; raise if user code turned a traced tensor into a Python value."""
    for w in caught:
        if issubclass(w.category, DeprecationWarning) and "torch.jit.trace" in str(w.message):
            continue  # Pyro's JitTrace_ELBO is built on torch.jit.trace; not the user's concern
        if not issubclass(w.category, torch.jit.TracerWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            continue
        msg = str(w.message)
        if msg.startswith("Converting a tensor to a") and not os.path.abspath(
            w.filename
        ).startswith(_FRAMEWORK_DIRS):
            raise _NotJitSafe(
                f"{w.filename}:{w.lineno} turns a tensor into a Python value, which a trace "
                "would freeze"
            )


def _own_error(e: DualGuideError) -> DualGuideError:
    """dualguide's own error without Pyro's "Trace Shapes" trailer (Pyro's trace re-raises a
    copy with the shapes appended; the original is its cause): the same message on both."""
    while isinstance(e.__cause__, type(e)) and str(e).startswith(str(e.__cause__)):
        e = e.__cause__
    return e


def _rebind_f32(f) -> None:
    """Point ``F32`` (the current float dtype) at ``f`` in every module of this backend."""
    for mod_name, mod in list(sys.modules.items()):
        if mod is not None and mod_name.startswith(__name__) and "F32" in vars(mod):
            setattr(mod, "F32", f)  # noqa: B010  (a module attribute, rebound)


#: distributions whose pyro classes take Python floats as they are (the others get tensors)
_FLOAT_ARGS_OK = _table.PYRO_FLOAT_ARGS_OK


def _t(a):
    """A Python float as a tensor of the default dtype; anything else as it is."""
    return torch.tensor(a) if type(a) is float else a


def _neutral_arg(a) -> bool:
    """Whether ``a`` is a neutral constraint or transform (or a list holding transforms)."""
    if isinstance(a, (list, tuple)):
        return any(hasattr(x, "_native") for x in a)
    return hasattr(a, "_native")


def _checked_init(name, value, constraint):
    if isinstance(value, torch.Tensor) and value.dtype != torch.bool:
        arr = value if value.dtype == F32 else value.to(F32)
    else:
        arr = torch.tensor(_inputs.init_value(value, name))
    if not constraint.check(arr.detach().cpu().numpy()):
        raise SpecError(
            f"param {name!r}: init value {arr.tolist()} is outside its constraint "
            f"{constraint!r}; pick an init value inside it"
        )
    return arr


def _bad_fn(name, fn):
    from ...distributions import _Neutral

    if isinstance(fn, _Neutral):
        raise SpecError(
            f"sample site {name!r}: dist.{fn.name} is a constructor; call it, e.g. dist.{fn.name}(...)"
        )
    if foreign_dist_type(type(fn), "pyro"):
        raise SpecError(
            f"sample site {name!r}: got a NumPyro distribution {type(fn).__name__} while the "
            "pyro backend is active; use dualguide.distributions so each backend builds its own"
        )
    raise SpecError(
        f"sample site {name!r}: {fn!r} is not a distribution; use dualguide.distributions"
    )


#: neutral names whose pyro class dualguide replaces (filled below)
_OVERRIDES: dict[str, type] = {}

BACKEND = PyroBackend()

# imported last: mixture.py subclasses _SupportMasked from this module, so importing it at
# the top would be an import cycle inside the backend
from .mixture import MixtureSameFamily as _Mixture  # noqa: E402  (issue 3: pathwise mixture)

_OVERRIDES["MixtureSameFamily"] = _Mixture
from .lkj import LKJCholesky as _LKJCholesky  # noqa: E402  (issue 12: traces under torch.jit)

_OVERRIDES["LKJCholesky"] = _LKJCholesky
