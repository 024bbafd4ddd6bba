"""Neutral autoguides that render to each framework's own autoguide.

``AutoNormal(model)`` (and ``AutoDiagonalNormal``, ``AutoMultivariateNormal``,
``AutoLowRankMultivariateNormal``, ``AutoDelta``) is built once from a neutral
model.  Rendering it for a backend gives that framework's native autoguide
(``numpyro.infer.autoguide.AutoNormal`` / ``pyro.infer.autoguide.AutoNormal``) on
the rendered model, so ``dg.fit(model, guide)`` and each framework's own ``SVI``
take it, and its params keep the framework's own names::

    numpyro: x_auto_loc, x_auto_scale, auto_loc, auto_scale_tril, ...
    pyro:    AutoNormal.locs.x, AutoNormal.scales.x, AutoMultivariateNormal.loc, ...

:meth:`AutoGuide.translate` maps fitted params from one framework's names and
storage to the other's (the name table is :data:`dualguide._table.AUTOGUIDE_PARAMS`),
so a fit in one framework gives the same ``median`` and ``quantiles`` in the other.

>>> import dualguide as dg
>>> from dualguide import distributions as dist
>>> def model():
...     dg.sample("x", dist.Normal(0.0, 1.0))
>>> guide = dg.autoguides.AutoNormal(model, init_scale=0.1)
>>> r = dg.fit(model, guide, backend="numpyro", num_steps=300)
>>> sorted(r.params)
['x_auto_loc', 'x_auto_scale']
>>> sorted(guide.translate(r.params, to="pyro"))
['AutoNormal.locs.x', 'AutoNormal.scales.x']

Defaults that differ between the frameworks are pinned: the latent init strategy is
``"feasible"`` in both (every latent starts at the point whose unconstrained value
is 0).  Other native defaults are kept as the framework has them (e.g. the low-rank
factor starts at zero in NumPyro and random in Pyro).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import _state
from . import constraints as _c
from ._inputs import float_np
from ._table import (
    AUTOGUIDE_INIT_ARGS,
    AUTOGUIDE_INITS,
    AUTOGUIDE_PARAMS,
    BACKENDS,
)
from .contract import neutral_constraint  # noqa: F401  (re-exported: it lived here)
from .errors import SpecError

__all__ = [
    "AutoGuide",
    "AutoNormal",
    "AutoDiagonalNormal",
    "AutoMultivariateNormal",
    "AutoLowRankMultivariateNormal",
    "AutoDelta",
    "AutoLaplaceApproximation",
    "AutoIAFNormal",
    "AutoGuideList",
    "InitStrategy",
    "init_to_feasible",
    "init_to_median",
    "init_to_mean",
    "init_to_sample",
    "init_to_uniform",
    "init_to_value",
    "translate_params",
    "naming_of",
]

Layout = Sequence[tuple[str, tuple]]


def _backend_module(b):
    return _state.feature(b, "autoguides")


class AutoGuide:
    """Base class: a neutral autoguide over ``model``'s latent sites.

    Render with ``guide.render(backend)`` (or let :func:`dualguide.fit` do it);
    each render makes a fresh native autoguide.  Calling the neutral object
    directly runs a native autoguide of the active backend, made once per backend.
    """

    #: options this autoguide accepts, besides ``init_loc_fn``
    _options: tuple = ()

    def __init__(self, model: Callable, *, init_loc_fn: Any = "feasible", **options):
        if not callable(model):
            raise SpecError(f"{self.kind}: expected a model function, got {model!r}")
        self.model = getattr(model, "neutral", model)
        self.init_loc_fn = _check_init(self.kind, init_loc_fn)
        self.options = options
        self._cache: dict = {}
        #: the model arguments of the last fit or SVI run of this guide (see :meth:`remember`)
        self._seen: tuple[tuple, dict] | None = None

    @property
    def kind(self) -> str:
        """The autoguide's name, e.g. ``"AutoNormal"`` (the key in ``AUTOGUIDE_PARAMS``)."""
        return type(self).__name__

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        name = getattr(self.model, "__name__", repr(self.model))
        return f"dualguide.autoguides.{self.kind}({name}, init_loc_fn={self.init_loc_fn!r}{opts})"

    # rendering -----------------------------------------------------------------------------
    def render(
        self,
        backend: str | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        model_args: tuple = (),
        model_kwargs: dict | None = None,
    ):
        """A fresh native autoguide of ``backend`` on the rendered model.

        With ``params`` (fitted values, either backend's names; translated as
        needed) the guide is set up on ``model_args`` and, for Pyro, the params are
        loaded into the module, where Pyro autoguides keep them: its native
        ``median()``, ``quantiles()`` and ``SVI`` then start from them.  (Writing
        them into Pyro's ``ParamStore`` is not enough: the packed guides' ``loc``
        and ``cov_factor`` are plain ``nn.Parameter`` s the store cannot replace.)
        NumPyro autoguides hold no params: pass them to ``median(params)`` and co.;
        here they are only checked against the guide's names and shapes.

        >>> import dualguide as dg
        >>> from dualguide import distributions as dist
        >>> def model():
        ...     dg.sample("x", dist.Normal(0.0, 1.0))
        >>> g = dg.autoguides.AutoNormal(model).render("pyro")
        >>> type(g).__mro__[1]
        <class 'pyro.infer.autoguide.guides.AutoNormal'>
        """
        b = _state.resolve(backend)
        native = self.__dualguide_render__(b)
        if params is not None:
            p = self.translate(params, b.name, model_args=model_args, model_kwargs=model_kwargs)
            args, kwargs = _args(b, model_args, model_kwargs)
            _backend_module(b).load(native, p, args, kwargs)
        return native

    def __dualguide_render__(self, b):
        from .render import render

        native = _backend_module(b).make(
            self.kind, render(self.model, b), self.init_loc_fn, dict(self.options)
        )
        native.backend = b.name
        native.neutral = self
        return native

    def __call__(self, *args, **kwargs):
        b = _state.current()
        native = self._cache.get(b.name)
        if native is None:
            native = self._cache[b.name] = self.__dualguide_render__(b)
        return native(*args, **kwargs)

    # model arguments ---------------------------------------------------------------------
    def remember(self, model_args: Sequence = (), model_kwargs: Mapping | None = None) -> None:
        """Keep the model arguments this guide was fitted or run with: ``dg.fit``,
        ``dg.infer.SVI`` record them, and ``median``, ``quantiles``,
        ``sample_posterior``, ``get_posterior`` and ``translate`` use them when given no
        ``model_args`` / ``model_kwargs`` (as a NumPyro autoguide, which keeps the model's
        arguments from its first run)."""
        self._seen = (tuple(model_args), dict(model_kwargs or {}))

    def _inputs(self, method: str, model_args, model_kwargs, *, need: bool = True):
        """``(model_args, model_kwargs)``: the given ones, else the remembered ones; with
        ``need`` a SpecError, naming ``method``, when the model needs arguments and there
        are none."""
        if model_args is not None or model_kwargs is not None:
            return tuple(model_args or ()), dict(model_kwargs or {})
        if self._seen is not None:
            return self._seen
        if need:
            import inspect

            try:
                inspect.signature(self.model).bind()
            except TypeError as e:
                name = getattr(self.model, "__name__", "the model")
                raise SpecError(
                    f"{self.kind}.{method}: the model {name} takes arguments ({e}) and this "
                    f"guide has not been fitted or run with them: pass "
                    f"{method}(..., model_args=(...), model_kwargs={{...}})"
                ) from None
            except ValueError:
                pass  # no signature: let the framework speak
        return (), {}

    # params --------------------------------------------------------------------------------
    def layout(
        self, backend: str | None = None, model_args: tuple = (), model_kwargs: dict | None = None
    ) -> list[tuple[str, tuple]]:
        """The latent sites and their unconstrained shapes, in the order ``backend`` packs them."""
        b = _state.resolve(backend)
        native = self.__dualguide_render__(b)
        args, kwargs = _args(b, model_args, model_kwargs)
        return _backend_module(b).layout(native, args, kwargs)

    def translate(
        self,
        params: Mapping[str, Any],
        to: str,
        *,
        model_args: tuple | None = None,
        model_kwargs: dict | None = None,
    ) -> dict[str, np.ndarray]:
        """Fitted params (constrained, either backend's names) in backend ``to``'s names.

        ``params`` may be a :class:`~dualguide.FitResult`.  Params that are not
        this autoguide's (e.g. the model's own params) pass through unchanged.
        Packed guides (all but AutoNormal and AutoDelta) trace the model on both
        backends to learn how each orders the latent vector, so they need
        ``model_args`` if the model takes arguments.

        >>> import dualguide as dg
        >>> from dualguide import distributions as dist
        >>> def model():
        ...     dg.sample("x", dist.Normal(0.0, 1.0))
        >>> g = dg.autoguides.AutoNormal(model)
        >>> g.translate({"x_auto_loc": 0.5, "x_auto_scale": 2.0}, to="pyro")
        {'AutoNormal.locs.x': array(0.5, dtype=float32), 'AutoNormal.scales.x': array(2., dtype=float32)}
        """
        target = _state.resolve(to).name if not isinstance(to, str) else to.lower()
        if target not in BACKENDS:
            raise SpecError(f"{self.kind}.translate: to must be one of {BACKENDS}, got {to!r}")
        params = _as_params(params)
        source = naming_of(self.kind, params)
        if source is None or source == target:
            return {k: np.asarray(v, dtype=float_np()) for k, v in params.items()}
        layouts = None
        if not AUTOGUIDE_PARAMS[self.kind].per_site:
            model_args, model_kwargs = self._inputs("translate", model_args, model_kwargs)
            layouts = {
                source: self.layout(source, model_args, model_kwargs),
                target: self.layout(target, model_args, model_kwargs),
            }
        return translate_params(self.kind, params, source, target, layouts=layouts)

    def median(
        self,
        params: Mapping[str, Any],
        *,
        backend: str | None = None,
        model_args: tuple | None = None,
        model_kwargs: dict | None = None,
    ) -> dict[str, np.ndarray]:
        """The native guide's ``median`` of each latent site, as numpy arrays.

        ``params`` may use either backend's names (they are translated); ``backend``
        defaults to the one the params are named for.
        """
        if self.kind in _NO_SUMMARY:
            raise SpecError(
                f"{self.kind} has no closed-form median or quantiles (a flow's marginals): "
                "draw with sample_posterior(seed, params, sample_shape=(n,)) and take "
                "np.median / np.quantile over axis 0"
            )
        b, p, args, kwargs = self._prepare(params, backend, model_args, model_kwargs, "median")
        native = self.__dualguide_render__(b)
        return _backend_module(b).median(native, p, args, kwargs)

    def sample_posterior(
        self,
        seed: int,
        params: Mapping[str, Any],
        *,
        sample_shape: Sequence[int] = (),
        backend: str | None = None,
        model_args: tuple | None = None,
        model_kwargs: dict | None = None,
    ) -> dict[str, np.ndarray]:
        """Draws from the fitted guide: ``{site: array of shape sample_shape + site shape}``.

        NumPyro's argument order (``sample_posterior(rng_key, params, ...)``) with a plain
        int ``seed``; on NumPyro it is the native ``sample_posterior``, on Pyro the
        guide's posterior sampled under ``torch.manual_seed(seed)`` (Pyro autoguides have
        no such method).  Constrained values, latent sites only.  The two frameworks' RNGs
        differ: the same seed gives different draws of the same distribution.

        >>> import dualguide as dg
        >>> from dualguide import distributions as dist
        >>> def model():
        ...     dg.sample("x", dist.Normal(0.0, 1.0))
        >>> g = dg.autoguides.AutoNormal(model)
        >>> d = g.sample_posterior(0, {"x_auto_loc": 1.0, "x_auto_scale": 0.5},
        ...                        sample_shape=(1000,), backend="pyro")
        >>> d["x"].shape, bool(abs(d["x"].mean() - 1.0) < 0.1)
        ((1000,), True)
        """
        shape = _check_sample_shape(self.kind, sample_shape)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise SpecError(f"{self.kind}.sample_posterior: seed must be an int, got {seed!r}")
        b, p, args, kwargs = self._prepare(
            params, backend, model_args, model_kwargs, "sample_posterior"
        )
        native = self.__dualguide_render__(b)
        return _backend_module(b).sample_posterior(native, p, int(seed), shape, args, kwargs)

    def quantiles(
        self,
        params: Mapping[str, Any],
        quantiles: Sequence[float],
        *,
        backend: str | None = None,
        model_args: tuple | None = None,
        model_kwargs: dict | None = None,
    ) -> dict[str, np.ndarray]:
        """The native guide's ``quantiles`` of each latent site: arrays of shape ``(len(q), ...)``."""
        if self.kind in _NO_SUMMARY:
            self.median(params)  # raises the flows' message
        spec = AUTOGUIDE_PARAMS.get(self.kind)
        if spec is not None and not spec.quantiles:
            raise SpecError(f"{self.kind} has no quantiles (a point estimate): use median()")
        qs = [float(q) for q in quantiles]
        if not all(0.0 < q < 1.0 for q in qs):
            raise SpecError(f"{self.kind}.quantiles: quantiles must lie in (0, 1), got {qs}")
        b, p, args, kwargs = self._prepare(params, backend, model_args, model_kwargs, "quantiles")
        native = self.__dualguide_render__(b)
        return _backend_module(b).quantiles(native, p, qs, args, kwargs)

    def _prepare(self, params, backend, model_args, model_kwargs, method):
        params = _as_params(params)
        model_args, model_kwargs = self._inputs(method, model_args, model_kwargs)
        if backend is None:
            backend = naming_of(self.kind, params)
        b = _state.resolve(backend)
        p = self.translate(params, b.name, model_args=model_args, model_kwargs=model_kwargs)
        args, kwargs = _args(b, model_args, model_kwargs)
        return b, p, args, kwargs


