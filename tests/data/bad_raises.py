"""A spec file that raises while it is imported (for `dualguide check`)."""
import dualguide as dg  # noqa: F401

SETTINGS = {"scale": 1.0}
SCALE = SETTINGS["sclae"]  # a typo: KeyError at import
