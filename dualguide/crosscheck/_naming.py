"""One name for each param and site across the backends, so crosscheck compares like with like.

Neutral programs declare their params with ``dg.param`` and have the same names on both
backends.  A neutral autoguide (:mod:`dualguide.autoguides`) renders to each framework's own
autoguide, whose params and auxiliary latent site have that framework's names (NumPyro
``auto_loc`` and ``_auto_latent``, Pyro ``AutoDiagonalNormal.loc`` and
``_AutoDiagonalNormal_latent``) and whose packed latent vector may be ordered differently.
:class:`Naming` maps them: crosscheck keeps everything under the *canonical* backend's names
(the first backend that ran the programs) and translates with the autoguides' own table
(:data:`dualguide._table.AUTOGUIDE_PARAMS`, :func:`dualguide.autoguides.translate_params`)
whenever values cross to another backend or come back from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._table import AUTOGUIDE_PARAMS


def _autoguide(guide):
    from ..autoguides import AutoGuide

    g = getattr(guide, "neutral", guide)
    return g if isinstance(g, AutoGuide) else None


@dataclass
class Naming:
    """Param and site names per backend; identity for programs without an autoguide."""

    canonical: str | None = None
    guide: Any = None
    #: backend -> [(site, unconstrained shape)] in that backend's packing order (packed guides)
    layouts: dict[str, list] | None = None
    #: backend -> the autoguide's auxiliary latent site name (packed guides)
    aux: dict[str, str] = field(default_factory=dict)
    #: the model's inputs (an AutoGuideList translates part by part from its parts' layouts)
    model_args: tuple = ()
    model_kwargs: dict | None = None

    @property
    def parts(self) -> list:
        """The autoguides whose params are named: an AutoGuideList's parts, else the guide."""
        if self.guide is None:
            return []
        return list(getattr(self.guide, "parts", [self.guide]))

    @property
    def is_list(self) -> bool:
        return self.guide is not None and self.kind == "AutoGuideList"

    @property
    def packed_kind(self) -> str:
        """The packed autoguide (one vector over its latents) among the parts ("" if none)."""
        return next((p.kind for p in self.parts if not AUTOGUIDE_PARAMS[p.kind].per_site), "")

    @property
    def kind(self) -> str:
        """The autoguide's name ("" without one)."""
        return "" if self.guide is None else str(self.guide.kind)

    @property
    def active(self) -> bool:
        return self.guide is not None and self.canonical is not None

    @property
    def same_storage(self) -> bool:
        """Whether the params map element by element (a renaming and a permutation), so that
        gradients translate as values do (AutoMultivariateNormal's Cholesky factor does not)."""
        return not self.active or not any(AUTOGUIDE_PARAMS[p.kind].storage for p in self.parts)

    def own_params(self, names, backend: str) -> list[str]:
        """Those of ``names`` (in ``backend``'s names) that belong to the autoguide."""
        if not self.active:
            return []
        from ..autoguides import _pattern

        if self.is_list and backend == "pyro":  # Pyro names a list's params by position
            return [n for n in names if n.startswith("AutoGuideList.")]
        pats = [
            _pattern(p.name)
            for part in self.parts
            for p in getattr(AUTOGUIDE_PARAMS[part.kind], backend)
        ]
        return [n for n in names if any(p.match(n) for p in pats)]

    # params ---------------------------------------------------------------------------------
    def _translate(self, params: dict, source: str, target: str) -> dict:
        if not self.active or source == target or not params:
            return dict(params)
        from ..autoguides import translate_params

        if self.is_list:  # part by part, each with its own table row
            return self.guide.translate(
                params, target, model_args=self.model_args, model_kwargs=self.model_kwargs
            )
        return translate_params(self.kind, params, source, target, layouts=self.layouts)

    def params_to(self, params: dict, backend: str) -> dict:
        """Canonical names -> ``backend``'s names (values constrained)."""
        return self._translate(params, self.canonical or backend, backend)

    def params_from(self, params: dict, backend: str) -> dict:
        """``backend``'s names -> canonical names."""
        return self._translate(params, backend, self.canonical or backend)

    def batched_from(self, params: dict, backend: str) -> dict:
        """As :meth:`params_from` for arrays with a leading batch axis (e.g. gradients)."""
        if not self.active or backend == self.canonical or not params:
            return dict(params)
        n = len(next(iter(params.values())))
        rows = [self.params_from({k: v[i] for k, v in params.items()}, backend) for i in range(n)]
        return {k: np.stack([r[k] for r in rows]) for k in rows[0]}

    # sites ----------------------------------------------------------------------------------
    def site_to(self, name: str, backend: str) -> str:
        if self.active and name == self.aux.get(self.canonical or "") and backend in self.aux:
            return self.aux[backend]
        return name

    def site_from(self, name: str, backend: str) -> str:
        if self.active and name == self.aux.get(backend) and self.canonical in self.aux:
            return self.aux[self.canonical]
        return name

    def _perm(self, source: str, target: str) -> np.ndarray | None:
        if not self.active or self.layouts is None or source == target:
            return None
        from ..autoguides import _permutation

        return _permutation(self.packed_kind or self.kind, self.layouts, source, target)

    def points_to(self, points: dict, backend: str) -> dict:
        """Canonical ``{site: (N, ...)}`` -> ``backend``'s (aux latent renamed and reordered)."""
        out = {}
        for k, v in points.items():
            name = self.site_to(k, backend)
            if name != k:
                idx = self._perm(self.canonical or backend, backend)
                v = np.asarray(v)[..., idx] if idx is not None else v
            out[name] = v
        return out

    def points_from(self, points: dict, backend: str) -> dict:
        """``backend``'s ``{site: (N, ...)}`` -> canonical."""
        out = {}
        for k, v in points.items():
            name = self.site_from(k, backend)
            if name != k:
                idx = self._perm(backend, self.canonical or backend)
                v = np.asarray(v)[..., idx] if idx is not None else v
            out[name] = v
        return out

    def sites_from(self, sites: dict, backend: str) -> dict:
        """A trace's ``{name: Site}`` for a structure comparison: the autoguide's own param
        sites left out (the param comparison translates them), its auxiliary latent under the
        canonical name."""
        if not self.active:
            return dict(sites)
        mine = set(self.own_params([n for n, s in sites.items() if s.type == "param"], backend))
        return {self.site_from(n, backend): s for n, s in sites.items() if n not in mine}


