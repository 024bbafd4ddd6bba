"""The NumPyro (JAX) backend. Every jax/numpyro import of dualguide lives under this folder."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as nd
from numpyro.distributions import constraints as nc
from numpyro.primitives import _PYRO_STACK

from ... import _table
from ...constraints import Constraint
from ...contract import FEATURES, FitOutput
from ...errors import DualGuideError, SpecError, dist_arg_error, no_sampler_error
from ...optim import Optimizer
from ...trace import Site, no_sampler_name, plain_site, sample_site
from .mixture import MixtureSameFamily as _Mixture
from .ops import Ops
from .rows import BetaBinomial as _BetaBinomial
from .rows import Binomial as _Binomial
from .rows import MultivariateStudentT as _MultivariateStudentT
from .rows import ProjectedNormal as _ProjectedNormal
from .rows import ZeroInflatedPoisson as _ZIP

log = logging.getLogger("dualguide")

#: the framework side of each neutral tool: a module of this folder per contract feature
FEATURE_MODULES = {k: f"{__name__}.{k}" for k in FEATURES}

F32 = jnp.float32


def _to_f32(x, what: str):
    """Numbers, lists, numpy or jax arrays -> a float32 jax array (floats) or as-is (ints, tracers)."""
    if isinstance(x, jax.Array):
        return x if x.dtype == F32 or not jnp.issubdtype(x.dtype, jnp.floating) else x.astype(F32)
    try:
        a = np.asarray(x)
    except Exception:
        raise SpecError(f"{what}: cannot convert {x!r} to an array") from None
    if a.dtype.kind in "biu":
        return jnp.asarray(a)
    if a.dtype.kind != "f":
        raise SpecError(f"{what}: expected numbers, got {a.dtype} value {x!r}")
    return jnp.asarray(a, dtype=F32)


class NumPyroBackend:
    """Answers the neutral API with numpyro primitives and distributions."""

    name = "numpyro"
    ops = Ops
    array_types: tuple[type, ...] = (jax.Array,)
    features = FEATURE_MODULES

    def __init__(self) -> None:
        self._dist_fns: dict = {}

    # conversions ---------------------------------------------------------------------------
    def to_array(self, x: Any) -> Any:
        if x is None or isinstance(x, (str, bool)):
            return x
        if isinstance(x, (int, float, list, tuple, np.ndarray, np.generic, jax.Array)):
            return _to_f32(x, "model argument")
        return x

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def constraint(self, c: Constraint) -> Any:
        native = c._native.get("numpyro")
        if native is None:
            attr = getattr(nc, _table.CONSTRAINTS[c.name][0])
            native = attr(*c.args) if c.args else attr
            c._native["numpyro"] = native
        return native

    # primitives ----------------------------------------------------------------------------
    def param(
        self, name: str, init_value: Any, constraint: Constraint, event_dim: int | None
    ) -> Any:
        if init_value is None:
            return numpyro.param(name)
        if callable(init_value):
            fn = init_value
            value = lambda _key: _checked_init(name, fn(), constraint)
        else:
            value = _checked_init(name, init_value, constraint)
        return numpyro.param(
            name, value, constraint=self.constraint(constraint), event_dim=event_dim
        )

    def sample(
        self, name: str, fn: Any, obs: Any, infer: dict | None, kwargs: dict[str, Any]
    ) -> Any:
        if not isinstance(fn, nd.Distribution):
            _bad_fn(name, fn, "numpyro")
        if obs is None and not _PYRO_STACK:
            raise SpecError(
                f"sample site {name!r}: called outside a model or guide run, where NumPyro has "
                "no random key; run the program through dg.fit, dg.trace or dg.render + SVI "
                "(or under numpyro.handlers.seed)"
            )
        try:
            return numpyro.sample(name, fn, obs=obs, infer=infer, **kwargs)
        except NotImplementedError:
            missing = no_sampler_name(fn) if obs is None else None
            if missing is not None:  # ImproperUniform: name the site
                raise no_sampler_error(name, missing) from None
            raise

    def plate(self, name: str, size: int, subsample_size: int | None, dim: int | None) -> Any:
        return numpyro.plate(name, size, subsample_size=subsample_size, dim=dim)

    def factor(self, name: str, log_factor: Any) -> None:
        numpyro.factor(name, log_factor)

    def deterministic(self, name: str, value: Any, event_dim: int | None) -> Any:
        if not isinstance(value, jax.Array):
            value = _to_f32(value, f"deterministic {name!r}")
        return numpyro.deterministic(name, value)

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
        """The class dualguide uses instead of numpyro's for distribution ``name``, or None."""
        return _OVERRIDES.get(name)

    def _dist_factory(self, name):
        spec = _table.DISTRIBUTIONS[name]
        cls = _OVERRIDES.get(name) or getattr(nd, spec.numpyro)
        rename, cargs = spec.rename, spec.constraint_args
        if not rename and not cargs and not spec.transform_args:
            return cls
        conv = self.constraint
        if spec.transform_args:  # neutral transforms -> numpyro's (issue 12)
            from ...dist_transforms import to_native

            conv = lambda t: to_native(t, "numpyro")
            cargs = spec.transform_args

        def build(*args, **kwargs):
            if rename:
                kwargs = {rename.get(k, k): v for k, v in kwargs.items()}
            if cargs:
                args = tuple(conv(a) if _neutral_arg(a) else a for a in args)
                kwargs = {k: conv(v) if _neutral_arg(v) else v for k, v in kwargs.items()}
            return cls(*args, **kwargs)

        build.__name__ = name
        return build

    # fitting -------------------------------------------------------------------------------
    def optimizer(self, opt: Optimizer) -> Any:
        import numpyro.optim as no

        lr = opt.lr if (not callable(opt.lr) and opt.lrd == 1.0) else opt.lr_at
        b1, b2 = opt.betas
        if opt.clip_norm is None:
            return no.Adam(lr, b1=b1, b2=b2, eps=opt.eps)
        return no.ClippedAdam(lr, b1=b1, b2=b2, eps=opt.eps, clip_norm=opt.clip_norm)

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
        """NumPyro's Trace_ELBO in dualguide's own compiled loop (see fitloop.py)."""
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
        """Run ``fn`` once under ``seed``: its sample, param and deterministic sites in order."""
        from numpyro import handlers

        with handlers.trace() as tr, handlers.seed(rng_seed=seed):
            fn(*args, **kwargs)
        out = {}
        for name, s in tr.items():
            t = s["type"]
            if t == "sample":
                out[name] = sample_site(name, s, s["fn"], s["value"], np.asarray)
            elif t in ("param", "deterministic"):
                out[name] = plain_site(name, t, s, s.get("value"), np.asarray)
        return out


