"""Backend implementations. Only ``numpyro/`` imports jax/numpyro; only ``pyro/`` imports torch/pyro.

Each backend package exposes ``BACKEND``, an object implementing
:class:`dualguide.contract.Backend`, whose ``features`` map each name of
:data:`dualguide.contract.FEATURES` to a module of the package (the framework side of
a neutral tool, reached through :func:`dualguide._state.feature`).  A backend imports
only the kernel and :mod:`dualguide.contract` (``tests/test_contract.py`` checks it).
See ``docs/architecture.md``.
"""
