"""JAX's threefry2x32 PRNG with the hash unrolled: the same bits, fewer kernels on CPU.

On CPU, JAX lowers every threefry hash (each ``split``, each draw) to a rolled
5-iteration ``while`` loop.  Inside a tiny SVI step, NumPyro's handlers split keys
several times per step (one split per step, per particle, per sample site), and
these little loops dominate the step time: on the seed Gaussian they are most of
the 4-6 µs per step.  This module registers a PRNG implementation whose
``split``, ``random_bits`` and ``fold_in`` compute the very same threefry2x32
function with plain ``lax`` ops (20 rounds unrolled, as JAX itself does on GPU),
which XLA fuses into one kernel.  Keys and every draw are bit-identical to
``jax.random.PRNGKey(seed)`` with the default implementation (checked by
``tests/test_fitloop.py``), so a fit with this key gives the same random numbers
as NumPyro's ``SVI`` with ``PRNGKey(seed)``.

Only the fitting loop uses it (a typed key, ``jax.random.key(seed, impl=IMPL)``);
JAX's global default is left alone.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

_U32 = np.uint32
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _rotl(x, d: int):
    return lax.shift_left(x, _U32(d)) | lax.shift_right_logical(x, _U32(32 - d))


def threefry2x32(k1, k2, x1, x2):
    """The threefry2x32 hash of counts (x1, x2) under key (k1, k2), unrolled."""
    ks = (k1, k2, k1 ^ k2 ^ _U32(0x1BD11BDA))
    x1 = x1 + ks[0]
    x2 = x2 + ks[1]
    for r in range(5):
        for rot in _ROTATIONS[r % 2]:
            x1 = x1 + x2
            x2 = _rotl(x2, rot)
            x2 = x1 ^ x2
        x1 = x1 + ks[(r + 1) % 3]
        x2 = x2 + ks[(r + 2) % 3] + _U32(r + 1)
    return x1, x2


def _counts(shape):
    """The (hi, lo) words of a uint64 iota of ``shape`` (JAX's partitionable counter layout)."""
    n = math.prod(shape)
    if n >= 2**32:
        raise NotImplementedError("fastrng: more than 2**32 random words in one call")
    lo = lax.iota(np.uint32, n).reshape(shape) if shape else jnp.zeros((), np.uint32)
    return jnp.zeros(shape, np.uint32), lo


def _seed(seed):
    seed = jnp.asarray(seed)
    if seed.dtype.itemsize == 8:
        k1 = lax.convert_element_type(lax.shift_right_logical(seed, lax.full_like(seed, 32)), _U32)
        k2 = lax.convert_element_type(jnp.bitwise_and(seed, np.uint32(0xFFFFFFFF)), _U32)
    else:
        k1 = jnp.zeros((), _U32)
        k2 = lax.convert_element_type(seed, _U32)
    return jnp.stack([k1, k2])


def _split(key, shape):
    c1, c2 = _counts(tuple(shape))
    b1, b2 = threefry2x32(key[0], key[1], c1, c2)
    return jnp.stack([b1, b2], axis=b1.ndim)


def _random_bits(key, bit_width, shape):
    c1, c2 = _counts(tuple(shape))
    b1, b2 = threefry2x32(key[0], key[1], c1, c2)
    if bit_width == 64:
        return lax.shift_left(b1.astype(np.uint64), np.uint64(32)) | b2.astype(np.uint64)
    if bit_width == 32:
        return b1 ^ b2
    return (b1 ^ b2).astype({8: np.uint8, 16: np.uint16}[bit_width])


def _fold_in(key, data):
    d = _seed(jnp.asarray(data, _U32))
    b1, b2 = threefry2x32(key[0], key[1], d[:1], d[1:])
    return jnp.concatenate([b1, b2])


def _define():
    from jax.extend.random import define_prng_impl

    return define_prng_impl(
        key_shape=(2,),
        seed=_seed,
        split=_split,
        random_bits=_random_bits,
        fold_in=_fold_in,
        name="threefry2x32_unrolled",
        tag="fru",
    )


try:
    IMPL = _define()
except Exception:  # pragma: no cover - an older/newer jax without the extension API
    IMPL = None


def rewrap(key):
    """The same key bits as a key of the unrolled implementation (``key`` itself if unavailable)."""
    import jax

    if IMPL is None:
        return key
    if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        data = key
    else:
        data = jax.random.key_data(key)
    return jax.random.wrap_key_data(data, impl=IMPL)


def key(seed: int):
    """A typed PRNG key for ``seed``: the unrolled impl when available, else JAX's default."""
    import jax

    if IMPL is None:
        return jax.random.PRNGKey(seed)
    return jax.random.key(seed, impl=IMPL)
