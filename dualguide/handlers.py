"""Effect handlers with Pyro's names, rendered to ``numpyro.handlers`` or ``pyro.poutine``.

Each handler works in the three ``poutine`` forms, on either backend:

- wrapping a program: ``handlers.condition(model, data={"x": 1.0})`` returns a callable;
- as a decorator factory: ``handlers.condition(data={"x": 1.0})(model)``;
- as a context manager: ``with handlers.condition(data={"x": 1.0}): model()``.

When the program runs, the active backend's own handler (a ``numpyro.handlers`` messenger
or a ``pyro.poutine`` one) is built from the neutral arguments, so the handler composes
with native SVI, ``Predictive`` and other native handlers.  Where the frameworks differ,
dualguide picks one behaviour for both; the table is in ``docs/handlers.md``.  Traces leave
as a :class:`Trace`: a dict of :class:`TraceSite` with numpy values, whose ``log_prob``
already includes ``scale`` and ``mask``.

>>> import dualguide as dg
>>> from dualguide import distributions as dist
>>> def model():
...     x = dg.sample("x", dist.Normal(0.0, 1.0))
...     dg.sample("y", dist.Normal(x, 1.0))
>>> tr = dg.handlers.trace(dg.handlers.condition(model, data={"x": 0.5, "y": 1.0})).get_trace()
>>> tr["x"].is_observed, round(tr.log_prob_sum(), 4)
(True, -2.0879)
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _state
from .errors import SpecError
from .trace import Site

__all__ = [
    "Trace",
    "TraceSite",
    "block",
    "condition",
    "do",
    "mask",
    "reparam",
    "replay",
    "scale",
    "seed",
    "substitute",
    "trace",
    "uncondition",
]


@dataclass
class TraceSite(Site):
    """A :class:`dualguide.Site` of a handler trace, with the ``scale`` and ``mask`` it ran under.

    ``log_prob`` is the elementwise log density *times* ``scale`` and zero where ``mask``
    is False (None: no scale / no mask).  ``site["value"]`` reads ``site.value``, as a
    NumPyro trace's dicts do.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     dg.sample("y", dist.Normal(0.0, 1.0), obs=0.0)
    >>> site = dg.handlers.trace(dg.handlers.scale(model, scale=2.0)).get_trace()["y"]
    >>> float(site.scale), round(float(site["log_prob"]), 4)
    (2.0, -1.8379)
    """

    scale: np.ndarray | None = None
    mask: np.ndarray | None = None

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None


class Trace(dict):
    """The sites of one run, in order: ``{name: TraceSite}`` with numpy values.

    ``backend`` names the backend that ran; a trace from either backend can be handed to
    :func:`replay` on either.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     x = dg.sample("x", dist.Normal(0.0, 1.0))
    ...     dg.sample("y", dist.Normal(x, 1.0), obs=0.0)
    >>> tr = dg.handlers.trace(model).get_trace()
    >>> tr.stochastic_nodes, tr.observation_nodes, tr["y"]["value"].dtype
    (['x'], ['y'], dtype('float32'))
    """

    backend: str | None = None

    @property
    def nodes(self) -> Trace:
        """The trace itself (Pyro spells ``trace.nodes[name]``)."""
        return self

    @property
    def stochastic_nodes(self) -> list[str]:
        """Names of the latent sample sites (not observed, not factors)."""
        return [n for n, s in self.items() if s.is_latent]

    @property
    def observation_nodes(self) -> list[str]:
        """Names of the observed sample sites (factors excluded)."""
        return [
            n for n, s in self.items() if s.type == "sample" and s.is_observed and not s.is_factor
        ]

    def log_prob_sum(self, site_filter: Callable[[str, TraceSite], bool] | None = None) -> float:
        """Sum of every sample site's (scaled, masked) log density, factors included.

        >>> import dualguide as dg
        >>> from dualguide import distributions as dist
        >>> def model():
        ...     dg.sample("x", dist.Normal(0.0, 1.0), obs=0.0)
        >>> round(dg.handlers.trace(model).get_trace().log_prob_sum(), 4)
        -0.9189
        """
        total = 0.0
        for name, s in self.items():
            if s.type != "sample" or s.log_prob is None:
                continue
            if site_filter is not None and not site_filter(name, s):
                continue
            total += float(np.sum(s.log_prob, dtype=np.float64))
        return total


# ---------------------------------------------------------------------------------------------
class Handler:
    """A neutral handler: renders to the active backend's own handler each time it runs."""

    kind = ""

    def __init__(self, fn: Callable | None, **params: Any) -> None:
        if fn is not None and not callable(fn):
            raise SpecError(
                f"handlers.{self.kind}: the first argument must be a model or guide function "
                f"(or omitted, for the context-manager form), got {fn!r}"
            )
        self.fn = fn
        self.params = self._check(params)
        self._stack: list[tuple[Any, Any, contextlib.ExitStack]] = []

    # -- what each handler customizes ---------------------------------------------------------
    def _check(self, params: dict) -> dict:
        return params

    def _native_params(self, b: Any) -> dict:
        return dict(self.params)

    def _finish(self, native: Any, feat: Any) -> None:
        """After a successful run: check the run used what it was given."""
        data = self.params.get("data")
        seen = feat.seen(native)
        if data is None or seen is None:
            return
        unknown = sorted(set(data) - seen)
        if unknown:
            raise SpecError(
                f"handlers.{self.kind}: data has {', '.join(map(repr, unknown))}, which the "
                f"program never {'samples' if self.kind != 'substitute' else 'samples or declares'}"
                f" (it {_verb(self.kind)} {', '.join(map(repr, sorted(seen))) or 'no site'} from "
                "data); check the site names"
            )

    # -- running -------------------------------------------------------------------------------
    def _native(self) -> tuple[Any, Any, Any]:
        b = _state.current()
        feat = _state.feature(b, "handlers")
        return b, feat, feat.make(self.kind, self._native_params(b))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fn is None:
            if len(args) == 1 and not kwargs and callable(args[0]):
                return self._bind(args[0])
            raise SpecError(
                f"handlers.{self.kind}(...) without a program is a context manager or a "
                f"decorator: write handlers.{self.kind}(model, ...) or "
                f"`with handlers.{self.kind}(...):`"
            )
        b, feat, native = self._native()
        args, kwargs = _arrays(b, args, kwargs)
        out = feat.run(native, _state.render(self.fn, b), args, kwargs)
        self._finish(native, feat)
        return out

    def _bind(self, fn: Callable) -> Any:
        new = copy.copy(self)
        new.fn, new._stack = fn, []
        return new

    def __enter__(self) -> Any:
        b, feat, native = self._native()
        stack = contextlib.ExitStack()
        entered = stack.enter_context(feat.context(native))
        self._stack.append((native, feat, stack))
        return self._entered(b, feat, native, entered)

    def _entered(self, b: Any, feat: Any, native: Any, entered: Any) -> Any:
        return None

    def __exit__(self, *exc: Any) -> None:
        native, feat, stack = self._stack.pop()
        stack.__exit__(*exc)
        if exc[0] is None:
            self._finish(native, feat)

    def __repr__(self) -> str:
        fn = getattr(self.fn, "__name__", None)
        return f"handlers.{self.kind}({fn or ''})"


