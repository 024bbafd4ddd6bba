"""Pyro side of :mod:`dualguide.autoguides`: native autoguides that report their params.

The rendered guide *is* a ``pyro.infer.autoguide`` class (a thin subclass of the
same name, so its ``PyroModule`` name and param names are the native ones,
``AutoNormal.locs.x``).  Pyro autoguides hold their params in the module (as
``PyroParam`` / ``nn.Parameter``) and mirror them into the ``ParamStore`` under
those full names when they run, which is where ``dualguide.fit`` collects them.
The subclass's one addition: right after the guide sets itself up, each param goes
through dualguide's param hook, so ``fit`` records its constraint and applies
``init_params``.
"""

from __future__ import annotations

import functools

import numpy as np
import pyro
import torch
from pyro.distributions import constraints as pc
from pyro.infer import autoguide as pag
from pyro.infer.autoguide import initialization as pinit
from pyro.nn.module import PyroModule, PyroParam
from torch.distributions import biject_to, transform_to

from ... import _inputs, _state
from ..._table import AUTOGUIDE_INITS
from ...constraints import real
from ...contract import neutral_constraint
from ...errors import SpecError
from ...trace import no_sampler_name

_SUFFIX = "_unconstrained"


def _module_params(guide):
    """``{fullname: (module, attr, native constraint or None, event_dim)}`` of a set-up guide.

    A plain ``torch.nn.Module`` held by a PyroModule (an IAF's transform) registers its
    params as ``pyro.module`` does: ``{owner}.{child}$$${path}``.
    """
    out = {}
    for mod in guide.modules():
        if not isinstance(mod, PyroModule):
            continue
        prefix = mod._pyro_name
        for pname, (c, event_dim) in mod._pyro_params.items():
            out[f"{prefix}.{pname}" if prefix else pname] = (mod, pname, c, event_dim)
        for pname in mod._parameters:
            if pname.endswith(_SUFFIX) and pname[: -len(_SUFFIX)] in mod._pyro_params:
                continue
            out[f"{prefix}.{pname}" if prefix else pname] = (mod, pname, None, None)
        for cname, child in mod._modules.items():
            if child is None or isinstance(child, PyroModule):
                continue
            owner = f"{prefix}.{cname}" if prefix else cname
            for sub, leaf in child.named_modules():
                for pname in leaf._parameters:
                    path = f"{sub}.{pname}" if sub else pname
                    out[f"{owner}$$${path}"] = (leaf, pname, None, None)
    return out


def _current(mod, pname, c):
    if c is None:
        return mod._parameters[pname].detach()
    return transform_to(c)(mod._parameters[pname + _SUFFIX]).detach()


def _set(fullname, entry, value):
    mod, pname, c, event_dim = entry
    cur = _current(mod, pname, c)
    t = torch.as_tensor(np.array(value, dtype=_inputs.float_np()))
    if tuple(t.shape) != tuple(cur.shape):
        raise SpecError(
            f"param {fullname!r}: got shape {tuple(t.shape)}, but the autoguide's param has "
            f"shape {tuple(cur.shape)}"
        )
    if c is None:
        setattr(mod, pname, torch.nn.Parameter(t))
        return
    if not bool(c.check(t).all()):
        raise SpecError(f"param {fullname!r} = {t.tolist()} is outside its constraint {c}")
    setattr(mod, pname, PyroParam(t, c, event_dim))


def _apply_hook(guide, hook):
    for fullname, entry in _module_params(guide).items():
        mod, pname, c, event_dim = entry
        value = _current(mod, pname, c)
        neutral = real if c is None else neutral_constraint(c, pc, "pyro")
        new = hook(fullname, value, neutral, event_dim)
        if new is not value:
            _set(fullname, entry, new)


_NONLINEARITIES = {"elu": torch.nn.ELU, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}


