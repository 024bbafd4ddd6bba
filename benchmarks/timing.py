"""Small timing helpers shared by the benchmark workers."""

from __future__ import annotations

import time

import numpy as np


def stats(samples) -> dict:
    """Median and spread (min, quartiles, max) of a list of numbers."""
    a = np.asarray(samples, dtype=float)
    q25, med, q75 = np.percentile(a, [25, 50, 75])
    return {
        "median": float(med),
        "q25": float(q25),
        "q75": float(q75),
        "min": float(a.min()),
        "max": float(a.max()),
        "n": int(a.size),
    }


def timed(fn, *args):
    """``(seconds, result)`` of one call."""
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def interleave(blocks: dict, rounds: int, budget_s: float | None = None, min_rounds: int = 3):
    """Run each zero-argument callable once per round, in turn; seconds per call by name.

    Interleaving puts every variant under the same machine conditions, so that a
    ratio taken from one run is fair even while the machine is busy.  With
    ``budget_s``, fewer rounds (at least ``min_rounds``) when rounds are slow.
    """
    out = {k: [] for k in blocks}
    r = 0
    t_start = time.perf_counter()
    while r < rounds:
        for k, fn in blocks.items():
            t = time.perf_counter()
            fn()
            out[k].append(time.perf_counter() - t)
        r += 1
        if r == 1 and budget_s is not None:
            per_round = time.perf_counter() - t_start
            rounds = max(min_rounds, min(rounds, int(budget_s / max(per_round, 1e-9))))
    return out
