"""NumPyro's side of :mod:`dualguide.handlers`: ``numpyro.handlers``, built from neutral arguments.

``make(kind, params)`` returns the handler (a messenger, used as a context manager around
the program); ``condition``, ``substitute`` and ``do`` are subclasses that remember which
names they met, and ``substitute`` leaves observed sites alone (dualguide's documented
behaviour, the same as on Pyro).  ``predictive`` is the backend half of
:class:`dualguide.predictive.Predictive`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.infer.reparam as nr
from numpyro import handlers as nh
from numpyro.primitives import _PYRO_STACK
from numpyro.primitives import plate as _Plate

from ... import _inputs
from ..._table import HANDLERS, REPARAMS
from ...trace import Site, plain_site, sample_site

log = logging.getLogger("dualguide")


class _Seen:
    """Mixin: remember the names in ``data`` that a sample (or param) site matched."""

    data: dict
    _dg_seen: set

    def _note(self, msg) -> None:
        name = msg.get("name")
        if name is not None and self.data is not None and name in self.data:
            self._dg_seen.add(name)


class _Condition(_Seen, nh.condition):
    def __init__(self, data):
        self._dg_seen: set = set()
        super().__init__(None, data=data)

    def process_message(self, msg) -> None:
        if msg["type"] == "sample":
            self._note(msg)
        super().process_message(msg)


class _Substitute(_Seen, nh.substitute):
    """Substitutes params and *latent* sample sites; observed sites keep their observation."""

    def __init__(self, data):
        self._dg_seen: set = set()
        super().__init__(None, data=data)

    def process_message(self, msg) -> None:
        if msg["type"] not in ("sample", "param"):
            return
        if msg["type"] == "sample" and msg["is_observed"]:
            return
        self._note(msg)
        super().process_message(msg)


class _Do(_Seen, nh.do):
    def __init__(self, data):
        self._dg_seen: set = set()
        super().__init__(None, data=data)

    def process_message(self, msg) -> None:
        if msg["type"] == "sample" and not msg["name"].endswith("__CF"):
            self._note(msg)
        super().process_message(msg)


class _Mask(nh.mask):
    """numpyro's mask, refusing a mask that would enlarge a site's batch shape."""

    def process_message(self, msg) -> None:
        if msg["type"] == "sample":
            _check_mask(msg["name"], jnp.shape(self.mask), tuple(msg["fn"].batch_shape))
        super().process_message(msg)


def _check_mask(name: str, mask_shape: tuple, batch_shape: tuple) -> None:
    plates = [(h.subsample_size, h.dim) for h in _PYRO_STACK if isinstance(h, _Plate)]
    _inputs.check_mask(name, mask_shape, batch_shape, plates)


_SUBCLASSES = {"condition": _Condition, "substitute": _Substitute, "do": _Do}


def _native_reparam(r) -> Any:
    if r is None:
        return None
    return getattr(nr, REPARAMS[r.name][0])(**r.kwargs)


def _native_trace(sites: dict) -> dict:
    """A neutral trace (``{name: Site}``) as the dict of messages ``numpyro.handlers.replay`` reads."""
    out = {}
    for name, s in sites.items():
        if s.type != "sample":
            continue
        value = None if s.value is None else jnp.asarray(s.value)
        out[name] = {
            "type": s.type,
            "name": name,
            "value": value,
            "is_observed": s.is_observed,
            "infer": dict(s.infer),
        }
    return out


def make(kind: str, params: dict) -> Any:
    """The numpyro handler for neutral handler ``kind`` with (already converted) ``params``."""
    if kind == "mask":
        return _Mask(None, mask=params["mask"])
    if kind in _SUBCLASSES:
        return _SUBCLASSES[kind](params["data"])
    cls = getattr(nh, HANDLERS[kind][0])
    if kind == "replay":
        return cls(None, trace=_native_trace(params["trace"]))
    if kind == "reparam":
        config = params["config"]
        if isinstance(config, dict):
            native = {k: _native_reparam(v) for k, v in config.items()}
            return cls(None, config=native)
        return cls(None, config=lambda msg: _native_reparam(config(msg["name"])))
    if kind == "block":
        hide_fn = params["hide_fn"]
        # plate messages pass (Pyro's block never sees plates): NumPyro's block(expose=...)
        # would hide them, and an autoguide set up under it then misses the plate sizes
        return cls(
            None,
            hide_fn=lambda msg: (
                msg.get("type") != "plate" and bool(hide_fn(msg.get("name"), msg.get("type")))
            ),
        )
    return cls(None, **params)


def _seeded() -> bool:
    return any(isinstance(h, nh.seed) for h in _PYRO_STACK)


def _auto_seed() -> Any:
    """A seed handler drawn from numpy's global RNG, for a run that no seed handler covers."""
    return nh.seed(rng_seed=int(np.random.randint(0, 2**31 - 1)))


