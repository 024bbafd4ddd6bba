"""The doctor's report types: one :class:`Finding` per problem, gathered in a :class:`Report`."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..errors import SpecError

__all__ = ["SEVERITIES", "Finding", "Report"]

SEVERITIES = ("error", "warning", "info")


@dataclass
class Finding:
    """One thing the doctor found: ``code`` (stable identifier), ``severity``
    (``"error"``, ``"warning"`` or ``"info"``), ``site`` (a site or param name, or
    None for the whole program), ``message`` (what is wrong) and ``fix``."""

    code: str
    severity: str
    site: str | None
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = f"[{self.site}] " if self.site else ""
        s = f"{self.severity.upper()}: {where}{self.message}"
        if self.fix:
            s += f"\n    fix: {self.fix}"
        return s

    def to_dict(self) -> dict:
        """Plain-Python form (JSON-ready)."""
        return {
            "code": self.code,
            "severity": self.severity,
            "site": self.site,
            "message": self.message,
            "fix": self.fix,
        }


@dataclass
class Report:
    """The findings of :func:`check`, printable and convertible with :meth:`to_dict`.

    ``ok`` is True when there is no error.  ``backend`` is the backend the
    program was traced on, ``level`` ``"cheap"`` or ``"full"``, ``checks`` the
    names of the checks that ran, and ``figures`` numbers the checks computed
    (e.g. ``{"quadrature": {"integral": 0.0157, ...}}``).
    """

    findings: list[Finding] = field(default_factory=list)
    backend: str = ""
    level: str = "full"
    checks: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)

    def add(
        self, code: str, severity: str, site: str | None, message: str, fix: str = ""
    ) -> Finding:
        """Record a finding (``severity`` one of :data:`SEVERITIES`) and return it."""
        if severity not in SEVERITIES:
            raise ValueError(severity)
        f = Finding(code, severity, site, message, fix)
        self.findings.append(f)
        return f

    def _of(self, severity: str) -> list[Finding]:
        return [f for f in self.findings if f.severity == severity]

    @property
    def errors(self) -> list[Finding]:
        return self._of("error")

    @property
    def warnings(self) -> list[Finding]:
        return self._of("warning")

    @property
    def infos(self) -> list[Finding]:
        return self._of("info")

    @property
    def ok(self) -> bool:
        """No errors (warnings and infos allowed)."""
        return not self.errors

    def codes(self, severity: str | None = None) -> list[str]:
        """The codes of the findings (of one severity)."""
        return [f.code for f in self.findings if severity in (None, f.severity)]

    def find(self, code: str, site: str | None = None) -> list[Finding]:
        """Findings with ``code`` (and ``site``)."""
        return [f for f in self.findings if f.code == code and site in (None, f.site)]

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def __str__(self) -> str:
        order = {s: i for i, s in enumerate(SEVERITIES)}
        head = (
            f"dualguide check ({self.backend}, {self.level}): {len(self.errors)} error(s), "
            f"{len(self.warnings)} warning(s), {len(self.infos)} note(s)"
        )
        body = [str(f) for f in sorted(self.findings, key=lambda f: order[f.severity])]
        return "\n".join([head, *body])

    def to_dict(self) -> dict:
        """Plain-Python form (JSON-ready)."""
        return {
            "backend": self.backend,
            "level": self.level,
            "ok": self.ok,
            "checks": list(self.checks),
            "counts": {s: len(self._of(s)) for s in SEVERITIES},
            "findings": [f.to_dict() for f in self.findings],
            "figures": _plain(self.figures),
        }

    def raise_for_errors(self, what: str = "check") -> None:
        """Raise :class:`~dualguide.errors.SpecError` listing the errors, if any."""
        if self.errors:
            lines = "\n".join(f"  - {f}".replace("\n", "\n    ") for f in self.errors)
            raise SpecError(f"{what}: the guide has {len(self.errors)} error(s):\n{lines}")


def _plain(x):
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, float) and not math.isfinite(x):
        return repr(x)
    return x