class AutoNormal(AutoGuide):
    """Independent Normal per latent site, in unconstrained space.

    Params: NumPyro ``{site}_auto_loc``, ``{site}_auto_scale``; Pyro
    ``AutoNormal.locs.{site}``, ``AutoNormal.scales.{site}``.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     dg.sample("x", dist.LogNormal(0.0, 1.0))
    >>> guide = dg.autoguides.AutoNormal(model, init_scale=0.05)
    """

    def __init__(self, model: Callable, *, init_loc_fn: Any = "feasible", init_scale: float = 0.1):
        super().__init__(model, init_loc_fn=init_loc_fn, init_scale=_check_scale(init_scale))


class AutoDiagonalNormal(AutoGuide):
    """One diagonal Normal over all latents, packed into one unconstrained vector.

    Params: NumPyro ``auto_loc``, ``auto_scale``; Pyro ``AutoDiagonalNormal.loc``,
    ``AutoDiagonalNormal.scale``.
    """

    def __init__(self, model: Callable, *, init_loc_fn: Any = "feasible", init_scale: float = 0.1):
        super().__init__(model, init_loc_fn=init_loc_fn, init_scale=_check_scale(init_scale))


class AutoMultivariateNormal(AutoGuide):
    """A full-covariance Normal over the packed unconstrained latents.

    Params: NumPyro ``auto_loc``, ``auto_scale_tril`` (the Cholesky factor L); Pyro
    ``AutoMultivariateNormal.loc``, ``.scale`` and ``.scale_tril`` with
    ``L = scale[:, None] * scale_tril`` (a unit-diagonal triangle): translation
    converts by that formula.
    """

    def __init__(self, model: Callable, *, init_loc_fn: Any = "feasible", init_scale: float = 0.1):
        super().__init__(model, init_loc_fn=init_loc_fn, init_scale=_check_scale(init_scale))


