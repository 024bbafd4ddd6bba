"""The doctor's tracing context: one model/guide pair on one backend, traced and evaluated.

:class:`_Ctx` traces a program with chosen latent values and param overrides;
:class:`_Evaluator` runs the guide at many points in flat base coordinates at once
(densities, outputs, finite-difference Jacobians) for the transform and quadrature checks.

The doctor reaches the rest of dualguide through the kernel only: the backend's doctor
module (``_state.feature``), the init-param check and the param-override block
(``_state.check_init_params``, ``_state.param_overrides``).
"""

from __future__ import annotations

import numpy as np

from .. import _state
from .._inputs import float_np
from ..errors import SpecError
from ..render import render
from .sites import _nest, _shape, _shapes, _size

# -- one model/guide pair ----------------------------------------------------------------------


class _Ctx:
    """One model/guide pair on one backend, with args and param overrides."""

    def __init__(self, model, guide, backend, model_args, model_kwargs, params, seed):
        self.b = b = _state.resolve(backend)
        self.helper = _state.feature(b, "doctor")
        self.model = render(model, b) if model is not None else None
        self.guide = render(guide, b)
        from ..autoguides import AutoGuide

        #: the guide is one of dualguide's autoguides (the frameworks' own handle plates)
        self.neutral_guide = getattr(guide, "neutral", guide)
        self.autoguide = isinstance(self.neutral_guide, AutoGuide)
        if not isinstance(model_args, (tuple, list)):
            raise SpecError(f"check: model_args must be a tuple, got {type(model_args).__name__}")
        self.args = tuple(b.to_array(a) for a in model_args)
        self.kwargs = {k: b.to_array(v) for k, v in (model_kwargs or {}).items()}
        self.params = _state.check_init_params(params)
        self.seed = int(seed)
        self.constraints: dict = {}

    def run(self, fn, values=None, fill="none", seed=None, params=None):
        """Trace ``fn`` with ``values`` substituted: ``(sites, filled names)``."""
        vals = {k: self.b.to_array(v) for k, v in (values or {}).items()}
        wrapped, filled = self.helper.with_values(fn, vals, fill)
        with _state.param_overrides(self.params if params is None else params) as hook:
            sites = self.b.trace(
                wrapped, self.args, self.kwargs, self.seed if seed is None else seed
            )
        for k, c in hook.constraints.items():
            self.constraints.setdefault(k, c)
        return sites, list(filled)

    def batched(self, fn, values, shapes, out_names, n, nest, params=None):
        """Run ``fn`` at ``n`` points at once: ``(log densities, values of out_names)``."""
        with _state.param_overrides(self.params if params is None else params):
            return self.helper.batched_eval(
                fn, self.args, self.kwargs, values, shapes, list(out_names), n, nest
            )

    def draws(self, gsites, base, k: int = 32) -> np.ndarray:
        """``k`` guide draws at the current params, as flat base coordinates ``(k, D)``."""
        shapes = _shapes(base)
        with _state.param_overrides(self.params):
            vals = self.helper.batched_draws(
                self.guide,
                self.args,
                self.kwargs,
                list(base),
                shapes,
                k,
                _nest(gsites),
                self.seed + 1000,
            )
        return np.concatenate(
            [np.asarray(vals[n], dtype=np.float64).reshape(k, -1) for n in base], axis=1
        )


class _Evaluator:
    """Point sets in flat base coordinates, evaluated in one batched run of the guide."""

    def __init__(self, ctx, gsites, base, outs):
        self.ctx, self.gsites, self.base, self.outs = ctx, gsites, base, outs
        self.D = sum(_size(s) for s in base.values())
        self.sets: list[np.ndarray] = []
        self.lps: dict = {}
        self.vals: dict = {}
        self.offsets: list[int] = []

    def add(self, pts) -> int:
        self.sets.append(np.asarray(pts, dtype=np.float64))
        return len(self.sets) - 1

    def add_jacobian(self, pts):
        """Points plus central finite-difference offsets; returns a handle for :meth:`jacobian`."""
        pts = np.asarray(pts, dtype=np.float64)
        h = 1e-3 * np.maximum(1.0, np.abs(pts))
        ids = [self.add(pts)]
        for j in range(self.D):
            e = np.zeros(self.D)
            e[j] = 1.0
            ids.append(self.add(pts + h[:, j : j + 1] * e))
            ids.append(self.add(pts - h[:, j : j + 1] * e))
        return ids, h

    def run(self) -> None:
        allp = np.concatenate(self.sets, axis=0)
        n = allp.shape[0]
        values, i = {}, 0
        for k, s in self.base.items():
            size = _size(s)
            values[k] = allp[:, i : i + size].reshape((n,) + _shape(s)).astype(float_np())
            i += size
        shapes = _shapes({**self.base, **self.outs})
        self.lps, self.vals = self.ctx.batched(
            self.ctx.guide, values, shapes, list(self.outs), n, _nest(self.gsites)
        )
        self.offsets = list(np.cumsum([0] + [len(p) for p in self.sets]))

    def log_density(self, i) -> np.ndarray:
        """The guide's total log density (all sample sites) at point set ``i``."""
        a, z = self.offsets[i], self.offsets[i + 1]
        return sum(
            (np.asarray(v[a:z], dtype=np.float64) for k, v in self.lps.items() if k in self.gsites),
            np.zeros(z - a),
        )

    def site_lp(self, i, name) -> np.ndarray:
        a, z = self.offsets[i], self.offsets[i + 1]
        return np.asarray(self.lps[name][a:z], dtype=np.float64)

    def outputs(self, i) -> np.ndarray:
        a, z = self.offsets[i], self.offsets[i + 1]
        return np.concatenate(
            [np.asarray(self.vals[k][a:z], dtype=np.float64).reshape(z - a, -1) for k in self.outs],
            axis=1,
        )

    def jacobian(self, handle) -> np.ndarray:
        """``(K, M, D)``: d(outputs) / d(base) at the points of ``handle``."""
        ids, h = handle
        f0 = self.outputs(ids[0])
        J = np.zeros(f0.shape + (self.D,))
        for j in range(self.D):
            J[:, :, j] = (self.outputs(ids[1 + 2 * j]) - self.outputs(ids[2 + 2 * j])) / (
                2 * h[:, j : j + 1]
            )
        return J
