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