def build(guide, sites_by_backend: dict, canonical: str | None, model_args, model_kwargs) -> Naming:
    """The :class:`Naming` of ``guide`` given each backend's ``(guide sites, model sites)``."""
    auto = _autoguide(guide)
    if auto is None or canonical is None:
        return Naming(canonical=canonical)
    if auto.kind not in AUTOGUIDE_PARAMS and auto.kind != "AutoGuideList":
        from ..errors import SpecError

        raise SpecError(
            f"crosscheck: {auto.kind} is not supported yet; fit each backend with dg.fit and "
            "compare after guide.translate(params, to=...)"
        )
    naming = Naming(
        canonical=canonical, guide=auto, model_args=tuple(model_args), model_kwargs=model_kwargs
    )
    for b, (gsites, msites) in sites_by_backend.items():
        model_latents = {n for n, s in msites.items() if s.is_latent}
        extra = [n for n, s in gsites.items() if s.is_latent and n not in model_latents]
        if len(extra) == 1:
            naming.aux[b] = extra[0]
    packed = [p for p in naming.parts if not AUTOGUIDE_PARAMS[p.kind].per_site]
    if packed:  # the packed vector's order per backend (an AutoGuideList: its packed part's)
        naming.layouts = {
            b: packed[0].layout(b, tuple(model_args), model_kwargs) for b in sites_by_backend
        }
    return naming