class AutoLowRankMultivariateNormal(AutoGuide):
    """A low-rank-plus-diagonal Normal over the packed unconstrained latents.

    Covariance ``D W W^T D + D^2`` with ``D = diag(scale)``, ``W = cov_factor`` in both
    frameworks.  Params: NumPyro ``auto_loc``, ``auto_cov_factor``, ``auto_scale``;
    Pyro ``AutoLowRankMultivariateNormal.loc``, ``.cov_factor``, ``.scale``.
    ``rank`` defaults to ``round(sqrt(latent dim))`` in both.
    """

    def __init__(
        self,
        model: Callable,
        *,
        init_loc_fn: Any = "feasible",
        init_scale: float = 0.1,
        rank: int | None = None,
    ):
        if rank is not None and (
            isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1
        ):
            raise SpecError(
                f"AutoLowRankMultivariateNormal: rank must be an int >= 1, got {rank!r}"
            )
        super().__init__(
            model,
            init_loc_fn=init_loc_fn,
            init_scale=_check_scale(init_scale),
            rank=None if rank is None else int(rank),
        )


class AutoDelta(AutoGuide):
    """A point mass per latent site (MAP), stored constrained.

    Params: NumPyro ``{site}_auto_loc``; Pyro ``AutoDelta.{site}``.
    """

    def __init__(self, model: Callable, *, init_loc_fn: Any = "feasible"):
        super().__init__(model, init_loc_fn=init_loc_fn)