class _IAF(pag.AutoIAFNormal):
    """Pyro's AutoIAFNormal with NumPyro's flows (dualguide's one AutoIAFNormal).

    ``num_transforms`` AffineAutoregressive transforms over AutoRegressiveNNs with the
    identity order (Pyro's default order is random) and ``nonlinearity``, the latent
    vector reversed (``Permute``) between them: the same function as NumPyro's
    InverseAutoregressiveTransform chain.  The transform is built when the guide sets
    itself up (not on first use), so dualguide's param hook sees its weights.
    """

    def __init__(
        self,
        model,
        init_loc_fn=None,
        hidden_dim=None,
        num_transforms=3,
        skip_connections=False,
        nonlinearity="elu",
    ):
        pag.AutoNormalizingFlow.__init__(self, model, init_transform_fn=self._flows)
        if init_loc_fn is not None:
            self.init_loc_fn = init_loc_fn
        self._hidden = None if hidden_dim is None else list(hidden_dim)
        self._num_transforms = int(num_transforms)
        self._skip = bool(skip_connections)
        self._nonlinearity = _NONLINEARITIES[nonlinearity]

    def _flows(self, d):
        from pyro.distributions.transforms import (
            AffineAutoregressive,
            ComposeTransformModule,
            Permute,
        )
        from pyro.nn import AutoRegressiveNN

        if d < 2:
            raise SpecError(
                "AutoIAFNormal: the model has one latent dimension; an autoregressive flow "
                "needs two or more (use AutoDiagonalNormal or AutoNormal)"
            )
        hidden = [d, d] if self._hidden is None else self._hidden
        if min(hidden) < d:
            raise SpecError(
                f"AutoIAFNormal: hidden_dim={hidden} has a layer narrower than the latent "
                f"dimension {d}; each hidden layer needs at least {d} units"
            )
        parts: list = []
        for i in range(self._num_transforms):
            if i > 0:
                parts.append(Permute(torch.arange(d - 1, -1, -1)))
            arn = AutoRegressiveNN(
                d,
                hidden,
                permutation=torch.arange(d),
                skip_connections=self._skip,
                nonlinearity=self._nonlinearity(),
            )
            parts.append(AffineAutoregressive(arn))
        return ComposeTransformModule(parts)

    def _setup_prototype(self, *args, **kwargs):
        super()._setup_prototype(*args, **kwargs)
        self.transform = self._init_transform_fn(self.latent_dim)


_BASES: dict = {"AutoIAFNormal": _IAF}
_CLASSES: dict = {}


def _hooked(kind: str):
    cls = _CLASSES.get(kind)
    if cls is None:
        base = _BASES.get(kind) or getattr(pag, kind)

        def _setup_prototype(self, *args, **kwargs):
            base._setup_prototype(self, *args, **kwargs)
            hook = _state.param_hook
            if hook is not None:
                _apply_hook(self, hook)

        def __call__(self, *args, **kwargs):
            # With module_local_params on, Pyro keeps module params out of the ParamStore,
            # where fit collects them: while dualguide fits or traces the guide, it runs in
            # Pyro's default (global) mode, inside the fit's own store scope.
            if _state.param_hook is not None and pyro.settings.get("module_local_params"):
                with pyro.settings.context(module_local_params=False):
                    return base.__call__(self, *args, **kwargs)
            return base.__call__(self, *args, **kwargs)

        cls = type(
            kind,
            (base,),
            {
                "_setup_prototype": _setup_prototype,
                "__call__": __call__,
                "__module__": __name__,
                "__doc__": base.__doc__,
            },
        )
        _CLASSES[kind] = cls
    return cls


def _init_fn(init):
    strategy = getattr(init, "strategy", None)
    given: set = set()
    radius = 2.0
    if isinstance(init, str):
        fn = getattr(pinit, AUTOGUIDE_INITS[init][1])
        radius = 0.0 if init == "feasible" else 2.0
    elif isinstance(init, dict):
        fn = pinit.init_to_value(values={k: torch.as_tensor(v) for k, v in init.items()})
        given = set(init)
    elif strategy is not None:  # a neutral init_to_* strategy
        kw = dict(init.kwargs)
        if strategy == "value":
            kw["values"] = {k: torch.as_tensor(v) for k, v in kw["values"].items()}
            given = set(kw["values"])
        native = getattr(pinit, AUTOGUIDE_INITS[strategy][1])
        fn = functools.partial(native, **kw) if kw else native
        radius = 0.0 if strategy == "feasible" else float(kw.get("radius", 2.0))
    else:
        return init

    def init_loc_fn(site):
        # Pyro's inits draw from the prior, which an ImproperUniform cannot; do as NumPyro's
        # init_to_uniform does for it: uniform(-radius, radius) in unconstrained space
        if site["name"] not in given and no_sampler_name(site["fn"]) is not None:
            d = site["fn"]
            t = biject_to(d.support)
            shape = t.inverse_shape(tuple(d.batch_shape) + tuple(d.event_shape))
            return t(torch.rand(shape) * (2 * radius) - radius)
        return fn(site)

    return init_loc_fn


def make(kind: str, model, init, options: dict):
    """A native Pyro autoguide ``kind`` on the rendered ``model``."""
    kw = {k: v for k, v in options.items() if v is not None}
    if kind == "AutoIAFNormal":
        return _hooked(kind)(model, _init_fn(init), **kw)
    return _hooked(kind)(model, init_loc_fn=_init_fn(init), **kw)


def make_list(model, parts: list):
    """A native Pyro ``AutoGuideList`` on the rendered ``model`` holding ``parts``."""
    native = _hooked("AutoGuideList")(model)
    for part in parts:
        native.append(part)
    return native


