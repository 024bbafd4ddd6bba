"""A model and guide made ready for cross-checking: rendered per backend, inspected once.

:func:`prepare` renders both programs on each backend, converts the model arguments, and
traces the guide and the model (replayed on the guide) to learn the params (names, values,
constraints) and the sites (which are base latents, which are Delta-mapped outputs of
``dg.transformed``, which belong to the model only).  A backend that cannot even run the
programs is recorded in ``errors`` with its message, not raised.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _state
from .._inputs import float_np
from .._table import canonical_dist, same_dist
from ..render import render
from ..trace import Site
from ._common import BackendFailure, describe_error, param_hook, particle_bytes
from ._naming import Naming, build

BACKENDS = ("numpyro", "pyro")


def backend_module(name: str):
    """The backend-side cross-check module (imports that backend's framework)."""
    return _state.feature(name, "crosscheck")


@dataclass
class Native:
    """One backend's rendering of the programs and arguments."""

    name: str
    backend: Any
    mod: Any
    model: Callable
    guide: Callable
    args: tuple
    kwargs: dict


@dataclass
class Programs:
    """Everything the checks need about a model/guide pair."""

    model: Callable
    guide: Callable
    model_args: tuple
    model_kwargs: dict
    params: dict[str, np.ndarray] = field(default_factory=dict)
    constraints: dict = field(default_factory=dict)
    guide_sites: dict[str, Site] = field(default_factory=dict)
    model_sites: dict[str, Site] = field(default_factory=dict)
    sites_by_backend: dict[str, tuple] = field(default_factory=dict)
    natives: dict[str, Native] = field(default_factory=dict)
    errors: dict[str, BackendFailure] = field(default_factory=dict)
    #: param and site names per backend (autoguides name theirs per framework)
    naming: Naming = field(default_factory=Naming)

    # site classes -------------------------------------------------------------------------
    @property
    def guide_latents(self) -> list[str]:
        return [n for n, s in self.guide_sites.items() if s.is_latent]

    @property
    def delta_sites(self) -> list[str]:
        return [n for n in self.guide_latents if self.guide_sites[n].dist == "Delta"]

    @property
    def base_sites(self) -> list[str]:
        """Guide latents drawn from a distribution (not Delta-mapped)."""
        return [n for n in self.guide_latents if self.guide_sites[n].dist != "Delta"]

    @property
    def guide_plates(self) -> list[str]:
        """The plates the guide's sites are in (a subsampled one draws indices in the guide)."""
        return sorted({p for s in self.guide_sites.values() for p in s.plates})

    @property
    def model_latents(self) -> list[str]:
        return [n for n, s in self.model_sites.items() if s.is_latent]

    @property
    def model_only(self) -> list[str]:
        g = set(self.guide_latents)
        return [n for n in self.model_latents if n not in g]

    def shape(self, name: str) -> tuple:
        s = self.guide_sites.get(name) or self.model_sites.get(name)
        return tuple(np.shape(s.value)) if s is not None and s.value is not None else ()

    @property
    def latent_dim(self) -> int:
        """Total number of model latent numbers."""
        return sum(math.prod(self.shape(n)) for n in self.model_latents)

    @property
    def ok_backends(self) -> list[str]:
        return [b for b in BACKENDS if b in self.natives and b not in self.errors]

    def native(self, name: str) -> Native:
        return self.natives[name]

    def params_for(self, backend: str, params: dict | None = None) -> dict:
        """``params`` (default: the inspected values; canonical names) in ``backend``'s names."""
        return self.naming.params_to(self.params if params is None else params, backend)

    def hook(self, params: dict | None = None, backend: str | None = None):
        """Param hook giving the programs ``params`` (default: the inspected values), in
        ``backend``'s names when given (canonical names otherwise)."""
        p = self.params if params is None else params
        return param_hook(p if backend is None else self.naming.params_to(p, backend))

    @property
    def particle_bytes(self) -> int:
        """Estimated memory of one particle (see :func:`._common.particle_bytes`)."""
        return particle_bytes(
            (self.guide_sites, self.model_sites), self.model_args, self.model_kwargs
        )


def _native(name: str, model, guide, args, kwargs) -> Native:
    b = _state.resolve(name)
    return Native(
        name=b.name,
        backend=b,
        mod=backend_module(b.name),
        model=render(model, b),
        guide=render(guide, b),
        args=tuple(b.to_array(a) for a in args),
        kwargs={k: b.to_array(v) for k, v in (kwargs or {}).items()},
    )


def prepare(
    model: Callable,
    guide: Callable,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    params: dict | None = None,
    seed: int = 0,
    backends: tuple = BACKENDS,
) -> Programs:
    """Render and inspect ``model`` and ``guide`` on each backend (errors recorded per backend).

    ``params`` (constrained values by name) replace the programs' init values; the params the
    programs declare, with their constraints and values, end up in ``.params`` and
    ``.constraints``.
    """
    progs = Programs(model, guide, tuple(model_args), dict(model_kwargs or {}))
    canonical = None
    for name in backends:
        try:
            nat = _native(name, model, guide, model_args, model_kwargs)
        except Exception as e:
            progs.errors[name] = BackendFailure(name, "setup", e)
            continue
        progs.natives[name] = nat
        try:
            with param_hook(params) as hook:
                gsites, msites = nat.mod.inspect(nat.model, nat.guide, nat.args, nat.kwargs, seed)
        except Exception as e:
            progs.errors[name] = BackendFailure(name, "running the model and guide", e)
            continue
        progs.sites_by_backend[name] = (gsites, msites)
        if not progs.guide_sites:
            canonical = name
            progs.guide_sites, progs.model_sites = gsites, msites
            progs.constraints = dict(hook.constraints)
            vals = {}
            for sites in (gsites, msites):
                for n, s in sites.items():
                    if s.type == "param" and n not in vals:
                        vals[n] = np.asarray(s.value, dtype=float_np())
            progs.params = vals
    try:
        progs.naming = build(guide, progs.sites_by_backend, canonical, model_args, model_kwargs)
    except Exception as e:  # the autoguide's latent layout: a backend that cannot trace it
        for name in list(progs.sites_by_backend):
            if name != canonical:
                progs.errors[name] = BackendFailure(name, "laying out the autoguide's latents", e)
        progs.naming = Naming(canonical=canonical)
    _same_autoguide_params(progs)
    return progs


def _same_autoguide_params(progs: Programs) -> None:
    """Give every backend's native autoguide the canonical backend's param values.

    The frameworks' autoguides initialize some params differently (the low-rank factor: zero
    in NumPyro, random in Pyro); a Pyro autoguide keeps its values in its module, where the
    param hook no longer reaches once it is set up.  The checks compare at one set of params."""
    nm = progs.naming
    if not nm.active:
        return
    for name, nat in progs.natives.items():
        if name == nm.canonical or name in progs.errors:
            continue
        own = set(nm.own_params(list(progs.params_for(name)), name))
        p = {k: v for k, v in progs.params_for(name).items() if k in own}
        try:
            _state.feature(name, "autoguides").load(nat.guide, p, nat.args, nat.kwargs)
        except Exception as e:
            progs.errors[name] = BackendFailure(name, "setting the autoguide's params", e)


def recorded_value(site) -> bool:
    """A site that only records a value: a ``deterministic`` site, or an observed ``Delta``
    sample site.  The frameworks' reparameterizers record a reparameterized site so
    differently (NumPyro's ``LocScaleReparam`` makes ``theta`` deterministic, Pyro's an observed
    ``Delta(theta, log_density=0)``); the two mean the same: the value, no density term."""
    if site.type == "deterministic":
        return True
    return site.type == "sample" and site.is_observed and canonical_dist(site.dist) == "Delta"


def structure_differences(progs: Programs, parts: tuple = ("guide", "model")) -> list[str]:
    """Differences in site names, distributions (canonical) and shapes between the backends'
    traces of the programs named in ``parts``."""
    if len(progs.sites_by_backend) < 2:
        return []
    (na, (ga, ma)), (nb, (gb, mb)) = list(progs.sites_by_backend.items())[:2]
    nm = progs.naming
    ga, ma = nm.sites_from(ga, na), nm.sites_from(ma, na)
    gb, mb = nm.sites_from(gb, nb), nm.sites_from(mb, nb)
    out = []
    for what, sa, sb in (("guide", ga, gb), ("model", ma, mb)):
        if what not in parts:
            continue
        only_a = [n for n in sa if n not in sb]
        only_b = [n for n in sb if n not in sa]
        if only_a:
            out.append(f"{what} sites only in {na}: {', '.join(only_a)}")
        if only_b:
            out.append(f"{what} sites only in {nb}: {', '.join(only_b)}")
        for n in sa:
            if n not in sb:
                continue
            a, b = sa[n], sb[n]
            if a.type != b.type and not (recorded_value(a) and recorded_value(b)):
                out.append(f"{what} site {n!r}: {a.type} in {na}, {b.type} in {nb}")
                continue
            va = None if a.value is None else np.shape(a.value)
            vb = None if b.value is None else np.shape(b.value)
            if va != vb:
                out.append(f"{what} site {n!r}: shape {va} in {na}, {vb} in {nb}")
            da, db = canonical_dist(a.dist), canonical_dist(b.dist)
            # same_dist: NumPyro's ZeroInflatedProbs(Poisson) is Pyro's ZeroInflatedPoisson
            if (
                a.type == b.type == "sample"
                and not same_dist(a.dist, b.dist)
                and {da, db} != {"Unit"}
            ):
                out.append(f"{what} site {n!r}: {a.dist} in {na}, {b.dist} in {nb}")
    return out


def failure_text(e: BaseException) -> str:
    return e.args[0] if isinstance(e, BackendFailure) else describe_error(e)
