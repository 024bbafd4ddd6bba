"""The cross-check report: dataclasses, a plain-text table, a rich table and JSON-ready dicts.

>>> from dualguide.crosscheck.report import CheckResult
>>> c = CheckResult("gradient", "pass", "max |diff|/se = 1.2 (limit 4)")
>>> c.ok
True
>>> str(c)
'gradient parity      pass   max |diff|/se = 1.2 (limit 4)'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._common import fmt, plain

#: display names of the checks, in report order
CHECK_TITLES = {
    "structure": "site structure",
    "logdensity": "log-density parity",
    "gradient": "gradient parity",
    "lockstep": "lockstep",
    "elbo": "ELBO agreement",
    "networks": "network weights",
    "quadrature": "quadrature optimum",
    "nuts": "NUTS moments",
    "doctor": "doctor",
}

#: statuses: pass / fail (a verdict), error (could not run), n/a (does not apply), info
STATUSES = ("pass", "fail", "error", "n/a", "info")


@dataclass
class CheckResult:
    """One check's outcome: ``status`` is pass, fail, error, n/a or info.

    ``ok`` is True for pass, False for fail and error, None for n/a and info (which do not
    decide the report's verdict).  ``details`` holds plain numbers for machines; ``errors``
    maps a backend to the error that stopped it.
    """

    name: str
    status: str
    summary: str = ""
    details: dict = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    #: arrays for plots (not part of to_dict)
    data: dict = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool | None:
        if self.status == "pass":
            return True
        if self.status in ("fail", "error"):
            return False
        return None

    @property
    def title(self) -> str:
        return CHECK_TITLES.get(self.name, self.name)

    def to_dict(self) -> dict:
        return plain(
            {
                "name": self.name,
                "status": self.status,
                "ok": self.ok,
                "summary": self.summary,
                "details": self.details,
                "errors": self.errors,
            }
        )

    def __str__(self) -> str:
        s = f"{self.title:<20} {self.status:<6} {self.summary}"
        for b, e in self.errors.items():
            s += f"\n{'':<28}{b}: {e}"
        return s.rstrip()


@dataclass
class BackendRun:
    """One backend's fit and its many-particle ELBO estimate (or the error that stopped it)."""

    backend: str
    fit: Any = None  # dualguide.FitResult
    elbo: float | None = None
    elbo_stderr: float | None = None
    elbo_particles: int = 0
    elbo_nonfinite: int = 0
    error: str | None = None
    #: per-particle standard deviation of the ELBO estimate
    elbo_sd: float | None = None
    #: the fit's own end-of-fit noise in the loss (see crosscheck's ELBO check)
    fit_noise: float | None = None

    @property
    def wall_time(self) -> float | None:
        return None if self.fit is None else float(self.fit.wall_time)

    @property
    def steps_per_second(self) -> float | None:
        return None if self.fit is None else float(self.fit.steps_per_second)

    def to_dict(self) -> dict:
        f = self.fit
        return plain(
            {
                "backend": self.backend,
                "params": None if f is None else {k: np.asarray(v) for k, v in f.params.items()},
                "final_loss": None if f is None else f.final_loss,
                "num_steps": None if f is None else f.num_steps,
                "elbo_estimator": None if f is None else f.elbo,
                "skipped_steps": None if f is None else len(f.skipped_steps),
                "wall_time": self.wall_time,
                "steps_per_second": self.steps_per_second,
                "elbo": self.elbo,
                "elbo_stderr": self.elbo_stderr,
                "elbo_particles": self.elbo_particles,
                "elbo_nonfinite": self.elbo_nonfinite,
                "fit_noise": self.fit_noise,
                "error": self.error,
            }
        )


@dataclass
class ParamComparison:
    """One param fitted on both backends: values, largest difference, tolerance, verdict."""

    name: str
    values: dict[str, np.ndarray]
    abs_tol: float
    rel_tol: float
    diff: float | None = None
    ok: bool | None = None
    reference: np.ndarray | None = None
    reference_ok: bool | None = None
    #: per-element sd of the fits over seeds (``crosscheck(seeds=k)``), None without it
    spread: np.ndarray | None = None
    #: standard deviations of the spread a difference of two fits may take
    spread_k: float = 4.0
    #: the network this param is a weight of (not compared value by value; see the
    #: ``networks`` check), None for an ordinary param
    network: str | None = None

    @property
    def limit(self) -> float | None:
        """The largest difference allowed (the largest of :meth:`limits`)."""
        lims = self.limits()
        return None if lims is None else float(np.max(lims))

    def judge(self) -> None:
        """Set ``diff`` (largest |a - b|) and ``ok`` (every element within its limit)."""
        vals = [np.asarray(v, dtype=float) for v in self.values.values()]
        if len(vals) < 2:
            return
        a, b = vals[:2]
        if a.shape != b.shape:
            self.diff, self.ok = math.inf, False
            return
        d = np.abs(a - b)
        both_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
        d = np.where(both_inf, 0.0, d)
        lim = np.broadcast_to(self.limits(), d.shape)
        self.diff = float(np.max(d)) if d.size else 0.0
        self.ok = bool(np.all(d <= lim)) and not np.any(np.isnan(d))

    def limits(self) -> np.ndarray | None:
        """Each element's allowed difference, ``abs + rel * max(|a|, |b|)``, plus
        ``spread_k * sqrt(2) * spread`` when the seed spread was measured."""
        vals = [np.asarray(v, dtype=float) for v in self.values.values()]
        if not vals:
            return None
        try:
            m = np.max(np.abs(np.stack(np.broadcast_arrays(*vals))), axis=0)
        except ValueError:  # the backends' values have different shapes
            m = np.max(np.abs(vals[0]))
        lim = self.abs_tol + self.rel_tol * m
        if self.spread is not None and np.shape(self.spread) == np.shape(lim):
            lim = lim + self.spread_k * math.sqrt(2.0) * np.asarray(self.spread, dtype=float)
        return np.asarray(lim, dtype=float)

    def worst(self) -> tuple[str, float, float] | None:
        """``(label, |diff|, its limit)`` of the element furthest beyond (or nearest to) its
        limit: the numbers a verdict line prints, so that the line follows from them."""
        vals = [np.asarray(v, dtype=float) for v in self.values.values()]
        if len(vals) < 2 or vals[0].shape != vals[1].shape:
            return None
        d = np.abs(vals[0] - vals[1])
        d = np.where(np.isnan(d), np.inf, d)
        lim = np.broadcast_to(self.limits(), d.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            excess = np.where(np.isinf(d), np.inf, d - lim)
        i = np.unravel_index(int(np.argmax(excess)), d.shape) if d.size else ()
        label = self.name + (f"[{','.join(map(str, i))}]" if d.ndim else "")
        return label, float(d[i]), float(lim[i])

    def to_dict(self) -> dict:
        return plain(
            {
                "name": self.name,
                "values": {k: np.asarray(v) for k, v in self.values.items()},
                "diff": self.diff,
                "abs_tol": self.abs_tol,
                "rel_tol": self.rel_tol,
                "limit": self.limit,
                "spread": None if self.spread is None else np.asarray(self.spread),
                "ok": self.ok,
                "reference": None if self.reference is None else np.asarray(self.reference),
                "reference_ok": self.reference_ok,
                "network": self.network,
            }
        )


def _verdict(ok: bool | None) -> str:
    return {True: "ok", False: "FAIL", None: "-"}[ok]


@dataclass
class CrosscheckReport:
    """What :func:`dualguide.crosscheck` returns.

    ``runs[backend]`` holds each fit with its ELBO estimate, ``params`` the per-param
    comparison, ``checks`` every check run (log-density, gradient, lockstep, ELBO agreement,
    references).  ``ok`` is True when no verdict failed and no backend errored.
    ``str(report)`` is a plain-text table; ``report.to_dict()`` plain Python for JSON.
    """

    model: str
    guide: str
    settings: dict
    runs: dict[str, BackendRun] = field(default_factory=dict)
    params: list[ParamComparison] = field(default_factory=list)
    checks: dict[str, CheckResult] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    #: samples and curves for plots (not part of to_dict)
    data: dict = field(default_factory=dict, repr=False)

    @property
    def backends(self) -> list[str]:
        return list(self.runs)

    @property
    def ok(self) -> bool:
        if self.errors or any(r.error for r in self.runs.values()):
            return False
        if any(p.ok is False or p.reference_ok is False for p in self.params):
            return False
        return not any(c.ok is False for c in self.checks.values())

    @property
    def failures(self) -> list[str]:
        """One line per failed verdict or error."""
        out = list(self.errors)
        out += [f"{b}: {r.error}" for b, r in self.runs.items() if r.error]
        for p in self.params:
            if p.ok is False:
                w = p.worst()
                if w is None:
                    out.append(f"param {p.name}: the backends' values have different shapes")
                else:
                    out.append(f"param {w[0]}: backends differ by {fmt(w[1])} > limit {fmt(w[2])}")
            if p.reference_ok is False:
                out.append(f"param {p.name}: a fit is off the quadrature optimum")
        out += [f"{c.title}: {c.summary}" for c in self.checks.values() if c.ok is False]
        return out

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "model": self.model,
            "guide": self.guide,
            "settings": plain(self.settings),
            "runs": {b: r.to_dict() for b, r in self.runs.items()},
            "params": [p.to_dict() for p in self.params],
            "checks": {k: c.to_dict() for k, c in self.checks.items()},
            "errors": list(self.errors),
            "failures": self.failures,
        }

    # tables -------------------------------------------------------------------------------
    def _param_rows(self) -> tuple[list[str], list[list[str]]]:
        bs = self.backends
        has_ref = any(p.reference is not None for p in self.params)
        head = ["param", *bs, "|diff|", "limit"] + (["quadrature"] if has_ref else []) + ["verdict"]
        rows = []
        for p in self.params:
            vals = {b: np.asarray(p.values[b]) if b in p.values else None for b in bs}
            ref = None if p.reference is None else np.asarray(p.reference)
            shape = next((v.shape for v in vals.values() if v is not None), ())
            size = int(np.prod(shape)) if shape else 1
            verdict = _verdict(p.ok) if p.network is None else "network"
            if p.reference_ok is False:
                verdict += " (off quadrature)"
            lims = p.limits() if p.network is None else None
            if size <= 6:
                for i, idx in enumerate(np.ndindex(*shape) if shape else [()]):
                    label = p.name + (f"[{','.join(map(str, idx))}]" if shape else "")
                    row = [label]
                    row += [fmt(v[idx]) if v is not None else "-" for v in vals.values()]
                    d = [
                        abs(float(vals[a][idx]) - float(vals[b][idx]))
                        for a, b in _pairs(bs)
                        if vals[a] is not None and vals[b] is not None
                    ]
                    lim = "-"
                    if lims is not None and np.shape(lims) == tuple(shape):
                        lim = fmt(np.asarray(lims)[idx])
                    row += [fmt(max(d)) if d else "-", lim]
                    if has_ref:
                        row.append(fmt(ref[idx]) if ref is not None else "-")
                    row.append(verdict if i == 0 else "")
                    rows.append(row)
            else:
                row = [f"{p.name} {tuple(shape)}"]
                row += [f"mean {fmt(np.mean(v))}" if v is not None else "-" for v in vals.values()]
                row += [fmt(p.diff), fmt(p.limit) if p.network is None else "-"]
                if has_ref:
                    row.append(f"mean {fmt(np.mean(ref))}" if ref is not None else "-")
                row.append(verdict)
                rows.append(row)
        return head, rows

    def _run_rows(self) -> tuple[list[str], list[list[str]]]:
        bs = self.backends
        head = ["", *bs]
        n = max((r.elbo_particles for r in self.runs.values()), default=0)
        rows = [
            [f"ELBO ({n} particles)"]
            + [
                f"{fmt(r.elbo)} ± {fmt(r.elbo_stderr)}" if r.elbo is not None else "-"
                for r in self.runs.values()
            ],
            ["final loss (fit)"]
            + [fmt(r.fit.final_loss) if r.fit is not None else "-" for r in self.runs.values()],
            ["wall time"]
            + [
                f"{r.wall_time:.2f} s" if r.wall_time is not None else "-"
                for r in self.runs.values()
            ],
            ["steps/s"]
            + [
                f"{r.steps_per_second:,.0f}" if r.steps_per_second is not None else "-"
                for r in self.runs.values()
            ],
        ]
        if any(r.fit is not None and r.fit.elbo for r in self.runs.values()):
            rows.append(
                ["estimator"]
                + [r.fit.elbo if r.fit is not None else "-" for r in self.runs.values()]
            )
        if any(r.elbo_nonfinite for r in self.runs.values()):
            rows.append(
                ["non-finite particles"] + [str(r.elbo_nonfinite) for r in self.runs.values()]
            )
        return head, rows

    def header(self) -> str:
        s = self.settings
        bits = [
            f"{s.get('num_steps')} steps",
            f"{s.get('num_particles')} particles",
            str(s.get("optim", "")),
            f"seed {s.get('seed')}",
        ]
        return f"dualguide crosscheck: {self.model} / {self.guide}  ({', '.join(b for b in bits if b)})"

    def __str__(self) -> str:
        out = [self.header(), ""]
        if self.params:
            out += _text_table(*self._param_rows())
            out.append("")
        if self.runs:
            out += _text_table(*self._run_rows())
            out.append("")
        for b, r in self.runs.items():
            if r.error:
                out.append(f"{b} error: {r.error}")
        for e in self.errors:
            out.append(f"error: {e}")
        if self.checks:
            out.append("checks")
            out += ["  " + line for c in self.checks.values() for line in str(c).splitlines()]
            out.append("")
        out.append("verdict: " + ("OK" if self.ok else "FAILED"))
        if not self.ok:
            out += ["  - " + f for f in self.failures]
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"CrosscheckReport(ok={self.ok}, model={self.model!r}, guide={self.guide!r})"

    def to_rich(self):
        """A rich renderable (tables and check lines) of the report."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        parts: list = [Text(self.header(), style="bold")]
        if self.params:
            head, rows = self._param_rows()
            t = Table(show_edge=False, header_style="bold")
            for i, h in enumerate(head):
                t.add_column(h, justify="left" if i == 0 else "right")
            for r in rows:
                style = "red" if r[-1].startswith("FAIL") else None
                t.add_row(*(Text(x) for x in r), style=style)
            parts.append(t)
        if self.runs:
            head, rows = self._run_rows()
            t = Table(show_edge=False, header_style="bold")
            for i, h in enumerate(head):
                t.add_column(h, justify="left" if i == 0 else "right")
            for r in rows:
                t.add_row(*(Text(x) for x in r))
            parts.append(t)
        for b, r in self.runs.items():
            if r.error:
                parts.append(Text(f"{b} error: {r.error}", style="red"))
        for e in self.errors:
            parts.append(Text(f"error: {e}", style="red"))
        if self.checks:
            t = Table(show_edge=False, show_header=False, box=None)
            t.add_column("check")
            t.add_column("status")
            t.add_column("summary", overflow="fold")
            colors = {"pass": "green", "fail": "red", "error": "red", "n/a": "dim", "info": "cyan"}
            for c in self.checks.values():
                summary = c.summary + "".join(f"\n{b}: {e}" for b, e in c.errors.items())
                t.add_row(
                    Text(c.title), Text(c.status, style=colors.get(c.status, "")), Text(summary)
                )
            parts.append(t)
        verdict = Text(
            "verdict: " + ("OK" if self.ok else "FAILED"),
            style="bold green" if self.ok else "bold red",
        )
        parts.append(verdict)
        if not self.ok:
            parts += [Text("  - " + f, style="red") for f in self.failures]
        return Group(*parts)

    def print(self, rich: bool | None = None, file=None) -> None:
        """Print the table: rich on a terminal, plain text otherwise (or as ``rich`` says)."""
        import sys

        file = file or sys.stdout
        if rich is None:
            rich = bool(getattr(file, "isatty", lambda: False)())
        if rich:
            from rich.console import Console

            Console(file=file).print(self.to_rich())
        else:
            print(str(self), file=file)

    def plot(self, path: str, **kwargs) -> str:
        """Draw loss curves and (2-D latents) guide densities vs the target; see :mod:`.plot`."""
        from .plot import plot_report

        return plot_report(self, path, **kwargs)


def _pairs(bs):
    return [(bs[i], bs[j]) for i in range(len(bs)) for j in range(i + 1, len(bs))]


def _text_table(head: list[str], rows: list[list[str]]) -> list[str]:
    cols = len(head)
    widths = [max(len(str(r[i])) for r in [head, *rows] if i < len(r)) for i in range(cols)]
    lines = []
    for r in [head, *rows]:
        cells = [
            str(r[i]).ljust(widths[i]) if i == 0 else str(r[i]).rjust(widths[i])
            for i in range(cols)
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def isclose_elementwise(a, b, abs_tol: float, rel_tol: float, extra=0.0) -> tuple[float, bool]:
    """Largest |a - b| and whether every element is within ``abs + rel * max(|a|, |b|)``
    (``+ extra``, a number or an array of a's shape)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return math.inf, False
    d = np.abs(a - b)
    both_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    d = np.where(both_inf, 0.0, d)
    lim = abs_tol + rel_tol * np.maximum(np.abs(a), np.abs(b)) + np.asarray(extra, dtype=float)
    lim = np.where(both_inf, 0.0, lim)
    ok = bool(np.all(d <= lim)) and not np.any(np.isnan(d))
    return (float(np.max(d)) if d.size else 0.0), ok
