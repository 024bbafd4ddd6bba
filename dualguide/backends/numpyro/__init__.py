"""The NumPyro (JAX) backend. Every jax/numpyro import of dualguide lives under this folder."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as nd
from numpyro.distributions import constraints as nc
from numpyro.handlers import block as _Block
from numpyro.handlers import trace as _Trace
from numpyro.primitives import _PYRO_STACK
from numpyro.primitives import plate as _Plate

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
from . import initprog
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

#: the current float dtype (float32 unless dg.set_dtype("float64"); use_dtype rebinds it here
#: and in every module of this backend that has an ``F32``)
F32 = jnp.float64 if _inputs.get_dtype() == "float64" else jnp.float32


def _native(r):
    """What ``dualguide._inputs`` returns, as jax arrays (float arrays in the current dtype)."""
    if isinstance(r, np.ndarray):
        return jnp.asarray(r)
    if isinstance(r, tuple):
        return tuple(_native(v) for v in r)
    if isinstance(r, jax.Array) and jnp.issubdtype(r.dtype, jnp.floating) and r.dtype != F32:
        return r.astype(F32)
    return r


def _obs(name, fn, obs):
    """Observations by the one input rule (ints kept for a discrete distribution)."""
    try:
        discrete = bool(getattr(fn.support, "is_discrete", False))
    except NotImplementedError:
        discrete = False
    if not isinstance(obs, jax.Array):
        obs = jnp.asarray(_inputs.obs(obs, name, discrete))
    else:
        err = _inputs.obs_shape_error(name, obs.shape)
        if err is not None:
            raise err
        if jnp.issubdtype(obs.dtype, jnp.floating) or not discrete:
            obs = obs if obs.dtype == F32 else obs.astype(F32)
        elif obs.dtype == jnp.bool_:
            obs = obs.astype(jnp.int32)
    plates = [(f.name, f.subsample_size, f.dim) for f in _PYRO_STACK if isinstance(f, _Plate)]
    if plates:
        _inputs.check_plates(name, jnp.shape(obs), len(getattr(fn, "event_shape", ())), plates)
    return obs


def _no_duplicate(name: str, kind: str) -> None:
    """A site name used twice in one run: one SpecError (NumPyro asserts, or overwrites a param)."""
    msg = {"name": name, "type": kind, "infer": {}, "kwargs": {}}
    for h in reversed(_PYRO_STACK):  # innermost first, as the message travels
        if isinstance(h, _Trace):
            old = h.trace.get(name)
            if old is not None and (kind != "param" or old["type"] != "param"):
                raise _inputs.duplicate_error(name, kind, old["type"])
        elif isinstance(h, _Block) and h.hide_fn(msg):
            break  # traces outside a block that hides the site never see it (AutoGuideList)


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
        return _native(_inputs.model_arg(x, self.array_types, self.name))

    def static_shape(self, shape: Any) -> tuple[int, ...]:
        return tuple(int(d) for d in shape)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def in_program(self) -> bool:
        return bool(_PYRO_STACK)

    def constraint(self, c: Constraint) -> Any:
        native = c._native.get("numpyro")
        if native is None:
            attr = getattr(nc, _table.CONSTRAINTS[c.name][0])
            native = attr(*c.args) if c.args else attr
            c._native["numpyro"] = native
        return native

    def use_dtype(self, name: str) -> None:
        """Make ``name`` (``"float32"`` / ``"float64"``) JAX's float dtype: x64 mode off / on."""
        jax.config.update("jax_enable_x64", name == "float64")
        _rebind_f32(jnp.float64 if name == "float64" else jnp.float32)

    # primitives ----------------------------------------------------------------------------
    def param(
        self, name: str, init_value: Any, constraint: Constraint, event_dim: int | None
    ) -> Any:
        _no_duplicate(name, "param")
        if init_value is None:
            return numpyro.param(name)
        if callable(init_value):
            fn = init_value
            value = lambda key: _checked_init(name, _call_init(name, fn, key), constraint)
        elif initprog.CONCRETE and not isinstance(init_value, jax.core.Tracer):
            value = _concrete_init(name, init_value, constraint)  # fitloop's init pass
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
        _no_duplicate(name, "sample")
        if obs is not None:
            obs = _obs(name, fn, obs)
        try:
            return numpyro.sample(name, fn, obs=obs, infer=infer, **kwargs)
        except ValueError as e:  # a batch shape that does not fit the plates: name the site
            plates = [
                (f.name, f.subsample_size, f.dim) for f in _PYRO_STACK if isinstance(f, _Plate)
            ]
            err = _inputs.latent_plate_error(name, getattr(fn, "batch_shape", ()), plates)
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
        if sub is not None and sub != n:
            trace = next((h.trace for h in reversed(_PYRO_STACK) if isinstance(h, _Trace)), None)
            if trace is not None and trace.get(name, {}).get("type") == "plate":
                raise _inputs.plate_reentered(name, n, sub)  # NumPyro: another minibatch
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="subsample_size does not match")
            p = numpyro.plate(name, n, subsample_size=sub, dim=dim)
        drawn = getattr(p, "_indices", None)
        if sub is not None and drawn is not None and int(drawn.shape[0]) != sub:
            raise _inputs.subsample_mismatch(name, sub, int(drawn.shape[0]))
        return p

    def factor(self, name: str, log_factor: Any) -> None:
        _no_duplicate(name, "factor")
        numpyro.factor(name, log_factor)

    def deterministic(self, name: str, value: Any, event_dim: int | None) -> Any:
        _no_duplicate(name, "deterministic")
        if not isinstance(value, jax.Array):
            value = _native(
                _inputs.value(value, self.array_types, self.name, f"deterministic {name!r}")
            )
        return numpyro.deterministic(name, value)

    # distributions -------------------------------------------------------------------------
    def make_dist(self, name: str, args: tuple, kwargs: dict[str, Any]) -> Any:
        fn = self._dist_fns.get(name)
        if fn is None:
            fn = self._dist_fns[name] = self._dist_factory(name)
        try:
            args, kwargs = _inputs.dist_params(
                name, args, kwargs, self.array_types, jnp.asarray, self.name
            )
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
            elif t == "param" and isinstance(s.get("value"), (list, tuple, dict)):
                # numpyro.module's one pytree param ``name$params`` (stax, flax): one site per
                # array, ``name.i.j`` by position (dg.nn.stax's and native_module's names)
                base = name[: -len("$params")] if name.endswith("$params") else name
                for path, leaf in jax.tree_util.tree_flatten_with_path(s["value"])[0]:
                    sub = ".".join(str(getattr(k, "idx", getattr(k, "key", k))) for k in path)
                    full = f"{base}.{sub}"
                    out[full] = plain_site(full, t, s, leaf, np.asarray)
            elif t in ("param", "deterministic"):
                out[name] = plain_site(name, t, s, s.get("value"), np.asarray)
        return out


