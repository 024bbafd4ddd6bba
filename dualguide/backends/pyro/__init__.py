"""The Pyro (PyTorch) backend. Every torch/pyro import of dualguide lives under this folder."""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pyro
import pyro.distributions as pd
import torch
from pyro import poutine
from torch.distributions import constraints as tc

from ... import _table
from ...constraints import Constraint
from ...contract import FEATURES, FitOutput
from ...errors import DualGuideError, SpecError, dist_arg_error, no_sampler_error
from ...optim import Optimizer
from ...trace import Site, no_sampler_name, plain_site, sample_site
from .ops import Ops
from .optim import make_optimizer

log = logging.getLogger("dualguide")

#: the framework side of each neutral tool: a module of this folder per contract feature
FEATURE_MODULES = {k: f"{__name__}.{k}" for k in FEATURES}

F32 = torch.float32
_NEG_INF = -math.inf


def _to_f32(x, what: str):
    if isinstance(x, torch.Tensor):
        return x if x.dtype == F32 or not x.is_floating_point() else x.to(F32)
    try:
        a = np.asarray(x)
    except Exception:
        raise SpecError(f"{what}: cannot convert {x!r} to an array") from None
    if a.dtype.kind in "biu":
        return torch.as_tensor(a)
    if a.dtype.kind != "f":
        raise SpecError(f"{what}: expected numbers, got {a.dtype} value {x!r}")
    return torch.tensor(a, dtype=F32)


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
        if support is tc.real or (
            isinstance(support, tc.independent) and support.base_constraint is tc.real
        ):
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
        if x is None or isinstance(x, (str, bool)):
            return x
        if isinstance(x, (int, float, list, tuple, np.ndarray, np.generic, torch.Tensor)):
            return _to_f32(x, "model argument")
        return x

    def to_numpy(self, x: Any) -> np.ndarray:
        if isinstance(x, torch.Tensor):
            return x.detach().cpu().numpy()
        return np.asarray(x)

    def constraint(self, c: Constraint) -> Any:
        native = c._native.get("pyro")
        if native is None:
            attr = getattr(tc, _table.CONSTRAINTS[c.name][1])
            native = attr(*c.args) if c.args else attr
            c._native["pyro"] = native
        return native

    # primitives ----------------------------------------------------------------------------
    def param(
        self, name: str, init_value: Any, constraint: Constraint, event_dim: int | None
    ) -> Any:
        if init_value is None:
            return pyro.param(name)
        if callable(init_value):
            fn = init_value
            init = lambda: _checked_init(name, fn(), constraint)
        else:
            init = lambda: _checked_init(name, init_value, constraint)
        return pyro.param(name, init, constraint=self.constraint(constraint), event_dim=event_dim)

    def sample(
        self, name: str, fn: Any, obs: Any, infer: dict | None, kwargs: dict[str, Any]
    ) -> Any:
        if not isinstance(fn, torch.distributions.Distribution):
            _bad_fn(name, fn)
        if obs is not None and not isinstance(obs, torch.Tensor):
            obs = _to_f32(obs, f"sample site {name!r} obs")
        try:
            return pyro.sample(name, fn, obs=obs, infer=infer, **kwargs)
        except NotImplementedError:
            missing = no_sampler_name(fn) if obs is None else None
            if missing is not None:  # ImproperUniform: name the site
                raise no_sampler_error(name, missing) from None
            raise

    def plate(self, name: str, size: int, subsample_size: int | None, dim: int | None) -> Any:
        return pyro.plate(name, size, subsample_size=subsample_size, dim=dim)

    def factor(self, name: str, log_factor: Any) -> None:
        if not isinstance(log_factor, torch.Tensor):
            log_factor = _to_f32(log_factor, f"factor {name!r}")
        # pyro.factor without its Unit's validation: a NaN factor then makes a NaN loss, which
        # the fit reports as a FitError naming the step (instead of a ValueError mid-step)
        unit = pd.Unit(log_factor, has_rsample=True, validate_args=False)
        pyro.sample(name, unit, obs=unit.sample(), infer={"is_auxiliary": True})

    def deterministic(self, name: str, value: Any, event_dim: int | None) -> Any:
        if not isinstance(value, torch.Tensor):
            value = _to_f32(value, f"deterministic {name!r}")
        return pyro.deterministic(name, value, event_dim=event_dim)

    # distributions -------------------------------------------------------------------------
    def make_dist(self, name: str, args: tuple, kwargs: dict[str, Any]) -> Any:
        fn = self._dist_fns.get(name)
        if fn is None:
            fn = self._dist_fns[name] = self._dist_factory(name)
        try:
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
            args = tuple(conv(a) if _neutral_arg(a) else a for a in args)
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

    def trace(
        self, fn: Callable, args: tuple, kwargs: dict[str, Any], seed: int
    ) -> dict[str, Site]:
        """Run ``fn`` once under ``seed`` in a fresh param-store scope and RNG fork: its sites in order."""
        store = pyro.get_param_store()
        to_numpy = self.to_numpy
        with store.scope(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            tr = poutine.trace(fn).get_trace(*args, **kwargs)
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


#: distributions whose pyro classes take Python floats as they are (the others get tensors)
_FLOAT_ARGS_OK = frozenset(
    "Normal Cauchy StudentT Laplace LogNormal HalfNormal HalfCauchy Gamma Beta Exponential "
    "Uniform ImproperUniform Bernoulli Categorical MultivariateNormal Dirichlet Delta "
    "MixtureSameFamily".split()
)


def _t(a):
    """A Python float as a tensor of the default dtype; anything else as it is."""
    return torch.tensor(a) if type(a) is float else a


def _neutral_arg(a) -> bool:
    """Whether ``a`` is a neutral constraint or transform (or a list holding transforms)."""
    if isinstance(a, (list, tuple)):
        return any(hasattr(x, "_native") for x in a)
    return hasattr(a, "_native")


def _checked_init(name, value, constraint):
    arr = _to_f32(value, f"param {name!r} init value")
    if arr.dtype == torch.bool:
        raise SpecError(
            f"param {name!r}: init value has dtype bool; params are real numbers (float32): "
            "give numbers, e.g. np.asarray(mask, dtype=float)"
        )
    if not arr.is_floating_point():
        arr = arr.to(F32)
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
    mod = type(fn).__module__
    if mod.startswith(("numpyro", "jax")):
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
