"""Discrete latents by enumeration, on both backends (issue 14).

Pyro's names, rendered to each framework's own machinery (``pyro.infer`` / ``pyro.markov`` /
``pyro.ops.indexing`` on Pyro; ``numpyro.contrib.funsor`` and ``numpyro.ops.indexing`` on
NumPyro, which needs the package ``funsor``, part of ``dualguide[numpyro]``):

- :func:`config_enumerate` marks every discrete sample site of a program for parallel
  enumeration (the same as ``infer={"enumerate": "parallel"}`` on ``dg.sample``);
- :func:`markov` declares a Markov chain (context manager, iterator, decorator), so an HMM's
  enumeration reuses tensor dimensions;
- :class:`Vindex` (also ``dg.ops.Vindex``) indexes with enumerated index arrays the way both
  frameworks' ``Vindex`` do;
- :func:`infer_discrete` draws the enumerated sites from their posterior (``temperature=1``) or
  takes the MAP (Viterbi) values (``temperature=0``);
- ``dg.infer.TraceEnum_ELBO(max_plate_nesting=...)`` (:class:`dualguide.elbo.TraceEnum_ELBO`)
  sums the enumerated sites out exactly in ``fit``, ``SVI`` and ``crosscheck``.

Where the frameworks differ, dualguide keeps one behaviour (``docs/elbo.md``): enumeration is
``"parallel"`` only (NumPyro has no sequential enumeration), ``max_plate_nesting`` and
``first_available_dim`` are required (Pyro needs them; NumPyro would guess), and enumerated
sites live in the model (neither framework's guide-side enumeration is offered).

>>> import dualguide as dg
>>> from dualguide import distributions as dist
>>> @dg.config_enumerate
... def model():
...     z = dg.sample("z", dist.Bernoulli(0.3))
...     dg.sample("x", dist.Normal(z, 1.0), obs=1.0)
>>> with dg.use_backend("pyro"):
...     tr = dg.handlers.trace(model).get_trace()
>>> tr["z"].infer["enumerate"]
'parallel'
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from . import _state
from .errors import SpecError

__all__ = ["Vindex", "config_enumerate", "infer_discrete", "markov", "vindex", "plate_nesting"]


def _feature(b: Any = None) -> Any:
    mod = _state.feature(_state.current() if b is None else b, "enum")
    mod.check()
    return mod


def config_enumerate(
    fn: Callable | None = None,
    default: str = "parallel",
    expand: bool = False,
    num_samples: int | None = None,
) -> Any:
    """Mark every discrete sample site of ``fn`` for parallel enumeration (Pyro's
    ``pyro.infer.config_enumerate``, NumPyro's ``numpyro.contrib.funsor.config_enumerate``).

    A decorator (``@config_enumerate``), a call (``config_enumerate(model)``) or a factory
    (``config_enumerate(default="parallel")(model)``).  Sites that set their own
    ``infer={"enumerate": ...}`` keep it.  Only ``default="parallel"`` is supported (NumPyro has
    no sequential enumeration), with Pyro's ``expand=False`` and no ``num_samples``.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> @dg.config_enumerate
    ... def model():
    ...     dg.sample("z", dist.Categorical(ops.asarray([0.2, 0.8])))
    >>> from dualguide import ops
    >>> dg.trace(model, backend="numpyro")["z"].infer
    {'enumerate': 'parallel'}
    """
    if default != "parallel":
        raise SpecError(
            f"config_enumerate: default={default!r} is not supported; dualguide enumerates "
            "'parallel' only (NumPyro has no sequential enumeration): use default='parallel'"
        )
    if expand is not False or num_samples is not None:
        raise SpecError(
            "config_enumerate: expand=True and num_samples= (Pyro's expanded and sampled "
            "enumeration) have no NumPyro counterpart; drop them"
        )
    if fn is None:
        return functools.partial(config_enumerate, default=default)
    if not callable(fn):
        raise SpecError(f"config_enumerate: expected a model function, got {fn!r}")

    @functools.wraps(fn)
    def enumerated(*args: Any, **kwargs: Any) -> Any:
        return _feature().config_enumerate(fn, default)(*args, **kwargs)

    return enumerated


def markov(
    fn: Any = None,
    history: int = 1,
    keep: bool = False,
    dim: int | None = None,
    name: str | None = None,
) -> Any:
    """Declare a Markov chain (``pyro.markov`` / ``numpyro.contrib.funsor.markov``): each step
    depends on the last ``history`` steps only, so enumeration reuses tensor dimensions.

    Three forms, as in Pyro: ``for t in markov(range(T)):``, ``with markov():`` and ``@markov``
    on a recursive function.  Pyro's ``dim=`` and ``name=`` (vectorized markov) have no
    NumPyro counterpart and are refused.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist, ops
    >>> def hmm(ys):
    ...     z = 0
    ...     for t in dg.markov(range(len(ys))):
    ...         p = ops.asarray([[0.9, 0.1], [0.2, 0.8]])[z]
    ...         z = dg.sample(f"z_{t}", dist.Categorical(p), infer={"enumerate": "parallel"})
    ...         dg.sample(f"y_{t}", dist.Normal(ops.asarray([-1.0, 1.0])[z], 1.0), obs=ys[t])
    >>> sorted(dg.trace(hmm, [0.5, -0.3], backend="pyro"))
    ['y_0', 'y_1', 'z_0', 'z_1']
    """
    if dim is not None or name is not None:
        raise SpecError(
            "markov: dim= and name= (Pyro's vectorized markov) have no NumPyro counterpart; "
            "use the sequential form, for t in dg.markov(range(T))"
        )
    if isinstance(history, bool) or not isinstance(history, int) or history < 0:
        raise SpecError(f"markov: history must be an int >= 0, got {history!r}")
    if callable(fn):

        @functools.wraps(fn)
        def chained(*args: Any, **kwargs: Any) -> Any:
            return _feature().markov(fn, history, bool(keep))(*args, **kwargs)

        return chained
    return _feature().markov(fn, history, bool(keep))


def infer_discrete(
    fn: Callable | None = None,
    first_available_dim: int | None = None,
    temperature: int = 1,
) -> Any:
    """Run ``fn`` with its enumerated sites drawn from their posterior given the observations
    (``temperature=1``, forward-filter backward-sample) or set to their joint MAP values
    (``temperature=0``, Viterbi); Pyro's ``pyro.infer.infer_discrete``.

    ``first_available_dim`` is required on both backends (Pyro's rule): the first tensor
    dimension, counting from the right, free for enumeration, i.e. ``-(max_plate_nesting + 1)``.
    Draws come from the enclosing seed (``dg.handlers.seed``) on NumPyro, from torch's global
    RNG on Pyro; unseeded NumPyro runs take a key from numpy's global RNG.  Read the values with
    ``dg.handlers.trace``:

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> @dg.config_enumerate
    ... def model(y):
    ...     z = dg.sample("z", dist.Bernoulli(0.5))
    ...     dg.sample("y", dist.Normal(3.0 * z, 1.0), obs=y)
    >>> decoder = dg.infer_discrete(model, first_available_dim=-1, temperature=0)
    >>> [float(dg.handlers.trace(decoder).get_trace(2.9)["z"].value) for _ in range(2)]
    [1.0, 1.0]
    """
    if temperature not in (0, 1) or isinstance(temperature, bool):
        raise SpecError(
            f"infer_discrete: temperature must be 0 (MAP) or 1 (posterior sample), got "
            f"{temperature!r}"
        )
    if (
        isinstance(first_available_dim, bool)
        or not isinstance(first_available_dim, int)
        or first_available_dim >= 0
    ):
        raise SpecError(
            f"infer_discrete: first_available_dim must be a negative int, "
            f"-(max_plate_nesting + 1), e.g. -1 for a model without plates; got "
            f"{first_available_dim!r}"
        )
    if fn is None:
        return functools.partial(
            infer_discrete, first_available_dim=first_available_dim, temperature=temperature
        )
    if not callable(fn):
        raise SpecError(f"infer_discrete: expected a model function, got {fn!r}")
    fad = first_available_dim

    @functools.wraps(fn)
    def decoded(*args: Any, **kwargs: Any) -> Any:
        return _feature().infer_discrete(fn, fad, temperature)(*args, **kwargs)

    return decoded


def vindex(tensor: Any, args: tuple) -> Any:
    """``Vindex(tensor)[args]`` as a function (``pyro.ops.indexing.vindex``)."""
    b = _state.backend_of_type(type(tensor)) or _state.current()
    return _state.feature(b, "enum").vindex(tensor, args if isinstance(args, tuple) else (args,))


class Vindex:
    """Vectorized advanced indexing with broadcasting semantics, as Pyro's and NumPyro's
    ``Vindex``: ``Vindex(x)[..., i, j, :]`` broadcasts the index arrays ``i`` and ``j``
    against each other (and against enumeration dimensions) and keeps the dimensions of
    ``...`` and ``:`` on the right.

    >>> import dualguide as dg
    >>> from dualguide import ops
    >>> with dg.use_backend("numpyro"):
    ...     x = ops.reshape(ops.arange(6.0), (2, 3))
    ...     i = ops.astype(ops.asarray([[0], [1]]), "int32")
    ...     ops.to_numpy(Vindex(x)[i, ops.astype(ops.asarray([0, 2]), "int32")]).tolist()
    [[0.0, 2.0], [3.0, 5.0]]
    """

    def __init__(self, tensor: Any) -> None:
        self._tensor = tensor

    def __getitem__(self, args: Any) -> Any:
        return vindex(self._tensor, args)


def plate_nesting(sites: dict) -> int:
    """The number of batch dimensions the plates of a neutral trace use (``max_plate_nesting``
    at least this), from each sample site's plate frames."""
    deepest = 0
    for s in sites.values():
        native = s.native if isinstance(s.native, dict) else {}
        for f in native.get("cond_indep_stack", ()) or ():
            d = getattr(f, "dim", None)
            if d is not None:
                deepest = max(deepest, -int(d))
    return deepest


def elbo_values(
    model: Callable,
    guide: Callable,
    params: dict | None,
    backend: str | None,
    num_particles: int,
    seed: int,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    *,
    max_plate_nesting: int,
) -> Any:
    """``num_particles`` single-particle values of the enumerated ELBO (``-TraceEnum_ELBO``
    loss) at the constrained ``params`` on ``backend``, as a numpy array.

    A guide without random sites (``Delta`` / ``AutoDelta`` on the continuous latents) gives
    the same value every time: after two equal values it is evaluated no more.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> @dg.config_enumerate
    ... def model():
    ...     z = dg.sample("z", dist.Bernoulli(0.5))
    ...     dg.sample("x", dist.Normal(2.0 * z, 1.0), obs=0.0)
    >>> def guide():
    ...     pass
    >>> v = elbo_values(model, guide, {}, "pyro", 3, 0, max_plate_nesting=0)
    >>> [round(float(x), 4) for x in v]   # log(N(0;0,1)/2 + N(0;2,1)/2)
    [-1.4852, -1.4852, -1.4852]
    """
    import numpy as np

    b = _state.resolve(backend)
    feat = _feature(b)
    args = tuple(b.to_array(a) for a in model_args)
    kwargs = {k: b.to_array(v) for k, v in (model_kwargs or {}).items()}
    m, g = _state.render(model, b), _state.render(guide, b)
    with _state.param_overrides(params):
        first = feat.loss_values(m, g, dict(params or {}), 2, seed, args, kwargs, max_plate_nesting)
        if num_particles <= 2:
            return first[:num_particles]
        if first[0] == first[1]:
            return np.full(num_particles, first[0], dtype=np.float64)
        rest = feat.loss_values(
            m, g, dict(params or {}), num_particles - 2, seed + 1, args, kwargs, max_plate_nesting
        )
    return np.concatenate([first, rest])