def _rebind_f32(f) -> None:
    """Point ``F32`` (the current float dtype) at ``f`` in every module of this backend."""
    for mod_name, mod in list(sys.modules.items()):
        if mod is not None and mod_name.startswith(__name__) and "F32" in vars(mod):
            setattr(mod, "F32", f)  # noqa: B010  (a module attribute, rebound)


def _neutral_arg(a) -> bool:
    """Whether ``a`` is a neutral constraint or transform (or a list holding transforms)."""
    if isinstance(a, (list, tuple)):
        return any(hasattr(x, "_native") for x in a)
    return hasattr(a, "_native")


def _concrete_init(name, value, constraint):
    """:func:`_checked_init`'s value, concrete inside a trace and without compiling a kernel
    (numpy, which :class:`.initprog.InitInputs` records and hands on as a JAX value), for
    :mod:`.initprog`'s passes."""
    if isinstance(value, jax.Array) and value.dtype != jnp.bool_:
        with jax.ensure_compile_time_eval():
            return _checked_init(name, value, constraint)
    arr = _inputs.init_value(value, name)
    if not constraint.check(arr):
        raise _outside(name, arr, constraint)
    return arr


def _checked_init(name, value, constraint):
    if isinstance(value, jax.Array) and value.dtype != jnp.bool_:
        arr = value if value.dtype == F32 else value.astype(F32)
    else:
        arr = jnp.asarray(_inputs.init_value(value, name))
    if not isinstance(arr, jax.core.Tracer) and not constraint.check(np.asarray(arr)):
        raise _outside(name, arr, constraint)
    return arr


def _outside(name, arr, constraint) -> SpecError:
    return SpecError(
        f"param {name!r}: init value {np.asarray(arr).tolist()} is outside its constraint "
        f"{constraint!r}; pick an init value inside it"
    )


def _bad_fn(name, fn, backend):
    from ...distributions import _Neutral

    if isinstance(fn, _Neutral):
        raise SpecError(
            f"sample site {name!r}: dist.{fn.name} is a constructor; call it, e.g. dist.{fn.name}(...)"
        )
    if foreign_dist_type(type(fn), backend):
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