def _setup(native, args, kwargs):
    store = pyro.get_param_store()
    guides = [native, *native] if isinstance(native, pag.AutoGuideList) else [native]
    for g in guides:
        if g.prototype_trace is None:
            with _state.using_param_hook(None), store.scope(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                g._setup_prototype(*args, **kwargs)
    if isinstance(native, pag.AutoGuideList) and "plates" not in native.__dict__:
        # the parts' median / quantiles read the list's plates, which Pyro creates only when
        # the list itself runs (a fresh guide given fitted params has not run)
        native._create_plates(*args, **kwargs)


def layout(native, args, kwargs):
    """``[(site, shape)]`` in the order the guide packs its latent vector (unconstrained shapes)."""
    _setup(native, args, kwargs)
    shapes = getattr(native, "_unconstrained_shapes", None)
    if shapes is None:
        return [
            (k, tuple(s["value"].shape)) for k, s in native.prototype_trace.iter_stochastic_nodes()
        ]
    return [(k, tuple(s)) for k, s in shapes.items()]


def load(native, params, args, kwargs):
    """Set a (set-up) native guide's params from constrained values with Pyro names."""
    _setup(native, args, kwargs)
    entries = _module_params(native)
    missing = [k for k in entries if k not in params]
    if missing:
        raise SpecError(
            f"{type(native).__name__}: the params lack {', '.join(map(repr, missing))} (Pyro "
            "names expected; translate with guide.translate(params, to='pyro'))"
        )
    for k, entry in entries.items():
        _set(k, entry, params[k])
    return native


def _run(native, method, params, args, kwargs, *a):
    load(native, params, args, kwargs)
    store = pyro.get_param_store()
    with store.scope(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        fn = getattr(native, method)
        out = fn(*a, *args, **kwargs)
    return {k: v.detach().cpu().numpy() for k, v in out.items()}


def _laplace_guide(native, args, kwargs):
    """The AutoMultivariateNormal that Pyro's ``laplace_approximation`` makes (Hessian at
    the loaded MAP point); Pyro's AutoLaplaceApproximation has no median of its own."""
    return native.laplace_approximation(*args, **kwargs)


def median(native, params, args, kwargs):
    """Native ``median()`` of each latent site, as numpy."""
    if isinstance(native, pag.AutoLaplaceApproximation):
        load(native, params, args, kwargs)
        loc = native.loc.detach()
        return {
            site["name"]: biject_to(site["fn"].support)(u).numpy()
            for site, u in native._unpack_latent(loc)
        }
    return _run(native, "median", params, args, kwargs)


def quantiles(native, params, qs, args, kwargs):
    """Native ``quantiles(qs)`` of each latent site, as numpy."""
    if isinstance(native, pag.AutoLaplaceApproximation):
        load(native, params, args, kwargs)
        with pyro.get_param_store().scope():
            g = _laplace_guide(native, args, kwargs)
            out = g.quantiles(list(qs), *args, **kwargs)
        return {k: v.detach().cpu().numpy() for k, v in out.items()}
    return _run(native, "quantiles", params, args, kwargs, list(qs))


def laplace(native, params, args, kwargs):
    """AutoLaplaceApproximation's ``loc`` and ``scale_tril`` (packed, unconstrained), numpy."""
    load(native, params, args, kwargs)
    with pyro.get_param_store().scope():
        g = _laplace_guide(native, args, kwargs)
    lt = g.scale[:, None] * g.scale_tril
    return g.loc.detach().cpu().numpy(), lt.detach().cpu().numpy()


@torch.no_grad()
def _draw(native, sample_shape, args, kwargs):
    shape = torch.Size(sample_shape)
    if isinstance(native, pag.AutoGuideList):
        return {k: v for part in native for k, v in _draw(part, sample_shape, args, kwargs).items()}
    if isinstance(native, pag.AutoContinuous):
        if isinstance(native, pag.AutoLaplaceApproximation):
            with torch.enable_grad():
                native = _laplace_guide(native, args, kwargs)
        latent = native.get_posterior(*args, **kwargs).sample(shape)
        return {
            site["name"]: biject_to(site["fn"].support)(u)
            for site, u in native._unpack_latent(latent)
        }
    out = {}
    for name, site in native.prototype_trace.iter_stochastic_nodes():
        support = biject_to(site["fn"].support)
        if isinstance(native, pag.AutoNormal):
            loc, scale = native._get_loc_and_scale(name)
            u = torch.distributions.Normal(loc, scale).sample(shape)
            out[name] = support(u)
        else:  # AutoDelta: the point, repeated
            v = native.median(*args, **kwargs)[name].detach()
            out[name] = v.expand(shape + v.shape)
    return out


def sample_posterior(native, params, seed, sample_shape, args, kwargs):
    """Draws from the guide's posterior: ``sample_shape + site shape`` per latent site."""
    load(native, params, args, kwargs)
    store = pyro.get_param_store()
    with store.scope(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        out = _draw(native, sample_shape, args, kwargs)
    return {k: v.detach().cpu().numpy() for k, v in out.items()}
