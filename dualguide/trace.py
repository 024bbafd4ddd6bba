"""Run a neutral program once on a backend and look at its sites, as numpy and plain types."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _state

__all__ = ["Site", "trace"]


@dataclass
class Site:
    """One site of a traced program, backend-neutral.

    ``type`` is ``"sample"``, ``"param"`` or ``"deterministic"``.  For sample
    sites ``dist`` is the distribution's class name (``"Normal"``), ``log_prob``
    the elementwise log density of ``value`` (batch shape), and ``support`` the
    native support's repr.  ``native`` keeps the framework's own site dict.
    """

    name: str
    type: str
    value: np.ndarray | None
    dist: str | None = None
    is_observed: bool = False
    log_prob: np.ndarray | None = None
    batch_shape: tuple = ()
    event_shape: tuple = ()
    infer: dict = field(default_factory=dict)
    support: str | None = None
    has_rsample: bool | None = None
    is_factor: bool = False
    plates: tuple = ()
    native: Any = None

    @property
    def is_latent(self) -> bool:
        """A sample site that is neither observed nor a factor."""
        return self.type == "sample" and not self.is_observed and not self.is_factor


_WRAPPERS = ("Independent", "ExpandedDistribution", "MaskedDistribution")


def base_distribution(d, *, through: tuple[str, ...] | None = _WRAPPERS):
    """``d`` without its Independent / Expanded / Masked wrappers (either framework).

    ``through=None`` unwraps every ``base_dist`` (TransformedDistribution too)."""
    while hasattr(d, "base_dist") and (through is None or type(d).__name__ in through):
        d = d.base_dist
    return d


def no_sampler_name(d) -> str | None:
    """The class name of ``d``'s innermost base distribution if the table marks it as
    having no sampler (ImproperUniform), else None."""
    from ._table import DISTRIBUTIONS

    name = type(base_distribution(d, through=None)).__name__
    spec = DISTRIBUTIONS.get(name)
    return name if spec is not None and not spec.samplable else None


def unsamplable(d) -> bool:
    """Whether ``d`` is a distribution the table marks as having no sampler (ImproperUniform)."""
    return no_sampler_name(d) is not None


def sample_site(name: str, native: dict, d, value, to_numpy: Callable) -> Site:
    """A :class:`Site` for a native sample site with distribution ``d`` (both backends use it)."""
    dist_name = type(base_distribution(d)).__name__
    try:
        log_prob = to_numpy(d.log_prob(value))
    except Exception:
        log_prob = None
    return Site(
        name=name,
        type="sample",
        value=None if value is None else to_numpy(value),
        dist=dist_name,
        is_observed=bool(native.get("is_observed")),
        log_prob=log_prob,
        batch_shape=tuple(d.batch_shape),
        event_shape=tuple(d.event_shape),
        infer={k: v for k, v in (native.get("infer") or {}).items() if not k.startswith("_")},
        support=repr(getattr(d, "support", None)),
        has_rsample=bool(getattr(d, "has_rsample", False)),
        is_factor=dist_name == "Unit",
        plates=tuple(f.name for f in native.get("cond_indep_stack", ())),
        native=native,
    )


def plain_site(name: str, type_: str, native: dict, value, to_numpy: Callable) -> Site:
    """A :class:`Site` for a param or deterministic site."""
    return Site(
        name=name,
        type=type_,
        value=None if value is None else to_numpy(value),
        infer={k: v for k, v in (native.get("infer") or {}).items() if not k.startswith("_")},
        plates=tuple(f.name for f in native.get("cond_indep_stack", ())),
        native=native,
    )


def trace(
    fn: Callable,
    *args,
    backend: str | None = None,
    seed: int = 0,
    params: dict | None = None,
    **kwargs,
) -> dict[str, Site]:
    """Run ``fn(*args, **kwargs)`` once on ``backend`` and return its sites in order.

    ``params`` (constrained values by name) replace the program's param init
    values.  Pyro runs in a fresh param-store scope and an RNG fork, so global
    state is left alone.

    >>> import dualguide as dg
    >>> from dualguide import distributions as dist
    >>> def model():
    ...     dg.sample("x", dist.Normal(0.0, 1.0))
    >>> sites = dg.trace(model, backend="numpyro")
    >>> sites["x"].dist
    'Normal'
    """
    b = _state.resolve(backend)
    rendered = _state.render(fn, b)
    args = tuple(b.to_array(a) for a in args)
    kwargs = {k: b.to_array(v) for k, v in kwargs.items()}
    with _state.param_overrides(params):
        return b.trace(rendered, args, kwargs, seed)
