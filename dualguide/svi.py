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
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from . import _state
from .errors import SpecError
from .optim import Optimizer, as_optimizer

__all__ = [
    "PRNGKey",
    "SVI",
    "SVIRunResult",
    "SVIState",
    "ParamStore",
    "RenyiELBO",
    "TraceGraph_ELBO",
    "TraceMeanField_ELBO",
    "Trace_ELBO",
    "clear_param_store",
    "fori_loop",
    "get_param_store",
    "jit",
    "scan",
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
                out[k] = np.array(b.to_numpy(v), copy=True)  # not a view of a live param
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
        self._steps = 0

    def _get(self, fresh: bool = False) -> Any:
        """The native SVI object, made again after :func:`clear_param_store`; ``fresh``: from
        the init values, not the store's (:meth:`init`)."""
        if self._native is None or self._generation != _STORE.generation:
            b = self.backend
            feat = _state.feature(b, "svi")
            self._native = feat.make(
                _state.render(self.model, b),
                _state.render(self.guide, b),
                b.optimizer(self.optim),
                self.loss.name,
                self.loss.num_particles,
                {} if fresh else _STORE.as_dict(),
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
        """The estimator's refusals (docs/elbo.md), checked once on the first call; an
        autoguide keeps the model arguments (its ``median`` & co. default to them)."""
        from .autoguides import AutoGuide

        if isinstance(self.guide, AutoGuide):
            self.guide.remember(args, kwargs)
        if not getattr(self, "_program_checked", False) and self.loss.name != "Trace_ELBO":
            from .elbo import check_program

            check_program(self.loss, self.model, self.guide, self.backend, args, kwargs, "SVI")
        if not getattr(self, "_program_checked", False):
            from .elbo import warn_estimator_mismatch

            warn_estimator_mismatch(self.loss, self.guide, self.backend, args, kwargs, "SVI")
        self._program_checked = True

    def step(self, *args: Any, **kwargs: Any) -> float:
        """One update; returns the loss (negative ELBO estimate) before it, as a float."""
        self._checked(args, kwargs)
        native = self._get()
        a, k = self._args(args, kwargs)
        with _state.use_backend(self.backend.name):
            loss = native.step(a, k)
        self._steps += 1
        return loss

    def evaluate_loss(self, *args: Any, **kwargs: Any) -> float:
        """The loss at the current params, without updating them.  Each call draws fresh
        noise and the next step's noise moves on (Pyro's rule, on both backends: NumPyro's own
        ``evaluate`` would reuse the next update's key; docs/handlers.md)."""
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
        # copies: Pyro's optimizer updates its params in place, a view would change later
        return {k: np.array(b.to_numpy(v), copy=True) for k, v in self._native.params().items()}

    # -- NumPyro's functional spelling ------------------------------------------------------
    def init(self, rng_key: Any, *args: Any, **kwargs: Any) -> SVIState:
        """Start again from the program's init values with seed ``rng_key`` and create the
        params; returns the state that :meth:`update` takes (NumPyro's ``svi.init``: unlike a
        first :meth:`step`, which continues from the values in the param store as Pyro's SVI
        does, ``init`` restarts, as NumPyro's does; the store then holds the new values).
        ``rng_key``: an int seed, as :func:`PRNGKey` makes it.

        >>> import dualguide as dg
        >>> from dualguide import distributions as dist
        >>> def model():
        ...     dg.sample("x", dist.Normal(0.0, 1.0))
        >>> def guide():
        ...     dg.sample("x", dist.Normal(dg.param("m", 0.5), 1.0))
        >>> dg.clear_param_store()
        >>> svi = dg.infer.SVI(model, guide, 0.01)
        >>> state = svi.init(dg.infer.PRNGKey(0))
        >>> float(svi.get_params(state)["m"])
        0.5
        """
        self.seed = _as_seed(rng_key, "SVI.init")
        self._native = None
        self._steps = 0
        self._checked(args, kwargs)
        native = self._get(fresh=True)
        a, k = self._args(args, kwargs)
        with _state.use_backend(self.backend.name):
            native.init(a, k, fresh=True)
        return self._state()

    def _state(self) -> SVIState:
        return SVIState(self, self._steps, _STORE.generation)

    def _latest(self, state: Any, what: str) -> None:
        if not isinstance(state, SVIState) or state.svi is not self:
            raise SpecError(
                f"SVI.{what}: expected the state that this SVI object's init/update returned, "
                f"got {type(state).__name__}; start with state = svi.init(rng_key, *args)"
            )
        if state.step != self._steps or state.generation != _STORE.generation:
            raise SpecError(
                f"SVI.{what}: this state (step {state.step}) is not the SVI object's latest "
                f"(step {self._steps}{', param store cleared since' if state.generation != _STORE.generation else ''}): "
                "dualguide's SVI keeps one state, as Pyro's param store does; pass the state "
                "the last update returned"
            )

    def update(self, state: SVIState, *args: Any, **kwargs: Any) -> tuple[SVIState, float]:
        """One step from ``state`` (the latest one): ``(new_state, loss)`` (NumPyro's
        ``svi.update``; ``loss`` a float, the loss before the step).

        >>> import dualguide as dg
        >>> from dualguide import distributions as dist
        >>> def model():
        ...     dg.sample("x", dist.Normal(0.0, 1.0))
        >>> def guide():
        ...     dg.sample("x", dist.Normal(dg.param("m", 0.5), 1.0))
        >>> dg.clear_param_store()
        >>> svi = dg.infer.SVI(model, guide, 0.01)
        >>> state = svi.init(0)
        >>> state, loss = svi.update(state)
        >>> state.step, isinstance(loss, float)
        (1, True)
        """
        self._latest(state, "update")
        loss = self.step(*args, **kwargs)
        return self._state(), loss

    def evaluate(self, state: SVIState, *args: Any, **kwargs: Any) -> float:
        """:meth:`evaluate_loss` at ``state`` (NumPyro's ``svi.evaluate``; fresh noise at each
        call, as Pyro's ``evaluate_loss``: docs/handlers.md)."""
        self._latest(state, "evaluate")
        return self.evaluate_loss(*args, **kwargs)

    def get_params(self, state: SVIState | None = None) -> dict[str, np.ndarray]:
        """The constrained params as numpy arrays: :attr:`params` (NumPyro's
        ``svi.get_params(state)``; ``state``, if given, must be the latest one)."""
        if state is not None:
            self._latest(state, "get_params")
        return self.params

    def run(
        self,
        rng_key: Any,
        num_steps: int,
        *args: Any,
        progress_bar: bool = True,
        stable_update: bool = False,
        forward_mode_differentiation: bool = False,
        init_state: SVIState | None = None,
        **kwargs: Any,
    ) -> SVIRunResult:
        """``num_steps`` updates from :meth:`init` (so from the init values, as NumPyro's
        ``svi.run``) or from ``init_state``: an
        :class:`SVIRunResult` with ``params`` (numpy), ``state`` and ``losses`` (a numpy array)
        (NumPyro's ``svi.run``; ``progress_bar``, ``stable_update`` and
        ``forward_mode_differentiation`` are accepted and ignored).

        >>> import dualguide as dg
        >>> from dualguide import distributions as dist
        >>> def model():
        ...     dg.sample("x", dist.Normal(0.0, 1.0))
        >>> def guide():
        ...     dg.sample("x", dist.Normal(dg.param("m", 0.5), 1.0))
        >>> dg.clear_param_store()
        >>> res = dg.infer.SVI(model, guide, 0.01).run(dg.infer.PRNGKey(0), 20)
        >>> res.losses.shape, sorted(res.params)
        ((20,), ['m'])
        """
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
            raise SpecError(f"SVI.run: num_steps must be an int >= 1, got {num_steps!r}")
        state = self.init(rng_key, *args, **kwargs) if init_state is None else init_state
        losses = np.empty(num_steps, dtype=np.float32)
        for i in range(num_steps):
            state, losses[i] = self.update(state, *args, **kwargs)
        return SVIRunResult(self.get_params(state), state, losses)


@dataclass(frozen=True)
class SVIState:
    """A handle on an :class:`SVI` object's state after ``step`` updates (what NumPyro's
    ``svi.init`` / ``svi.update`` return).  The object keeps one state (as Pyro's param store
    does): only the latest handle can be passed on, an older one is a ``SpecError``.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def guide():
    ...     dg.sample("x", dist.Normal(dg.param("m", 0.5), 1.0))
    >>> dg.clear_param_store()
    >>> dg.infer.SVI(lambda: dg.sample("x", dist.Normal(0.0, 1.0)), guide, 0.01).init(0).step
    0
    """

    svi: SVI
    step: int
    generation: int

    def __repr__(self) -> str:
        return f"SVIState(step={self.step})"


class SVIRunResult(NamedTuple):
    """What :meth:`SVI.run` returns (NumPyro's ``SVIRunResult``): constrained ``params``
    (numpy), the final ``state`` and the ``losses`` (a numpy array, one per step).

    >>> SVIRunResult({}, None, np.zeros(2)).losses.shape
    (2,)
    """

    params: dict[str, np.ndarray]
    state: Any
    losses: np.ndarray


def _as_seed(rng_key: Any, what: str) -> int:
    if isinstance(rng_key, (bool, np.bool_)) or not isinstance(rng_key, (int, np.integer)):
        raise SpecError(
            f"{what}: rng_key must be an int seed (dg.infer.PRNGKey(n) is n), got "
            f"{type(rng_key).__name__}; dualguide has no key splitting: give each run its own seed"
        )
    if rng_key < 0:
        raise SpecError(f"{what}: rng_key must be an int >= 0, got {rng_key!r}")
    return int(rng_key)


def PRNGKey(seed: int) -> int:
    """NumPyro's ``jax.random.PRNGKey(seed)`` as dualguide spells it: the key is the int seed
    itself (``SVI.init`` / ``SVI.run`` take it).

    >>> PRNGKey(3)
    3
    """
    return _as_seed(seed, "PRNGKey")


def jit(fn: Callable | None = None, *args: Any, **kwargs: Any) -> Any:
    """``jax.jit`` for ported fitting code: returns ``fn`` as it is (the SVI object compiles
    its own update on each backend).

    >>> jit(abs)(-2)
    2
    """
    if fn is None:
        return lambda f: f
    return fn


def _stack(ys: list) -> Any:
    """A list of per-step outputs (trees of tuples, lists and dicts) stacked leaf by leaf."""
    first = ys[0]
    if first is None:
        return None
    if isinstance(first, tuple):
        return tuple(_stack([y[i] for y in ys]) for i in range(len(first)))
    if isinstance(first, list):
        return [_stack([y[i] for y in ys]) for i in range(len(first))]
    if isinstance(first, dict):
        return {k: _stack([y[k] for y in ys]) for k in first}
    return np.stack([np.asarray(y) for y in ys])


def scan(
    f: Callable, init: Any, xs: Any = None, length: int | None = None, **options: Any
) -> tuple[Any, Any]:
    """``jax.lax.scan`` for ported fitting code, as a Python loop: ``carry, y = f(carry, x)``
    for each ``x`` of ``xs`` (or ``length`` times with ``x=None``); returns ``(carry, ys)``
    with the ``ys`` stacked as numpy arrays.  Where NumPyro scans ``svi.update``, the
    neutral loop steps the SVI object.

    >>> scan(lambda c, x: (c + x, c * x), 0, [1, 2, 3])
    (6, array([0, 2, 9]))
    """
    if xs is None:
        if length is None:
            raise SpecError("scan: give xs or length")
        items: list = [None] * int(length)
    else:
        items = list(xs)
    carry, ys = init, []
    for x in items:
        carry, y = f(carry, x)
        ys.append(y)
    return carry, (_stack(ys) if ys else None)


def fori_loop(lower: int, upper: int, body_fun: Callable, init_val: Any, **options: Any) -> Any:
    """``jax.lax.fori_loop`` for ported fitting code, as a Python loop:
    ``val = body_fun(i, val)`` for ``i`` in ``range(lower, upper)``.

    >>> fori_loop(0, 4, lambda i, v: v + i, 0)
    6
    """
    val = init_val
    for i in range(int(lower), int(upper)):
        val = body_fun(i, val)
    return val