class AutoLaplaceApproximation(AutoGuide):
    """A MAP point over the packed unconstrained latents, then a Gaussian at it (Laplace).

    Fit it like :class:`AutoDelta` (the guide is a point mass while fitting); then
    :meth:`get_posterior` gives the Laplace approximation: mean the MAP point, covariance
    the inverse Hessian of ``-log p(x, z)`` in unconstrained space at that point, computed
    by each framework's own code (NumPyro's ``get_posterior(params)``, Pyro's
    ``laplace_approximation()``).  ``median``, ``quantiles`` and ``sample_posterior`` use
    that Gaussian on both backends.  Params: NumPyro ``auto_loc``; Pyro
    ``AutoLaplaceApproximation.loc``.

    >>> import numpy as np
    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     dg.sample("z", dist.Normal(0.0, 2.0).expand([2]).to_event(1))
    >>> g = dg.autoguides.AutoLaplaceApproximation(model)
    >>> post = g.get_posterior({"auto_loc": np.zeros(2, np.float32)}, backend="pyro")
    >>> np.round(post["covariance_matrix"], 4).tolist()
    [[4.0, 0.0], [0.0, 4.0]]
    """

    def __init__(self, model: Callable, *, init_loc_fn: Any = "feasible"):
        super().__init__(model, init_loc_fn=init_loc_fn)

    def get_posterior(
        self,
        params: Mapping[str, Any],
        *,
        backend: str | None = None,
        model_args: tuple | None = None,
        model_kwargs: dict | None = None,
    ) -> LaplacePosterior:
        """The Laplace Gaussian over the packed unconstrained latents, as numpy.

        Returns ``{"loc", "scale_tril", "covariance_matrix", "layout"}`` (a
        :class:`LaplacePosterior`: a dict whose entries read as attributes too,
        ``post.loc``): ``layout`` is ``[(site, unconstrained shape), ...]`` in the order
        of the vector.
        """
        b, p, args, kwargs = self._prepare(
            params, backend, model_args, model_kwargs, "get_posterior"
        )
        native = self.__dualguide_render__(b)
        loc, lt = _backend_module(b).laplace(native, p, args, kwargs)
        loc = np.asarray(loc, dtype=float_np())
        lt = np.asarray(lt, dtype=float_np())
        cov = (lt.astype(np.float64) @ lt.T.astype(np.float64)).astype(float_np())
        layout = _backend_module(b).layout(native, args, kwargs)
        return LaplacePosterior(loc=loc, scale_tril=lt, covariance_matrix=cov, layout=layout)


class LaplacePosterior(dict):
    """What :meth:`AutoLaplaceApproximation.get_posterior` returns: a dict of numpy arrays
    (``loc``, ``scale_tril``, ``covariance_matrix``, ``layout``) whose entries read as
    attributes too (``post.loc``), the names of the Gaussian NumPyro and Pyro return.  It is
    not a distribution: draw with the guide's ``sample_posterior``."""

    def __getattr__(self, name: str) -> Any:
        if name in self:
            return self[name]
        raise AttributeError(
            f"get_posterior's result has {', '.join(self)} (numpy arrays), not {name!r}: it "
            "is not a distribution; draw with guide.sample_posterior(seed, params, "
            "sample_shape=(n,))"
        )


class AutoIAFNormal(AutoGuide):
    """A standard Normal pushed through inverse autoregressive flows (IAF), packed latents.

    One architecture on both backends (NumPyro's, as in the NeuTra paper):
    ``num_transforms`` affine autoregressive transforms, each over a masked network
    (MADE) with hidden layers ``hidden_dim`` (default ``[D, D]``, D the latent dimension;
    each at least D), ``nonlinearity`` (``"elu"``, ``"relu"`` or ``"tanh"``), the
    identity variable order, the latent vector reversed between transforms,
    log-scales clipped to [-5, 3], optional input-to-output ``skip_connections``.
    Renders to ``numpyro.infer.autoguide.AutoIAFNormal`` (``num_flows``,
    ``hidden_dims``) and ``pyro.infer.autoguide.AutoIAFNormal``.  The argument names are
    Pyro's; the defaults are NumPyro's (Pyro's are one transform, one hidden layer of
    3D+1, ReLU and a random order: write them out to get them).  Needs D >= 2.

    Params (per transform ``i`` and masked layer ``j``): NumPyro
    ``auto_arn__{i}$params.layers.{j}.W`` / ``.b`` (each network weight is its own param,
    where NumPyro's ``numpyro.module`` keeps one pytree), Pyro
    ``AutoIAFNormal.transform$$${i}.arn.layers.{j}.weight`` / ``.bias`` (the weight
    transposed); ``translate`` maps them.  Initial weights are each framework's own.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     x1 = dg.sample("x1", dist.Normal(0.0, 1.0))
    ...     dg.sample("x2", dist.Normal(x1**2, 0.5))
    >>> g = dg.autoguides.AutoIAFNormal(model, hidden_dim=[8, 8], num_transforms=2)
    >>> r = dg.fit(model, g, backend="numpyro", num_steps=10)
    >>> sorted(r.params)[:2]
    ['auto_arn__0$params.layers.0.W', 'auto_arn__0$params.layers.0.b']
    """

    def __init__(
        self,
        model: Callable,
        *,
        hidden_dim: Sequence[int] | None = None,
        num_transforms: int = 3,
        skip_connections: bool = False,
        nonlinearity: str = "elu",
        init_loc_fn: Any = "feasible",
    ):
        if hidden_dim is not None:
            if isinstance(hidden_dim, (int, np.integer)):
                hidden_dim = [int(hidden_dim)]
            try:
                hidden_dim = [int(h) for h in hidden_dim]
            except (TypeError, ValueError):
                hidden_dim = None
                ok = False
            else:
                ok = bool(hidden_dim) and all(h >= 1 for h in hidden_dim)
            if not ok:
                raise SpecError(
                    "AutoIAFNormal: hidden_dim must be a non-empty list of layer widths, "
                    "e.g. hidden_dim=[8, 8]"
                )
        if (
            isinstance(num_transforms, bool)
            or not isinstance(num_transforms, (int, np.integer))
            or num_transforms < 1
        ):
            raise SpecError(
                f"AutoIAFNormal: num_transforms must be an int >= 1, got {num_transforms!r}"
            )
        if nonlinearity not in _NONLINEARITIES:
            raise SpecError(
                f"AutoIAFNormal: nonlinearity must be one of {', '.join(_NONLINEARITIES)}, "
                f"got {nonlinearity!r}"
            )
        super().__init__(
            model,
            init_loc_fn=init_loc_fn,
            hidden_dim=hidden_dim,
            num_transforms=int(num_transforms),
            skip_connections=bool(skip_connections),
            nonlinearity=nonlinearity,
        )


