"""Backend implementations. Only ``numpyro/`` imports jax/numpyro; only ``pyro/`` imports torch/pyro.

Each backend module exposes ``BACKEND``, an object with the same methods:
``param``, ``sample``, ``plate``, ``factor``, ``deterministic``, ``make_dist``,
``constraint``, ``ops``, ``to_array``, ``to_numpy``, ``optimizer`` and ``fit``.
"""
