"""NumPyro side of :mod:`dualguide.autoguides`: native autoguides that report their params.

The rendered guide *is* a ``numpyro.infer.autoguide`` class (a thin subclass of the
same name): its only addition is that, while dualguide fits or traces it, every
``numpyro.param`` it makes goes through dualguide's param hook, so ``fit`` records
the params' constraints and applies ``init_params``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from jax.example_libraries import stax
from numpyro import distributions as ndist
from numpyro import handlers
from numpyro.distributions import constraints as nc
from numpyro.distributions.flows import InverseAutoregressiveTransform
from numpyro.distributions.transforms import PermuteTransform
from numpyro.infer import autoguide as nag
from numpyro.infer import initialization as ninit
from numpyro.nn import AutoregressiveNN
from numpyro.primitives import Messenger

from ... import _inputs, _state
from ..._table import AUTOGUIDE_INITS
from ...contract import neutral_constraint
from ...errors import SpecError


class _HookParams(Messenger):
    """Send each ``param`` site through dualguide's param hook (constraint + init override)."""

    def __init__(self, hook):
        super().__init__()
        self.hook = hook

    def process_message(self, msg):
        # ``param(name)`` without an init (numpyro.module's look-up) is no declaration
        if msg["type"] != "param" or not msg["args"] or msg["args"][0] is None:
            return
        name, init = msg["name"], msg["args"][0]
        native = msg["kwargs"].get("constraint")
        neutral = neutral_constraint(native, nc, "numpyro")
        new = self.hook(name, init, neutral, msg["kwargs"].get("event_dim"))
        if new is not init:
            msg["args"] = (_override(name, new, init, neutral), *msg["args"][1:])


def _override(name, new, init, neutral):
    arr = np.asarray(new, dtype=_inputs.float_np())
    if arr.shape != jnp.shape(init):
        raise SpecError(
            f"init_params[{name!r}] has shape {tuple(arr.shape)}, but the autoguide's param "
            f"has shape {tuple(jnp.shape(init))}"
        )
    # checked in numpy: this may run while jax traces the fit (the native check would be traced)
    if neutral is not None and not neutral.check(arr):
        raise SpecError(
            f"init_params[{name!r}] = {arr.tolist()} is outside its constraint {neutral!r}"
        )
    return jnp.asarray(arr)


_NONLINEARITIES = {"elu": stax.Elu, "relu": stax.Relu, "tanh": stax.Tanh}


def _layer_names(name: str, n_layers: int, skip: bool) -> list[str]:
    out = [f"{name}.layers.{j}.{w}" for j in range(n_layers) for w in ("W", "b")]
    return [*out, f"{name}.skip.W"] if skip else out


def _leaves(tree, n_layers: int, skip: bool) -> list:
    """stax params of an AutoregressiveNN -> its arrays in :func:`_layer_names` order."""
    main, w_skip = (tree[1][0], tree[1][1]) if skip else (tree, None)
    out = [a for layer in main if layer != () for a in layer]
    return [*out, w_skip] if skip else out


def _tree(leaves: list, n_layers: int, skip: bool):
    """The inverse of :func:`_leaves` (Elu layers between the masked layers hold ``()``)."""
    main: list = []
    for j in range(n_layers):
        if j:
            main.append(())
        main.append((leaves[2 * j], leaves[2 * j + 1]))
    return [(), (main, leaves[-1]), ()] if skip else main


class _IAF(nag.AutoIAFNormal):
    """NumPyro's AutoIAFNormal, each network weight its own param (not one pytree param).

    The flows are NumPyro's: ``num_flows`` InverseAutoregressiveTransforms over masked
    networks with the identity order, the latent vector reversed between flows.
    """

    def _get_posterior(self):
        d = self.latent_dim
        if d < 2:
            raise SpecError(
                "AutoIAFNormal: the model has one latent dimension; an autoregressive flow "
                "needs two or more (use AutoDiagonalNormal or AutoNormal)"
            )
        hidden = [d, d] if self._hidden_dims is None else list(self._hidden_dims)
        if min(hidden) < d:
            raise SpecError(
                f"AutoIAFNormal: hidden_dim={hidden} has a layer narrower than the latent "
                f"dimension {d}; each hidden layer needs at least {d} units"
            )
        skip = bool(self._skip_connections)
        flows: list = []
        for i in range(self.num_flows):
            if i > 0:
                flows.append(PermuteTransform(jnp.arange(d)[::-1]))
            init_fn, apply_fn = AutoregressiveNN(
                d,
                hidden,
                permutation=jnp.arange(d),
                skip_connections=skip,
                nonlinearity=self._nonlinearity,
            )
            names = _layer_names(f"{self.prefix}_arn__{i}$params", len(hidden) + 1, skip)
            values = [numpyro.param(n) for n in names]
            if any(v is None for v in values):
                _, tree = init_fn(numpyro.prng_key(), (d,))
                inits = _leaves(tree, len(hidden) + 1, skip)
                values = [numpyro.param(n, v) for n, v in zip(names, inits)]
            params = _tree(values, len(hidden) + 1, skip)
            flows.append(InverseAutoregressiveTransform(partial(apply_fn, params)))
        return ndist.TransformedDistribution(self.get_base_dist(), flows)