@contextlib.contextmanager
def context(native: Any) -> Iterator[Any]:
    """Run the block under ``native`` (seeded from numpy's global RNG when nothing seeds it)."""
    with contextlib.ExitStack() as stack:
        if not _seeded() and not isinstance(native, nh.seed):
            stack.enter_context(_auto_seed())
        yield stack.enter_context(native)


def run(native: Any, fn: Callable, args: tuple, kwargs: dict) -> Any:
    """``fn(*args, **kwargs)`` under ``native``."""
    with context(native):
        return fn(*args, **kwargs)


def seen(native: Any) -> set | None:
    """The ``data`` names a condition / substitute / do handler met (None for other handlers)."""
    return getattr(native, "_dg_seen", None)


def _log_prob(s: dict, site: Site) -> np.ndarray | None:
    if site.log_prob is None:
        return None
    lp = site.log_prob
    scale = s.get("scale")
    if scale is not None:
        lp = lp * np.asarray(scale, dtype=np.float32)
    return np.asarray(lp, dtype=np.float32)


def _mask_of(fn) -> Any:
    while fn is not None:
        if type(fn).__name__ == "MaskedDistribution":
            return np.asarray(fn._mask)
        fn = getattr(fn, "base_dist", None)
    return None


def trace_sites(native: Any) -> dict[str, tuple[Site, Any, Any]]:
    """``{name: (Site, scale, mask)}`` of a trace handler that has run; log_prob scaled and masked."""
    out: dict[str, tuple[Site, Any, Any]] = {}
    for name, s in native.trace.items():
        t = s["type"]
        if t == "sample":
            site = sample_site(name, s, s["fn"], s["value"], np.asarray)
            site.log_prob = _log_prob(s, site)
            scale = s.get("scale")
            out[name] = (
                site,
                None if scale is None else np.asarray(scale),
                _mask_of(s["fn"]),
            )
        elif t in ("param", "deterministic"):
            out[name] = (plain_site(name, t, s, s.get("value"), np.asarray), None, None)
    return out


# -- Predictive ----------------------------------------------------------------------------------
def _one(model, guide, fixed: dict, key, args, kwargs):
    """One predictive draw: the guide's latents (if any) and ``fixed`` substituted into the model."""
    k_guide, k_model = jax.random.split(key)
    latent = dict(fixed)
    guide_tr: dict = {}
    if guide is not None:
        guide_tr = nh.trace(nh.seed(guide, k_guide)).get_trace(*args, **kwargs)
        for n, s in guide_tr.items():
            if s["type"] == "sample" and not s["is_observed"]:
                latent[n] = s["value"]
    sub = _Substitute(latent)
    with nh.trace() as model_tr, nh.seed(rng_seed=k_model), sub:
        model(*args, **kwargs)
    return model_tr, guide_tr


def _site_value(name, model_tr, guide_tr):
    s = model_tr.get(name)
    if s is not None and s["type"] in ("sample", "deterministic", "param"):
        return s["value"]
    return guide_tr[name]["value"]


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

    ``select(model_sites, guide_sites)`` (neutral) chooses the sites to return from the first
    draw's traces, given as ``{name: (type, is_observed, is_factor)}``.
    """
    n = len(seeds)
    samples = {k: jnp.asarray(v) for k, v in (samples or {}).items()}
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds[:, 0], dtype=jnp.uint32))

    def fixed_at(i):
        return {k: v[i] for k, v in samples.items()}

    model_tr, guide_tr = _one(model, guide, fixed_at(0), keys[0], args, kwargs)
    names = select(_summary(model_tr), _summary(guide_tr))

    def draw(key, fixed):
        m, g = _one(model, guide, fixed, key, args, kwargs)
        return {k: _site_value(k, m, g) for k in names}

    if parallel:
        try:
            out = jax.vmap(draw)(keys, samples)
            return {k: np.asarray(out[k]) for k in names}
        except (TypeError, jax.errors.ConcretizationTypeError) as e:
            log.info("Predictive (numpyro): parallel draws failed (%s); drawing one by one", e)
    try:
        jdraw = jax.jit(draw)
        draws = [jdraw(keys[i], fixed_at(i)) for i in range(n)]
    except (TypeError, jax.errors.ConcretizationTypeError) as e:
        log.info("Predictive (numpyro): jit failed (%s); drawing without jit", e)
        draws = [draw(keys[i], fixed_at(i)) for i in range(n)]
    return {k: np.stack([np.asarray(d[k]) for d in draws]) for k in names}


def _summary(tr: dict) -> dict[str, tuple[str, bool, bool]]:
    out = {}
    for name, s in tr.items():
        if s["type"] in ("sample", "deterministic"):
            # factors and auxiliary sites (an autoguide's latent vector) are not returned
            aux = s["type"] == "sample" and (
                type(s["fn"]).__name__ == "Unit" or bool((s.get("infer") or {}).get("is_auxiliary"))
            )
            out[name] = (s["type"], bool(s.get("is_observed")), aux)
    return out