def _arrays(b: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """numpy array arguments as float32 arrays of backend ``b`` (other arguments as they are)."""

    def conv(x: Any) -> Any:
        return b.to_array(x) if isinstance(x, np.ndarray) else x

    return tuple(conv(a) for a in args), {k: conv(v) for k, v in kwargs.items()}


def _to_backend(b: Any, v: Any) -> Any:
    """``v`` as an array of backend ``b``, also when it is the other framework's array."""
    if isinstance(v, b.array_types):
        return v
    out = b.to_array(v)
    if not isinstance(out, b.array_types) and hasattr(v, "__array__"):
        v = v.detach() if hasattr(v, "detach") else v
        out = b.to_array(np.asarray(v))
    return out


def _verb(kind: str) -> str:
    return {"condition": "conditioned", "do": "intervened on", "substitute": "substituted"}.get(
        kind, "used"
    )


def _check_data(kind: str, data: Any) -> dict:
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise SpecError(
            f"handlers.{kind}: data must be a dict of values by site name, got {type(data).__name__}"
        )
    return data


class _DataHandler(Handler):
    def _check(self, params: dict) -> dict:
        return {"data": _check_data(self.kind, params["data"])}

    def _native_params(self, b: Any) -> dict:
        return {"data": {k: _to_backend(b, v) for k, v in self.params["data"].items()}}


class _Condition(_DataHandler):
    kind = "condition"


class _Substitute(_DataHandler):
    kind = "substitute"


class _Do(_DataHandler):
    kind = "do"


class _Seed(Handler):
    kind = "seed"

    def _check(self, params: dict) -> dict:
        s = params["rng_seed"]
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise SpecError(
                f"handlers.seed: rng_seed must be a plain int >= 0 (the same on both "
                f"backends), got {s!r}"
            )
        return {"rng_seed": int(s)}


class _Trace(Handler):
    kind = "trace"

    def __init__(self, fn: Callable | None = None) -> None:
        super().__init__(fn)
        self.trace: Trace = Trace()

    def _collect(self, b: Any, feat: Any, native: Any, into: Trace) -> Trace:
        into.clear()
        into.backend = b.name
        for name, (site, sc, mk) in feat.trace_sites(native).items():
            fields = {f: getattr(site, f) for f in site.__dataclass_fields__}
            for f in ("value", "log_prob"):  # floats leave as float32 on both backends
                v = fields[f]
                if isinstance(v, np.ndarray) and v.dtype == np.float64:
                    fields[f] = v.astype(np.float32)
            into[name] = TraceSite(**fields, scale=sc, mask=mk)
        return into

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fn is None:
            return super().__call__(*args, **kwargs)
        b, feat, native = self._native()
        args, kwargs = _arrays(b, args, kwargs)
        out = feat.run(native, _state.render(self.fn, b), args, kwargs)
        self.trace = self._collect(b, feat, native, Trace())
        return out

    def get_trace(self, *args: Any, **kwargs: Any) -> Trace:
        """Run the program and return its :class:`Trace`."""
        self(*args, **kwargs)
        return self.trace

    def _entered(self, b: Any, feat: Any, native: Any, entered: Any) -> Trace:
        self.trace = Trace()
        self._pending = (b, feat, native, self.trace)
        return self.trace

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        b, feat, native, into = self._pending
        if exc[0] is None:
            self._collect(b, feat, native, into)


class _Block(Handler):
    kind = "block"

    def _check(self, params: dict) -> dict:
        given = {k: v for k, v in params.items() if v is not None}
        if len(given) > 1:
            raise SpecError(
                f"handlers.block: give one of hide_fn, hide, expose, hide_types, expose_types, "
                f"not {', '.join(sorted(given))} together"
            )
        for k in ("hide", "expose", "hide_types", "expose_types"):
            v = given.get(k)
            if v is not None and (isinstance(v, str) or not all(isinstance(n, str) for n in v)):
                raise SpecError(f"handlers.block: {k} must be a list of names, got {v!r}")
        ((key, value),) = given.items() if given else [(None, None)]
        return {"hide_fn": _hider(key, value)}


def _hider(key: str | None, value: Any) -> Callable[[str, str], bool]:
    if key is None:
        return lambda name, type_: True
    if key == "hide_fn":
        return lambda name, type_: value({"name": name, "type": type_})
    names = set(value)
    if key == "hide":
        return lambda name, type_: name in names
    if key == "expose":
        return lambda name, type_: name not in names
    if key == "hide_types":
        return lambda name, type_: type_ in names
    return lambda name, type_: type_ not in names


class _Scale(Handler):
    kind = "scale"

    def _check(self, params: dict) -> dict:
        s = params["scale"]
        try:
            arr = np.asarray(s, dtype=np.float64)
        except (TypeError, ValueError):
            arr = None  # a traced value: checked by nobody, as in the frameworks
        if arr is not None and not np.all(arr > 0):
            raise SpecError(f"handlers.scale: scale must be positive, got {s!r}")
        return {"scale": s}

    def _native_params(self, b: Any) -> dict:
        return {"scale": _to_backend(b, self.params["scale"])}


class _Mask(Handler):
    kind = "mask"

    def _check(self, params: dict) -> dict:
        m = params["mask"]
        if isinstance(m, bool):
            return {"mask": m}
        kind = getattr(getattr(m, "dtype", None), "kind", None)
        if kind is None:
            try:
                kind = np.asarray(m).dtype.kind
            except Exception:
                kind = None
        if kind not in ("b", None) and str(getattr(m, "dtype", "")) not in ("bool", "torch.bool"):
            raise SpecError(
                f"handlers.mask: mask must be a bool or an array of bools (True keeps a "
                f"log density), got dtype {getattr(m, 'dtype', type(m).__name__)}"
            )
        return {"mask": m}

    def _native_params(self, b: Any) -> dict:
        m = self.params["mask"]
        if isinstance(m, bool) or isinstance(m, b.array_types):
            return {"mask": m}
        return {"mask": b.to_array(np.asarray(m, dtype=bool))}


class _Reparam(Handler):
    kind = "reparam"

    def _check(self, params: dict) -> dict:
        from .reparam import Reparam

        config = params["config"]
        if isinstance(config, dict):
            bad = {k: v for k, v in config.items() if v is not None and not isinstance(v, Reparam)}
            if bad:
                raise SpecError(
                    f"handlers.reparam: config values must be dualguide.reparam objects "
                    f"(e.g. LocScaleReparam()), got {bad!r}"
                )
        elif callable(config):
            inner = config

            def config(name: str) -> Any:
                r = inner(name)
                if r is not None and not isinstance(r, Reparam):
                    raise SpecError(
                        f"handlers.reparam: config({name!r}) returned {r!r}; return a "
                        "dualguide.reparam object or None"
                    )
                return r
        else:
            raise SpecError(
                "handlers.reparam: config must be a dict {site: Reparam} or a function of "
                f"the site name returning a Reparam or None, got {config!r}"
            )
        return {"config": config}


class _Replay(Handler):
    kind = "replay"

    def _check(self, params: dict) -> dict:
        tr = params["trace"]
        if not isinstance(tr, dict) or not all(isinstance(s, Site) for s in tr.values()):
            raise SpecError(
                "handlers.replay: trace must be a dualguide trace (handlers.trace(fn).get_trace() "
                f"or dg.trace(fn)), got {type(tr).__name__}"
            )
        return {"trace": tr}


class _Uncondition(Handler):
    kind = "uncondition"


# -- the public functions (Pyro's signatures) ---------------------------------------------------
def seed(fn: Callable | None = None, rng_seed: int = 0) -> Any:
    """Run ``fn`` with its random draws seeded by ``rng_seed`` (an int).

    Nested seeds: the innermost wins (both frameworks agree; docs/handlers.md).  A program
    run under no seed draws from torch's global RNG on Pyro and from a seed taken from
    numpy's global RNG on NumPyro.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     return dg.sample("x", dist.Normal(0.0, 1.0))
    >>> a = dg.handlers.trace(dg.handlers.seed(model, rng_seed=3)).get_trace()["x"].value
    >>> b = dg.handlers.trace(dg.handlers.seed(model, rng_seed=3)).get_trace()["x"].value
    >>> bool(a == b)
    True
    """
    return _Seed(fn, rng_seed=rng_seed)


def trace(fn: Callable | None = None) -> Any:
    """Record the sites of a run: ``trace(fn).get_trace(*args)`` returns a :class:`Trace`.

    As a context manager it yields a :class:`Trace` that is filled when the block ends.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     dg.sample("x", dist.Normal(0.0, 1.0))
    >>> with dg.handlers.trace() as tr:
    ...     dg.handlers.seed(model, rng_seed=0)()
    >>> list(tr)
    ['x']
    """
    return _Trace(fn)


def condition(fn: Callable | None = None, data: dict | None = None) -> Any:
    """Make the sample sites named in ``data`` observed with those values.

    An already observed site gets the new value (both frameworks do this).  A name in
    ``data`` that the program never samples is an error (a typo would otherwise be silent).

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     return dg.sample("x", dist.Normal(0.0, 1.0))
    >>> float(dg.handlers.condition(model, data={"x": 2.0})())
    2.0
    """
    return _Condition(fn, data=data if data is not None else {})


def substitute(fn: Callable | None = None, data: dict | None = None) -> Any:
    """Give params and *latent* sample sites the values in ``data``; they stay latent.

    Observed sites keep their observation (use :func:`condition` to change it).  NumPyro's
    behaviour; Pyro's own substitute touches params only (docs/handlers.md).

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     return dg.sample("x", dist.Normal(0.0, 1.0))
    >>> tr = dg.handlers.trace(dg.handlers.substitute(model, data={"x": 2.0})).get_trace()
    >>> float(tr["x"].value), tr["x"].is_observed
    (2.0, False)
    """
    return _Substitute(fn, data=data if data is not None else {})


def do(fn: Callable | None = None, data: dict | None = None) -> Any:
    """Intervene: the sites in ``data`` return those values to the rest of the program.

    The site itself is still drawn (a fresh, unused sample of the same name), as in both
    frameworks.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     x = dg.sample("x", dist.Normal(0.0, 1.0))
    ...     return x + 1.0
    >>> float(dg.handlers.do(model, data={"x": 2.0})())
    3.0
    """
    return _Do(fn, data=data if data is not None else {})


def block(
    fn: Callable | None = None,
    hide_fn: Callable[[dict], bool] | None = None,
    hide: list[str] | None = None,
    expose: list[str] | None = None,
    hide_types: list[str] | None = None,
    expose_types: list[str] | None = None,
) -> Any:
    """Hide sites from the handlers outside (and from traces): all of them when no argument is given.

    Give at most one of ``hide_fn`` (called with ``{"name": ..., "type": ...}``), ``hide``,
    ``expose`` (names), ``hide_types``, ``expose_types`` (``"sample"``, ``"param"``,
    ``"deterministic"``).

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     dg.sample("a", dist.Normal(0.0, 1.0))
    ...     dg.sample("b", dist.Normal(0.0, 1.0))
    >>> list(dg.handlers.trace(dg.handlers.block(model, hide=["a"])).get_trace())
    ['b']
    """
    return _Block(
        fn,
        hide_fn=hide_fn,
        hide=hide,
        expose=expose,
        hide_types=hide_types,
        expose_types=expose_types,
    )


def scale(fn: Callable | None = None, scale: Any = 1.0) -> Any:
    """Multiply the log density of every sample site by ``scale`` (positive).

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     dg.sample("x", dist.Normal(0.0, 1.0), obs=0.0)
    >>> round(dg.handlers.trace(dg.handlers.scale(model, scale=2.0)).get_trace().log_prob_sum(), 4)
    -1.8379
    """
    return _Scale(fn, scale=scale)


def mask(fn: Callable | None = None, mask: Any = True) -> Any:
    """Zero the log density of sample sites where ``mask`` (bool, broadcastable) is False.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     dg.sample("x", dist.Normal(0.0, 1.0), obs=0.0)
    >>> dg.handlers.trace(dg.handlers.mask(model, mask=False)).get_trace().log_prob_sum()
    0.0
    """
    return _Mask(fn, mask=mask)


def reparam(fn: Callable | None = None, config: Any = None) -> Any:
    """Reparameterize sites: ``config`` maps site names to :mod:`dualguide.reparam` objects
    (or is a function of the site name returning one or None).

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> from dualguide.reparam import LocScaleReparam
    >>> def model():
    ...     return dg.sample("x", dist.Normal(1.0, 2.0))
    >>> tr = dg.handlers.trace(dg.handlers.reparam(model, config={"x": LocScaleReparam(0.0)})).get_trace()
    >>> tr["x"].type, tr["x_decentered"].dist
    ('deterministic', 'Normal')
    """
    return _Reparam(fn, config=config if config is not None else {})


def replay(fn: Callable | None = None, trace: dict | None = None) -> Any:
    """Reuse the latent values of ``trace`` (a :class:`Trace` from either backend) at sites of the same name.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     return dg.sample("x", dist.Normal(0.0, 1.0))
    >>> tr = dg.handlers.trace(model).get_trace()
    >>> bool(dg.handlers.replay(model, trace=tr)() == tr["x"].value)
    True
    """
    return _Replay(fn, trace=trace if trace is not None else {})


def uncondition(fn: Callable | None = None) -> Any:
    """Sample observed sites from their distribution instead of using the observation.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     dg.sample("y", dist.Normal(0.0, 1.0), obs=100.0)
    >>> tr = dg.handlers.trace(dg.handlers.uncondition(model)).get_trace()
    >>> tr["y"].is_observed, bool(abs(tr["y"].value) < 10)
    (False, True)
    """
    return _Uncondition(fn)


# Pyro's poutine.markov and infer_discrete are handlers too (dualguide.enum)
from .enum import infer_discrete as infer_discrete  # noqa: E402
from .enum import markov as markov  # noqa: E402
