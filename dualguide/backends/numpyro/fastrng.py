"""JAX's threefry2x32 PRNG with the hash unrolled: the same bits, fewer kernels on CPU.

On CPU, JAX lowers every threefry hash (each key ``split``, each draw) to a rolled
5-iteration ``while`` loop.  Inside a small SVI step NumPyro's handlers split keys
several times (once per step, per particle, per sample site), and these little
loops are a large part of the step time (on the seed Gaussian, about a third).
This module registers PRNG implementations that compute the very same
threefry2x32 function with plain ``lax`` ops (the 20 rounds unrolled, as JAX
itself does on GPU), which XLA fuses with their neighbours:

* ``IMPL_SPLIT``: unrolled ``split`` and ``fold_in``; draws (``random_bits``) keep
  JAX's own kernel.  What ``fit`` uses.
* ``IMPL``: the draws unrolled too.  Faster still for large draws, but XLA's CPU
  fusion may copy the unrolled hash into every consumer of a draw, which can make
  compilation take seconds (seen with one-particle plated models).

Keys and every random number are bit-identical to ``jax.random.PRNGKey(seed)``
with the default implementation (``tests/test_fitloop.py`` checks it), so a fit
with these keys draws what NumPyro's ``SVI`` draws with ``PRNGKey(seed)``.
JAX's global default implementation is left alone.
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


def _random_bits_rolled(key, bit_width, shape):
    """JAX's own partitionable threefry bits (its rolled CPU kernel): one materialized result."""
    from jax.extend.random import threefry2x32_p

    c1, c2 = _counts(tuple(shape))
    b1, b2 = threefry2x32_p.bind(key[0], key[1], c1, c2)
    if bit_width == 64:
        return lax.shift_left(b1.astype(np.uint64), np.uint64(32)) | b2.astype(np.uint64)
    if bit_width == 32:
        return b1 ^ b2
    return (b1 ^ b2).astype({8: np.uint8, 16: np.uint16}[bit_width])


def _fold_in(key, data):
    d = _seed(jnp.asarray(data, _U32))
    b1, b2 = threefry2x32(key[0], key[1], d[:1], d[1:])
    return jnp.concatenate([b1, b2])


def _define(bits, name, tag):
    from jax.extend.random import define_prng_impl

    return define_prng_impl(
        key_shape=(2,),
        seed=_seed,
        split=_split,
        random_bits=bits,
        fold_in=_fold_in,
        name=name,
        tag=tag,
    )


try:
    IMPL = _define(_random_bits, "threefry2x32_unrolled", "fru")
    IMPL_SPLIT = _define(_random_bits_rolled, "threefry2x32_unrolled_split", "frs")
except Exception:  # pragma: no cover - an older/newer jax without the extension API
    IMPL = IMPL_SPLIT = None


def rewrap(key, impl=None):
    """The same key bits as a key of ``impl`` (default IMPL; ``key`` itself if unavailable)."""
    import jax

    impl = IMPL if impl is None else impl
    if impl is None:
        return key
    if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        data = key
    else:
        data = jax.random.key_data(key)
    return jax.random.wrap_key_data(data, impl=impl)


def key(seed: int):
    """A typed PRNG key for ``seed``: the unrolled impl when available, else JAX's default."""
    import jax

    if IMPL is None:
        return jax.random.PRNGKey(seed)
    return jax.random.key(seed, impl=IMPL)
