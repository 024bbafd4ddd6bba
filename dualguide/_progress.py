"""A tiny progress bar on stderr: drawn on a terminal, silent otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    """``Progress(total, desc)``; call ``update(n, loss)`` and ``close()``."""

    def __init__(self, total: int, desc: str = "", enabled: bool | None = None, stream=None):
        self.stream = stream or sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)()) and total >= 500
        self.enabled = enabled
        self.total = max(int(total), 1)
        self.desc = desc
        self.n = 0
        self.t0 = time.perf_counter()
        self._last = 0.0

    def update(self, n: int, loss: float | None = None) -> None:
        self.n = min(self.n + n, self.total)
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.1 and self.n < self.total:
            return
        self._last = now
        frac = self.n / self.total
        width = 24
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        rate = self.n / max(now - self.t0, 1e-9)
        tail = f" loss {loss:.4g}" if loss is not None else ""
        self.stream.write(f"\r{self.desc} [{bar}] {self.n}/{self.total} {rate:,.0f} it/s{tail}   ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
