"""Reparameterized draws from supplied noise, written once with :mod:`dualguide.ops`.

The crosscheck's lockstep check drives both backends with the same standard noise per
guide site; this module turns that noise into a draw of the site's distribution, on either
framework (ops dispatch on the array type).  The mixture's implicit reparameterization is
the one per-backend hook (``mixture``: the backend's mixture module, with
``reparameterizable(mix)`` and ``implicit_reparam(mix, x)``).

>>> import numpy as np
>>> import torch
>>> import pyro.distributions as pdist
>>> z = {"normal": torch.tensor([0.5])}
>>> float(rsample_from_noise("x", pdist.Normal(1.0, 2.0), z, (1,), None)[0])
2.0
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from . import ops
from ._mixture_math import mixing_probs
from .contract import NotLockstepable
from .trace import base_distribution

__all__ = ["rsample_from_noise"]


def rsample_from_noise(
    name: str, d: Any, noise: dict[str, Any], shape: tuple, mixture: ModuleType | None
) -> Any:
    """A reparameterized draw of native distribution ``d`` (full shape ``shape``) from
    standard noise arrays: ``noise["normal"]`` (N(0, 1)), ``noise["uniform"]`` (U(0, 1)),
    ``noise["t"]`` (standard Student t), ``noise["choice"]`` (U(0, 1), a mixture's
    component).  None for a Delta (its value is its parameter); :class:`NotLockstepable`
    for a family that cannot be drawn from noise."""
    base = base_distribution(d)
    fam = type(base).__name__
    custom = getattr(base, "rsample_from_noise", None)
    if custom is not None:
        return custom({k: ops.reshape(v, shape) for k, v in noise.items()}, shape)
    if fam == "Delta":
        return None
    if fam in ("Normal", "LogNormal", "HalfNormal", "MultivariateNormal"):
        z = ops.reshape(noise["normal"], shape)
        if fam == "Normal":
            return base.loc + base.scale * z
        if fam == "LogNormal":
            return ops.exp(base.loc + base.scale * z)
        if fam == "HalfNormal":
            return base.scale * ops.abs(z)
        return base.loc + ops.matmul(base.scale_tril, ops.expand_dims(z, -1))[..., 0]
    if fam in ("Cauchy", "HalfCauchy", "Laplace", "Uniform", "Exponential"):
        u = ops.reshape(noise["uniform"], shape)
        if fam == "Cauchy":
            return base.loc + base.scale * ops.tan(math.pi * (u - 0.5))
        if fam == "HalfCauchy":
            return base.scale * ops.abs(ops.tan(math.pi * (u - 0.5)))
        if fam == "Laplace":
            c = u - 0.5
            return base.loc - base.scale * ops.sign(c) * ops.log1p(-2.0 * ops.abs(c))
        if fam == "Uniform":
            return base.low + (base.high - base.low) * u
        return -ops.log1p(-u) / base.rate
    if fam == "StudentT" and "t" in noise:
        return base.loc + base.scale * ops.reshape(noise["t"], shape)
    if fam == "MixtureSameFamily" and "choice" in noise and mixture is not None:
        return _mixture_from_noise(name, base, noise, shape, mixture)
    raise NotLockstepable(f"site {name!r}: {fam} cannot be drawn from supplied noise")


def _mixture_from_noise(name: str, mix: Any, noise: dict, shape: tuple, mixture: ModuleType):
    """dualguide's reparameterized mixture: the component by inverse CDF of the weights at
    ``noise["choice"]``, its value from the component's own noise, then the same implicit
    reparameterization gradient as the mixture's sampler."""
    if not mixture.reparameterizable(mix):
        raise NotLockstepable(f"site {name!r}: this MixtureSameFamily has no pathwise sampler")
    w = mixing_probs(mix)
    ncomp = w.shape[-1]
    u = ops.reshape(noise["choice"], shape)
    k = ops.sum(ops.cumsum(w, -1) < ops.expand_dims(u, -1), -1)
    k = ops.clip(k, 0, ncomp - 1)
    full = tuple(shape) + (ncomp,)
    comp_noise = {
        kind: ops.broadcast_to(ops.expand_dims(ops.reshape(v, shape), -1), full)
        for kind, v in noise.items()
        if kind != "choice"
    }
    xs = ops.broadcast_to(
        rsample_from_noise(name, mix.component_distribution, comp_noise, full, mixture), full
    )
    k = ops.broadcast_to(k, tuple(shape))
    x = ops.take_along_axis(xs, ops.expand_dims(k, -1), -1)[..., 0]
    return mixture.implicit_reparam(mix, ops.stop_gradient(x))
