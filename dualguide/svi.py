"""An SVI object in the frameworks' style, backed by each framework's own SVI.

``svi = dg.infer.SVI(model, guide, optim, loss=dg.infer.Trace_ELBO())`` and a loop of
``svi.step(*args)`` port a Pyro or NumPyro training loop unchanged: on Pyro it is
``pyro.infer.SVI`` with a ``pyro.optim`` optimizer (params in Pyro's global ``ParamStore``);
on NumPyro ``numpyro.infer.SVI`` with a jitted update whose state the object keeps.  Both
read and write dualguide's one param store, :func:`get_param_store` (constrained numpy
values), with Pyro's rules:

- a new SVI object starts from the values already in the store (others from their init
  values), so a loop continues where the last one stopped;
- :func:`clear_param_store` empties it (and Pyro's), and every SVI object then starts again
  from the init values at its next step.

>>> import dualguide as dg
>>> from dualguide import distributions as dist
>>> def model():
...     dg.sample("x", dist.Normal(0.0, 1.0))
>>> def guide():
...     dg.sample("x", dist.Normal(dg.param("m", 0.5), 1.0))
>>> dg.clear_param_store()
>>> svi = dg.infer.SVI(model, guide, dg.optim.Adam(lr=0.01), loss=dg.infer.Trace_ELBO())
>>> isinstance(svi.step(), float)
True
>>> sorted(dg.get_param_store())
['m']
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from . import _state
from .errors import SpecError
from .optim import Optimizer, as_optimizer

__all__ = [
    "SVI",
    "ParamStore",
    "RenyiELBO",
    "TraceGraph_ELBO",
    "TraceMeanField_ELBO",
    "Trace_ELBO",
    "clear_param_store",
    "get_param_store",
    "set_rng_seed",
]


class Trace_ELBO:
    """The ELBO of both frameworks' ``Trace_ELBO``; ``num_particles`` as in :func:`dualguide.fit`.

    Pyro's other constructor arguments (``max_plate_nesting``, ``vectorize_particles``...) are
    accepted and ignored: particles are vectorized on both backends, as in ``fit``.

    >>> Trace_ELBO(num_particles=8).num_particles
    8
    """

    #: the row of ``_table.ELBOS`` it renders to
    name = "Trace_ELBO"

    def __init__(self, num_particles: int = 1, **pyro_options: Any) -> None:
        if (
            isinstance(num_particles, bool)
            or not isinstance(num_particles, int)
            or num_particles < 1
        ):
            raise SpecError(
                f"{self.name}: num_particles must be an int >= 1, got {num_particles!r}"
            )
        self.num_particles = num_particles

    @property
    def options(self) -> dict[str, Any]:
        """The native constructor's arguments besides ``num_particles`` (RenyiELBO's alpha)."""
        return {}

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"{self.name}(num_particles={self.num_particles}{extra})"


class TraceMeanField_ELBO(Trace_ELBO):
    """``TraceMeanField_ELBO`` of both frameworks (analytic KL where both have it).

    >>> TraceMeanField_ELBO()
    TraceMeanField_ELBO(num_particles=1)
    """

    name = "TraceMeanField_ELBO"


class TraceGraph_ELBO(Trace_ELBO):
    """``TraceGraph_ELBO`` of both frameworks: score-function gradients for guide sites
    without ``rsample``, Rao-Blackwellized by the dependency structure; **no baselines**
    (NumPyro has none, so a site's ``infer={"baseline": ...}`` is refused on both; see
    ``docs/elbo.md``).

    >>> TraceGraph_ELBO(num_particles=4)
    TraceGraph_ELBO(num_particles=4)
    """

    name = "TraceGraph_ELBO"


class RenyiELBO(Trace_ELBO):
    """``RenyiELBO(alpha, num_particles)`` of both frameworks: the Renyi alpha-divergence bound
    (``alpha=0``: the importance-weighted bound, which tends to log Z as particles grow).

    ``alpha`` must not be 1 (that is :class:`Trace_ELBO`).  Guide sites without ``rsample`` are
    refused (Pyro raises, NumPyro silently drops their score term: ``docs/elbo.md``).

    >>> RenyiELBO(alpha=0.5, num_particles=8)
    RenyiELBO(num_particles=8, alpha=0.5)
    """

    name = "RenyiELBO"

    def __init__(self, alpha: float = 0.0, num_particles: int = 2, **pyro_options: Any) -> None:
        super().__init__(num_particles=num_particles)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha == 1:
            raise SpecError(
                f"RenyiELBO: alpha must be a number other than 1 (alpha=1 is Trace_ELBO), "
                f"got {alpha!r}"
            )
        self.alpha = float(alpha)

    @property
    def options(self) -> dict[str, Any]:
        return {"alpha": self.alpha}


# -- the param store ------------------------------------------------------------------------------
class ParamStore:
    """dualguide's one param store: constrained values by name, read as numpy arrays.

    The SVI objects register their params here (read lazily, so a step costs nothing
    extra); values set by hand (``store["m"] = 0.3``) become init values for the next SVI.

    >>> import dualguide as dg
    >>> dg.clear_param_store()
    >>> store = dg.get_param_store()
    >>> store["m"] = 0.3
    >>> "m" in store, store.get_all_param_names(), float(store["m"])
    (True, ['m'], 0.30000001192092896)
    >>> dg.clear_param_store()
    """

    def __init__(self) -> None:
        self._values: dict[str, np.ndarray] = {}
        self._sources: dict[int, tuple[Any, Callable[[], dict]]] = {}
        #: bumped by :meth:`clear`; SVI objects restart from init values when it changes
        self.generation = 0

    def _all(self) -> dict[str, np.ndarray]:
        out = dict(self._values)
        for b, read in self._sources.values():
            for k, v in read().items():
                out[k] = np.asarray(b.to_numpy(v))
        return out

    def _register(self, key: int, backend: Any, read: Callable[[], dict]) -> None:
        self._sources[key] = (backend, read)

    def __getitem__(self, name: str) -> np.ndarray:
        values = self._all()
        if name not in values:
            raise KeyError(
                f"param store: no param {name!r} (it has {', '.join(map(repr, sorted(values))) or 'none'})"
            )
        return values[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._values[name] = np.asarray(value, dtype=np.float32)

    def __contains__(self, name: object) -> bool:
        return name in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def keys(self) -> list[str]:
        return list(self._all())

    def items(self) -> list[tuple[str, np.ndarray]]:
        return list(self._all().items())

    def get_param(self, name: str) -> np.ndarray:
        """The constrained value of ``name`` (Pyro's spelling)."""
        return self[name]

    def get_all_param_names(self) -> list[str]:
        """The names in the store (Pyro's spelling)."""
        return self.keys()

    def as_dict(self) -> dict[str, np.ndarray]:
        """A snapshot: ``{name: constrained numpy array}``."""
        return self._all()

    def clear(self) -> None:
        """Forget every value; SVI objects restart from init values."""
        self._values.clear()
        self._sources.clear()
        self.generation += 1

    def __repr__(self) -> str:
        return f"ParamStore({sorted(self._all())})"


_STORE = ParamStore()


def _stored(name: str) -> np.ndarray | None:
    values = _STORE.as_dict()
    return values.get(name)


_state.stored_param = _stored


def get_param_store() -> ParamStore:
    """dualguide's param store (constrained numpy values by name), filled by :class:`SVI`.

    >>> import dualguide as dg
    >>> dg.clear_param_store()
    >>> len(dg.get_param_store())
    0
    """
    return _STORE


def clear_param_store() -> None:
    """Empty dualguide's param store and Pyro's global one (if Pyro is loaded).

    >>> import dualguide as dg
    >>> dg.clear_param_store()
    """
    _STORE.clear()
    for name in list(_state._loaded):
        _state.feature(name, "svi").clear_param_store()


def set_rng_seed(seed: int) -> None:
    """Seed the global RNGs dualguide's unseeded runs draw from, on both backends (Pyro's
    ``pyro.set_rng_seed``): numpy's and Python's, and torch's when Pyro is loaded.  Unseeded
    NumPyro runs (handlers, SVI, Predictive) take their key from numpy's global RNG.

    >>> import dualguide as dg
    >>> dg.set_rng_seed(0)
    """
    import random

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SpecError(f"set_rng_seed: seed must be an int >= 0, got {seed!r}")
    np.random.seed(seed)
    random.seed(seed)
    for name in list(_state._loaded):
        _state.feature(name, "svi").set_rng_seed(seed)


# -- SVI ---------------------------------------------------------------------------------------------
class SVI:
    """Stochastic variational inference, one ``step`` at a time, on the backend's own SVI.

    ``optim`` is a :mod:`dualguide.optim` optimizer (or a number: Adam with that lr);
    ``loss`` a :class:`Trace_ELBO` (default), :class:`TraceMeanField_ELBO`,
    :class:`TraceGraph_ELBO` or :class:`RenyiELBO` (or its name).  ``backend``
    defaults to the active one.  ``seed``: NumPyro's init key, or on Pyro
    ``torch.manual_seed``; None draws NumPyro's key from numpy's global RNG and leaves
    Pyro on torch's global RNG.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model(y):
    ...     x = dg.sample("x", dist.Normal(0.0, 1.0))
    ...     dg.sample("y", dist.Normal(x, 1.0), obs=y)
    >>> def guide(y):
    ...     dg.sample("x", dist.Normal(dg.param("m", 0.0), 1.0))
    >>> dg.clear_param_store()
    >>> svi = dg.infer.SVI(model, guide, dg.optim.Adam(lr=0.05), seed=0)
    >>> losses = [svi.step(2.0) for _ in range(300)]
    >>> round(float(svi.params["m"]), 1)
    1.0
    """

    def __init__(
        self,
        model: Callable,
        guide: Callable,
        optim: Optimizer | float | None,
        loss: Trace_ELBO | str | None = None,
        *,
        backend: str | None = None,
        seed: int | None = None,
    ) -> None:
        if not callable(model) or not callable(guide):
            raise SpecError("SVI: model and guide must be functions (or dualguide autoguides)")
        if loss is None:
            loss = Trace_ELBO()
        if isinstance(loss, str):
            from .elbo import as_loss

            loss = as_loss(loss, 1, where="SVI")
        if not isinstance(loss, Trace_ELBO):
            raise SpecError(
                f"SVI: loss must be dg.infer.Trace_ELBO(...), TraceMeanField_ELBO(...), "
                f"TraceGraph_ELBO(...) or RenyiELBO(...), got {loss!r}"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise SpecError(f"SVI: seed must be an int >= 0 or None, got {seed!r}")
        self.model, self.guide, self.loss, self.seed = model, guide, loss, seed
        self.optim = as_optimizer(optim)
        self.backend = _state.resolve(backend)
        self._native: Any = None
        self._generation = -1

    def _get(self) -> Any:
        if self._native is None or self._generation != _STORE.generation:
            b = self.backend
            feat = _state.feature(b, "svi")
            self._native = feat.make(
                _state.render(self.model, b),
                _state.render(self.guide, b),
                b.optimizer(self.optim),
                self.loss.name,
                self.loss.num_particles,
                _STORE.as_dict(),
                self.seed,
                self.loss.options,
            )
            self._generation = _STORE.generation
            _STORE._register(id(self), b, self._native.params)
        return self._native

    def _args(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """numpy arrays and lists become float32 backend arrays; other arguments pass as they
        are (a Python int stays an int, e.g. a plate size)."""
        b = self.backend

        def conv(x: Any) -> Any:
            return b.to_array(x) if isinstance(x, (np.ndarray, list)) else x

        return tuple(conv(a) for a in args), {k: conv(v) for k, v in kwargs.items()}

    def _checked(self, args: tuple, kwargs: dict) -> None:
        """The estimator's refusals (docs/elbo.md), checked once on the first call."""
        if not getattr(self, "_program_checked", False) and self.loss.name != "Trace_ELBO":
            from .elbo import check_program

            check_program(self.loss, self.model, self.guide, self.backend, args, kwargs, "SVI")
        self._program_checked = True

    def step(self, *args: Any, **kwargs: Any) -> float:
        """One update; returns the loss (negative ELBO estimate) before it, as a float."""
        self._checked(args, kwargs)
        native = self._get()
        a, k = self._args(args, kwargs)
        with _state.use_backend(self.backend.name):
            return native.step(a, k)

    def evaluate_loss(self, *args: Any, **kwargs: Any) -> float:
        """The loss at the current params, without updating them."""
        self._checked(args, kwargs)
        native = self._get()
        a, k = self._args(args, kwargs)
        with _state.use_backend(self.backend.name):
            return native.evaluate_loss(a, k)

    @property
    def params(self) -> dict[str, np.ndarray]:
        """This program's constrained params by name, as numpy arrays (empty before a step)."""
        if self._native is None:
            return {}
        b = self.backend
        return {k: np.asarray(b.to_numpy(v)) for k, v in self._native.params().items()}

    def get_params(self) -> dict[str, np.ndarray]:
        """The same as :attr:`params` (NumPyro's spelling)."""
        return self.params