def _neutral_arg(a) -> bool:
    """Whether ``a`` is a neutral constraint or transform (or a list holding transforms)."""
    if isinstance(a, (list, tuple)):
        return any(hasattr(x, "_native") for x in a)
    return hasattr(a, "_native")


def _checked_init(name, value, constraint):
    arr = _to_f32(value, f"param {name!r} init value")
    if arr.dtype == jnp.bool_:
        raise SpecError(
            f"param {name!r}: init value has dtype bool; params are real numbers (float32): "
            "give numbers, e.g. np.asarray(mask, dtype=float)"
        )
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(F32)
    if not isinstance(arr, jax.core.Tracer) and not constraint.check(np.asarray(arr)):
        raise SpecError(
            f"param {name!r}: init value {np.asarray(arr).tolist()} is outside its constraint "
            f"{constraint!r}; pick an init value inside it"
        )
    return arr


def _bad_fn(name, fn, backend):
    from ...distributions import _Neutral

    if isinstance(fn, _Neutral):
        raise SpecError(
            f"sample site {name!r}: dist.{fn.name} is a constructor; call it, e.g. dist.{fn.name}(...)"
        )
    mod = type(fn).__module__
    if mod.startswith(("pyro", "torch")) and backend == "numpyro":
        raise SpecError(
            f"sample site {name!r}: got a Pyro/torch distribution {type(fn).__name__} while the "
            "numpyro backend is active; use dualguide.distributions so each backend builds its own"
        )
    raise SpecError(
        f"sample site {name!r}: {fn!r} is not a distribution; use dualguide.distributions"
    )


#: neutral names whose numpyro class dualguide replaces
_OVERRIDES: dict[str, type] = {"MixtureSameFamily": _Mixture}  # issue 3: pathwise mixture
_OVERRIDES["ZeroInflatedPoisson"] = _ZIP  # issue 12: Pyro's argument order and gate_logits
_OVERRIDES["ProjectedNormal"] = _ProjectedNormal  # issue 12: -inf off the sphere
_OVERRIDES["Binomial"] = _Binomial  # issue 12: float total_count samples
_OVERRIDES["BetaBinomial"] = _BetaBinomial
_OVERRIDES["MultivariateStudentT"] = _MultivariateStudentT  # issue 12: one chi2 per element

BACKEND = NumPyroBackend()
