"""Exceptions raised by dualguide. Every message names the culprit and the fix."""

from __future__ import annotations


class DualGuideError(Exception):
    """Base class of every error dualguide raises on purpose."""


class BackendError(DualGuideError, ValueError):
    """An unknown backend name, or a backend whose framework is not installed."""


class SpecError(DualGuideError, ValueError):
    """A model or guide written against the neutral API is malformed."""


class FitError(DualGuideError, RuntimeError):
    """A fit stopped early. ``.result`` holds the last finite params and losses so far."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class UnknownNameError(SpecError, AttributeError):
    """A name that is not in dualguide's table (``dist.Normall``); the message suggests one."""


class CheckWarning(UserWarning):
    """A warning from the guide doctor (``dualguide.check``), e.g. when ``fit`` starts."""


def unknown_name(module: str, kind: str, name: str, known, fix: str = "") -> UnknownNameError:
    """The error for ``<module>.<name>`` that is not there, with a did-you-mean.

    >>> print(unknown_name("dualguide.distributions", "distribution", "Normall", ["Normal", "Gamma"]))
    dualguide.distributions has no distribution 'Normall'; did you mean 'Normal'? ...
    """
    import difflib

    known = sorted(known)
    lower = {k.lower(): k for k in known}
    if name.lower() in lower:
        guess = [lower[name.lower()]]
    else:
        guess = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(g) for g in guess)}?" if guess else ""
    return UnknownNameError(
        f"{module} has no {kind} {name!r}{hint} (known: {', '.join(known)}){fix}"
    )