class AutoGuideList(AutoGuide):
    """Several autoguides, each over some of the model's latents (Pyro's and NumPyro's
    ``AutoGuideList``): ``append`` autoguides built on ``dg.handlers.block(model,
    expose=[...])`` pieces of the model.

    Renders to the framework's own ``AutoGuideList`` holding the parts' native renderings.
    Params: NumPyro keeps each part's own names (``{site}_auto_loc``, ``auto_loc``...; so at
    most one part may be a packed guide, whose ``auto_loc`` would clash); Pyro names them
    by position, ``AutoGuideList.{i}.`` + the part's name without its class
    (``AutoGuideList.0.loc``, ``AutoGuideList.1.locs.x``).  ``translate``, ``median``,
    ``quantiles`` (when every part has them) and ``sample_posterior`` work part by part.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     a = dg.sample("a", dist.Normal(0.0, 1.0))
    ...     dg.sample("b", dist.LogNormal(a, 1.0))
    >>> g = dg.autoguides.AutoGuideList(model)
    >>> g.append(dg.autoguides.AutoDiagonalNormal(dg.handlers.block(model, expose=["a"])))
    >>> g.append(dg.autoguides.AutoDelta(dg.handlers.block(model, expose=["b"])))
    >>> sorted(dg.fit(model, g, backend="pyro", num_steps=5).params)
    ['AutoGuideList.0.loc', 'AutoGuideList.0.scale', 'AutoGuideList.1.b']
    """

    def __init__(self, model: Callable):
        super().__init__(model)
        self.parts: list[AutoGuide] = []

    def __repr__(self) -> str:
        name = getattr(self.model, "__name__", repr(self.model))
        return f"dualguide.autoguides.AutoGuideList({name}, parts={self.parts!r})"

    def append(self, part: AutoGuide) -> None:
        """Add an autoguide over some of the latents (its model a blocked piece of the model)."""
        if not isinstance(part, AutoGuide) or isinstance(part, AutoGuideList):
            raise SpecError(
                "AutoGuideList.append: expected a dg.autoguides autoguide (not a list), e.g. "
                "AutoNormal(dg.handlers.block(model, expose=['z'])), got "
                f"{type(part).__name__}"
            )
        packed = [p for p in [*self.parts, part] if not AUTOGUIDE_PARAMS[p.kind].per_site]
        if len(packed) > 1:
            raise SpecError(
                "AutoGuideList: at most one packed part (AutoDiagonalNormal, "
                "AutoMultivariateNormal, AutoLowRankMultivariateNormal, "
                "AutoLaplaceApproximation, AutoIAFNormal): NumPyro would name both parts' "
                f"params auto_loc; got {', '.join(p.kind for p in packed)}"
            )
        self.parts.append(part)
        self._cache.clear()

    def __dualguide_render__(self, b):
        from .render import render

        if not self.parts:
            raise SpecError("AutoGuideList has no parts: append autoguides first")
        natives = [p.__dualguide_render__(b) for p in self.parts]
        native = _backend_module(b).make_list(render(self.model, b), natives)
        native.backend = b.name
        native.neutral = self
        return native

    def layout(
        self, backend: str | None = None, model_args: tuple = (), model_kwargs: dict | None = None
    ) -> list[tuple[str, tuple]]:
        """The parts' layouts, one after the other."""
        return [x for p in self.parts for x in p.layout(backend, model_args, model_kwargs)]

    def _own(self, i: int, part: AutoGuide, params: Mapping[str, Any], backend: str, sites):
        """Part ``i``'s params among ``params`` (``backend``'s list names) in the part's own names."""
        out = {}
        if backend == "pyro":
            head = f"AutoGuideList.{i}."
            for k, v in params.items():
                if k.startswith(head):
                    out[f"{part.kind}.{k[len(head) :]}"] = (k, v)
            return out
        for p in AUTOGUIDE_PARAMS[part.kind].numpyro:
            pat = _pattern(p.name)
            for k, v in params.items():
                m = pat.match(k)
                if m and (m.groupdict().get("site") is None or m.group("site") in sites):
                    out[k] = (k, v)
        return out

    def translate(
        self,
        params: Mapping[str, Any],
        to: str,
        *,
        model_args: tuple | None = None,
        model_kwargs: dict | None = None,
    ) -> dict[str, np.ndarray]:
        """Part by part: each part's params translated with its own table row."""
        model_args, model_kwargs = self._inputs("translate", model_args, model_kwargs)
        target = _state.resolve(to).name if not isinstance(to, str) else to.lower()
        if target not in BACKENDS:
            raise SpecError(f"AutoGuideList.translate: to must be one of {BACKENDS}, got {to!r}")
        params = _as_params(params)
        source = "pyro" if any(k.startswith("AutoGuideList.") for k in params) else "numpyro"
        if source == target:
            return {k: np.asarray(v, dtype=float_np()) for k, v in params.items()}
        out: dict[str, np.ndarray] = {}
        used: set = set()
        for i, part in enumerate(self.parts):
            sites = {s for s, _ in part.layout(source, model_args, model_kwargs)}
            own = self._own(i, part, params, source, sites)
            used |= {k for k, _ in own.values()}
            plain = {name: v for name, (_k, v) in own.items()}
            t = part.translate(plain, target, model_args=model_args, model_kwargs=model_kwargs)
            for k, v in t.items():
                if target == "pyro":
                    k = f"AutoGuideList.{i}.{k[len(part.kind) + 1 :]}"
                out[k] = v
        for k, v in params.items():
            if k not in used:
                out[k] = np.asarray(v, dtype=float_np())
        return out

    def _prepare(self, params, backend, model_args, model_kwargs, method):
        params = _as_params(params)
        model_args, model_kwargs = self._inputs(method, model_args, model_kwargs)
        if backend is None:
            backend = "pyro" if any(k.startswith("AutoGuideList.") for k in params) else "numpyro"
        b = _state.resolve(backend)
        p = self.translate(params, b.name, model_args=model_args, model_kwargs=model_kwargs)
        args, kwargs = _args(b, model_args, model_kwargs)
        return b, p, args, kwargs

    def quantiles(self, params, quantiles, **kw):  # type: ignore[override]
        """The parts' quantiles (each part must have them)."""
        for p in self.parts:
            if not AUTOGUIDE_PARAMS[p.kind].quantiles or p.kind in _NO_SUMMARY:
                raise SpecError(f"AutoGuideList: its part {p.kind} has no quantiles")
        return super().quantiles(params, quantiles, **kw)