def _make_iaf(
    model,
    init_loc_fn,
    hidden_dim=None,
    num_transforms=3,
    skip_connections=False,
    nonlinearity="elu",
):
    return _hooked("AutoIAFNormal")(
        model,
        init_loc_fn=init_loc_fn,
        num_flows=num_transforms,
        hidden_dims=hidden_dim,
        skip_connections=skip_connections,
        nonlinearity=_NONLINEARITIES[nonlinearity],
    )


_BASES: dict = {"AutoIAFNormal": _IAF}
_CLASSES: dict = {}


def _hooked(kind: str):
    cls = _CLASSES.get(kind)
    if cls is None:
        base = _BASES.get(kind) or getattr(nag, kind)

        def __call__(self, *args, **kwargs):
            hook = _state.param_hook
            if hook is None:
                return base.__call__(self, *args, **kwargs)
            with _HookParams(hook):
                return base.__call__(self, *args, **kwargs)

        cls = type(
            kind, (base,), {"__call__": __call__, "__module__": __name__, "__doc__": base.__doc__}
        )
        _CLASSES[kind] = cls
    return cls


def _init_fn(init):
    if isinstance(init, str):
        return getattr(ninit, AUTOGUIDE_INITS[init][0])
    if isinstance(init, dict):
        return ninit.init_to_value(values={k: jnp.asarray(v) for k, v in init.items()})
    strategy = getattr(init, "strategy", None)
    if strategy is not None:  # a neutral init_to_* strategy
        kw = dict(init.kwargs)
        if strategy == "value":
            kw["values"] = {k: jnp.asarray(v) for k, v in kw["values"].items()}
        fn = getattr(ninit, AUTOGUIDE_INITS[strategy][0])
        return partial(fn, **kw) if kw else fn
    return init


def make(kind: str, model, init, options: dict):
    """A native NumPyro autoguide ``kind`` on the rendered ``model``."""
    if kind == "AutoIAFNormal":
        return _make_iaf(model, _init_fn(init), **options)
    kw = {k: v for k, v in options.items() if v is not None}
    return _hooked(kind)(model, init_loc_fn=_init_fn(init), **kw)


def make_list(model, parts: list):
    """A native NumPyro ``AutoGuideList`` on the rendered ``model`` holding ``parts``."""
    native = _hooked("AutoGuideList")(model)
    for part in parts:
        native.append(part)
    return native


def _setup(native, args, kwargs, rng_seed: Any = 0):
    guides = [native, *native._guides] if isinstance(native, nag.AutoGuideList) else [native]
    for g in guides:
        if g.prototype_trace is None:
            with _state.using_param_hook(None), handlers.block():
                handlers.seed(g._setup_prototype, rng_seed=rng_seed)(*args, **kwargs)


#: NumPyro init strategies that draw (their init values depend on the setup's key)
_DRAWING_INITS = ("init_to_uniform", "init_to_median", "init_to_sample")


def drawing_autoguide(guide) -> bool:
    """Whether ``guide`` is one NumPyro autoguide (not a list) whose init strategy draws."""
    if not isinstance(guide, nag.AutoGuide) or isinstance(guide, nag.AutoGuideList):
        return False
    fn = getattr(guide, "init_loc_fn", None)
    return getattr(getattr(fn, "func", fn), "__name__", "") in _DRAWING_INITS


