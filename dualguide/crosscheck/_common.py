"""Small pieces shared by the neutral cross-check modules (the backends use dualguide.contract).

Nothing here imports jax or torch.
"""

from __future__ import annotations

import contextlib
import math
import zlib
from typing import Any

import numpy as np

from ..contract import NotLockstepable  # noqa: F401  (re-exported: it lived here)
from ..errors import DualGuideError

#: distributions whose reparameterized sample both backends can draw from supplied noise
#: (see :func:`dualguide.crosscheck.lockstep`); value = the kinds of standard noise they read
LOCKSTEP_FAMILIES: dict[str, tuple[str, ...]] = {
    "Normal": ("normal",),
    "LogNormal": ("normal",),
    "HalfNormal": ("normal",),
    "MultivariateNormal": ("normal",),
    "Cauchy": ("uniform",),
    "HalfCauchy": ("uniform",),
    "Laplace": ("uniform",),
    "Uniform": ("uniform",),
    "Exponential": ("uniform",),
    "StudentT": ("t",),
    "Delta": (),
    # the reparameterized mixture of dualguide.transforms: a uniform picks the component
    # (inverse CDF of the mixing weights), the component's own noise draws the value
    "MixtureSameFamily": ("choice", "uniform", "normal", "t"),
}


class BackendFailure(DualGuideError):
    """A stage failed in one backend; carries that backend's name and the original error."""

    def __init__(self, backend: str, stage: str, error: BaseException):
        self.backend = backend
        self.stage = stage
        self.error = error
        super().__init__(f"{stage} failed: {describe_error(error)}")


def describe_error(e: BaseException, limit: int = 400) -> str:
    """``Type: first lines of message`` (a short, readable form of an exception)."""
    msg = str(e).strip()
    lines = [ln for ln in msg.splitlines() if ln.strip()]
    text = " ".join(ln.strip() for ln in lines[:3])
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def plain(x: Any) -> Any:
    """Numpy values, tuples and nested containers -> plain Python (non-finite floats as strings)."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return plain(x.tolist())
    if isinstance(x, (np.floating, float)):
        f = float(x)
        if math.isnan(f):
            return None
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return f
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def site_seed(seed: int, *parts: Any) -> np.random.Generator:
    """A numpy generator determined by ``seed`` and names/numbers (stable across runs)."""
    words = [int(seed) & 0xFFFFFFFF]
    for p in parts:
        if isinstance(p, str):
            words.append(zlib.crc32(p.encode()))
        else:
            words.append(int(p) & 0xFFFFFFFF)
    return np.random.default_rng(words)


@contextlib.contextmanager
def param_hook(params: dict | None = None):
    """Run programs with init values overridden by ``params``; yields the hook (constraints)."""
    from .. import _state

    with _state.param_overrides(params) as hook:
        yield hook


def fmt(x: float, digits: int = 4) -> str:
    """A float for tables: fixed or scientific, whichever is readable."""
    if x is None:
        return "-"
    try:
        f = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(f):
        return "nan"
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    if f != 0 and (abs(f) < 10 ** -(digits - 1) or abs(f) >= 10**6):
        return f"{f:.{max(1, digits - 2)}e}"
    return f"{f:.{digits}f}"


# memory budget ------------------------------------------------------------------------------

#: default memory budget (MB) of one vectorized piece of a many-particle computation
DEFAULT_MAX_MEMORY_MB = 1024

#: float32 numbers a particle holds per number of its traces and inputs: each site's value and
#: log density, the intermediates the program computes from its data (``X * w`` is one copy of
#: ``X`` per particle), the framework's own copies (broadcasts, reductions, vmap/plate buffers).
#: 8 copies of 4 bytes errs on the safe side: a logistic regression on 5,000 x 10 data, 200
#: particles in one piece, grew the peak resident memory by 42 MB on Pyro and 69 MB on NumPyro
#: (compilation included) where this estimate says 397 MB.
_COPIES = 8
_BYTES = 4


def _numbers(x) -> int:
    try:
        return int(math.prod(np.shape(x)))
    except Exception:
        return 1


def particle_bytes(site_dicts, args=(), kwargs=None) -> int:
    """Estimated bytes one particle needs: every traced site's value (and its log density)
    and the program's inputs, times the working copies (see ``_COPIES``)."""
    n = 0
    for sites in site_dicts:
        for s in sites.values():
            if s.value is not None:
                n += (2 if s.type == "sample" else 1) * _numbers(s.value)
    n += sum(_numbers(a) for a in args) + sum(_numbers(v) for v in (kwargs or {}).values())
    return max(1, n) * _COPIES * _BYTES


def chunk_size(per_particle: int, max_memory_mb: float, cap: int | None = None) -> int:
    """How many particles fit in ``max_memory_mb`` (at least 1, at most ``cap``)."""
    c = max(1, int(float(max_memory_mb) * 2**20 // max(1, per_particle)))
    return min(c, cap) if cap else c


def check_memory(max_memory_mb, where: str) -> float:
    """``max_memory_mb`` as a positive float, or a SpecError naming ``where``."""
    ok = isinstance(max_memory_mb, (int, float)) and not isinstance(max_memory_mb, bool)
    if not ok or not max_memory_mb > 0 or not math.isfinite(max_memory_mb):
        from ..errors import SpecError

        raise SpecError(f"{where}: max_memory_mb must be a positive number, got {max_memory_mb!r}")
    return float(max_memory_mb)
