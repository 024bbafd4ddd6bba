"""Pyro's side of :mod:`dualguide.handlers`: ``pyro.poutine``, built from neutral arguments.

``make(kind, params)`` returns the poutine messenger (used as a context manager around the
program); ``condition``, ``substitute`` and ``do`` are subclasses that remember which names
they met, and ``substitute`` also substitutes latent sample sites (NumPyro's behaviour, which
dualguide documents for both).  ``predictive`` is the backend half of
:class:`dualguide.predictive.Predictive`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyro
import pyro.infer as pi
import pyro.infer.reparam as pr
import torch
from pyro import poutine
from pyro.distributions.util import scale_and_mask
from pyro.poutine.condition_messenger import ConditionMessenger
from pyro.poutine.do_messenger import DoMessenger
from pyro.poutine.mask_messenger import MaskMessenger
from pyro.poutine.plate_messenger import PlateMessenger as _Plate
from pyro.poutine.runtime import _PYRO_STACK
from pyro.poutine.substitute_messenger import SubstituteMessenger
from pyro.poutine.trace_messenger import TraceMessenger

from ... import _inputs
from ..._table import HANDLERS, REPARAMS
from ...trace import Site, plain_site, sample_site
from . import BACKEND, static_ints

log = logging.getLogger("dualguide")


def _skip(msg) -> bool:
    return type(msg["fn"]).__name__ == "_Subsample"


class _Condition(ConditionMessenger):
    def __init__(self, data):
        self._dg_seen: set = set()
        super().__init__(data)

    def _pyro_sample(self, msg) -> None:
        if not _skip(msg) and msg["name"] in self.data:
            self._dg_seen.add(msg["name"])
        super()._pyro_sample(msg)


class _Substitute(SubstituteMessenger):
    """Substitutes params and *latent* sample sites; observed sites keep their observation."""

    def __init__(self, data):
        self._dg_seen: set = set()
        super().__init__(data)

    def _pyro_sample(self, msg) -> None:
        name = msg["name"]
        if _skip(msg) or msg["is_observed"] or name not in self.data:
            return
        self._dg_seen.add(name)
        msg["value"] = self.data[name]
        msg["done"] = True

    def _pyro_param(self, msg) -> None:
        if msg["name"] in self.data:
            self._dg_seen.add(msg["name"])
        super()._pyro_param(msg)

    def __exit__(self, *args, **kwargs) -> None:
        # dualguide checks the names itself (samples included): silence Pyro's params-only check
        self._param_hits = set(self.data)
        return super().__exit__(*args, **kwargs)


class _Do(DoMessenger):
    def __init__(self, data):
        self._dg_seen: set = set()
        super().__init__(data)

    def _pyro_sample(self, msg) -> None:
        if not _skip(msg) and msg["name"] in self.data:
            self._dg_seen.add(msg["name"])
        super()._pyro_sample(msg)


class _Mask(MaskMessenger):
    """Pyro's mask, refusing a mask that would enlarge a site's batch shape."""

    def _process_message(self, msg) -> None:
        if msg["type"] == "sample" and not _skip(msg):
            shape = static_ints(self.mask.shape) if isinstance(self.mask, torch.Tensor) else ()
            _check_mask(msg["name"], shape, static_ints(msg["fn"].batch_shape))
        super()._process_message(msg)


def _check_mask(name: str, mask_shape: tuple, batch_shape: tuple) -> None:
    # (under Pyro's JIT a plate's subsample size is a traced tensor: static_ints reads it)
    plates = [
        (static_ints((h.subsample_size,))[0], h.dim) for h in _PYRO_STACK if isinstance(h, _Plate)
    ]
    _inputs.check_mask(name, mask_shape, batch_shape, plates)


_SUBCLASSES = {"condition": _Condition, "substitute": _Substitute, "do": _Do}


def _native_reparam(r) -> Any:
    if r is None:
        return None
    return getattr(pr, REPARAMS[r.name][1])(**r.kwargs)


def _native_trace(sites: dict) -> Any:
    """A neutral trace (``{name: Site}``) as the ``pyro.poutine.Trace`` that ``replay`` reads."""
    tr = poutine.Trace()
    for name, s in sites.items():
        if s.type != "sample":
            continue
        value = None if s.value is None else BACKEND.to_array(s.value)
        tr.add_node(
            name,
            type="sample",
            name=name,
            value=value,
            is_observed=s.is_observed,
            infer=dict(s.infer),
        )
    return tr


def make(kind: str, params: dict) -> Any:
    """The poutine messenger for neutral handler ``kind`` with (already converted) ``params``."""
    if kind == "mask":
        return _Mask(params["mask"])
    if kind in _SUBCLASSES:
        return _SUBCLASSES[kind](params["data"])
    if kind == "trace":
        return TraceMessenger()
    factory = getattr(poutine, HANDLERS[kind][1])
    if kind == "replay":
        return factory(trace=_native_trace(params["trace"]))
    if kind == "reparam":
        config = params["config"]
        if isinstance(config, dict):
            return factory(config={k: _native_reparam(v) for k, v in config.items()})
        return factory(config=lambda msg: _native_reparam(config(msg["name"])))
    if kind == "block":
        hide_fn = params["hide_fn"]
        return factory(hide_fn=lambda msg: bool(hide_fn(msg.get("name"), _type(msg))))
    if kind == "seed":
        return factory(rng_seed=int(params["rng_seed"]))
    return factory(**params)


def _type(msg) -> str:
    """The neutral site type of a message (a ``deterministic`` is a sample site in Pyro)."""
    if msg.get("type") == "sample" and (msg.get("infer") or {}).get("_deterministic"):
        return "deterministic"
    return msg.get("type")


@contextlib.contextmanager
def context(native: Any) -> Iterator[Any]:
    """Run the block under ``native`` (Pyro draws from torch's global RNG when nothing seeds it)."""
    with native as entered:
        yield entered


def run(native: Any, fn: Callable, args: tuple, kwargs: dict) -> Any:
    """``fn(*args, **kwargs)`` under ``native``."""
    with native:
        return fn(*args, **kwargs)


def seen(native: Any) -> set | None:
    """The ``data`` names a condition / substitute / do handler met (None for other handlers)."""
    return getattr(native, "_dg_seen", None)


def _reparameterized(fn) -> bool:
    """The Delta(value).mask(False) Pyro leaves at a site a reparameterizer replaced."""
    return (
        type(fn).__name__ == "MaskedDistribution"
        and fn._mask is False
        and type(fn.base_dist).__name__ == "Delta"
    )


def trace_sites(native: Any) -> dict[str, tuple[Site, Any, Any]]:
    """``{name: (Site, scale, mask)}`` of a trace handler that has run; log_prob scaled and masked."""
    to_numpy = BACKEND.to_numpy
    out: dict[str, tuple[Site, Any, Any]] = {}
    for name, s in native.trace.nodes.items():
        t = s["type"]
        if t == "param":
            out[name] = (plain_site(name, t, s, s.get("value"), to_numpy), None, None)
        elif t == "sample" and (s["infer"].get("_deterministic") or _reparameterized(s["fn"])):
            out[name] = (plain_site(name, "deterministic", s, s.get("value"), to_numpy), None, None)
        elif t == "sample" and not _skip(s):
            site = sample_site(name, s, s["fn"], s["value"], to_numpy)
            scale, mask = s.get("scale", 1.0), s.get("mask")
            if site.log_prob is not None:
                with torch.no_grad():
                    lp = s["fn"].log_prob(s["value"])
                    site.log_prob = to_numpy(scale_and_mask(lp, scale, mask)).astype(np.float32)
            out[name] = (
                site,
                None
                if isinstance(scale, (int, float)) and scale == 1.0
                else np.asarray(to_numpy(torch.as_tensor(scale))),
                None if mask is None else np.asarray(to_numpy(torch.as_tensor(mask))),
            )
    return out


# -- Predictive ----------------------------------------------------------------------------------
def _one(model, guide, fixed: dict, seed_guide: int, seed_model: int, args, kwargs):
    guide_nodes: dict = {}
    latent = dict(fixed)
    if guide is not None:
        torch.manual_seed(seed_guide)
        guide_nodes = poutine.trace(guide).get_trace(*args, **kwargs).nodes
        for n, s in guide_nodes.items():
            if s["type"] == "sample" and not s["is_observed"] and not _skip(s):
                latent[n] = s["value"]
    torch.manual_seed(seed_model)
    tm = TraceMessenger()
    with tm, _Substitute(latent):
        model(*args, **kwargs)
    return tm.trace.nodes, guide_nodes


def _summary(nodes: dict) -> dict[str, tuple[str, bool, bool]]:
    out = {}
    for name, s in nodes.items():
        if s["type"] != "sample" or _skip(s):
            continue
        if s["infer"].get("_deterministic") or _reparameterized(s["fn"]):
            out[name] = ("deterministic", False, False)
        else:  # factors and auxiliary sites (an autoguide's "<site>_unconstrained") are not returned
            aux = type(s["fn"]).__name__ == "Unit" or bool(s["infer"].get("is_auxiliary"))
            out[name] = ("sample", bool(s["is_observed"]), aux)
    return out


def predictive(
    model: Callable,
    guide: Callable | None,
    samples: dict | None,
    seeds: np.ndarray,
    args: tuple,
    kwargs: dict,
    select: Callable,
    parallel: bool = False,
) -> dict[str, np.ndarray]:
    """Draw ``len(seeds)`` predictive samples: ``{site: numpy array (num_samples, *shape)}``.

    Runs in a fresh param-store scope and an RNG fork (the global store and torch RNG are
    left alone).  ``parallel`` runs Pyro's own vectorized ``Predictive(parallel=True)``
    (other draws than one by one, the same distribution), falling back to one by one when
    the program does not vectorize.
    """
    samples = {k: BACKEND.to_array(np.asarray(v)) for k, v in (samples or {}).items()}
    store = pyro.get_param_store()
    draws = []
    names: list = []
    with store.scope(), torch.random.fork_rng(devices=[]), torch.no_grad():
        for i in range(len(seeds)):
            fixed = {k: v[i] for k, v in samples.items()}
            m, g = _one(model, guide, fixed, int(seeds[i, 0]), int(seeds[i, 1]), args, kwargs)
            if i == 0:
                names = select(_summary(m), _summary(g))
                if parallel:
                    shapes = {k: tuple((m[k] if k in m else g[k])["value"].shape) for k in names}
                    out = _vectorized(model, guide, samples, shapes, seeds, args, kwargs)
                    if out is not None:
                        return out
            draws.append({k: BACKEND.to_numpy((m[k] if k in m else g[k])["value"]) for k in names})
    return {k: np.stack([d[k] for d in draws]) for k in names}


def _vectorized(model, guide, samples, shapes, seeds, args, kwargs) -> dict | None:
    """Pyro's ``Predictive(parallel=True)``, or None (logged) when the program does not vectorize.

    Pyro leaves a singleton dim per plate level on sites outside the plates; each result
    is reshaped to ``(num_samples, *the site's shape in one draw)``.
    """
    n = len(seeds)
    torch.manual_seed(int(seeds[0, 0]))
    try:
        pred = pi.Predictive(
            model,
            posterior_samples=samples or None,
            guide=guide,
            num_samples=n,
            return_sites=list(shapes),
            parallel=True,
        )
        out = pred(*args, **kwargs)
        return {k: BACKEND.to_numpy(out[k]).reshape((n, *shape)) for k, shape in shapes.items()}
    except (RuntimeError, ValueError, IndexError, KeyError) as e:
        log.info("Predictive (pyro): parallel draws failed (%s); drawing one by one", e)
        return None