def setup_eagerly(guide, args, kwargs, seed: int | None = None) -> None:
    """Set up ``guide``'s prototype now, outside any JAX transform, when it is a NumPyro
    autoguide that has not been set up.  An autoguide keeps what its first call builds (the
    prototype trace, the packed latents' layout, init values); built under ``jax.jit``,
    ``jax.vmap`` or ``jax.eval_shape`` it would keep tracers and later calls would unpack
    the latents wrongly.  Other guides: nothing to do.

    ``seed``: a fit's seed.  A single autoguide then draws its init values (``init_to_uniform``,
    ``init_to_sample``, ...) from the key ``SVI.init(PRNGKey(seed))`` gives its first call, so
    the fit starts where NumPyro's own does (a list of autoguides draws in another order)."""
    if isinstance(guide, nag.AutoGuideList) or seed is None:
        rng_seed: Any = 0
    else:  # SVI.init: rng_key, model_seed, guide_seed = random.split(rng_key, 3)
        rng_seed = jax.random.split(jax.random.PRNGKey(seed), 3)[2]
    if isinstance(guide, (nag.AutoGuide, nag.AutoGuideList)):
        _setup(guide, args, kwargs, rng_seed)


def _latents(native):
    return [
        k
        for k, s in native.prototype_trace.items()
        if s["type"] == "sample" and not s["is_observed"]
    ]


def layout(native, args, kwargs):
    """``[(site, shape)]`` in the order the guide packs its latent vector (unconstrained shapes)."""
    _setup(native, args, kwargs)
    return [(k, tuple(jnp.shape(v))) for k, v in native._init_locs.items()]


def load(native, params, args, kwargs):
    """Set up ``native`` and check ``params`` (NumPyro names) against its params' names and
    shapes.  NumPyro autoguides keep no params of their own: pass them to its methods."""
    _setup(native, args, kwargs)
    with (
        _state.using_param_hook(None),
        handlers.block(),
        handlers.trace() as tr,
        handlers.seed(rng_seed=0),
    ):
        native(*args, **kwargs)
    want = {k: tuple(jnp.shape(s["value"])) for k, s in tr.items() if s["type"] == "param"}
    missing = [k for k in want if k not in params]
    if missing:
        raise SpecError(
            f"{type(native).__name__}: the params lack {', '.join(map(repr, missing))} (NumPyro "
            "names expected; translate with guide.translate(params, to='numpyro'))"
        )
    for k, shape in want.items():
        if tuple(np.shape(params[k])) != shape:
            raise SpecError(
                f"param {k!r}: got shape {tuple(np.shape(params[k]))}, but the autoguide's "
                f"param has shape {shape}"
            )
    return native


def _params(params):
    return {k: jnp.asarray(np.asarray(v, dtype=_inputs.float_np())) for k, v in params.items()}


def _call(native, method, *a):
    try:
        return getattr(native, method)(*a)
    except KeyError as e:
        raise SpecError(
            f"{type(native).__name__}.{method}: the params lack {e.args[0]!r} (NumPyro names "
            "expected; translate with guide.translate(params, to='numpyro'))"
        ) from None


def median(native, params, args, kwargs):
    """Native ``median(params)`` of each latent site, as numpy."""
    _setup(native, args, kwargs)
    out = _call(native, "median", _params(params))
    return {k: np.asarray(out[k]) for k in _latents(native) if k in out}


def quantiles(native, params, qs, args, kwargs):
    """Native ``quantiles(params, qs)`` of each latent site, as numpy."""
    _setup(native, args, kwargs)
    out = _call(native, "quantiles", _params(params), list(qs))
    return {k: np.asarray(out[k]) for k in _latents(native) if k in out}


def sample_posterior(native, params, seed, sample_shape, args, kwargs):
    """Native ``sample_posterior(key, params, *args, sample_shape=...)`` of each latent site."""
    _setup(native, args, kwargs)
    key = jax.random.PRNGKey(seed)
    try:
        out = native.sample_posterior(
            key, _params(params), *args, sample_shape=tuple(sample_shape), **kwargs
        )
    except KeyError as e:
        raise SpecError(
            f"{type(native).__name__}.sample_posterior: the params lack {e.args[0]!r} (NumPyro "
            "names expected; translate with guide.translate(params, to='numpyro'))"
        ) from None
    return {k: np.asarray(out[k]) for k in _latents(native) if k in out}


def laplace(native, params, args, kwargs):
    """AutoLaplaceApproximation's ``loc`` and ``scale_tril`` (packed, unconstrained), numpy."""
    _setup(native, args, kwargs)
    post = native.get_posterior(_params(params))
    return np.asarray(post.loc), np.asarray(post.scale_tril)