_NONLINEARITIES = ("elu", "relu", "tanh")
#: autoguides with no closed-form median / quantiles
_NO_SUMMARY = {"AutoIAFNormal"}


# init strategies -----------------------------------------------------------------------------


class InitStrategy:
    """A neutral ``init_loc_fn``: a strategy name and its arguments, rendered to each
    framework's own ``init_to_*`` function (``numpyro.infer.initialization`` /
    ``pyro.infer.autoguide.initialization``).  Make one with :func:`init_to_median` & co.
    """

    def __init__(self, strategy: str, **kwargs: Any):
        self.strategy = strategy
        self.kwargs = kwargs

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"init_to_{self.strategy}({args})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, InitStrategy)
            and other.strategy == self.strategy
            and repr(other) == repr(self)
        )

    __hash__ = None  # type: ignore[assignment]


def init_to_feasible() -> InitStrategy:
    """Each latent at the point whose unconstrained value is 0 (the same on both backends).

    >>> init_to_feasible()
    init_to_feasible()
    """
    return InitStrategy("feasible")


def init_to_median(num_samples: int = 15) -> InitStrategy:
    """Each latent at the elementwise median of ``num_samples`` draws from its prior.

    Both frameworks default to 15 draws; the draws come from each framework's own RNG,
    so the two backends start at different (equally distributed) points.  An odd
    ``num_samples`` gives the middle draw on both (torch's median of an even count is
    the lower middle value, jax's the average of the two).

    >>> init_to_median(num_samples=31)
    init_to_median(num_samples=31)
    """
    n = _positive_int("init_to_median", "num_samples", num_samples)
    return InitStrategy("median", num_samples=n)


def init_to_mean() -> InitStrategy:
    """Each latent at its prior's mean (the median of 15 draws where the prior has no mean).

    >>> init_to_mean()
    init_to_mean()
    """
    return InitStrategy("mean")


def init_to_sample() -> InitStrategy:
    """Each latent at one draw from its prior (each framework's RNG).

    >>> init_to_sample()
    init_to_sample()
    """
    return InitStrategy("sample")


def init_to_uniform(radius: float = 2.0) -> InitStrategy:
    """Each latent uniform in ``(-radius, radius)`` in unconstrained space (both default 2).

    >>> init_to_uniform(radius=0.5)
    init_to_uniform(radius=0.5)
    """
    try:
        r = float(radius)
    except (TypeError, ValueError):
        r = float("nan")
    if not (r >= 0 and np.isfinite(r)):
        raise SpecError(f"init_to_uniform: radius must be a number >= 0, got {radius!r}")
    return InitStrategy("uniform", radius=r)


def init_to_value(values: Mapping[str, Any] | None = None) -> InitStrategy:
    """The given (constrained) values by site name; other latents start as
    :func:`init_to_uniform` would (radius 2), as both frameworks' own ``init_to_value`` do.

    >>> init_to_value(values={"x": 1.0})
    init_to_value(values={'x': array(1., dtype=float32)})
    """
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise SpecError(f"init_to_value: values must be a dict by site name, got {values!r}")
    out = {}
    for k, v in values.items():
        try:
            out[str(k)] = np.asarray(v, dtype=float_np())
        except (TypeError, ValueError):
            raise SpecError(f"init_to_value: values[{k!r}] is not numeric: {v!r}") from None
    return InitStrategy("value", values=out)


def _positive_int(fn: str, name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise SpecError(f"{fn}: {name} must be an int >= 1, got {v!r}")
    return int(v)


def _check_sample_shape(kind: str, sample_shape) -> tuple[int, ...]:
    if isinstance(sample_shape, (int, np.integer)) and not isinstance(sample_shape, bool):
        sample_shape = (int(sample_shape),)
    try:
        shape = tuple(int(n) for n in sample_shape)
        ok = all(n >= 1 for n in shape) and all(
            not isinstance(n, bool) and float(n) == int(n) for n in sample_shape
        )
    except (TypeError, ValueError):
        ok, shape = False, ()
    if not ok:
        raise SpecError(
            f"{kind}.sample_posterior: sample_shape must be a tuple of positive ints, "
            f"e.g. (1000,), got {sample_shape!r}"
        )
    return shape


# helpers -----------------------------------------------------------------------------------


def _check_scale(init_scale) -> float:
    try:
        s = float(init_scale)
    except (TypeError, ValueError):
        s = float("nan")
    if not s > 0 or not np.isfinite(s):
        raise SpecError(f"autoguide: init_scale must be a positive number, got {init_scale!r}")
    return s


def _check_init(kind: str, init_loc_fn):
    if isinstance(init_loc_fn, str):
        if init_loc_fn not in AUTOGUIDE_INITS or init_loc_fn == "value":
            names = ", ".join(repr(k) for k in AUTOGUIDE_INITS if k != "value")
            raise SpecError(
                f"{kind}: unknown init_loc_fn {init_loc_fn!r}; use one of {names}, "
                "dg.autoguides.init_to_median(num_samples=...) and the other init_to_* "
                "functions, or a dict of initial values by site name"
            )
        return init_loc_fn
    if isinstance(init_loc_fn, Mapping):
        out = {}
        for k, v in init_loc_fn.items():
            try:
                out[str(k)] = np.asarray(v, dtype=float_np())
            except (TypeError, ValueError):
                raise SpecError(f"{kind}: init_loc_fn[{k!r}] is not numeric: {v!r}") from None
        return out
    if isinstance(init_loc_fn, InitStrategy):
        if init_loc_fn.strategy not in AUTOGUIDE_INIT_ARGS:
            raise SpecError(f"{kind}: unknown init strategy {init_loc_fn!r}")
        return init_loc_fn
    if callable(init_loc_fn):  # a native init function: the user picks the backend
        return init_loc_fn
    raise SpecError(
        f"{kind}: init_loc_fn must be a strategy name, a dict of values or a function, "
        f"got {init_loc_fn!r}"
    )


def _args(b, model_args, model_kwargs):
    if not isinstance(model_args, (tuple, list)):
        raise SpecError(f"model_args must be a tuple, got {type(model_args).__name__}")
    return (
        tuple(b.to_array(a) for a in model_args),
        {k: b.to_array(v) for k, v in (model_kwargs or {}).items()},
    )


def _as_params(params) -> dict:
    if hasattr(params, "params") and isinstance(params.params, dict):
        params = params.params
    if not isinstance(params, Mapping):
        raise SpecError(f"expected a dict of params by name, got {type(params).__name__}")
    return dict(params)


def _pattern(template: str) -> re.Pattern:
    """``"{site}_auto_loc"`` -> a regex with a named group per placeholder (``{site}``: any
    text; ``{flow}``, ``{layer}``: an index)."""
    rx = re.escape(template).replace(re.escape("{site}"), "(?P<site>.+)")
    for key in ("flow", "layer"):
        rx = rx.replace(re.escape("{" + key + "}"), f"(?P<{key}>[0-9]+)")
    return re.compile("^" + rx + "$")


def naming_of(kind: str, params: Mapping[str, Any]) -> str | None:
    """Which backend's names ``params`` use for autoguide ``kind`` (None: neither).

    >>> naming_of("AutoNormal", {"AutoNormal.locs.x": 0.0, "AutoNormal.scales.x": 1.0})
    'pyro'
    """
    spec = AUTOGUIDE_PARAMS.get(kind)
    if spec is None:
        raise SpecError(
            f"{kind}: its params have no single naming table (AutoGuideList: translate with "
            "guide.translate(params, to=...), part by part)"
        )
    found = []
    for backend in BACKENDS:
        pats = [_pattern(p.name) for p in getattr(spec, backend)]
        if any(pat.match(k) for k in params for pat in pats):
            found.append(backend)
    if len(found) > 1:
        raise SpecError(
            f"{kind}: params mix NumPyro and Pyro names ({', '.join(sorted(params))}); "
            "pass the params of one fit"
        )
    return found[0] if found else None


def _per_site(kind, params, source, target):
    spec = AUTOGUIDE_PARAMS[kind]
    src, tgt = getattr(spec, source), getattr(spec, target)
    by_role: dict[str, dict[str, Any]] = {p.role: {} for p in src}
    used = set()
    for p in src:
        pat = _pattern(p.name)
        for k, v in params.items():
            m = pat.match(k)
            if m:
                by_role[p.role][m.group("site")] = v
                used.add(k)
    sites = list(dict.fromkeys(s for d in by_role.values() for s in d))
    missing = [p.name.format(site=s) for s in sites for p in src if s not in by_role[p.role]]
    if missing:
        raise SpecError(f"{kind}: {source} params lack {', '.join(missing)}")
    out = {}
    for s in sites:
        for p in tgt:
            out[p.name.format(site=s)] = np.asarray(by_role[p.role][s], dtype=float_np())
    return out, used


def _permutation(kind, layouts, source, target) -> np.ndarray | None:
    """Index array ``idx`` with ``target_vector = source_vector[idx]`` (None: same order)."""
    if layouts is None:
        return None
    src, tgt = list(layouts[source]), list(layouts[target])
    offsets, pos = {}, 0
    for site, shape in src:
        n = int(np.prod(shape, dtype=int))
        offsets[site] = (pos, n, tuple(shape))
        pos += n
    if sorted(s for s, _ in src) != sorted(s for s, _ in tgt):
        raise SpecError(
            f"{kind}: the model's latent sites differ between {source} "
            f"({', '.join(s for s, _ in src)}) and {target} ({', '.join(s for s, _ in tgt)})"
        )
    idx = []
    for site, shape in tgt:
        start, n, sshape = offsets[site]
        if tuple(shape) != sshape:
            raise SpecError(
                f"{kind}: latent {site!r} has unconstrained shape {sshape} in {source} but "
                f"{tuple(shape)} in {target}; its support unconstrains differently"
            )
        idx.extend(range(start, start + n))
    idx = np.asarray(idx, dtype=int)
    return None if np.array_equal(idx, np.arange(pos)) else idx


def translate_params(
    kind: str,
    params: Mapping[str, Any],
    source: str,
    target: str,
    *,
    layouts: Mapping[str, Layout] | None = None,
) -> dict[str, np.ndarray]:
    """Map autoguide ``kind``'s fitted params from ``source`` names and storage to ``target``'s.

    Pure numpy (no framework needed).  ``layouts`` gives each backend's latent
    order as ``[(site, unconstrained shape), ...]`` (see :meth:`AutoGuide.layout`);
    packed guides need it when the orders can differ (None: same order).  Keys
    that are not this autoguide's params pass through.  Values are in the current float dtype.

    >>> translate_params("AutoMultivariateNormal",
    ...     {"auto_loc": [0.0, 1.0], "auto_scale_tril": [[2.0, 0.0], [1.0, 4.0]]},
    ...     "numpyro", "pyro")["AutoMultivariateNormal.scale_tril"].tolist()
    [[1.0, 0.0], [0.25, 1.0]]
    """
    if kind not in AUTOGUIDE_PARAMS:
        raise SpecError(f"unknown autoguide {kind!r}; known: {', '.join(AUTOGUIDE_PARAMS)}")
    for b in (source, target):
        if b not in BACKENDS:
            raise SpecError(f"translate_params: backend must be one of {BACKENDS}, got {b!r}")
    params = dict(params)
    if source == target:
        return {k: np.asarray(v, dtype=float_np()) for k, v in params.items()}
    spec = AUTOGUIDE_PARAMS[kind]
    if _is_network(kind):
        out, used = _networks(kind, params, source, target, layouts)
    elif spec.per_site:
        out, used = _per_site(kind, params, source, target)
    else:
        out, used = _packed(kind, params, source, target, layouts)
    for k, v in params.items():
        if k not in used:
            if k in out:
                raise SpecError(f"{kind}: param {k!r} would be overwritten by the translation")
            out[k] = np.asarray(v, dtype=float_np())
    return out


def _is_network(kind: str) -> bool:
    return any("{flow}" in p.name for p in AUTOGUIDE_PARAMS[kind].numpyro)


#: network params stored (in, out) by stax and (out, in) by torch
_TRANSPOSED = {"weight", "skip"}


def _networks(kind, params, source, target, layouts):
    """Flow networks' weights: rename per (flow, layer), transposing the weight matrices."""
    spec = AUTOGUIDE_PARAMS[kind]
    if layouts is not None and [s for s, _ in layouts[source]] != [s for s, _ in layouts[target]]:
        raise SpecError(
            f"{kind}: {source} and {target} pack the latents in different orders "
            f"({[s for s, _ in layouts[source]]} vs {[s for s, _ in layouts[target]]}); a flow's "
            "network weights cannot be reordered"
        )
    tgt = {p.role: p for p in getattr(spec, target)}
    out, used = {}, set()
    for p in getattr(spec, source):
        pat = _pattern(p.name)
        for k, v in params.items():
            m = pat.match(k)
            if not m:
                continue
            arr = np.asarray(v, dtype=float_np())
            if p.role in _TRANSPOSED:
                if arr.ndim != 2:
                    raise SpecError(
                        f"{kind}: param {k!r} should be a matrix, got shape {arr.shape}"
                    )
                arr = np.ascontiguousarray(arr.T)
            out[tgt[p.role].name.format(**m.groupdict())] = arr
            used.add(k)
    if not used:
        raise SpecError(f"{kind}: no {source} network params among {', '.join(sorted(params))}")
    return out, used


def _packed(kind, params, source, target, layouts):
    spec = AUTOGUIDE_PARAMS[kind]
    src, tgt = getattr(spec, source), getattr(spec, target)
    missing = [p.name for p in src if p.name not in params]
    if missing:
        raise SpecError(f"{kind}: {source} params lack {', '.join(missing)}")
    v = {p.role: np.asarray(params[p.name], dtype=np.float64) for p in src}
    used = {p.name for p in src}
    # stored arrays -> common roles
    if "unit_scale_tril" in v:
        v["scale_tril"] = v.pop("scale")[:, None] * v.pop("unit_scale_tril")
    # reorder the latent vector if the two frameworks pack it differently
    idx = _permutation(kind, layouts, source, target)
    if idx is not None:
        for role in ("loc", "scale", "cov_factor"):
            if role in v:
                v[role] = v[role][idx]
        if "scale_tril" in v:
            lt = v["scale_tril"]
            cov = (lt @ lt.T)[np.ix_(idx, idx)]
            v["scale_tril"] = np.linalg.cholesky(cov)
    # common roles -> target storage
    roles = {p.role for p in tgt}
    if "unit_scale_tril" in roles:
        lt = v.pop("scale_tril")
        scale = np.diagonal(lt).copy()
        unit = np.tril(lt / scale[:, None], -1) + np.eye(lt.shape[-1])
        v["scale"], v["unit_scale_tril"] = scale, unit
    return {p.name: v[p.role].astype(float_np()) for p in tgt}, used


def translate_constraints(
    kind: str, constraints: Mapping[str, Any], source: str, target: str
) -> dict[str, Any]:
    """The recorded (neutral) constraints of ``kind``'s params under ``target``'s names.

    Each target param takes the neutral constraint of its row in
    :data:`~dualguide._table.AUTOGUIDE_PARAMS`; AutoDelta's points take the
    constraint recorded for the same site in ``source``.  Other keys pass through.

    >>> from dualguide import constraints
    >>> translate_constraints("AutoNormal", {"x_auto_loc": constraints.real,
    ...                       "x_auto_scale": constraints.positive}, "numpyro", "pyro")
    {'AutoNormal.locs.x': real, 'AutoNormal.scales.x': positive}
    """
    spec = AUTOGUIDE_PARAMS[kind]
    if source == target:
        return dict(constraints)
    if _is_network(kind):  # all real: rename only
        roles = {p.role: p.name for p in getattr(spec, target)}
        mapping = {}
        for p in getattr(spec, source):
            pat = _pattern(p.name)
            for k in constraints:
                m = pat.match(k)
                if m:
                    mapping[k] = roles[p.role].format(**m.groupdict())
        return {mapping.get(k, k): c for k, c in constraints.items()}
    src, tgt = getattr(spec, source), getattr(spec, target)
    out, used, sites = {}, set(), {}
    for p in src:
        pat = _pattern(p.name)
        for k, c in constraints.items():
            m = pat.match(k)
            if m:
                used.add(k)
                site = m.groupdict().get("site")
                sites.setdefault(site, {})[p.role] = c
    for site, by_role in sites.items():
        for p in tgt:
            if site is None and "{site}" in p.name:
                continue
            name = p.name.format(site=site) if site is not None else p.name
            if p.neutral == "support":
                out[name] = by_role.get(p.role)
            else:
                out[name] = _c._SINGLETONS[p.neutral]
    for k, c in constraints.items():
        if k not in used:
            out[k] = c
    return out
